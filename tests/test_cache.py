"""The bounded object cache on real MinIO: queries over a dataset several times the bound are
answered right while the cache directory stays within it, and answers the manifests hold
read no data object at all."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pytest
from prometheus_client import REGISTRY

from lakehouse.config import Config, StorageConfig, load_config
from lakehouse.lake import Lake
from scripts import minio as minio_script
from tests.conftest import MINIO_SECRETS

MB = 1024 * 1024
BOUND = 64 * MB
OBJECTS = 40
ROWS = 7_500
PAYLOAD = 1_000  # random bytes a row: 7.5 MB an object, 300 MB in all, incompressible


def _config(minio: minio_script.MinioServer, prefix: str, cache: Path, max_bytes: int) -> Config:
    base = load_config(environ={})
    storage = StorageConfig(uri=f"s3://{minio.bucket}/{prefix}", endpoint=minio.endpoint, cache_dir=str(cache), cache_max_bytes=max_bytes)
    # No in-memory copies (hot.py): every query here must go through the object cache.
    return dataclasses.replace(base, storage=storage, query=dataclasses.replace(base.query, hot_max_bytes=0))


def _size(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:
            pass  # evicted while walking
    return total


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class Watch:
    """The largest size the directory had, sampled every few milliseconds while it runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.largest = max(self.largest, _size(self.root))

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def big(minio: minio_script.MinioServer, tmp_path: Path) -> Iterator[tuple[str, dict[int, str]]]:
    """A 300 MB dataset on MinIO, written by a lake of its own; its prefix and each row's payload digest."""
    prefix = uuid.uuid4().hex
    digests: dict[int, str] = {}
    writer = Lake.open(_config(minio, prefix, tmp_path / "writer-cache", 0), MINIO_SECRETS)
    try:
        for i in range(OBJECTS):
            blob = os.urandom(ROWS * PAYLOAD)
            payloads = [blob[r * PAYLOAD : (r + 1) * PAYLOAD] for r in range(ROWS)]
            ids = list(range(i * ROWS, (i + 1) * ROWS))
            digests.update((n, hashlib.md5(p).hexdigest()) for n, p in zip(ids, payloads) if n % 1000 == 7)
            table = pa.table({"id": pa.array(ids, pa.int64()), "payload": pa.array(payloads, pa.binary())})
            writer.ingest_arrow("big", table.to_reader(), mode="create_append")
        assert writer.manifest("big").total_bytes > 280 * MB
    finally:
        writer.close()
    yield prefix, digests


@pytest.mark.slow
def test_queries_over_five_times_the_bound_are_right_and_the_cache_stays_within_it(
    big: tuple[str, dict[int, str]], minio: minio_script.MinioServer, tmp_path: Path
) -> None:
    prefix, digests = big
    cache = tmp_path / "reader-cache"
    lake = Lake.open(_config(minio, prefix, cache, BOUND), MINIO_SECRETS)
    total = OBJECTS * ROWS
    evictions = _counter("lakehouse_cache_evictions_total")
    try:
        with Watch(cache) as watch:
            for _ in range(3):  # objects missed twice are copied in: the later rounds fill and evict
                assert lake.query("SELECT sum(id) AS s, sum(octet_length(payload)) AS b FROM big").read_all().to_pylist() == [
                    {"s": total * (total - 1) // 2, "b": total * PAYLOAD}
                ]
                found = lake.query("SELECT id, md5(payload) AS digest FROM big WHERE id % 1000 = 7 ORDER BY id").read_all().to_pylist()
                assert {r["id"]: r["digest"] for r in found} == digests
                assert lake.query("SELECT count(*) AS n FROM big WHERE id >= 150000").read_all().to_pylist() == [{"n": total - 150_000}]
            lake.cache.settle()
        assert watch.largest <= BOUND, f"the cache directory reached {watch.largest / MB:.1f} MB"
        assert lake.cache.cached_bytes > BOUND // 2  # it was used, not bypassed
        assert _counter("lakehouse_cache_evictions_total") > evictions
    finally:
        lake.close()


def test_a_fresh_server_counts_rows_without_reading_a_data_object(minio: minio_script.MinioServer, tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex
    writer = Lake.open(_config(minio, prefix, tmp_path / "writer-cache", BOUND), MINIO_SECRETS)
    try:
        for i in range(3):
            writer.ingest_arrow("t", pa.table({"x": pa.array(range(i * 10, i * 10 + 10), pa.int64())}).to_reader(), mode="create_append")
    finally:
        writer.close()
    cache = tmp_path / "fresh-cache"
    reads = (_counter("lakehouse_storage_range_reads_total"), _counter("lakehouse_cache_misses_total"))
    lake = Lake.open(_config(minio, prefix, cache, BOUND), MINIO_SECRETS)
    try:
        assert lake.query("SELECT count(*) FROM t").read_all().to_pylist() == [{"count_star()": 30}]
        assert lake.query("SELECT COUNT(*) AS rows FROM main.T").read_all().to_pylist() == [{"rows": 30}]
        assert (_counter("lakehouse_storage_range_reads_total"), _counter("lakehouse_cache_misses_total")) == reads
        assert _size(cache / "objects") == 0
        # A count with a filter is a query like any other: it reads the objects.
        assert lake.query("SELECT count(*) AS n FROM t WHERE x > 4").read_all().to_pylist() == [{"n": 25}]
        assert _counter("lakehouse_storage_range_reads_total") > reads[0]
    finally:
        lake.close()
