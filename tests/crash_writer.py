"""A writer process that is killed mid-ingest by the crash test.

    python -m tests.crash_writer <storage-uri> <endpoint> <cache-dir>

It streams batches forever into dataset `crashed`, with small objects so several are
uploaded before the test kills it; it never reaches the commit.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Iterator

import pyarrow as pa

from lakehouse.config import IngestConfig, StorageConfig, load_config
from lakehouse.lake import Lake
from tests.conftest import MINIO_SECRETS


def endless() -> Iterator[pa.RecordBatch]:
    start = 0
    while True:
        yield pa.record_batch({"v": pa.array(range(start, start + 50_000), pa.int64())})
        start += 50_000


def main() -> None:
    uri, endpoint, cache_dir = sys.argv[1:]
    base = load_config(environ={})
    config = dataclasses.replace(
        base,
        storage=StorageConfig(uri=uri, endpoint=endpoint, cache_dir=cache_dir),
        ingest=IngestConfig(row_group_rows=50_000, max_object_bytes=1),
    )
    lake = Lake.open(config, MINIO_SECRETS)
    lake.ingest_arrow("crashed", endless(), schema=pa.schema([("v", pa.int64())]))


if __name__ == "__main__":
    main()
