"""Stateless servers on one bucket, measured on real MinIO in one run:

1. the bounded cache against the unbounded one: cold (a fresh lake, an empty cache) and warm
   (median) latency of the GROUP BY and `SELECT *`, with `storage.cache_max_bytes` at half
   the dataset against a cache that holds it all;
2. `SELECT *` of `--rows` rows (5M by default) through ADBC from one server, then from three
   servers sharing the bucket (the FlightInfo splits the scan among them).

    python -m bench.cluster [--rows 5000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import httpx

from bench.read_path import _Creds, median_ms, once_ms, synthetic
from lakehouse.config import Config, IngestConfig, StorageConfig, load_config
from lakehouse.lake import Lake
from scripts import minio as minio_script
from tests.processes import server_process

GROUP_BY = "SELECT role, count(*), avg(rate) FROM t WHERE state = 'IL' GROUP BY role"
SELECT_ALL = "SELECT * FROM t"
OBJECT_BYTES = 2 * 1024 * 1024
"""Small objects, so the synthetic data (which compresses well) spans many of them."""


def _config(server: minio_script.MinioServer, prefix: str, cache: Path, max_bytes: int) -> Config:
    base = load_config(environ={})
    storage = StorageConfig(uri=f"s3://{server.bucket}/{prefix}", endpoint=server.endpoint, cache_dir=str(cache), cache_max_bytes=max_bytes)
    return dataclasses.replace(base, storage=storage, ingest=IngestConfig(max_object_bytes=OBJECT_BYTES))


def bounded_against_unbounded(server: minio_script.MinioServer, work: Path, rows: int, repeat: int) -> None:
    prefix = uuid.uuid4().hex
    writer = Lake.open(_config(server, prefix, work / "writer", 0), _Creds())
    table = synthetic(rows)
    writer.ingest_arrow("t", table.to_reader(max_chunksize=131_072), mode="create")
    size = writer.manifest("t").total_bytes
    objects = len(writer.manifest("t").objects)
    writer.close()
    print(f"\n## bounded cache: {rows:,} rows, {objects} objects, {size / 2**20:.0f} MB; bound {size // 2 / 2**20:.0f} MB")
    print(f"{'query':<10} {'unbounded cold':>15} {'bounded cold':>13} {'unbounded warm':>15} {'bounded warm':>13}")
    for label, sql in (("group by", GROUP_BY), ("select *", SELECT_ALL)):
        cells = {}
        for name, bound in (("unbounded", 1 << 40), ("bounded", size // 2)):
            lake = Lake.open(_config(server, prefix, work / f"{name}-{label}", bound), _Creds())
            cells[f"{name} cold"] = once_ms(lambda: lake.query(sql).read_all())
            lake.cache.settle()
            cells[f"{name} warm"] = median_ms(lambda: (lake.query(sql).read_all(), lake.cache.settle()), repeat)
            lake.close()
        print(f"{label:<10} {cells['unbounded cold']:>15.1f} {cells['bounded cold']:>13.1f} {cells['unbounded warm']:>15.1f} {cells['bounded warm']:>13.1f}")


def one_against_three(server: minio_script.MinioServer, work: Path, rows: int, repeat: int) -> None:
    prefix = uuid.uuid4().hex
    uri = f"s3://{server.bucket}/{prefix}"
    writer = Lake.open(_config(server, prefix, work / "writer-5m", 0), _Creds())
    writer.ingest_arrow("t", synthetic(rows).to_reader(max_chunksize=131_072), mode="create")
    m = writer.manifest("t")
    writer.close()
    print(f"\n## SELECT * of {rows:,} rows ({len(m.objects)} objects, {m.total_bytes / 2**20:.0f} MB) through ADBC")
    settings = {"ingest_max_object_bytes": str(OBJECT_BYTES)}
    with ExitStack() as stack:
        first = stack.enter_context(server_process(work / "s0", uri, server, **settings))

        def select_all() -> None:
            with flight_sql.connect(first.flight) as conn, conn.cursor() as cur:
                cur.execute(SELECT_ALL)
                assert cur.fetch_arrow_table().num_rows == rows

        one = median_ms(select_all, repeat)
        for n in (1, 2):
            stack.enter_context(server_process(work / f"s{n}", uri, server, **settings))
        deadline = time.monotonic() + 30
        while len(httpx.get(f"{first.http}/ready", timeout=5).json()["peers"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        three = median_ms(select_all, repeat)
    print(f"{'servers':<8} {'ms':>9} {'rows/s':>14}")
    print(f"{1:<8} {one:>9.1f} {rows / one * 1000:>14,.0f}")
    print(f"{3:<8} {three:>9.1f} {rows / three * 1000:>14,.0f}   ({one / three:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--cache-rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakehouse-cluster-"))
    server = minio_script.start(work / "minio")
    try:
        bounded_against_unbounded(server, work, args.cache_rows, args.repeat)
        one_against_three(server, work, args.rows, args.repeat)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
