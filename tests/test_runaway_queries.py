"""Runaway queries end: by the timeout, when their client leaves or cancels, and at shutdown;
a cap keeps a flood of them from starving everyone else; a huge HTTP result streams in
bounded memory. Each test runs a real `lakehouse serve` process on the local backend."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pytest

from tests.processes import ServerProcess, server_process

pytestmark = pytest.mark.slow

RUNAWAY = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with server_process(tmp_path, f"file://{tmp_path / 'data'}") as running:
        yield running


def wait_until(check: "callable[[], bool]", seconds: float) -> float:  # type: ignore[valid-type]
    """Poll `check` until it holds; how long that took (fails the test after `seconds`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_timeout_stops_a_query_on_http_and_flight(tmp_path: Path) -> None:
    with server_process(tmp_path, f"file://{tmp_path / 'data'}", query_timeout_seconds="1") as server:
        started = time.monotonic()
        response = httpx.post(f"{server.http}/v1/sql", json={"sql": RUNAWAY}, timeout=30)
        assert response.status_code == 504
        assert "query.timeout_seconds" in response.json()["error"]
        assert time.monotonic() - started < 3
        with flight_sql.connect(server.flight) as conn, conn.cursor() as cur:
            started = time.monotonic()
            with pytest.raises(flight_sql.Error, match="timeout_seconds"):
                cur.execute(RUNAWAY)
                cur.fetchall()
            assert time.monotonic() - started < 3
        assert server.running_queries() == 0


def test_an_http_client_that_leaves_stops_its_query(server: ServerProcess) -> None:
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server.http}/v1/sql", json={"sql": RUNAWAY}, timeout=httpx.Timeout(10, read=1.0))
    left = time.monotonic()
    wait_until(lambda: server.running_queries() == 0, 5)
    assert time.monotonic() - left < 1.5


def test_adbc_cancel_stops_the_query(server: ServerProcess) -> None:
    errors: list[BaseException] = []
    with flight_sql.connect(server.flight) as conn:
        cur = conn.cursor()

        def run() -> None:
            try:
                cur.execute(RUNAWAY)
                cur.fetchall()
            except BaseException as exc:  # the cancellation, reported by the driver
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        wait_until(lambda: server.running_queries() == 1, 10)
        cur.adbc_cancel()
        cancelled = time.monotonic()
        thread.join(10)
        wait_until(lambda: server.running_queries() == 0, 5)
        assert time.monotonic() - cancelled < 1.5
        assert errors, "the cancelled execute must raise"
        cur.close()


def test_fifty_abandoned_runaways_leave_select_1_answering(server: ServerProcess) -> None:
    def abandon() -> None:
        try:
            httpx.post(f"{server.http}/v1/sql", json={"sql": RUNAWAY}, timeout=httpx.Timeout(10, read=0.5))
        except httpx.HTTPError:
            pass

    threads = [threading.Thread(target=abandon) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    answered = httpx.post(f"{server.http}/v1/sql", json={"sql": "SELECT 1 AS one"}, timeout=10)
    assert answered.status_code == 200 and answered.json() == [{"one": 1}]
    wait_until(lambda: server.running_queries() == 0, 10)
    assert httpx.get(f"{server.http}/storage/list", timeout=5).status_code == 200


def test_queries_over_the_cap_get_503_with_retry_after(tmp_path: Path) -> None:
    with server_process(tmp_path, f"file://{tmp_path / 'data'}", http_max_concurrent_queries="2", flight_max_concurrent_queries="1") as server:
        busy = [threading.Thread(target=_swallow, args=(lambda: httpx.post(f"{server.http}/v1/sql", json={"sql": RUNAWAY}, timeout=httpx.Timeout(10, read=3.0)),)) for _ in range(2)]
        for t in busy:
            t.start()
        wait_until(lambda: server.running_queries() == 2, 10)
        refused = httpx.post(f"{server.http}/v1/sql", json={"sql": "SELECT 1"}, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert "too many queries" in refused.json()["error"]
        with flight_sql.connect(server.flight) as conn, conn.cursor() as cur:
            holder = threading.Thread(target=lambda: _swallow(cur.execute, RUNAWAY))
            holder.start()
            wait_until(lambda: server.running_queries() == 3, 10)
            with flight_sql.connect(server.flight) as other, other.cursor() as cur2, pytest.raises(flight_sql.OperationalError, match="too many queries"):
                cur2.execute("SELECT 1")
                cur2.fetchall()
            cur.adbc_cancel()
            holder.join(10)
        for t in busy:
            t.join(10)


def _swallow(fn: "callable[..., object]", *args: object) -> None:  # type: ignore[valid-type]
    try:
        fn(*args)
    except Exception:  # the query is cancelled on purpose
        pass


def test_sigterm_with_runaways_exits_0_within_5_seconds(server: ServerProcess) -> None:
    clients = [threading.Thread(target=_swallow, args=(lambda: httpx.post(f"{server.http}/v1/sql", json={"sql": RUNAWAY}, timeout=30),)) for _ in range(3)]
    conn = flight_sql.connect(server.flight)
    cur = conn.cursor()
    clients.append(threading.Thread(target=_swallow, args=(cur.execute, RUNAWAY)))
    for t in clients:
        t.start()
    wait_until(lambda: server.running_queries() == 4, 10)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    for t in clients:
        t.join(10)
    _swallow(cur.close)  # the server is gone: closing the prepared statement fails, as it should
    _swallow(conn.close)


def test_a_huge_http_result_streams_in_bounded_memory(server: ServerProcess) -> None:
    """2 GB of rows 20 KB wide, as JSON and as Arrow: the server stays under 1 GB of RSS."""
    for accept in ["application/json", "application/vnd.apache.arrow.stream"]:
        peak = 0.0
        received = 0
        with httpx.stream("POST", f"{server.http}/v1/sql", json={"sql": "SELECT repeat('x', 20000) AS s FROM range(100000)"}, headers={"Accept": accept}, timeout=300) as response:
            assert response.status_code == 200
            assert response.headers["X-Lakehouse-Truncated"] == "unknown"
            for chunk in response.iter_bytes(1 << 20):
                received += len(chunk)
                peak = max(peak, server.rss_mb())
        assert received > 2_000_000_000
        assert peak < 1024, f"server RSS reached {peak:.0f} MB streaming {accept}"


def test_sigterm_with_an_upload_left_open_exits_0_within_5_seconds(server: ServerProcess) -> None:
    import pyarrow as pa
    import pyarrow.flight as flight

    client = flight.connect(server.flight)
    table = pa.table({"a": [1, 2, 3]})
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("stalled"), table.schema)
    writer.write_table(table)  # and never finished
    time.sleep(0.3)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    _swallow(writer.close)
