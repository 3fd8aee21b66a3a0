"""Which read path should DuckDB use for objects in S3? Measured, not guessed.

Compares, on the same dataset in a real MinIO server:
  local   DuckDB `read_parquet` over local copies (the read-through cache; what the engine uses)
  arrow   DuckDB scanning a `pyarrow.dataset` over `pyarrow.fs.S3FileSystem` (reads MinIO each query)
and reports the one-time cost of filling the cache (downloading the objects).

    python -m bench.read_path [--rows 500000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from lakehouse.cache import ObjectCache
from lakehouse.config import IngestConfig, StorageConfig
from lakehouse.catalog import Catalog
from lakehouse.ingest import write_batches
from lakehouse.secrets import S3Credentials, Secret, SecretsProvider
from lakehouse.storage.s3 import S3Store
from scripts import minio as minio_script

QUERIES = {
    "count(*)": "SELECT count(*) FROM t",
    "group by": "SELECT role, count(*), avg(rate) FROM t WHERE state = 'IL' GROUP BY role",
    "filter": "SELECT * FROM t WHERE id = 123456",
    "select *": "SELECT * FROM t",
}


class _Creds(SecretsProvider):
    def s3_credentials(self) -> S3Credentials:
        return S3Credentials(Secret(minio_script.ACCESS_KEY), Secret(minio_script.SECRET_KEY))


def synthetic(rows: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    roles = pa.array([f"role_{i}" for i in range(20)])
    states = pa.array(["IL", "CA", "NY", "TX", "WA", "IL", "FL"])
    return pa.table(
        {
            "id": ids,
            "role": pc.take(roles, pc.bit_wise_and(ids, 15)),
            "state": pc.take(states, pc.remainder(ids, 7)),
            "rate": pc.multiply(pc.remainder(ids, 97).cast(pa.float64()), 1.25),
            "name": pc.binary_join_element_wise(pa.array(["worker"] * rows), ids.cast(pa.string()), "-"),
        }
    )


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakehouse-readpath-"))
    server = minio_script.start(work / "minio")
    try:
        store = S3Store(StorageConfig(uri=f"s3://{server.bucket}/bench", endpoint=server.endpoint), _Creds())
        catalog = Catalog(store)
        writer_cache = ObjectCache(store, work / "writer-cache")
        result = write_batches(catalog, writer_cache, IngestConfig(), "t", synthetic(args.rows).schema, synthetic(args.rows).to_batches(), "create")
        keys = [o.key for o in result.objects]
        cold = ObjectCache(store, work / "cold-cache")
        started = time.perf_counter()
        paths = [cold.path(k) for k in keys]
        fill_ms = (time.perf_counter() - started) * 1000

        local = duckdb.connect()
        local.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({paths!r})")
        fs = pafs.S3FileSystem(access_key=minio_script.ACCESS_KEY, secret_key=minio_script.SECRET_KEY, endpoint_override=server.endpoint, scheme="http")
        dataset = ds.dataset([f"{server.bucket}/bench/{k}" for k in keys], format="parquet", filesystem=fs)
        remote = duckdb.connect()
        remote.register("t", dataset)

        print(f"rows={args.rows} objects={len(keys)} bytes={result.bytes} cache fill (download once)={fill_ms:.1f} ms")
        print(f"{'query':<10} {'local ms':>10} {'arrow-S3 ms':>12} {'ratio':>7}")
        for label, sql in QUERIES.items():
            a = median_ms(lambda: local.sql(sql).to_arrow_table(), args.repeat)
            b = median_ms(lambda: remote.sql(sql).to_arrow_table(), args.repeat)
            print(f"{label:<10} {a:>10.2f} {b:>12.2f} {b / a:>6.1f}x")
        store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
