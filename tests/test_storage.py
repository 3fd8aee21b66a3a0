"""Object storage, the same behaviour on the local directory and on real MinIO."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from lakehouse.errors import Conflict, InvalidInput, NotFound, Unavailable
from lakehouse.storage import ObjectStore, open_store


def test_put_get_stat_list_delete(store: ObjectStore) -> None:
    store.put("a/one.txt", io.BytesIO(b"hello"), 5)
    store.put("a/two.txt", io.BytesIO(b"world!"))
    store.put("b/three.txt", io.BytesIO(b"x"))
    assert store.read_bytes("a/one.txt") == b"hello"
    assert store.stat("a/two.txt").size == 6
    assert [o.key for o in store.list("a/")] == ["a/one.txt", "a/two.txt"]
    assert [o.key for o in store.list()] == ["a/one.txt", "a/two.txt", "b/three.txt"]
    store.delete("a/one.txt")
    store.delete("a/one.txt")
    with pytest.raises(NotFound):
        store.stat("a/one.txt")
    with pytest.raises(NotFound):
        store.open("a/one.txt")


def test_large_object_streams_both_ways(store: ObjectStore) -> None:
    data = os.urandom(1024 * 1024) * 40
    store.put("big/blob.bin", io.BytesIO(data))
    with store.open("big/blob.bin") as fh:
        chunks = iter(lambda: fh.read(1024 * 1024), b"")
        assert b"".join(chunks) == data


def test_put_if_absent_has_exactly_one_winner(store: ObjectStore) -> None:
    wins: list[int] = []
    losses: list[int] = []

    def race(i: int) -> None:
        try:
            store.put_if_absent("commit/0001", str(i).encode())
            wins.append(i)
        except Conflict:
            losses.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert store.read_bytes("commit/0001") == str(wins[0]).encode()


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", "a//b", "", "dir/", "a\\b", "a/./b"])
def test_bad_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(key, io.BytesIO(b"x"))


def test_unreachable_minio_is_unavailable_quickly_then_recovers(minio, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lakehouse.config import StorageConfig
    from tests.conftest import MINIO_SECRETS

    config = StorageConfig(uri=f"s3://{minio.bucket}/outage", endpoint=minio.endpoint, timeout_seconds=2.0)
    store = open_store(config, MINIO_SECRETS)
    store.put("k", io.BytesIO(b"v"))
    minio.stop()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="storage unavailable"):
            store.stat("k")
        assert time.monotonic() - started < 15, "an outage must fail fast, not hang"
    finally:
        minio.restart()
    assert store.read_bytes("k") == b"v"
