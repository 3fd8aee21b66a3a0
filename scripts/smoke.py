"""End-to-end smoke run: real MinIO, real `lakehouse serve`, real HTTP and ADBC clients.

Builds/starts MinIO, starts the server against it, ingests workers_500k.csv through the HTTP
edge, queries through the edge and through the ADBC Flight SQL driver into pandas and polars,
checks the answers against an independent computation over the CSV, restarts the server and
checks the dataset is still there, then stops everything it started. Prints ingest time,
query latencies, Parquet vs CSV size and the peak memory of each process. Exit code 0 means
every check passed.

    python -m scripts.smoke [--rows 500000]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import httpx

from bench.workers import ensure_workers_csv
from scripts import minio as minio_script

ROOT = Path(__file__).resolve().parent.parent
GROUP_BY = "SELECT role, count(*) AS n FROM {t} WHERE state = 'IL' GROUP BY role ORDER BY role"


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of a process from /proc: by default the kernel's high-water mark of its
    resident memory (VmHWM); `VmRSS` is the current resident size."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmHWM")


def expected_group_by(path: Path) -> list[tuple[str, int]]:
    """The GROUP BY answer computed without the lakehouse: Python's csv module over the file."""
    counts: Counter[str] = Counter()
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["state"] == "IL":
                counts[row["role"]] += 1
    return sorted(counts.items())


def wait_healthy(proc: subprocess.Popen[bytes], url: str, what: str, log: Path, timeout: float = 60.0) -> None:
    """Wait until a freshly started server answers 200 at `url`; fail early if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see {log}")


class Server:
    """`lakehouse serve` in a child process, configured through the environment."""

    def __init__(self, env: dict[str, str], http_port: int, flight_port: int, log: Path) -> None:
        self.env, self.http_port, self.flight_port, self.log = env, http_port, flight_port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def flight(self) -> str:
        return f"grpc://127.0.0.1:{self.flight_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "lakehouse", "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_healthy(self.proc, f"http://127.0.0.1:{self.http_port}/health", "server", self.log)

    def stop(self) -> float:
        """Stop with SIGTERM (a clean shutdown) and return the process's peak RSS in MB."""
        assert self.proc is not None
        peak = peak_rss_mb(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError("server did not stop within 30 s of SIGTERM")
        return peak


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - started) * 1000


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print(f"  ok  {what}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    name = "workers_500k" if args.rows == 500_000 else f"workers_{args.rows}"
    csv_path = ensure_workers_csv(args.rows)
    work = Path(tempfile.mkdtemp(prefix="lakehouse-smoke-"))
    minio = minio_script.start(work / "minio")
    http_port, flight_port = minio_script.free_port(), minio_script.free_port()
    env = dict(
        os.environ,
        LAKEHOUSE_STORAGE_URI=f"s3://{minio.bucket}/smoke",
        LAKEHOUSE_STORAGE_ENDPOINT=minio.endpoint,
        LAKEHOUSE_STORAGE_CACHE_DIR=str(work / "cache"),
        LAKEHOUSE_HTTP_PORT=str(http_port),
        LAKEHOUSE_FLIGHT_PORT=str(flight_port),
        LAKEHOUSE_SECRETS_PATH=str(work / "no-secrets.toml"),
        AWS_ACCESS_KEY_ID=minio_script.ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=minio_script.SECRET_KEY,
    )
    server = Server(env, http_port, flight_port, work / "server.log")
    base = f"http://127.0.0.1:{http_port}"
    report: list[tuple[str, str]] = []
    try:
        server.start()
        print(f"smoke: MinIO {minio.endpoint}, HTTP {base}, Flight grpc://127.0.0.1:{flight_port}")
        expected = expected_group_by(csv_path)

        with csv_path.open("rb") as fh:
            resp, ingest_ms = timed(lambda: httpx.post(f"{base}/v1/ingest", params={"name": name}, files={"file": (csv_path.name, fh, "text/csv")}, timeout=600))
        check(resp.status_code == 200, f"HTTP ingest of {csv_path.name} answered 200 ({resp.status_code}: {resp.text[:200]})")
        body = resp.json()
        manifest = body.get("manifest", body)
        check(manifest["row_count"] == args.rows, f"manifest row_count = {args.rows}")
        parquet_bytes = sum(o["size"] for o in manifest["objects"])
        report.append(("ingest (HTTP, until queryable)", f"{ingest_ms / 1000:.2f} s"))
        report.append(("CSV size / Parquet size", f"{csv_path.stat().st_size / 1e6:.1f} MB / {parquet_bytes / 1e6:.1f} MB ({parquet_bytes / csv_path.stat().st_size:.0%})"))

        got = httpx.get(f"{base}/catalog/manifest/{name}", timeout=30)
        check(got.status_code == 200 and got.json()["row_count"] == args.rows, "GET /catalog/manifest shows the dataset")

        def sql(q: str) -> Any:
            r = httpx.post(f"{base}/v1/sql", json={"sql": q}, timeout=60)
            r.raise_for_status()
            return r.json()

        sql(f"SELECT count(*) FROM {name}")
        rows, count_ms = timed(lambda: sql(f"SELECT count(*) FROM {name}"))
        check(rows == [{"count_star()": args.rows}], f"/v1/sql count(*) = {args.rows}")
        rows, group_ms = timed(lambda: sql(GROUP_BY.format(t=name)))
        check([(r["role"], r["n"]) for r in rows] == expected, "/v1/sql GROUP BY role WHERE state='IL' matches the CSV")
        report += [("HTTP count(*)", f"{count_ms:.1f} ms"), ("HTTP GROUP BY", f"{group_ms:.1f} ms")]

        import adbc_driver_flightsql.dbapi as flight_sql
        import pandas as pd
        import polars as pl

        with flight_sql.connect(f"grpc://127.0.0.1:{flight_port}") as conn:
            pd.read_sql(GROUP_BY.format(t=name), conn)
            frame, pandas_ms = timed(lambda: pd.read_sql(GROUP_BY.format(t=name), conn))
            check(list(zip(frame["role"], frame["n"].astype(int))) == expected, "ADBC → pandas GROUP BY matches the CSV")
            pl_frame, polars_ms = timed(lambda: pl.read_database(GROUP_BY.format(t=name), conn))
            check(list(zip(pl_frame["role"].to_list(), pl_frame["n"].to_list())) == expected, "ADBC → polars GROUP BY matches the CSV")
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {name}")
                check(cur.fetchone()[0] == args.rows, f"ADBC count(*) = {args.rows}")
        report += [("ADBC pandas GROUP BY", f"{pandas_ms:.1f} ms"), ("ADBC polars GROUP BY", f"{polars_ms:.1f} ms")]

        first_peak = server.stop()
        server.start()
        check(sql(f"SELECT count(*) FROM {name}") == [{"count_star()": args.rows}], "after a restart the dataset is still there")
        report.append(("server peak RSS (ingest run)", f"{first_peak:.0f} MB"))
        report.append(("server peak RSS (after restart)", f"{server.stop():.0f} MB"))
        report.append(("MinIO peak RSS", f"{peak_rss_mb(minio.process.pid):.0f} MB"))
        print("\nsmoke figures")
        for label, value in report:
            print(f"  {label:<34} {value}")
        return 0
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
        minio.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
