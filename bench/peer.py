"""The peer: ROAPI (`roapi==0.12.7`, the `bench` extra) serving the same Parquet data.

ROAPI loads one file per table into memory at start and answers SQL over HTTP (`POST /api/sql`,
the SQL text as the body) and Flight SQL. Its Postgres endpoint always starts, so it gets a
free port too. Known quirk of 0.12.7: in its default in-memory mode LIMIT is ignored when the
SELECT lists columns out of table order without WHERE/ORDER BY; the benchmark queries avoid
that shape and every answer's row count is checked against the baseline anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from bench.clients import Adbc, HttpSql
from scripts.minio import free_port
from scripts.smoke import peak_rss_mb, wait_healthy

START_TIMEOUT_S = 120.0


def single_parquet(paths: list[Path], target: Path) -> Path:
    """ROAPI takes one file per table: the dataset's only object as is, or its objects merged."""
    if len(paths) == 1:
        return paths[0]
    first = pq.ParquetFile(paths[0])
    with pq.ParquetWriter(target, first.schema_arrow, compression="zstd") as out:
        for p in paths:
            source = pq.ParquetFile(p)
            for g in range(source.num_row_groups):
                out.write_table(source.read_row_group(g))
    return target


def roapi_binary() -> str:
    """The venv's roapi (next to this interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / "roapi"
    found = str(beside) if beside.exists() else shutil.which("roapi")
    if found is None:
        raise RuntimeError("roapi not found: install the bench extra (pip install -e .[bench])")
    return found


class Roapi:
    def __init__(self, parquet: Path, table: str, log: Path) -> None:
        self.http_port, self.flight_port, pg_port = free_port(), free_port(), free_port()
        args = [
            roapi_binary(),
            "-a", f"127.0.0.1:{self.http_port}",
            "-p", f"127.0.0.1:{pg_port}",
            "--addr-flight-sql", f"127.0.0.1:{self.flight_port}",
            "-t", f"{table}={parquet}",
        ]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(args, env=dict(os.environ, RUST_LOG="warn"), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(log)

    def _wait_ready(self, log: Path) -> None:
        try:
            wait_healthy(self.proc, f"{self.http}/health", "roapi", log, START_TIMEOUT_S)
        except RuntimeError:
            self.close()
            raise

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def clients(self) -> tuple[HttpSql, HttpSql, Adbc]:
        """JSON over HTTP, Arrow over HTTP, and ADBC against its Flight SQL port."""
        return (
            HttpSql(f"{self.http}/api/sql", "ROAPI HTTP /api/sql", json_body=False),
            HttpSql(f"{self.http}/api/sql", "ROAPI HTTP Arrow", arrow=True, json_body=False),
            Adbc(f"grpc://127.0.0.1:{self.flight_port}", "ROAPI ADBC (Flight SQL)"),
        )

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
