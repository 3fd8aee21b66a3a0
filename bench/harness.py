"""What every benchmark needs: the servers under test, bounded timing loops and memory readings.

`Environment` owns the scratch directory and, for the `s3` backend, a real MinIO; each
`Lakehouse` is `lakehouse serve` in a child process over storage of its own, bound to
127.0.0.1 only. `measure_all` runs functions round-robin a bounded number of times within a
time budget and keeps each one's median; `compare` turns that into rows against a baseline.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import httpx

from bench.report import Row, Section
from scripts import minio as minio_script
from scripts.smoke import Server, peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
BENCH_PREFIX = "bench"
# The edge's defaults cap a result at 100k rows and an upload at 2 GiB; the benchmarks fetch
# 500k-row results over HTTP and upload the 20M-row CSV (3.5 GB), so the bench server allows both.
SERVER_LIMITS = {"LAKEHOUSE_HTTP_MAX_ROWS": str(100_000_000), "LAKEHOUSE_HTTP_MAX_UPLOAD_BYTES": str(64 << 30)}


@dataclass(frozen=True)
class Timing:
    """How long to measure: `repeat` timed runs after one warm-up, stopped early past `budget_s`;
    the functions compared take turns (`interleaved`), or each runs all its rounds in a row."""

    repeat: int
    budget_s: float
    interleaved: bool = True

    def scaled(self, factor: int) -> "Timing":
        return Timing(self.repeat * factor, self.budget_s, self.interleaved)


@dataclass(frozen=True)
class Measured:
    median_s: float
    runs: int


def measure_all(fns: Sequence[Callable[[int], object]], timing: Timing, warmup: int = 1) -> list[Measured | Exception]:
    """Time several functions round-robin, so that a change in the machine's load hits them
    all alike: one untimed warm-up each, then at most `timing.repeat` rounds, fewer when the
    budget (`budget_s` per function) runs out. Each round starts one function further along,
    so that no function always runs right after the same other one (whose leftovers in the
    caches, such as an in-process scan's, would then cost it alone). Each call gets a fresh
    `i`. A function that raises drops out and its exception is returned in its place.

    Not `interleaved`, each function runs its warm-up and rounds in a row: each call then
    finds the caches as its own previous call left them, where round-robin calls find them
    full of the other functions' work (which costs an interpreted server more than a
    compiled one)."""
    if not timing.interleaved:
        return [measure_all([fn], Timing(timing.repeat, timing.budget_s), warmup)[0] for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    errors: dict[int, Exception] = {}

    def call(k: int, i: int, timed: bool) -> None:
        if k in errors:
            return
        started = time.perf_counter()
        try:
            fns[k](i)
        except Exception as exc:
            errors[k] = exc
            return
        if timed:
            samples[k].append(time.perf_counter() - started)

    for i in range(warmup):
        for k in range(len(fns)):
            call(k, i, False)
    deadline = time.monotonic() + timing.budget_s * len(fns)
    for i in range(warmup, warmup + timing.repeat):
        for j in range(len(fns)):
            call((i + j) % len(fns), i, True)
        if time.monotonic() > deadline:
            break
    return [errors.get(k) or Measured(statistics.median(samples[k]), len(samples[k])) for k in range(len(fns))]


def measure(fn: Callable[[int], object], timing: Timing, warmup: int = 1) -> Measured:
    """`measure_all` of one function; raises what it raises."""
    (result,) = measure_all([fn], timing, warmup)
    if isinstance(result, Exception):
        raise result
    return result


@dataclass(frozen=True)
class Contender:
    via: str
    fn: Callable[[int], object]


def compare(section: Section, what: str, baseline: Contender, others: Sequence[Contender], timing: Timing, nbytes: int | None = None) -> list[Row]:
    """Measure a baseline and the paths compared with it (in turns, see `measure_all`) into rows of `section`.

    The baseline's row comes first; a path that failed gets a row saying how (a missing or
    broken route is reported in the table, not hidden) and the others still run."""
    log(f"  {what}: {baseline.via}, " + ", ".join(o.via for o in others))
    base, *results = measure_all([baseline.fn] + [o.fn for o in others], timing)
    if isinstance(base, Exception):
        raise base
    rows = [section.add(what, f"{baseline.via} (base)", base.median_s, base.median_s, nbytes)]
    for other, result in zip(others, results):
        if isinstance(result, Exception):
            rows.append(section.add(what, other.via, None, note=f"FAILED: {type(result).__name__}: {' '.join(str(result).split())}"[:300]))
        else:
            rows.append(section.add(what, other.via, result.median_s, base.median_s, nbytes))
    return rows


def reset_peak_rss(pid: int) -> None:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS, so the next reading is
    the peak of what happens from now on (Linux clear_refs, value 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


class OtherLoad:
    """How much of the machine's CPU other processes used while a benchmark ran: a noise
    indicator, since client, servers and baselines all share the same few cores.

    Busy time of all CPUs (/proc/stat) minus the CPU time of this process and its children
    (the servers, MinIO and ROAPI it started), over the wall time times the CPU count."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        import psutil

        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        me = psutil.Process()
        t = me.cpu_times()
        ours = t.user + t.system + t.children_user + t.children_system
        for child in me.children(recursive=True):
            try:
                c = child.cpu_times()
                ours += c.user + c.system
            except psutil.Error:
                pass
        return time.monotonic(), busy, ours

    def share(self) -> float:
        wall, busy, ours = (b - a for a, b in zip(self._start, self._sample()))
        return max(0.0, busy - ours) / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0


