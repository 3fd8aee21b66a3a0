"""Every commit is an Iceberg table version: pyiceberg reads each version of a dataset, current
and older, exactly as written, on both backends; types Iceberg cannot hold are refused with a
reason; two servers racing publish one metadata file per version; a publication a crash missed
is made at the next start."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.table import StaticTable

from lakehouse.config import Config
from lakehouse.lake import Lake
from scripts import minio as minio_script
from tests.conftest import MINIO_SECRETS
from tests.test_flight import Served, put, serve, served  # noqa: F401  (fixtures)


def io_properties(config: Config) -> dict[str, str]:
    if not config.storage.uri.startswith("s3://"):
        return {}
    return {
        "s3.endpoint": config.storage.endpoint, "s3.access-key-id": minio_script.ACCESS_KEY,
        "s3.secret-access-key": minio_script.SECRET_KEY, "s3.region": config.storage.region,
    }


def iceberg_rows(lake: Lake, location: str, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    table = StaticTable.from_metadata(location, io_properties(lake.config))
    return sorted(table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist(), key=lambda r: r["id"])


def location(lake: Lake, name: str) -> str:
    answer = lake.manifest_answer(lake.manifest(name))["iceberg"]
    assert answer["available"], answer
    return str(answer["metadata_location"])


def test_every_version_reads_back_exactly_current_and_older(lake: Lake) -> None:
    first = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"], "score": [1.5, None]})
    more = pa.table({"id": pa.array([3], pa.int64()), "name": ["c"], "score": [3.25]})
    wider = pa.table({"id": pa.array([4], pa.int64()), "name": ["d"], "score": [4.0], "tag": ["new"]})
    lake.ingest_arrow("ev", first.to_reader())
    lake.ingest_arrow("ev", more.to_reader(), mode="append")
    lake.ingest_arrow("ev", wider.to_reader(), mode="append", evolve=True)
    expected = [
        first.to_pylist(),
        first.to_pylist() + more.to_pylist(),
        [dict(r, tag=None) for r in first.to_pylist() + more.to_pylist()] + wider.to_pylist(),
    ]
    versions = []
    for version, rows in enumerate(expected, start=1):
        metadata = location(lake, "ev").replace(f"v{len(expected)}.metadata.json", f"v{version}.metadata.json")
        assert iceberg_rows(lake, metadata) == rows, version
        versions.append(version)
    latest = StaticTable.from_metadata(location(lake, "ev"), io_properties(lake.config))
    snapshots = latest.metadata.snapshots
    assert [s.summary["lakehouse.version"] for s in snapshots] == ["1", "2", "3"]
    assert [s.summary.operation.value for s in snapshots] == ["append", "append", "append"]
    for snapshot, rows in zip(snapshots[:2], expected[:2]):
        assert [{k: v for k, v in r.items() if k != "tag"} for r in iceberg_rows(lake, location(lake, "ev"), snapshot.snapshot_id)] == rows
    assert iceberg_rows(lake, location(lake, "ev")) == lake.query("SELECT * FROM ev ORDER BY id").read_all().to_pylist()
    # a replace with another schema: an overwrite, read as the new schema
    other = pa.table({"id": pa.array([10, 11], pa.int64()), "when": pa.array([0, 10**6], pa.timestamp("us", tz="UTC"))})
    lake.ingest_arrow("ev", other.to_reader(), mode="replace")
    assert iceberg_rows(lake, location(lake, "ev")) == other.to_pylist()
    assert StaticTable.from_metadata(location(lake, "ev"), io_properties(lake.config)).metadata.snapshots[-1].summary.operation.value == "overwrite"


def test_types_iceberg_cannot_hold_are_refused_with_a_reason(lake: Lake) -> None:
    lake.ingest_arrow("big", pa.table({"id": pa.array([2**64 - 1], pa.uint64())}).to_reader())
    answer = lake.manifest_answer(lake.manifest("big"))["iceberg"]
    assert answer == {"metadata_location": None, "available": False, "reason": "column 'id' is an unsigned 64-bit integer, which Iceberg has no type for"}
    lake.ingest_arrow("fine", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    lake.ingest_arrow("fine", pa.table({"id": pa.array([1.5])}).to_reader(), mode="append", evolve=True)  # long -> double
    answer = lake.manifest_answer(lake.manifest("fine"))["iceberg"]
    assert not answer["available"] and "from long to double" in answer["reason"]


def test_a_drop_ends_the_table_and_a_new_dataset_starts_a_new_one(lake: Lake) -> None:
    lake.ingest_arrow("gone", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    hint = "_iceberg/gone/metadata/version-hint.text"
    assert lake.store.read_bytes(hint) == b"1"
    lake.drop("gone")
    assert not [o for o in lake.store.list(hint)]
    lake.ingest_arrow("gone", pa.table({"id": pa.array([7], pa.int64()), "x": ["y"]}).to_reader())
    assert lake.store.read_bytes(hint) == b"3"
    table = StaticTable.from_metadata(location(lake, "gone"), io_properties(lake.config))
    assert len(table.metadata.snapshots) == 1 and table.scan().to_arrow().to_pylist() == [{"id": 7, "x": "y"}]


def test_two_servers_racing_publish_one_metadata_file_per_version(config: Config) -> None:
    lakes = [Lake.open(dataclasses.replace(config, storage=dataclasses.replace(config.storage, cache_dir=f"{config.storage.cache_dir}-{i}")), MINIO_SECRETS) for i in range(2)]
    try:
        lakes[0].ingest_arrow("race", pa.table({"id": pa.array([0], pa.int64())}).to_reader())
        lakes[1].refresh()

        def append(lake: Lake, start: int) -> None:
            for i in range(start, start + 8):
                lake.ingest_arrow("race", pa.table({"id": pa.array([i], pa.int64())}).to_reader(), mode="append")

        threads = [threading.Thread(target=append, args=(lk, 1 + 100 * n)) for n, lk in enumerate(lakes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lakes[0].refresh()
        final = lakes[0].manifest("race")
        assert final.version == 17
        metadata = sorted(o.key.rsplit("/", 1)[1] for o in lakes[0].store.list("_iceberg/race/metadata/") if o.key.endswith(".metadata.json"))
        assert metadata == sorted(f"v{v}.metadata.json" for v in range(1, 18))
        got = iceberg_rows(lakes[0], location(lakes[0], "race"))
        assert [r["id"] for r in got] == sorted([0] + list(range(1, 9)) + list(range(101, 109)))
    finally:
        for lk in lakes:
            lk.close()


def test_a_publication_missed_by_a_crash_is_made_at_the_next_start(config: Config, tmp_path: Path) -> None:
    lake = Lake.open(config, MINIO_SECRETS)
    lake.ingest_arrow("late", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    lake.catalog.on_commit.clear()  # as if the process died right after each commit
    lake.ingest_arrow("late", pa.table({"id": pa.array([2], pa.int64())}).to_reader(), mode="append")
    lake.ingest_arrow("late", pa.table({"id": pa.array([3], pa.int64())}).to_reader(), mode="append")
    assert lake.manifest_answer(lake.manifest("late"))["iceberg"]["reason"] == "not published yet"
    lake.close()
    again = Lake.open(config, MINIO_SECRETS)
    try:
        again.publish_missing()  # as `lakehouse serve` does when it starts
        assert [r["id"] for r in iceberg_rows(again, location(again, "late"))] == [1, 2, 3]
        table = StaticTable.from_metadata(location(again, "late"), io_properties(again.config))
        assert [s.summary["lakehouse.version"] for s in table.metadata.snapshots] == ["1", "2", "3"]
    finally:
        again.close()


def test_gc_expires_the_snapshots_of_what_it_collects_and_their_metadata(lake: Lake) -> None:
    lake.ingest_arrow("kept", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    lake.ingest_arrow("kept", pa.table({"id": pa.array([2], pa.int64())}).to_reader(), mode="append")
    lake.ingest_arrow("kept", pa.table({"id": pa.array([3], pa.int64())}).to_reader(), mode="replace")
    lake.ingest_arrow("dropped", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    lake.drop("dropped")
    before = StaticTable.from_metadata(location(lake, "kept"), io_properties(lake.config))
    assert len(before.metadata.snapshots) == 3
    removed = lake.gc()
    assert len(removed) == 3  # the two objects the replace left behind, and the dropped dataset's
    after = StaticTable.from_metadata(location(lake, "kept"), io_properties(lake.config))
    assert [s.summary["lakehouse.version"] for s in after.metadata.snapshots] == ["3"]
    assert after.scan().to_arrow().to_pylist() == [{"id": 3}]
    left = sorted(o.key.rsplit("/", 1)[1] for o in lake.store.list("_iceberg/kept/metadata/") if o.key.endswith(".json"))
    assert left == ["v3.metadata.json"]
    files = [o.key for o in lake.store.list("_iceberg/kept/metadata/") if o.key.endswith(".avro")]
    assert len(files) == 2  # the current snapshot's manifest list and manifest
    assert not list(lake.store.list("_iceberg/dropped/"))


def test_the_manifest_answer_gives_the_metadata_location_over_http_and_flight(served: Served) -> None:
    import json

    import pyarrow.flight as flight

    from tests.test_http import serving

    put(served.client(), flight.FlightDescriptor.for_path("seen"), pa.table({"id": pa.array([1], pa.int64())}))
    answer = json.loads(next(iter(served.client().do_action(flight.Action("manifest", b"seen")))).body.to_pybytes())
    assert answer["iceberg"]["available"] and answer["iceberg"]["metadata_location"].endswith("_iceberg/seen/metadata/v1.metadata.json")
    with serving(served.lake) as running:
        assert running.client.get("/catalog/manifest/seen").json()["iceberg"] == answer["iceberg"]
        assert running.client.get("/catalog/list").json()["datasets"][0]["iceberg"] == answer["iceberg"]


def test_a_dataset_never_published_starts_its_history_at_its_latest_version(config: Config) -> None:
    lake = Lake.open(config, MINIO_SECRETS)
    lake.catalog.on_commit.clear()  # as a lake written before it published Iceberg
    lake.ingest_arrow("old", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    lake.ingest_arrow("old", pa.table({"id": pa.array([2], pa.int64())}).to_reader(), mode="append")
    lake.close()
    again = Lake.open(config, MINIO_SECRETS)
    try:
        again.publish_missing()  # as `lakehouse serve` does when it starts
        table = StaticTable.from_metadata(location(again, "old"), io_properties(again.config))
        assert [s.summary["lakehouse.version"] for s in table.metadata.snapshots] == ["2"]
        assert sorted(r["id"] for r in table.scan().to_arrow().to_pylist()) == [1, 2]
    finally:
        again.close()


def test_a_version_another_server_has_not_published_yet_is_published_first(lake: Lake) -> None:
    lake.ingest_arrow("gap", pa.table({"id": pa.array([1], pa.int64())}).to_reader())
    hooks = list(lake.catalog.on_commit)
    lake.catalog.on_commit.clear()  # version 2 is committed by a server that has not published it
    lake.ingest_arrow("gap", pa.table({"id": pa.array([2], pa.int64())}).to_reader(), mode="append")
    lake.catalog.on_commit.extend(hooks)
    lake.ingest_arrow("gap", pa.table({"id": pa.array([3], pa.int64())}).to_reader(), mode="append")
    table = StaticTable.from_metadata(location(lake, "gap"), io_properties(lake.config))
    assert [s.summary["lakehouse.version"] for s in table.metadata.snapshots] == ["1", "2", "3"]
    assert sorted(r["id"] for r in table.scan().to_arrow().to_pylist()) == [1, 2, 3]
