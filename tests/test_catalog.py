"""The catalog: manifests in storage, idempotent registration, conflicts, restarts, gc."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.catalog import Catalog, DataObject, MANIFEST_PREFIX
from lakehouse.config import Config
from lakehouse.errors import Conflict, InvalidInput, NotFound
from lakehouse.storage import ObjectStore

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
OTHER = pa.schema([("id", pa.int64()), ("name", pa.int32())])


def obj(store: ObjectStore, key: str, rows: int) -> DataObject:
    """A stored object to commit (a commit checks that its objects exist)."""
    info = store.put(key, io.BytesIO(b"PAR1"))
    return DataObject(key, info.size, rows)


def test_register_list_and_survive_restart(store: ObjectStore) -> None:
    first = Catalog(store).register("workers", SCHEMA)
    assert first.row_count == 0 and first.objects == ()
    assert [o.key for o in store.list(MANIFEST_PREFIX)][0].startswith("_catalog/manifests/workers/")
    reopened = Catalog(store)
    again = reopened.get("workers")
    assert [m.name for m in reopened.list()] == ["workers"]
    assert (again.dataset_id, again.etag, again.schema) == (first.dataset_id, first.etag, SCHEMA)


def test_register_is_idempotent_by_name_and_fingerprint(store: ObjectStore) -> None:
    catalog = Catalog(store)
    a = catalog.register("t", SCHEMA)
    b = catalog.register("t", SCHEMA)
    assert a.dataset_id == b.dataset_id and a.etag == b.etag
    assert len(list(store.list(MANIFEST_PREFIX))) == 1


def test_different_fingerprint_is_a_conflict_and_changes_nothing(store: ObjectStore) -> None:
    catalog = Catalog(store)
    before = catalog.register("t", SCHEMA)
    keys = [o.key for o in store.list()]
    with pytest.raises(Conflict, match="'name' has type int32"):
        catalog.register("t", OTHER)
    assert [o.key for o in store.list()] == keys
    assert Catalog(store).get("t").etag == before.etag


def test_commit_changes_etag_and_counts_rows(store: ObjectStore) -> None:
    catalog = Catalog(store)
    m1 = catalog.commit("t", SCHEMA, [obj(store, "datasets/t/a.parquet", 5)], "create")
    m2 = catalog.commit("t", SCHEMA, [obj(store, "datasets/t/b.parquet", 7)], "append")
    assert m2.etag != m1.etag and m2.dataset_id == m1.dataset_id
    assert m2.row_count == 12 and [o.key for o in m2.objects] == ["datasets/t/a.parquet", "datasets/t/b.parquet"]
    m3 = catalog.commit("t", SCHEMA, [obj(store, "datasets/t/c.parquet", 1)], "replace")
    assert m3.row_count == 1 and Catalog(store).get("t").objects == m3.objects


def test_mode_rules(store: ObjectStore) -> None:
    catalog = Catalog(store)
    with pytest.raises(NotFound):
        catalog.commit("t", SCHEMA, [], "append")
    catalog.commit("t", SCHEMA, [], "create_append")
    with pytest.raises(Conflict):
        catalog.commit("t", SCHEMA, [], "create")
    with pytest.raises(InvalidInput, match="'name' has type int32"):
        catalog.commit("t", OTHER, [], "append")
    with pytest.raises(InvalidInput):
        catalog.commit("bad-name", SCHEMA, [], "create")
    with pytest.raises(InvalidInput):
        catalog.commit("t", SCHEMA, [], "upsert")


def test_drop_then_recreate_gets_a_new_identity(store: ObjectStore) -> None:
    catalog = Catalog(store)
    old = catalog.register("t", SCHEMA)
    catalog.drop("t")
    assert Catalog(store).find("t") is None
    with pytest.raises(NotFound):
        catalog.drop("t")
    new = catalog.register("t", OTHER)
    assert new.dataset_id != old.dataset_id and new.etag != old.etag


def test_a_second_catalog_sees_commits_after_reload(store: ObjectStore) -> None:
    a, b = Catalog(store), Catalog(store)
    a.register("x", SCHEMA)
    assert b.find("x") is None
    b.reload()
    assert b.get("x").dataset_id == a.get("x").dataset_id
    # b's stale index must not let it overwrite a's newer version
    a.commit("x", SCHEMA, [obj(store, "datasets/x/1.parquet", 1)], "append")
    b.commit("x", SCHEMA, [obj(store, "datasets/x/2.parquet", 1)], "append")
    assert [o.key for o in Catalog(store).get("x").objects] == ["datasets/x/1.parquet", "datasets/x/2.parquet"]


def test_gc_deletes_only_unreferenced_old_objects(store: ObjectStore) -> None:
    catalog = Catalog(store)
    store.put("datasets/t/orphan.parquet", io.BytesIO(b"PAR1"))
    catalog.commit("t", SCHEMA, [obj(store, "datasets/t/kept.parquet", 1)], "create")
    assert catalog.gc(grace_seconds=3600) == []
    assert catalog.gc(grace_seconds=0) == ["datasets/t/orphan.parquet"]
    assert [o.key for o in store.list("datasets/")] == ["datasets/t/kept.parquet"]


def _writer(config: Config, column_type: str, names: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.catalog_writer", config.storage.uri, config.storage.endpoint, str(tmp), column_type, *names],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )


def test_two_processes_registering_concurrently_lose_nothing(config: Config, store: ObjectStore, tmp_path: Path) -> None:
    a = _writer(config, "int64", [f"a{i}" for i in range(15)], tmp_path / "a")
    b = _writer(config, "int64", [f"b{i}" for i in range(15)], tmp_path / "b")
    out = a.communicate(timeout=120)[0] + b.communicate(timeout=120)[0]
    assert a.returncode == 0 and b.returncode == 0
    assert out.count("ok ") == 30
    assert sorted(m.name for m in Catalog(store).list()) == sorted([f"a{i}" for i in range(15)] + [f"b{i}" for i in range(15)])


def test_two_processes_same_name_different_schema_one_wins(config: Config, store: ObjectStore, tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(10)]
    a = _writer(config, "int64", names, tmp_path / "a")
    b = _writer(config, "string", names, tmp_path / "b")
    out_a, out_b = a.communicate(timeout=120)[0], b.communicate(timeout=120)[0]
    catalog = Catalog(store)
    for name in names:
        winner_type = catalog.get(name).schema.field("v").type
        a_won, b_won = f"conflict {name}\n" not in out_a, f"conflict {name}\n" not in out_b
        assert a_won != b_won
        assert winner_type == (pa.int64() if a_won else pa.string())


def test_a_crash_before_the_commit_leaves_no_dataset_and_gc_collects_it(config: Config, store: ObjectStore, tmp_path: Path) -> None:
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_writer", config.storage.uri, config.storage.endpoint, str(tmp_path / "cache")],
        cwd=Path(__file__).parent.parent,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(store.list("datasets/"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    orphans = [o.key for o in store.list("datasets/")]
    assert len(orphans) >= 3
    catalog = Catalog(store, lease_seconds=1.0)
    assert catalog.find("crashed") is None
    assert catalog.gc(grace_seconds=0) == [], "the writer's lease still protects its objects"
    time.sleep(1.2)  # the killed writer renews its lease no more
    assert sorted(catalog.gc(grace_seconds=0)) == sorted(orphans)
    assert list(store.list("datasets/")) == []


def test_names_differing_only_in_case_clash(store: ObjectStore) -> None:
    catalog = Catalog(store)
    catalog.register("Sales", SCHEMA)
    with pytest.raises(Conflict, match="case-insensitive"):
        catalog.register("sales", SCHEMA)
    assert [m.name for m in catalog.list()] == ["Sales"]
