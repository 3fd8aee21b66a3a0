"""The results table: sections of rows, each a median time, its ratio to the section's
baseline (measured in the same run), an optional throughput, and the targets it is held to."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    label: str
    met: bool

    def __str__(self) -> str:
        return f"{self.label} {'ok' if self.met else 'MISSED'}"


@dataclass
class Row:
    what: str
    via: str
    seconds: float | None
    ratio: float | None = None
    mbps: float | None = None
    targets: list[Target] = field(default_factory=list)
    note: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, via: str, seconds: float | None, baseline_s: float | None = None, nbytes: int | None = None, note: str = "") -> Row:
        """A row; with `baseline_s` its ratio (seconds / baseline seconds), with `nbytes` its MB/s."""
        ratio = seconds / baseline_s if seconds is not None and baseline_s else None
        mbps = nbytes / 1e6 / seconds if nbytes is not None and seconds else None
        row = Row(what, via, seconds, ratio, mbps, note=note)
        self.rows.append(row)
        return row


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def render(sections: list[Section]) -> str:
    """The table as plain text (fixed-width columns, readable in a terminal and in Markdown code)."""
    header = f"{'what':<22} {'via':<28} {'median':>10} {'ratio':>7} {'MB/s':>7}  target"
    lines: list[str] = []
    for s in sections:
        lines += ["", f"== {s.title}", header, "-" * len(header)]
        for r in s.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
            mbps = f"{r.mbps:.0f}" if r.mbps is not None else ""
            targets = "; ".join(str(t) for t in r.targets)
            extra = "  ".join(x for x in (targets, r.note) if x)
            lines.append(f"{r.what:<22} {r.via:<28} {duration(r.seconds):>10} {ratio:>7} {mbps:>7}  {extra}".rstrip())
        lines += [f"   {n}" for n in s.notes]
    missed = [(r, t) for s in sections for r in s.rows for t in r.targets if not t.met]
    met = sum(1 for s in sections for r in s.rows for t in r.targets if t.met)
    lines += ["", f"targets: {met} met, {len(missed)} missed"]
    lines += [f"  MISSED  {r.what} via {r.via}: {t.label}" for r, t in missed]
    return "\n".join(lines)


def machine_facts() -> list[str]:
    """What the figures depend on: the date, CPUs, memory and the versions measured."""
    import datetime
    import os
    import platform

    import duckdb
    import pyarrow

    def first(path: str, prefix: str, default: str) -> str:
        with open(path) as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith(prefix)), default)

    total_kb = int(first("/proc/meminfo", "MemTotal:", "0 kB").split()[0])
    cpu = first("/proc/cpuinfo", "model name", platform.machine())
    return [
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} CPUs ({cpu}), {total_kb / 1024**2:.1f} GiB RAM, {platform.system()} {platform.release()}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on the machine skews the figures)",
        f"software: Python {platform.python_version()}, pyarrow {pyarrow.__version__}, duckdb {duckdb.__version__}",
        f"code: {code_version()}",
    ]


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it (read-only git calls)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return f"commit {commit}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
