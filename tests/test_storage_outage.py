"""Degrade, don't cascade: with MinIO frozen (SIGSTOP: connections accepted, never answered),
queries over data already cached keep answering and say so, readiness answers 503 within a
second, and when MinIO comes back everything recovers without a restart."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pytest

from scripts import minio as minio_script
from tests.processes import ServerProcess, server_process
from tests.test_http import workers_csv

pytestmark = pytest.mark.slow


@pytest.fixture
def own_minio(tmp_path: Path) -> Iterator[minio_script.MinioServer]:
    """A MinIO of this test's own, so freezing it stops no other test."""
    server = minio_script.start(tmp_path / "minio")
    yield server
    server.process.send_signal(signal.SIGCONT)
    server.stop()


def sql(server: ServerProcess, query: str) -> httpx.Response:
    return httpx.post(f"{server.http}/v1/sql", json={"sql": query}, timeout=30)


def test_frozen_storage_degrades_and_recovers(own_minio: minio_script.MinioServer, tmp_path: Path) -> None:
    uri = f"s3://{own_minio.bucket}/outage"
    with server_process(tmp_path / "server", uri, own_minio, storage_timeout_seconds="1", query_view_ttl_seconds="0") as server:
        upload = httpx.post(f"{server.http}/v1/ingest", params={"name": "workers"}, content=workers_csv(500), headers={"Content-Type": "text/csv"}, timeout=60)
        assert upload.status_code == 200
        assert sql(server, "SELECT count(*) AS n FROM workers").json() == [{"n": 500}]

        own_minio.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            ready = httpx.get(f"{server.http}/ready", timeout=10)
            assert ready.status_code == 503 and time.monotonic() - started < 1.5
            assert ready.json()["detail"]["storage"] is False

            first = sql(server, "SELECT count(*) AS n FROM workers")  # finds storage gone: a bounded wait
            assert first.status_code == 200 and first.json() == [{"n": 500}]
            started = time.monotonic()
            again = sql(server, "SELECT dept, count(*) AS n FROM workers GROUP BY dept ORDER BY dept")
            assert again.status_code == 200 and time.monotonic() - started < 1.0
            assert float(again.headers["X-Lakehouse-Catalog-Stale"]) >= 0
            with flight_sql.connect(server.flight) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM workers")
                assert cur.fetchone() == (500,)
            failed = httpx.post(f"{server.http}/v1/ingest", params={"name": "more"}, content=workers_csv(5), headers={"Content-Type": "text/csv"}, timeout=30)
            assert failed.status_code == 503 and time.monotonic() - started < 10
        finally:
            own_minio.process.send_signal(signal.SIGCONT)

        deadline = time.monotonic() + 20
        while httpx.get(f"{server.http}/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after storage came back"
            time.sleep(0.2)
        later = httpx.post(f"{server.http}/v1/ingest", params={"name": "more"}, content=workers_csv(5), headers={"Content-Type": "text/csv"}, timeout=60)
        assert later.status_code == 200
        while "X-Lakehouse-Catalog-Stale" in (fresh := sql(server, "SELECT count(*) AS n FROM more")).headers:
            assert time.monotonic() < deadline, "still answering from a stale catalog"
            time.sleep(0.2)
        assert fresh.json() == [{"n": 5}]
