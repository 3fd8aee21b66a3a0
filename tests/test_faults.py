"""What a careless or hostile client cannot break: gc during ingests, retried ingests, names
that differ in case across servers, raw keys that would break the store, SQL that reads files
by path, dropped data lingering in the cache. Both backends, real servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from lakehouse.config import Config
from lakehouse.lake import Lake
from tests.conftest import MINIO_SECRETS
from tests.processes import server_process
from tests.test_flight import ServeFactory, Served, put, serve, served, workers  # noqa: F401 (fixtures)
from tests.test_http import ingest_workers, serving, workers_csv

IDEMPOTENCY = "idempotency-key"


# -- gc --------------------------------------------------------------------------------------


def test_gc_in_a_loop_never_touches_twenty_streaming_ingests(serve: ServeFactory) -> None:
    """gc at the smallest grace (0 s) runs without pause while 20 DoPut streams upload many
    objects each; every acknowledged ingest is whole afterwards."""
    served = serve(row_group_rows=2_000, max_object_bytes=1)
    acknowledged: dict[str, int] = {}
    failures: list[BaseException] = []
    stop = threading.Event()
    collected: list[str] = []

    def stream(i: int) -> None:
        try:
            client = served.client()
            data = workers(12_000, start=i * 100_000)
            writer, reader = client.do_put(flight.FlightDescriptor.for_path(f"stream_{i}", "create"), data.schema)
            for batch in data.to_batches(max_chunksize=2_000):
                writer.write_batch(batch)
                time.sleep(0.05)
            writer.done_writing()
            answer = json.loads(reader.read().to_pybytes())
            writer.close()
            acknowledged[f"stream_{i}"] = answer["rows"]
        except BaseException as exc:
            failures.append(exc)

    def collect() -> None:
        client = served.client()
        while not stop.is_set():
            result = next(iter(client.do_action(flight.Action("gc", b"0"))))
            collected.extend(json.loads(result.body.to_pybytes())["deleted"])

    gc = threading.Thread(target=collect)
    gc.start()
    streams = [threading.Thread(target=stream, args=(i,)) for i in range(20)]
    for t in streams:
        t.start()
    for t in streams:
        t.join(120)
    stop.set()
    gc.join(30)
    assert not failures, failures[:3]
    assert len(acknowledged) == 20
    for name, rows in acknowledged.items():
        assert rows == 12_000
        assert served.lake.query(f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM {name}").read_all().to_pylist() == [{"n": rows, "d": rows}]
    assert collected == [], "nothing was orphaned, so gc must have deleted nothing"


def test_a_request_cannot_lower_the_configured_grace(config: Config, tmp_path: Path) -> None:
    import dataclasses

    cfg = dataclasses.replace(config, catalog=dataclasses.replace(config.catalog, gc_grace_seconds=3600.0))
    lake = Lake.open(cfg, MINIO_SECRETS)
    try:
        lake.ingest_arrow("kept", workers(10).to_reader())
        lake.ingest_arrow("kept", workers(10).to_reader(), mode="replace")  # the first object is now an orphan
        assert lake.gc(grace_seconds=0) == []
        assert len(list(lake.store.list("datasets/"))) == 2
    finally:
        lake.close()


def test_a_commit_whose_objects_vanished_fails_and_publishes_nothing(lake: Lake) -> None:
    def batches() -> Iterator[pa.RecordBatch]:
        yield from workers(5_000).to_batches(1_000)
        for info in lake.store.list("datasets/"):  # what an outside deletion would do
            lake.store.delete(info.key)

    import dataclasses

    lake.config = dataclasses.replace(lake.config, ingest=dataclasses.replace(lake.config.ingest, row_group_rows=1_000, max_object_bytes=1))
    from lakehouse.errors import Conflict

    with pytest.raises(Conflict, match="no longer exists"):
        lake.ingest_arrow("vanished", batches(), schema=workers(1).schema)
    assert lake.catalog.find("vanished") is None


# -- idempotency -------------------------------------------------------------------------------


def test_http_ingest_retried_with_an_idempotency_key_counts_once(lake: Lake) -> None:
    with serving(lake) as running:
        http = running.client
        ingest_workers(http, "ledger", 10)
        first = http.post("/v1/ingest", params={"name": "ledger", "mode": "append"}, content=workers_csv(7), headers={"Content-Type": "text/csv", "Idempotency-Key": "batch-0001"})
        again = http.post("/v1/ingest", params={"name": "ledger", "mode": "append"}, content=workers_csv(7), headers={"Content-Type": "text/csv", "Idempotency-Key": "batch-0001"})
        other = http.post("/v1/ingest", params={"name": "ledger", "mode": "append"}, content=workers_csv(7), headers={"Content-Type": "text/csv", "Idempotency-Key": "batch-0002"})
        assert first.status_code == again.status_code == other.status_code == 200
        assert first.json()["rows"] == again.json()["rows"] == 7
        assert again.json()["notes"] == {"replayed": True, "version": first.json()["manifest"]["version"]}
        assert lake.manifest("ledger").row_count == 24
        assert http.post("/v1/sql", json={"sql": "SELECT count(*) AS n FROM ledger"}).json() == [{"n": 24}]


def test_flight_and_adbc_ingests_retried_with_a_key_count_once(served: Served) -> None:
    client = served.client()
    options = flight.FlightCallOptions(headers=[(IDEMPOTENCY.encode(), b"put-1")])
    for _ in range(2):
        writer, reader = client.do_put(flight.FlightDescriptor.for_path("keyed", "create_append"), workers(100).schema, options=options)
        writer.write_table(workers(100))
        writer.done_writing()
        answer = json.loads(reader.read().to_pybytes())
        writer.close()
        assert answer["rows"] == 100
    assert answer["notes"]["replayed"] is True
    with flight_sql.connect(served.uri) as conn, conn.cursor() as cur:
        for _ in range(2):
            cur.adbc_statement.set_options(**{f"adbc.flight.sql.rpc.call_header.{IDEMPOTENCY}": "adbc-1"})
            cur.adbc_ingest("keyed", workers(50, start=1000), mode="append")
    assert served.lake.manifest("keyed").row_count == 150


# -- names -------------------------------------------------------------------------------------


def test_two_servers_racing_for_names_differing_in_case_one_wins_each_time(minio, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    uri = f"s3://{minio.bucket}/race-{tmp_path.name}"
    body = {"schema": [{"name": "v", "type": "int64"}]}
    with server_process(tmp_path / "a", uri, minio) as a, server_process(tmp_path / "b", uri, minio) as b:
        with httpx.Client(timeout=30) as http:
            for k in range(100):
                answers: dict[str, int] = {}

                def register(base: str, name: str) -> None:
                    answers[name] = http.post(f"{base}/catalog/register", json={**body, "name": name}).status_code

                racers = [threading.Thread(target=register, args=(a.http, f"Case_{k}")), threading.Thread(target=register, args=(b.http, f"case_{k}"))]
                for t in racers:
                    t.start()
                for t in racers:
                    t.join(30)
                assert sorted(answers.values()) == [200, 409], (k, answers)
            listed = [{d["name"] for d in http.get(f"{s.http}/catalog/list").json()["datasets"]} for s in (a, b)]
            assert listed[0] == listed[1] and len(listed[0]) == 100


# -- the lake's own files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["/etc/x", "a//b", ".tmp/a/b", "_catalog", "_catalog/manifests/x/0000000009.parquet", "datasets", "datasets/w/x.parquet", "_future/x", "k" * 1100, "/".join(["a"] * 2000)],
    ids=["absolute", "empty segment", "tmp dir", "catalog as a file", "a manifest", "datasets as a file", "a data object", "reserved prefix", "long key", "deep key"],
)
def test_raw_keys_that_could_break_the_store_are_refused(lake: Lake, key: str) -> None:
    with serving(lake) as running:
        response = running.client.put(f"/storage/put/{key}", content=b"x")
        assert response.status_code == 400, response.text
        assert "error" in response.json()
        assert ingest_workers(running.client, "still_works", 5).status_code == 200
    reopened = Lake.open(lake.config, MINIO_SECRETS)
    try:
        assert reopened.manifest("still_works").row_count == 5
        assert not [o.key for o in reopened.store.list() if not o.key.startswith(("_catalog/", "datasets/", "_iceberg/"))]
    finally:
        reopened.close()


def test_a_key_and_its_prefix_clash_cleanly_on_the_local_backend(lake: Lake) -> None:
    with serving(lake) as running:
        assert running.client.put("/storage/put/a/b", content=b"1").status_code == 200
        clash = running.client.put("/storage/put/a", content=b"2")
        if lake.store.local_path("a") is not None:
            assert clash.status_code == 409 and "prefix" in clash.json()["error"]
        else:
            assert clash.status_code == 200  # S3 keys are names, not paths
        assert running.client.get("/storage/get/a/b").content == b"1"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{objects}/**/*.parquet')",
        "SELECT * FROM read_blob('{data}/_catalog/manifests/*/*.parquet')",
        "SELECT * FROM '{data}/datasets/secret/*.parquet'",
        "SELECT current_setting('allowed_directories')",
        "SELECT * FROM duckdb_settings()",
        "SELECT sql FROM duckdb_views()",
        "SELECT view_definition FROM information_schema.views",
        "CREATE TABLE copied AS SELECT * FROM read_blob('{data}/**')",
        "SHOW allowed_directories",
    ],
)
def test_sql_reads_dataset_views_only(lake: Lake, sql: str) -> None:
    lake.ingest_arrow("secret", workers(10).to_reader())
    data = lake.store.local_path("x") or "/"
    statement = sql.format(objects=lake.cache.root, data=str(Path(data).parent))
    with serving(lake) as running:
        response = running.client.post("/v1/sql", json={"sql": statement})
        assert response.status_code == 400, response.text
        assert str(lake.cache.root) not in response.text.replace(statement, "")
    assert lake.catalog.find("copied") is None


def test_dropped_data_leaves_the_cache_and_cannot_be_fetched(served: Served) -> None:
    client = served.client()
    put(client, flight.FlightDescriptor.for_path("gone"), workers(100))
    endpoint = client.get_flight_info(flight.FlightDescriptor.for_path("gone")).endpoints[0]
    keys = [o.key for o in served.lake.manifest("gone").objects]
    served.lake.query("SELECT count(*) FROM gone").read_all()  # cached on S3
    served.lake.drop("gone")
    assert sorted(served.lake.gc()) == sorted(keys)
    assert not [p for p in served.lake.cache.root.rglob("*.parquet")]
    with pytest.raises(pa.ArrowKeyError, match="no longer exists|not found"):
        client.do_get(endpoint.ticket).read_all()


def test_sql_text_over_the_bound_is_refused_over_flight(served: Served) -> None:
    huge = "SELECT 1 AS one" + " " * (2 * 1024 * 1024)
    with flight_sql.connect(served.uri) as conn, conn.cursor() as cur, pytest.raises(flight_sql.ProgrammingError, match="SQL text over"):
        cur.execute(huge)
