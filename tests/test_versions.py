"""A dataset's history: every committed version listed with its operation, and any version's
manifest, through the library, HTTP, Flight and the command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import adbc_driver_flightsql.dbapi as dbapi
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from lakehouse.auth import Identity
from lakehouse.config import Config
from lakehouse.errors import InvalidInput, NotFound
from lakehouse.lake import Lake
from scripts import minio as minio_script
from tests.conftest import MINIO_SECRETS
from tests.processes import server_env
from tests.test_flight import Served, put, serve, served  # noqa: F401  (fixtures)
from tests.test_http import serving


def history(lake: Lake) -> None:
    lake.ingest_arrow("h", pa.table({"id": pa.array([1, 2], pa.int64())}).to_reader())
    lake.ingest_arrow("h", pa.table({"id": pa.array([3], pa.int64())}).to_reader(), mode="append")
    lake.ingest_arrow("h", pa.table({"id": pa.array([4], pa.int64()), "x": ["a"]}).to_reader(), mode="append", evolve=True)
    lake.ingest_arrow("h", pa.table({"id": pa.array([9], pa.int64())}).to_reader(), mode="replace")
    lake.drop("h")
    lake.ingest_arrow("h", pa.table({"id": pa.array([5], pa.int64())}).to_reader())


def two_versions(commit: Callable[[pa.Table, str], object]) -> dt.datetime:
    """Commit ids 1, 2 then (appended) 3; a time between the two commits."""
    commit(pa.table({"id": pa.array([1, 2], pa.int64())}), "create")
    time.sleep(0.05)
    between = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.05)
    commit(pa.table({"id": pa.array([3], pa.int64())}), "append")
    return between


def test_versions_list_each_commit_with_its_operation(lake: Lake) -> None:
    history(lake)
    got = lake.versions("h")
    assert [(v["version"], v["operation"], v["row_count"], v["objects"]) for v in got] == [
        (1, "create", 2, 1), (2, "append", 3, 2), (3, "evolve", 4, 3), (4, "replace", 1, 1), (5, "drop", 0, 0), (6, "create", 1, 1),
    ]
    assert got[0]["committed_at"] <= got[-1]["committed_at"]
    assert lake.manifest_at("h", 2).row_count == 3


def test_versions_over_http_flight_and_the_command_line(served: Served, tmp_path: Path) -> None:
    history(served.lake)
    with serving(served.lake) as running:
        listed = running.client.get("/catalog/versions/h").json()
        assert [v["operation"] for v in listed] == ["create", "append", "evolve", "replace", "drop", "create"]
        assert running.client.get("/catalog/manifest/h", params={"version": 2}).json()["row_count"] == 3
        assert running.client.get("/catalog/manifest/h", params={"version": 99}).status_code == 404
        assert running.client.get("/catalog/versions/nobody").status_code == 404
    answer = json.loads(next(iter(served.client().do_action(flight.Action("versions", b"h")))).body.to_pybytes())
    assert answer == listed
    env = server_env(tmp_path, served.lake.config.storage.uri)
    env["LAKEHOUSE_STORAGE_CACHE_DIR"] = str(tmp_path / "cli-cache")
    if served.lake.config.storage.uri.startswith("s3://"):
        env.update(LAKEHOUSE_STORAGE_ENDPOINT=served.lake.config.storage.endpoint, AWS_ACCESS_KEY_ID=minio_script.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=minio_script.SECRET_KEY)
    done = subprocess.run([sys.executable, "-m", "lakehouse", "versions", "h"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert [(v["version"], v["operation"], v["row_count"], v["objects"]) for v in printed] == [(v["version"], v["operation"], v["row_count"], v["objects"]) for v in listed]


def test_a_query_reads_an_older_version_by_number_or_time(lake: Lake) -> None:
    between = two_versions(lambda rows, mode: lake.ingest_arrow("tt", rows.to_reader(), mode=mode))
    lake.ingest_arrow("tt", pa.table({"id": pa.array([9], pa.int64()), "x": ["new"]}).to_reader(), mode="replace")
    assert lake.query("SELECT * FROM tt ORDER BY id", version=1).read_all().to_pylist() == [{"id": 1}, {"id": 2}]
    assert lake.query("SELECT count(*) AS n FROM tt", version=2).read_all().to_pylist() == [{"n": 3}]
    assert lake.query("SELECT count(*) AS n FROM tt", as_of=between).read_all().to_pylist() == [{"n": 2}]
    assert lake.query("SELECT * FROM tt").read_all().to_pylist() == [{"id": 9, "x": "new"}]  # the current one, unchanged
    with serving(lake) as running:
        answer = running.client.post("/v1/sql", json={"sql": "SELECT id FROM tt ORDER BY id", "version": 2})
        assert answer.json() == [{"id": 1}, {"id": 2}, {"id": 3}]
        answer = running.client.post("/v1/sql", json={"sql": "SELECT count(*) AS n FROM tt", "as_of": between.isoformat()})
        assert answer.json() == [{"n": 2}]
        two = running.client.post("/v1/sql", json={"sql": "SELECT 1", "version": 1})
        assert two.status_code == 400 and "exactly one dataset" in two.json()["error"]
        missing = running.client.post("/v1/sql", json={"sql": "SELECT * FROM tt", "version": 42})
        assert missing.status_code == 404
    lake.gc()
    with pytest.raises(NotFound, match="no longer readable: gc collected its objects"):
        lake.query("SELECT * FROM tt", version=1).read_all()


def test_compaction_keeps_every_row_and_the_version_before(lake: Lake) -> None:
    rows = []
    lake.ingest_arrow("many", pa.table({"id": pa.array([], pa.int64()), "v": pa.array([], pa.string())}).to_reader())
    order = list(range(120))
    random.Random(7).shuffle(order)
    for n in order:
        batch = pa.table({"id": pa.array(range(n * 100, n * 100 + 100), pa.int64()), "v": [f"r{i}" for i in range(n * 100, n * 100 + 100)]})
        rows.extend(batch.to_pylist())
        lake.ingest_arrow("many", batch.to_reader(), mode="append")
    before = lake.manifest("many")
    assert len(before.objects) == 120
    compacted = lake.compact("many", order_by="id")
    assert len(compacted.objects) <= 2 and compacted.row_count == 12_000 and compacted.sort_key == "id"
    assert lake.versions("many")[-1]["operation"] == "compact"
    got = lake.query("SELECT * FROM many ORDER BY id").read_all().to_pylist()
    assert got == sorted(rows, key=lambda r: r["id"])
    assert lake.query("SELECT count(*) AS n FROM many", version=before.version).read_all().to_pylist() == [{"n": 12_000}]
    stored = pq.read_table(lake.cache.path(compacted.objects[0].key))
    assert stored.column("id").to_pylist() == sorted(stored.column("id").to_pylist())  # clustered by the key


def test_appends_during_a_compaction_are_kept(lake: Lake) -> None:
    for n in range(30):
        lake.ingest_arrow("busy", pa.table({"id": pa.array(range(n * 10, n * 10 + 10), pa.int64())}).to_reader(), mode="create_append")
    appended = []

    def append() -> None:
        for n in range(100, 120):
            lake.ingest_arrow("busy", pa.table({"id": pa.array(range(n * 10, n * 10 + 10), pa.int64())}).to_reader(), mode="append")
            appended.extend(range(n * 10, n * 10 + 10))

    worker = threading.Thread(target=append)
    worker.start()
    lake.compact("busy")
    worker.join()
    ids = [r["id"] for r in lake.query("SELECT id FROM busy ORDER BY id").read_all().to_pylist()]
    assert ids == sorted(list(range(300)) + appended) and len(ids) == len(set(ids))


def test_compaction_over_http_flight_and_the_command_line(served: Served, tmp_path: Path) -> None:
    for n in range(6):
        put(served.client(), flight.FlightDescriptor.for_path("parts", "create_append"), pa.table({"id": pa.array([n], pa.int64())}))
    answer = json.loads(next(iter(served.client().do_action(flight.Action("compact", b"parts id")))).body.to_pybytes())
    assert len(answer["objects"]) == 1 and answer["row_count"] == 6
    put(served.client(), flight.FlightDescriptor.for_path("parts", "append"), pa.table({"id": pa.array([6], pa.int64())}))
    with serving(served.lake) as running:
        compacted = running.client.post("/catalog/compact/parts").json()
        assert len(compacted["objects"]) == 1 and compacted["row_count"] == 7
    put(served.client(), flight.FlightDescriptor.for_path("parts", "append"), pa.table({"id": pa.array([7], pa.int64())}))
    env = server_env(tmp_path, served.lake.config.storage.uri)
    env["LAKEHOUSE_STORAGE_CACHE_DIR"] = str(tmp_path / "cli-cache")
    if served.lake.config.storage.uri.startswith("s3://"):
        env.update(LAKEHOUSE_STORAGE_ENDPOINT=served.lake.config.storage.endpoint, AWS_ACCESS_KEY_ID=minio_script.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=minio_script.SECRET_KEY)
    done = subprocess.run([sys.executable, "-m", "lakehouse", "compact", "parts", "--order-by", "id"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["operation"] == "compact" and "2 objects -> 1" in done.stderr


def test_gc_keeps_exactly_what_the_retained_versions_need(config: Config) -> None:
    retaining = dataclasses.replace(config, catalog=dataclasses.replace(config.catalog, retain_versions=3))
    lake = Lake.open(retaining, MINIO_SECRETS)
    try:
        lake.ingest_arrow("kept", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
        for n in range(2, 6):  # each version replaces the one before: its object is needed by it alone
            lake.ingest_arrow("kept", pa.table({"id": pa.array([n], pa.int64())}).to_reader(), mode="replace")
        needed = {o.key for v in (3, 4, 5) for o in lake.manifest_at("kept", v).objects}
        only_old = {o.key for v in (1, 2) for o in lake.manifest_at("kept", v).objects}
        removed = set(lake.gc())
        assert removed == only_old
        assert needed <= {o.key for o in lake.store.list("datasets/")}
        assert [v["retained"] for v in lake.versions("kept")] == [False, False, True, True, True]
        for version in (3, 4, 5):
            assert lake.query("SELECT id FROM kept", version=version).read_all().to_pylist() == [{"id": version}]
        with pytest.raises(NotFound, match="no longer readable"):
            lake.query("SELECT id FROM kept", version=2).read_all()
    finally:
        lake.close()


def test_flight_reads_an_older_version_by_path_option(served: Served) -> None:
    client = served.client()
    between = two_versions(lambda rows, mode: put(client, flight.FlightDescriptor.for_path("fv", mode), rows))

    def read(*path: str) -> list[int]:
        info = client.get_flight_info(flight.FlightDescriptor.for_path(*path))
        return sorted(v for e in info.endpoints for v in client.do_get(e.ticket).read_all().column("id").to_pylist())

    assert read("fv") == [1, 2, 3]
    assert read("fv", "version=1") == [1, 2]
    assert read("fv", f"as_of={between.isoformat()}") == [1, 2]
    with pytest.raises(pa.ArrowKeyError, match="has no version 9"):
        read("fv", "version=9")
    with pytest.raises(pa.ArrowInvalid, match="version=N"):
        read("fv", "version=x")


def test_sql_reads_older_versions_with_at(lake: Lake) -> None:
    between = two_versions(lambda rows, mode: lake.ingest_arrow("at_t", rows.to_reader(), mode=mode))

    def ids(sql: str) -> list[int]:
        return [r["id"] for r in lake.query(sql).read_all().to_pylist()]

    assert ids("SELECT id FROM at_t AT (VERSION => 1) ORDER BY id") == [1, 2]
    assert ids(f"SELECT id FROM at_t AT (TIMESTAMP => '{between.isoformat()}') ORDER BY id") == [1, 2]
    assert ids("SELECT t.id FROM at_t AS t AT (VERSION => 2) WHERE t.id > 1 ORDER BY t.id") == [2, 3]
    both = lake.query("SELECT (SELECT count(*) FROM at_t AT (VERSION => 1)) AS old, (SELECT count(*) FROM at_t) AS now").read_all().to_pylist()
    assert both == [{"old": 2, "now": 3}]
    with pytest.raises(NotFound, match="has no version 7"):
        lake.query("SELECT * FROM at_t AT (VERSION => 7)").read_all()
    with pytest.raises(InvalidInput, match="AT takes"):
        lake.query("SELECT * FROM at_t AT (VERSION => 1 + 1)").read_all()


def test_adbc_reads_an_older_version_with_at(served: Served) -> None:
    put(served.client(), flight.FlightDescriptor.for_path("adbc_at"), pa.table({"id": pa.array([1, 2], pa.int64())}))
    put(served.client(), flight.FlightDescriptor.for_path("adbc_at", "append"), pa.table({"id": pa.array([3], pa.int64())}))
    with dbapi.connect(served.uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM adbc_at AT (VERSION => 1)")
        assert cur.fetchall() == [(2,)]
        cur.execute("SELECT count(*) AS n FROM adbc_at WHERE id > ?", (0,))
        assert cur.fetchall() == [(3,)]


def test_a_dataset_of_many_small_objects_is_compacted_automatically(config: Config) -> None:
    automatic = dataclasses.replace(config, catalog=dataclasses.replace(config.catalog, compact_after_objects=8))
    lake = Lake.open(automatic, MINIO_SECRETS)
    try:
        for n in range(8):
            lake.ingest_arrow("auto", pa.table({"id": pa.array([n], pa.int64())}).to_reader(), mode="create_append")
        deadline = time.monotonic() + 30
        while lake.manifest("auto").operation != "compact" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lake.manifest("auto").operation == "compact" and len(lake.manifest("auto").objects) == 1
        assert sorted(r["id"] for r in lake.query("SELECT id FROM auto").read_all().to_pylist()) == list(range(8))
    finally:
        lake.close()


def test_versions_say_who_committed_them(lake: Lake) -> None:
    ada, wes = Identity("ada", "admin"), Identity("wes", "writer")
    lake.ingest_arrow("who", pa.table({"id": pa.array([1], pa.int64())}).to_reader(), who=wes)
    lake.ingest_arrow("who", pa.table({"id": pa.array([2], pa.int64())}).to_reader(), mode="append")
    lake.compact("who", who=ada)
    lake.drop("who", who=ada)
    assert [(v["operation"], v["committed_by"]) for v in lake.versions("who")] == [("create", "wes"), ("append", None), ("compact", "ada"), ("drop", "ada")]
