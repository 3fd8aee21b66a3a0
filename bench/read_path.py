"""Which read path should DuckDB use for objects in S3? Measured, not guessed.

Compares, on the same dataset in a real MinIO server:
  prefetch  whole objects copied into the local cache first, then DuckDB's native reads
  ranges    DuckDB reading `lake://` through `ObjectFiles` with nothing cached: byte ranges
            of the footers and column chunks a query needs (what the engine does on a miss)
  arrow     DuckDB scanning a `pyarrow.dataset` over `pyarrow.fs.S3FileSystem`
  httpfs    DuckDB's own `httpfs` extension reading `s3://` (DuckDB 1.5.5 with the packaged
            extension, in a virtual environment of its own, `--httpfs`)
Each query is timed cold (a fresh connection and an empty cache: the first query after a
start) and warm (median of `--repeat` runs).

    python -m bench.read_path [--rows 2000000] [--objects 8] [--repeat 7] [--httpfs]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from lakehouse.cache import ObjectCache, ObjectFiles
from lakehouse.config import IngestConfig, StorageConfig
from lakehouse.catalog import Catalog
from lakehouse.ingest import write_batches
from lakehouse.secrets import S3Credentials, Secret, SecretsProvider
from lakehouse.storage.s3 import S3Store
from scripts import minio as minio_script

ROOT = Path(__file__).resolve().parent.parent
HTTPFS_VENV = ROOT / ".cache" / "httpfs-venv"
HTTPFS_PACKAGES = ("duckdb==1.5.5", "duckdb-extension-httpfs==1.5.5", "pyarrow==26.0.1")
"""The last DuckDB the extension is packaged for; installed once into HTTPFS_VENV."""

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


def httpfs_timings(server: minio_script.MinioServer, keys: list[str], repeat: int) -> dict[str, list[float]]:
    """Cold and warm ms per query with DuckDB's httpfs, measured in its own environment."""
    python = HTTPFS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(HTTPFS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *HTTPFS_PACKAGES], check=True)
    spec = {
        "endpoint": server.endpoint, "key": minio_script.ACCESS_KEY, "secret": minio_script.SECRET_KEY,
        "urls": [f"s3://{server.bucket}/bench/{k}" for k in keys], "queries": QUERIES, "repeat": repeat,
    }
    done = subprocess.run([str(python), str(ROOT / "bench" / "httpfs_probe.py"), json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def once_ms(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--httpfs", action="store_true", help="also measure DuckDB 1.5.5's httpfs (installs it once)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakehouse-readpath-"))
    server = minio_script.start(work / "minio")
    try:
        store = S3Store(StorageConfig(uri=f"s3://{server.bucket}/bench", endpoint=server.endpoint), _Creds())
        catalog = Catalog(store)
        writer_cache = ObjectCache(store, work / "writer-cache", 0)
        table = synthetic(args.rows)
        per = -(-args.rows // args.objects)
        objects = []
        for i in range(args.objects):
            part = table.slice(i * per, per)
            objects += write_batches(catalog, writer_cache, IngestConfig(), "t", part.schema, part.to_batches(), "create_append").objects
        keys = [o.key for o in objects]
        fs = pafs.S3FileSystem(access_key=minio_script.ACCESS_KEY, secret_key=minio_script.SECRET_KEY, endpoint_override=server.endpoint, scheme="http")

        def prefetch(n: int) -> duckdb.DuckDBPyConnection:
            cache = ObjectCache(store, work / f"prefetch-{n}", 1 << 40)
            db = duckdb.connect()
            db.execute("SET parquet_metadata_cache=true")  # as the engine does
            db.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({[cache.path(k) for k in keys]!r})")
            return db

        def ranges(n: int) -> duckdb.DuckDBPyConnection:
            cache = ObjectCache(store, work / f"ranges-{n}", 0)
            db = duckdb.connect()
            db.execute("SET parquet_metadata_cache=true")  # as the engine does
            db.register_filesystem(ObjectFiles(cache))
            db.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({[cache.reference(o.key, o.size) for o in objects]!r})")
            return db

        def arrow(n: int) -> duckdb.DuckDBPyConnection:
            db = duckdb.connect()
            db.register("t", ds.dataset([f"{server.bucket}/bench/{k}" for k in keys], format="parquet", filesystem=fs))
            return db

        paths = {"prefetch": prefetch, "ranges": ranges, "arrow": arrow}
        httpfs = httpfs_timings(server, keys, args.repeat) if args.httpfs else {}
        print(f"rows={args.rows} objects={len(keys)} bytes={sum(o.size for o in objects)}")
        names = list(paths) + (["httpfs"] if httpfs else [])
        print(f"{'query':<10} " + " ".join(f"{name + ' cold':>14} {name + ' warm':>14}" for name in names))
        for n, (label, sql) in enumerate(QUERIES.items()):
            cells = []
            for name, make in paths.items():
                cold = once_ms(lambda: make(n).sql(sql).to_arrow_table())
                db = make(100 + n)
                warm = median_ms(lambda: db.sql(sql).to_arrow_table(), args.repeat)
                cells.append(f"{cold:>14.1f} {warm:>14.1f}")
            if httpfs:
                cells.append(f"{httpfs[label][0]:>14.1f} {httpfs[label][1]:>14.1f}")
            print(f"{label:<10} " + " ".join(cells))
        store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
