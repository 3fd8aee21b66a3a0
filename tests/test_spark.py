"""Spark reads the lake through Iceberg: a dataset on MinIO after create, append, replace with
another schema and drop, older snapshots with VERSION AS OF, and the final version after two
servers appended at once; counts and a GROUP BY equal the lake's own answers.

Spark 4.1 in local mode (pyspark, pinned) with the Iceberg runtime, S3FileIO and a SQLite JDBC
catalog to register the published metadata files in (`scripts/spark.py` fetches the jars).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyspark.sql as pyspark_sql
import pytest

from lakehouse.config import Config, StorageConfig, load_config
from lakehouse.lake import Lake
from scripts import minio as minio_script
from scripts import spark as spark_script
from tests.conftest import MINIO_SECRETS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark(minio: minio_script.MinioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    work = tmp_path_factory.mktemp("spark")
    prefix = "spark.sql.catalog.lake"
    session = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .config("spark.jars", ",".join(str(j) for j in spark_script.jars()))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "1g")
        .config(prefix, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{prefix}.catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
        .config(f"{prefix}.uri", f"jdbc:sqlite:{work / 'catalog.db'}")
        .config(f"{prefix}.jdbc.schema-version", "V1")
        .config(f"{prefix}.warehouse", f"s3://{minio.bucket}/spark-warehouse")
        .config(f"{prefix}.io-impl", "org.apache.iceberg.aws.s3.S3FileIO")
        .config(f"{prefix}.s3.endpoint", minio.endpoint)
        .config(f"{prefix}.s3.path-style-access", "true")
        .config(f"{prefix}.s3.access-key-id", minio_script.ACCESS_KEY)
        .config(f"{prefix}.s3.secret-access-key", minio_script.SECRET_KEY)
        .config(f"{prefix}.client.region", "us-east-1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.sql("CREATE NAMESPACE IF NOT EXISTS lake.db")
    yield session
    session.stop()


@pytest.fixture
def s3_config(minio: minio_script.MinioServer, tmp_path: Path) -> Config:
    base = load_config(environ={})
    storage = StorageConfig(uri=f"s3://{minio.bucket}/{uuid.uuid4().hex}", endpoint=minio.endpoint, cache_dir=str(tmp_path / "cache"))
    return dataclasses.replace(base, storage=storage)


def spark_table(spark: Any, lake: Lake, name: str) -> str:
    """The dataset's current Iceberg metadata registered in Spark's catalog under a fresh name."""
    answer = lake.manifest_answer(lake.manifest(name))["iceberg"]
    assert answer["available"], answer
    table = f"db.{name}_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CALL lake.system.register_table(table => '{table}', metadata_file => '{answer['metadata_location']}')").collect()
    return f"lake.{table}"


def rows(spark: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in spark.sql(sql).collect()]


def lake_rows(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    table = lake.query(sql).read_all()
    return [tuple(r.values()) for r in table.to_pylist()]


def sales(start: int, n: int) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": pa.array(ids, pa.int64()), "region": [["north", "south", "east"][i % 3] for i in ids], "amount": [i * 1.5 for i in ids]})


def test_spark_reads_every_kind_of_version_and_older_snapshots(spark: Any, s3_config: Config) -> None:
    lake = Lake.open(s3_config, MINIO_SECRETS)
    try:
        lake.ingest_arrow("sales", sales(0, 1000).to_reader())
        created = spark_table(spark, lake, "sales")
        assert rows(spark, f"SELECT count(*) FROM {created}") == [(1000,)]
        lake.ingest_arrow("sales", sales(1000, 500).to_reader(), mode="append")
        appended = spark_table(spark, lake, "sales")
        group_by = "SELECT region, count(*), sum(amount) FROM {} GROUP BY region ORDER BY region"
        assert rows(spark, group_by.format(appended)) == lake_rows(lake, group_by.format("sales"))
        snapshots = [r[0] for r in rows(spark, f"SELECT snapshot_id FROM {appended}.snapshots ORDER BY committed_at")]
        assert len(snapshots) == 2
        assert rows(spark, f"SELECT count(*) FROM {appended} VERSION AS OF {snapshots[0]}") == [(1000,)]
        other = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "city": ["Oslo", "Lima", "Pune"], "when": pa.array([0, 1, 2], pa.timestamp("us"))})
        lake.ingest_arrow("sales", other.to_reader(), mode="replace")
        replaced = spark_table(spark, lake, "sales")
        assert rows(spark, f"SELECT id, city FROM {replaced} ORDER BY id") == [(1, "Oslo"), (2, "Lima"), (3, "Pune")]
        assert rows(spark, f"SELECT count(*) FROM {replaced} VERSION AS OF {snapshots[1]}") == [(1500,)]
        lake.drop("sales")
        assert lake.iceberg.status(lake.catalog.read_version("sales", 4)).reason == "the dataset was dropped"  # type: ignore[union-attr]
        assert not list(lake.store.list("_iceberg/sales/metadata/version-hint.text"))
    finally:
        lake.close()


def test_spark_reads_the_final_version_after_two_servers_appended_at_once(spark: Any, s3_config: Config, tmp_path: Path) -> None:
    lakes = [Lake.open(dataclasses.replace(s3_config, storage=dataclasses.replace(s3_config.storage, cache_dir=str(tmp_path / f"c{i}"))), MINIO_SECRETS) for i in range(2)]
    try:
        lakes[0].ingest_arrow("shared", sales(0, 10).to_reader())
        lakes[1].refresh()

        def append(lake: Lake, start: int) -> None:
            for i in range(6):
                lake.ingest_arrow("shared", sales(start + 10 * i, 10).to_reader(), mode="append")

        threads = [threading.Thread(target=append, args=(lk, 1000 * (n + 1))) for n, lk in enumerate(lakes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lakes[0].refresh()
        table = spark_table(spark, lakes[0], "shared")
        assert rows(spark, f"SELECT count(*), sum(id) FROM {table}") == lake_rows(lakes[0], "SELECT count(*), sum(id) FROM shared")
        assert rows(spark, f"SELECT count(*) FROM {table}") == [(130,)]
    finally:
        for lk in lakes:
            lk.close()
