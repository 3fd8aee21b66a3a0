"""Memory while ingesting about 1 GB of generated CSV; reported, not asserted.

(a) In-process: `Lake.ingest_csv` from the file, in a child process of its own so its peak
    RSS (VmHWM) is the ingest's alone. Target: below 400 MB.
(b) Through the HTTP edge: the file streamed as a multipart `POST /v1/ingest` to
    `lakehouse serve`; the server's peak RSS idle, over the 88 MB upload, over the 1 GB one
    and over the same 1 GB gzip-compressed (the high-water mark reset before each). Flat is
    the goal: the body is never held whole, compressed or not.

    python -m bench.memory [--backend s3|local] [--rows 5700000]

`python -m bench --memory` runs the same as a section of the main table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, Environment, OtherLoad, log, reset_peak_rss
from bench.ingest import http_ingest
from bench.report import Section, Target, machine_facts, render
from bench.workers import DEFAULT_ROWS, ensure_workers_csv
from scripts.smoke import peak_rss_mb

MEMORY_ROWS = 5_700_000  # about 1.0 GB of CSV
IN_PROCESS_MAX_MB = 400
FLAT_RSS = 1.25
CHILD_TIMEOUT_S = 3600


def _child(csv_path: Path) -> None:
    """Runs in the child: ingest the file through the library, print one JSON line of figures."""
    from lakehouse.config import load_config
    from lakehouse.lake import Lake

    lake = Lake.open(load_config())
    before = peak_rss_mb(os.getpid())
    started = time.perf_counter()
    with csv_path.open("rb") as fh:
        result = lake.ingest_csv("memory", fh)
    seconds = time.perf_counter() - started
    lake.close()
    print(json.dumps({"seconds": seconds, "rows": result.rows, "before_mb": before, "peak_mb": peak_rss_mb(os.getpid())}))


def in_process(env: Environment, csv_path: Path) -> dict[str, float]:
    storage = env.storage("memory-in-process")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", str(csv_path)],
        env=storage.env(), cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"in-process ingest failed ({proc.returncode}): {proc.stderr[-500:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run(env: Environment, rows: int = MEMORY_ROWS) -> Section:
    big = ensure_workers_csv(rows)
    small = ensure_workers_csv(DEFAULT_ROWS)
    big_mb = big.stat().st_size / 1e6
    section = Section(f"Memory: ingest of {big.name} ({big_mb:,.0f} MB CSV); peak RSS, reported not asserted")

    log("memory: in-process Lake.ingest_csv")
    try:
        got = in_process(env, big)
        row = section.add(f"{big_mb:,.0f} MB CSV", "Lake.ingest_csv in-process", got["seconds"], nbytes=big.stat().st_size,
                          note=f"peak RSS {got['peak_mb']:.0f} MB (after start-up {got['before_mb']:.0f} MB)")
        row.targets.append(Target(f"peak < {IN_PROCESS_MAX_MB} MB", got["peak_mb"] < IN_PROCESS_MAX_MB))
    except Exception as exc:
        section.add(f"{big_mb:,.0f} MB CSV", "Lake.ingest_csv in-process", None, note=f"FAILED: {' '.join(str(exc).split())}"[:300])

    log("memory: HTTP multipart uploads")
    lh = env.lakehouse("memory-http")
    try:
        section.add("server idle", "lakehouse serve", None, note=f"peak RSS {lh.peak_rss_mb():.0f} MB after start-up")
        peaks = []
        for path, name, n in ((small, "small", DEFAULT_ROWS), (big, "big", rows), (_gzipped(big), "big_gz", rows)):
            reset_peak_rss(lh.pid)
            started = time.perf_counter()
            try:
                http_ingest(lh, path, name, n)
            except Exception as exc:
                section.add(f"{path.stat().st_size / 1e6:,.0f} MB CSV", "HTTP multipart /v1/ingest", None, note=f"FAILED: {' '.join(str(exc).split())}"[:300])
                break
            seconds = time.perf_counter() - started
            peaks.append(lh.peak_rss_mb())
            kind = "gzip CSV" if path.suffix == ".gz" else "CSV"
            row = section.add(f"{path.stat().st_size / 1e6:,.0f} MB {kind}", "HTTP multipart /v1/ingest", seconds, nbytes=path.stat().st_size, note=f"server peak RSS {peaks[-1]:.0f} MB")
            if len(peaks) >= 2:
                row.targets.append(Target(f"flat: <= {FLAT_RSS}x the small upload's peak", peaks[-1] <= FLAT_RSS * peaks[0]))
    finally:
        lh.close()
    section.notes.append("MB/s: CSV bytes per second, until queryable for HTTP")
    return section


def _gzipped(csv_path: Path) -> Path:
    """The CSV gzip-compressed beside it, made once (level 1: the upload is what is measured)."""
    target = csv_path.with_name(csv_path.name + ".gz")
    if not target.exists() or target.stat().st_mtime < csv_path.stat().st_mtime:
        partial = target.with_name(target.name + ".part")
        with csv_path.open("rb") as src, gzip.open(partial, "wb", compresslevel=1) as out:
            shutil.copyfileobj(src, out, 1 << 20)
        partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["s3", "local"], default="s3")
    parser.add_argument("--rows", type=int, default=MEMORY_ROWS, help=f"rows of generated CSV (default {MEMORY_ROWS:,}, about 1 GB)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    facts = machine_facts()
    env = Environment(args.backend)
    other = OtherLoad()
    try:
        section = run(env, args.rows)
    finally:
        env.close()
    section.notes.append(f"other processes used {other.share():.0%} of the CPUs meanwhile (noise if well above 0%)")
    print("\n".join(facts) + "\n" + render([section]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