@dataclass(frozen=True)
class Storage:
    """Where one server (or in-process lake) keeps its data: a directory of its own (local),
    or a prefix of its own on the run's MinIO (s3); `work` holds its cache and logs."""

    work: Path
    minio: minio_script.MinioServer | None

    @property
    def prefix(self) -> str:
        return f"{BENCH_PREFIX}/{self.work.name}"

    def env(self) -> dict[str, str]:
        """The environment that points `lakehouse` (server or library) at this storage."""
        env = dict(os.environ, LAKEHOUSE_STORAGE_CACHE_DIR=str(self.work / "cache"), LAKEHOUSE_SECRETS_PATH=str(self.work / "no-secrets.toml"), **SERVER_LIMITS)
        if self.minio is None:
            env["LAKEHOUSE_STORAGE_URI"] = f"file://{self.work / 'data'}"
            return env
        env.update(
            LAKEHOUSE_STORAGE_URI=f"s3://{self.minio.bucket}/{self.prefix}",
            LAKEHOUSE_STORAGE_ENDPOINT=self.minio.endpoint,
            AWS_ACCESS_KEY_ID=minio_script.ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=minio_script.SECRET_KEY,
        )
        return env

    def local_copies(self, keys: list[str], into: Path) -> list[Path]:
        """Local files with these objects' bytes: the data directory's own files (local), or a
        one-time download from MinIO (s3)."""
        if self.minio is None:
            return [self.work / "data" / k for k in keys]
        from minio import Minio

        client = Minio(f"127.0.0.1:{self.minio.port}", access_key=minio_script.ACCESS_KEY, secret_key=minio_script.SECRET_KEY, secure=False)
        paths = []
        for key in keys:
            target = into / key
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                client.fget_object(self.minio.bucket, f"{self.prefix}/{key}", str(target))
            paths.append(target)
        return paths


class Lakehouse:
    """`lakehouse serve` in a child process over its own storage; `restart` keeps the data."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.http_port = minio_script.free_port()
        self.flight_port = minio_script.free_port()
        env = dict(storage.env(), LAKEHOUSE_HTTP_PORT=str(self.http_port), LAKEHOUSE_FLIGHT_PORT=str(self.flight_port))
        self.server = Server(env, self.http_port, self.flight_port, storage.work / "server.log")
        self.server.start()

    @property
    def http(self) -> str:
        return self.server.http

    @property
    def flight(self) -> str:
        return self.server.flight

    @property
    def pid(self) -> int:
        return self.server.pid

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def restart(self) -> None:
        """A new server process over the same data (and a fresh memory high-water mark)."""
        self.server.stop()
        self.server.start()

    def hold_in_memory(self, sql: str, held_bytes: float | None = None, timeout_s: float = 60.0) -> float:
        """Query twice, then wait until the server holds a dataset in memory (`hot.py`; its
        `lakehouse_hot_datasets` and `lakehouse_hot_bytes` metrics): warm figures are of the
        steady state, not of the seconds the copy takes. With `held_bytes`, wait until the
        copies held add up to that many Parquet bytes (a new version's copy replaced the old
        one's). Seconds waited."""
        started = time.monotonic()
        for _ in range(2):
            httpx.post(f"{self.http}/v1/sql", json={"sql": sql}, timeout=60).raise_for_status()
        while time.monotonic() - started < timeout_s:
            datasets, nbytes = self.held()
            if datasets >= 1 and (held_bytes is None or nbytes == held_bytes):
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"the server held nothing in memory after {timeout_s:.0f} s")

    def held(self) -> tuple[float, float]:
        """Dataset versions held in memory and their Parquet bytes, from `/metrics`."""
        values = {"lakehouse_hot_datasets": 0.0, "lakehouse_hot_bytes": 0.0}
        for line in httpx.get(f"{self.http}/metrics", timeout=30).text.splitlines():
            name, _, value = line.partition(" ")
            if name in values:
                values[name] = float(value)
        return values["lakehouse_hot_datasets"], values["lakehouse_hot_bytes"]

    def total_bytes(self, dataset: str) -> int:
        """The Parquet bytes of the dataset's current version, from its manifest."""
        resp = httpx.get(f"{self.http}/catalog/manifest/{dataset}", timeout=30)
        resp.raise_for_status()
        return int(resp.json()["total_bytes"])

    def object_keys(self, dataset: str) -> list[str]:
        """The dataset's data objects, from `GET /catalog/manifest/{name}`."""
        resp = httpx.get(f"{self.http}/catalog/manifest/{dataset}", timeout=30)
        resp.raise_for_status()
        return [o["key"] for o in resp.json()["objects"]]

    def local_copies(self, dataset: str, into: Path) -> list[Path]:
        """Local files with the dataset's Parquet objects, for the in-process baselines."""
        return self.storage.local_copies(self.object_keys(dataset), into)

    def close(self) -> None:
        if self.server.proc is not None and self.server.proc.poll() is None:
            self.server.stop()


class Environment:
    """The benchmark's scratch directory and, for the s3 backend, one MinIO for the whole run."""

    def __init__(self, backend: str) -> None:
        if backend not in ("s3", "local"):
            raise ValueError(f"unknown backend {backend!r}")
        self.work = Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
        self.minio = minio_script.start(self.work / "minio") if backend == "s3" else None
        self._servers: list[Lakehouse] = []

    def storage(self, name: str) -> Storage:
        """Fresh storage named `name` (a directory, or a MinIO prefix); a name is used once."""
        work = self.work / name
        work.mkdir()
        return Storage(work, self.minio)

    def lakehouse(self, name: str) -> Lakehouse:
        """A server over fresh storage of its own."""
        server = Lakehouse(self.storage(name))
        self._servers.append(server)
        return server

    def scratch(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        for server in self._servers:
            server.close()
        if self.minio is not None:
            self.minio.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the results table."""
    print(message, file=sys.stderr, flush=True)
