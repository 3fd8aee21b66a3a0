"""Ingest of Arrow streams: objects, modes, atomic visibility, and nothing left after a failure."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.config import Config
from lakehouse.errors import Conflict, InvalidInput, NotFound
from lakehouse.lake import Lake
from tests.conftest import MINIO_SECRETS


def table(n: int, start: int = 0) -> pa.Table:
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table({"id": ids, "name": pa.array([f"w{i}" for i in range(start, start + n)]), "rate": pa.compute.multiply(ids.cast(pa.float64()), 0.5)})


def snapshot(lake: Lake) -> list[tuple[str, int]]:
    return [(o.key, o.size) for o in lake.store.list()]


def test_arrow_stream_becomes_parquet_with_large_row_groups(lake: Lake) -> None:
    data = table(300_000)
    result = lake.ingest_arrow("w", pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=5000)))
    assert result.rows == 300_000 and result.manifest.row_count == 300_000
    assert all(o.key.startswith("datasets/w/") for o in result.objects)
    meta = pq.ParquetFile(lake.cache.path(result.objects[0].key)).metadata
    assert meta.num_row_groups == 3 and meta.row_group(0).num_rows == 131_072
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert lake.query("SELECT * FROM w ORDER BY id").read_all().equals(data)


def test_objects_roll_past_the_size_bound(config: Config) -> None:
    small = dataclasses.replace(config, ingest=dataclasses.replace(config.ingest, max_object_bytes=64 * 1024, row_group_rows=10_000))
    lake = Lake.open(small, MINIO_SECRETS)
    try:
        result = lake.ingest_arrow("w", table(100_000).to_reader(max_chunksize=10_000))
        assert len(result.objects) > 1
        assert sum(o.row_count for o in result.objects) == 100_000
        assert lake.query("SELECT count(*) AS n, sum(id) AS s FROM w").read_all().to_pylist() == [{"n": 100_000, "s": sum(range(100_000))}]
    finally:
        lake.close()


def test_modes_create_append_replace_create_append(lake: Lake) -> None:
    lake.ingest_arrow("w", table(10).to_reader())
    with pytest.raises(Conflict):
        lake.ingest_arrow("w", table(10).to_reader(), mode="create")
    lake.ingest_arrow("w", table(5, 10).to_reader(), mode="append")
    assert lake.query("SELECT count(*) AS n FROM w").read_all()["n"][0].as_py() == 15
    lake.ingest_arrow("w", table(3, 100).to_reader(), mode="replace")
    assert lake.query("SELECT min(id) AS lo, count(*) AS n FROM w").read_all().to_pylist() == [{"lo": 100, "n": 3}]
    lake.ingest_arrow("w", table(2, 200).to_reader(), mode="create_append")
    lake.ingest_arrow("fresh", table(2).to_reader(), mode="create_append")
    assert lake.query("SELECT (SELECT count(*) FROM w) AS a, (SELECT count(*) FROM fresh) AS b").read_all().to_pylist() == [{"a": 5, "b": 2}]


def test_append_with_another_schema_names_the_column_and_writes_nothing(lake: Lake) -> None:
    lake.ingest_arrow("w", table(10).to_reader())
    before = snapshot(lake)
    other = table(10).set_column(1, "name", pa.array(range(10), pa.int32()))
    with pytest.raises(InvalidInput, match="'name' has type int32, expected string"):
        lake.ingest_arrow("w", other.to_reader(), mode="append")
    with pytest.raises(NotFound):
        lake.ingest_arrow("nope", other.to_reader(), mode="append")
    assert snapshot(lake) == before


def test_a_stream_that_breaks_half_way_leaves_nothing(lake: Lake) -> None:
    data = table(400_000)
    lake.ingest_arrow("kept", table(3).to_reader())
    before = snapshot(lake)

    def broken() -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(data.to_batches(max_chunksize=50_000)):
            if i == 5:
                raise ConnectionError("client went away")
            yield batch

    with pytest.raises(ConnectionError):
        lake.ingest_arrow("w", broken(), schema=data.schema)
    assert snapshot(lake) == before
    assert lake.catalog.find("w") is None


def test_bad_dataset_names_are_refused(lake: Lake) -> None:
    for name in ["", "1abc", "a-b", "a b", "x" * 129, "ünï", "../x"]:
        with pytest.raises(InvalidInput):
            lake.ingest_arrow(name, table(1).to_reader())
    assert snapshot(lake) == []


def test_empty_stream_makes_an_empty_dataset(lake: Lake) -> None:
    data = table(0)
    result = lake.ingest_arrow("empty", data.to_reader())
    assert result.rows == 0 and result.objects == []
    out = lake.query("SELECT * FROM empty").read_all()
    assert out.num_rows == 0 and out.schema.names == ["id", "name", "rate"]
    assert out.schema.field("id").type == pa.int64()


def test_replace_is_never_a_mix_of_old_and_new(lake: Lake) -> None:
    lake.ingest_arrow("w", table(50_000).to_reader(max_chunksize=1000))
    lake.ingest_arrow("w", table(20_000, 1_000_000).to_reader(max_chunksize=1000), mode="replace")
    out = lake.query("SELECT count(*) AS n, min(id) AS lo FROM w").read_all().to_pylist()
    assert out == [{"n": 20_000, "lo": 1_000_000}]


def test_gc_collects_objects_of_a_replaced_dataset(lake: Lake) -> None:
    first = lake.ingest_arrow("w", table(10).to_reader())
    second = lake.ingest_arrow("w", table(10).to_reader(), mode="replace")
    removed = lake.gc(grace_seconds=0)
    assert removed == [o.key for o in first.objects]
    assert [o.key for o in lake.store.list("datasets/")] == [o.key for o in second.objects]
    assert lake.query("SELECT count(*) AS n FROM w").read_all()["n"][0].as_py() == 10


def test_clients_string_spellings_are_stored_alike_so_appends_match(lake: Lake) -> None:
    lake.ingest_arrow("s", pa.table({"name": pa.array(["a"], pa.string()), "b": pa.array([b"x"], pa.binary())}).to_reader())
    for name_type, bin_type in [(pa.large_string(), pa.large_binary()), (pa.string_view(), pa.binary_view())]:
        t = pa.table({"name": pa.array(["b"], name_type), "b": pa.array([b"y"], bin_type)})
        lake.ingest_arrow("s", t.to_reader(), mode="append")
    dictionary = pa.table({"name": pa.array(["c"]).dictionary_encode(), "b": pa.array([b"z"])})
    lake.ingest_arrow("s", dictionary.to_reader(), mode="append")
    out = lake.query("SELECT name, b FROM s ORDER BY name").read_all()
    assert out.to_pylist() == [{"name": "a", "b": b"x"}, {"name": "b", "b": b"y"}, {"name": "b", "b": b"y"}, {"name": "c", "b": b"z"}]
    assert lake.manifest("s").schema == pa.schema([("name", pa.string()), ("b", pa.binary())])
