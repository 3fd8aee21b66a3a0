"""`/metrics` scraped and parsed by the Prometheus client's own parser: the counters move when a
query and an ingest run, over HTTP and over Flight; and each query and ingest logs one event."""

from __future__ import annotations

import json
import logging

import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_flight import Served, put, serve, served  # noqa: F401  (fixtures)
from tests.test_http import serving


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_queries_and_ingests(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    with serving(served.lake) as running:
        http = running.client
        before = scrape(http)
        with caplog.at_level(logging.INFO, logger="lakehouse.events"):
            response = http.post("/v1/ingest", params={"name": "m"}, content=b"a,b\n1,x\n2,y\n", headers={"Content-Type": "text/csv"})
            assert response.status_code == 200
            assert http.post("/v1/sql", json={"sql": "SELECT * FROM m"}).json() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
            put(served.client(), flight.FlightDescriptor.for_path("m", "append"), pa.table({"a": pa.array([3], pa.int64()), "b": ["z"]}))
            assert served.client().do_get(flight.Ticket(b"SELECT count(*) AS n FROM m")).read_all().to_pylist() == [{"n": 3}]
        after = scrape(http)
    assert value(after, "lakehouse_ingests_total", outcome="ok") - value(before, "lakehouse_ingests_total", outcome="ok") == 2
    assert value(after, "lakehouse_ingested_rows_total") - value(before, "lakehouse_ingested_rows_total") == 3
    assert value(after, "lakehouse_ingested_bytes_total") > value(before, "lakehouse_ingested_bytes_total")
    assert value(after, "lakehouse_queries_total", outcome="ok") - value(before, "lakehouse_queries_total", outcome="ok") == 2
    assert value(after, "lakehouse_query_seconds_count") - value(before, "lakehouse_query_seconds_count") == 2
    assert value(after, "lakehouse_requests_total", edge="http", route="POST /v1/sql", status="200") - value(before, "lakehouse_requests_total", edge="http", route="POST /v1/sql", status="200") == 1
    assert value(after, "lakehouse_requests_total", edge="flight", route="DO_PUT", status="ok") >= 1
    assert value(after, "lakehouse_queries_active") == 0
    assert value(after, "process_resident_memory_bytes") > 0
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "lakehouse.events"]
    ingests = [e for e in events if e["event"] == "ingest"]
    assert [(e["dataset"], e["mode"], e["rows"], e["outcome"]) for e in ingests] == [("m", "create", 2, "ok"), ("m", "append", 1, "ok")]
    assert all(e["bytes"] > 0 and e["seconds"] >= 0 for e in ingests)
    queries = [e for e in events if e["event"] == "query"]
    assert [(e["sql"], e["rows"], e["outcome"]) for e in queries] == [("SELECT * FROM m", 2, "ok"), ("SELECT count(*) AS n FROM m", 1, "ok")]


def test_failures_are_counted_by_outcome(served: Served) -> None:
    with serving(served.lake) as running:
        http = running.client
        before = scrape(http)
        assert http.post("/v1/ingest", params={"name": "bad"}, content=b"a,b\n1,2,3\n", headers={"Content-Type": "text/csv"}).status_code == 400
        assert http.post("/v1/sql", json={"sql": "SELECT 1/0 AS x, error('boom')"}).status_code == 400
        after = scrape(http)
    assert value(after, "lakehouse_ingests_total", outcome="InvalidInput") - value(before, "lakehouse_ingests_total", outcome="InvalidInput") == 1
    assert value(after, "lakehouse_requests_total", edge="http", route="POST /v1/ingest", status="400") - value(before, "lakehouse_requests_total", edge="http", route="POST /v1/ingest", status="400") == 1
