"""A second writer process for the concurrency tests: registers datasets into a shared bucket.

    python -m tests.catalog_writer <storage-uri> <endpoint> <cache-dir> <column-type> <name>...
"""

from __future__ import annotations

import sys

import pyarrow as pa

from lakehouse.catalog import Catalog
from lakehouse.config import StorageConfig
from lakehouse.errors import Conflict
from lakehouse.storage import open_store
from tests.conftest import MINIO_SECRETS


def main() -> None:
    uri, endpoint, cache_dir, column_type, *names = sys.argv[1:]
    store = open_store(StorageConfig(uri=uri, endpoint=endpoint, cache_dir=cache_dir), MINIO_SECRETS)
    catalog = Catalog(store)
    schema = pa.schema([("v", getattr(pa, column_type)())])
    for name in names:
        try:
            print("ok", catalog.register(name, schema).dataset_id, flush=True)
        except Conflict:
            print("conflict", name, flush=True)


if __name__ == "__main__":
    main()
