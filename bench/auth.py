"""`python -m bench.auth`: what auth costs a warm query.

Two `lakehouse serve` processes on the local backend, one with auth off and one with auth on
(a writer logged in through ADBC with a password, so every call carries a bearer token that
the server verifies), hold the same 100,000-row dataset. The same `count(*)` runs through
ADBC on each, interleaved, and the medians are compared. Goal: at most 0.2 ms more with auth.

    python -m bench.auth [--runs 400]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa

from scripts import minio as minio_script
from scripts.smoke import Server

from lakehouse.users import UserStore

USER, PASSWORD = "bench", "bench-writer-password"
GOAL_MS = 0.2
SQL = "SELECT count(*) FROM workers"


def _server(work: Path, auth: bool) -> Server:
    work.mkdir(parents=True)
    if auth:
        UserStore(work / "secrets.toml").add(USER, "writer", PASSWORD)
    http_port, flight_port = minio_script.free_port(), minio_script.free_port()
    (work / "lakehouse.toml").write_text("")
    env = dict(
        os.environ,
        LAKEHOUSE_CONFIG=str(work / "lakehouse.toml"),
        LAKEHOUSE_STORAGE_URI=f"file://{work / 'data'}",
        LAKEHOUSE_STORAGE_CACHE_DIR=str(work / "cache"),
        LAKEHOUSE_SECRETS_PATH=str(work / "secrets.toml"),
        LAKEHOUSE_HTTP_PORT=str(http_port),
        LAKEHOUSE_FLIGHT_PORT=str(flight_port),
        LAKEHOUSE_AUTH_ENABLED=str(auth).lower(),
    )
    server = Server(env, http_port, flight_port, work / "server.log")
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auth")
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lakehouse-bench-auth-"))
    servers = {"auth off": _server(work / "open", False), "auth on": _server(work / "secured", True)}
    table = pa.table({"id": pa.array(range(100_000), pa.int64())})
    cursors = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for label, server in servers.items():
                kwargs = {"username": USER, "password": PASSWORD} if label == "auth on" else {}
                conn = flight_sql.connect(server.flight, db_kwargs=kwargs)
                cursor = conn.cursor()
                cursor.adbc_ingest("workers", table, mode="create")
                cursors[label] = cursor
        times: dict[str, list[float]] = {label: [] for label in servers}
        for i in range(args.runs + 20):
            for label, cursor in cursors.items():
                started = time.perf_counter()
                cursor.execute(SQL)
                cursor.fetch_arrow_table()
                if i >= 20:  # warm-up
                    times[label].append((time.perf_counter() - started) * 1000)
        medians = {label: statistics.median(t) for label, t in times.items()}
        extra = medians["auth on"] - medians["auth off"]
        for label, value in medians.items():
            print(f"warm count(*) through ADBC, {label:8}: {value:.3f} ms (median of {args.runs})")
        print(f"auth costs {extra:+.3f} ms a query (goal: at most {GOAL_MS} ms): {'met' if extra <= GOAL_MS else 'missed'}")
        return 0
    finally:
        for cursor in cursors.values():
            cursor.close()
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
