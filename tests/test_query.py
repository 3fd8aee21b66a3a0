"""Query: DuckDB over the catalogued datasets, views kept in step with the catalog, the sandbox."""

from __future__ import annotations

import dataclasses
import threading
import time

import pyarrow as pa
import pytest
from prometheus_client import REGISTRY

from lakehouse.catalog import Catalog
from lakehouse.config import Config
from lakehouse.errors import InvalidInput
from lakehouse.lake import Lake
from tests.conftest import MINIO_SECRETS


@pytest.fixture
def workers(lake: Lake) -> Lake:
    roles = ["dev", "ops", "qa"]
    states = ["IL", "CA", "IL", "NY"]
    n = 10_000
    data = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "role": pa.array([roles[i % 3] for i in range(n)]),
            "state": pa.array([states[i % 4] for i in range(n)]),
            "rate": pa.array([float(i % 50) for i in range(n)]),
        }
    )
    lake.ingest_arrow("workers", data.to_reader(max_chunksize=1000))
    lake.ingest_arrow("roles", pa.table({"role": ["dev", "ops", "qa"], "title": ["Developer", "Operator", "Tester"]}).to_reader())
    return lake


def rows(lake: Lake, sql: str) -> list[dict[str, object]]:
    return lake.query(sql).read_all().to_pylist()


def test_count_and_group_by(workers: Lake) -> None:
    assert rows(workers, "SELECT count(*) AS n FROM workers") == [{"n": 10_000}]
    got = rows(workers, "SELECT role, count(*) AS n FROM workers WHERE state = 'IL' GROUP BY role ORDER BY role")
    expected: dict[str, int] = {}
    for i in range(10_000):
        if ["IL", "CA", "IL", "NY"][i % 4] == "IL":
            role = ["dev", "ops", "qa"][i % 3]
            expected[role] = expected.get(role, 0) + 1
    assert got == [{"role": r, "n": expected[r]} for r in sorted(expected)]


@pytest.mark.parametrize(
    "sql",
    [
        "WITH il AS (SELECT * FROM workers WHERE state = 'IL') SELECT count(*) FROM il",
        "SELECT id, rank() OVER (PARTITION BY role ORDER BY rate DESC) FROM workers LIMIT 5",
        "SELECT r.title, count(*) FROM workers w JOIN roles r USING (role) GROUP BY ALL",
        "DESCRIBE workers",
        "SUMMARIZE workers",
        "SHOW TABLES",
        "EXPLAIN SELECT * FROM workers",
        "FROM workers LIMIT 1",
        "SELECT * FROM workers QUALIFY row_number() OVER (PARTITION BY role ORDER BY id) = 1",
    ],
)
def test_analytical_sql_works(workers: Lake, sql: str) -> None:
    assert workers.query(sql).read_all().num_rows > 0


def test_results_stream_with_schema_before_rows(workers: Lake) -> None:
    reader = workers.query("SELECT id, role FROM workers")
    assert reader.schema.names == ["id", "role"]
    batches = list(reader)
    assert len(batches) >= 1 and sum(b.num_rows for b in batches) == 10_000
    assert workers.query_schema("SELECT id, rate FROM workers") == pa.schema([("id", pa.int64()), ("rate", pa.float64())])


def test_parameters_bind(workers: Lake) -> None:
    assert workers.query("SELECT count(*) AS n FROM workers WHERE state = ? AND rate < ?", ["IL", 10.0]).read_all()["n"][0].as_py() == 1000


ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/proc/self/environ')",
    "SELECT * FROM read_parquet('s3://other-bucket/x.parquet')",
    "SELECT * FROM read_json('http://127.0.0.1:1/x.json')",
    "SELECT * FROM glob('/*')",
    "COPY workers TO '/tmp/stolen.csv'",
    "COPY (SELECT 1) TO 'out.parquet'",
    "EXPORT DATABASE '/tmp/exported'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET profiling_output = '/tmp/profile.json'",
    "PRAGMA enable_profiling",
    "RESET allowed_directories",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW workers AS SELECT 1 AS x",
    "DROP VIEW workers",
    "INSERT INTO workers VALUES (1, 'x', 'y', 1.0)",
    "DELETE FROM workers",
    "UPDATE workers SET rate = 0",
    "ALTER VIEW workers RENAME TO w2",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "SELECT * FROM duckdb_secrets()",
    "CALL pragma_version()",
    "CHECKPOINT",
    "DETACH memory",
    "SELECT 1; DROP VIEW workers",
    "EXPLAIN ANALYZE CREATE OR REPLACE VIEW workers AS SELECT 42 AS x",
    "EXPLAIN ANALYZE COPY workers TO 'stolen.csv'",
    "SELECT * FROM read_csv('" + "/tmp/../etc/passwd" + "')",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_sandbox_refuses_escapes(workers: Lake, sql: str) -> None:
    with pytest.raises(InvalidInput):
        workers.query(sql).read_all()
    assert rows(workers, "SELECT count(*) AS n FROM workers") == [{"n": 10_000}]


def test_bad_sql_is_invalid_input(workers: Lake) -> None:
    with pytest.raises(InvalidInput, match="SQL error"):
        workers.query("SELEC nonsense")
    with pytest.raises(InvalidInput, match="nosuchtable"):
        workers.query("SELECT * FROM nosuchtable")


def test_append_is_seen_by_the_next_query(workers: Lake) -> None:
    workers.ingest_arrow("roles", pa.table({"role": ["pm"], "title": ["Manager"]}).to_reader(), mode="append")
    assert rows(workers, "SELECT count(*) AS n FROM roles") == [{"n": 4}]


def test_views_are_not_rebuilt_per_query(workers: Lake) -> None:
    workers.query_engine.hot.max_bytes = 0  # no in-memory copies, whose views change too (below)
    workers.query("SELECT 1").read_all()
    rebuilds = workers.query_engine._generation
    for _ in range(3):
        workers.query("SELECT max(state) FROM workers").read_all()
    assert workers.query_engine._generation == rebuilds
    workers.ingest_arrow("roles", pa.table({"role": ["pm"], "title": ["Manager"]}).to_reader(), mode="append")
    workers.query("SELECT max(title) FROM roles").read_all()
    assert workers.query_engine._generation == rebuilds + 1


def test_another_writers_commit_is_seen_after_the_ttl(config: Config) -> None:
    slow = dataclasses.replace(config, query=dataclasses.replace(config.query, view_ttl_seconds=0.5))
    reader = Lake.open(slow, MINIO_SECRETS)
    try:
        reader.ingest_arrow("t", pa.table({"v": [1]}).to_reader())
        assert rows(reader, "SELECT count(*) AS n FROM t") == [{"n": 1}]
        writer = Catalog(reader.store)
        m = reader.catalog.get("t")
        writer.commit("t", m.schema, m.objects + m.objects, "replace")
        time.sleep(0.6)
        assert rows(reader, "SELECT count(*) AS n FROM t") == [{"n": 2}]
    finally:
        reader.close()


def test_concurrent_queries_during_appends_never_see_half_a_commit(workers: Lake) -> None:
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()
    batch = pa.table({"id": pa.array(range(1000), pa.int64()), "role": ["dev"] * 1000, "state": ["IL"] * 1000, "rate": [1.0] * 1000})

    def reader() -> None:
        while not stop.is_set():
            try:
                counts.append(rows(workers, "SELECT count(*) AS n FROM workers")[0]["n"])  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        workers.ingest_arrow("workers", batch.to_reader(), mode="append")
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert counts and all(c % 1000 == 0 and 10_000 <= c <= 15_000 for c in counts)
    assert rows(workers, "SELECT count(*) AS n FROM workers") == [{"n": 15_000}]


def test_a_dataset_with_a_lost_object_does_not_break_other_queries(workers: Lake) -> None:
    workers.ingest_arrow("fragile", pa.table({"v": [1, 2]}).to_reader())
    key = workers.catalog.get("fragile").objects[0].key
    workers.store.delete(key)
    workers.cache.evict(key)
    workers.query_engine._views.pop("fragile", None)
    assert rows(workers, "SELECT count(*) AS n FROM workers") == [{"n": 10_000}]
    with pytest.raises(InvalidInput, match="fragile"):
        workers.query("SELECT * FROM fragile").read_all()


def test_result_schemas_follow_dataset_changes(lake: Lake) -> None:
    lake.ingest_arrow("t", pa.table({"v": pa.array([1], pa.int64())}).to_reader())
    assert lake.query_schema("SELECT * FROM t") == pa.schema([("v", pa.int64())])
    assert lake.query_schema("SELECT * FROM t") == pa.schema([("v", pa.int64())])
    lake.ingest_arrow("t", pa.table({"v": pa.array(["x"])}).to_reader(), mode="replace")
    assert lake.query_schema("SELECT * FROM t") == pa.schema([("v", pa.string())])
    assert lake.query_schema("SELECT ?::VARCHAR AS p", ["a"]) == pa.schema([("p", pa.string())])
    with pytest.raises(InvalidInput):
        lake.query_schema("SELECT * FROM nosuch")


def test_timestamps_come_back_in_the_zone_the_catalog_names(lake: Lake) -> None:
    stored = pa.table({"seen": pa.array([0, 1_000_000], pa.timestamp("us", tz="UTC"))})
    lake.ingest_arrow("events", stored.to_reader())
    result = lake.query("SELECT seen, seen + INTERVAL 1 HOUR AS later FROM events").read_all()
    assert lake.manifest("events").schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert result.schema.field("seen").type == result.schema.field("later").type == pa.timestamp("us", tz="UTC")


def _held(lake: Lake, name: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in lake.query_engine.hot._copies:
            return True
        time.sleep(0.02)
    return False


def test_information_schema_shows_the_datasets_and_nothing_the_engine_keeps_for_itself(workers: Lake) -> None:
    """DuckDB's information_schema lists every database the engine attaches: a held
    dataset's in-memory copy and a time-travel query's temporary view would show as tables a
    client cannot query; a query sees the datasets' catalog and schema only."""
    for _ in range(2):
        rows(workers, "SELECT * FROM workers WHERE id = 1")
    assert _held(workers, "workers")
    assert rows(workers, "SELECT table_catalog, table_schema, table_name FROM information_schema.tables ORDER BY table_name") == [
        {"table_catalog": "memory", "table_schema": "main", "table_name": name} for name in ("roles", "workers")
    ]
    assert rows(workers, "SELECT catalog_name, schema_name FROM INFORMATION_SCHEMA.SCHEMATA") == [{"catalog_name": "memory", "schema_name": "main"}]
    assert rows(workers, "SELECT DISTINCT table_catalog, table_name FROM information_schema.columns ORDER BY table_name") == [
        {"table_catalog": "memory", "table_name": name} for name in ("roles", "workers")
    ]
    # Aliases, joins and time travel in the same query keep working.
    joined = "SELECT t.table_name, count(*) AS n, (SELECT count(*) FROM workers AT (VERSION => 1)) AS w FROM information_schema.tables AS t JOIN information_schema.columns c USING (table_name) GROUP BY ALL ORDER BY 1"
    assert rows(workers, joined) == [{"table_name": "roles", "n": 2, "w": 10_000}, {"table_name": "workers", "n": 4, "w": 10_000}]
    assert workers.query_schema("SELECT table_name FROM information_schema.tables").names == ["table_name"]


def test_a_dataset_queried_twice_is_held_in_memory_with_the_same_answers(workers: Lake) -> None:
    queries = [
        "SELECT * FROM workers ORDER BY id", "SELECT role, count(*) AS n, sum(rate) AS r FROM workers WHERE state = 'IL' GROUP BY role ORDER BY role",
        "SELECT * FROM workers WHERE id = 4321",
    ]
    for q in queries:  # asking for a schema is not a use: nothing is copied for it
        workers.query_schema(q)
        workers.query_schema(q)
    assert not _held(workers, "workers", timeout=0.3)
    from_objects = [workers.query(q).read_all() for q in queries]
    assert _held(workers, "workers")
    assert [workers.query(q).read_all() for q in queries] == from_objects
    assert workers.query("SELECT * FROM workers AT (VERSION => 1) WHERE id = 4321").read_all() == from_objects[2]
    # A commit switches the view to the new version at once; the copy of the old one is dropped.
    workers.ingest_arrow("workers", pa.table({"id": pa.array([10_000], pa.int64()), "role": ["dev"], "state": ["IL"], "rate": [1.0]}).to_reader(), mode="append")
    assert workers.query("SELECT count(*) AS n FROM workers WHERE id >= 0").read_all().to_pylist() == [{"n": 10_001}]
    assert "workers" not in workers.query_engine.hot._copies
    assert not [t for (t,) in workers.query_engine.cursor().execute("SELECT table_name FROM duckdb_tables() WHERE database_name = '_hot'").fetchall()]


def _indexed_columns(lake: Lake, timeout: float = 10.0, expect: int = 1) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        cursor = lake.query_engine.cursor()
        try:
            found = [sql for (sql,) in cursor.execute("SELECT sql FROM duckdb_indexes() WHERE database_name = '_hot'").fetchall()]
        finally:
            cursor.close()
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_a_held_dataset_looked_up_by_a_column_gets_an_index_with_the_same_answers(workers: Lake) -> None:
    lookup = "SELECT * FROM workers WHERE id = ? AND state <> 'nowhere'"
    before = [workers.query(lookup, [i]).read_all() for i in (17, 4321)]
    assert _held(workers, "workers")
    assert _indexed_columns(workers, timeout=0.2) == []  # looked up while held: not yet twice
    for i, expected in zip((17, 4321), before):
        assert workers.query(lookup, [i]).read_all() == expected
    indexes = _indexed_columns(workers)
    assert len(indexes) == 1 and indexes[0].endswith("(id);")
    assert [workers.query(lookup, [i]).read_all() for i in (17, 4321)] == before
    assert workers.query("SELECT count(*) AS n FROM workers WHERE id = 99999").read_all().to_pylist() == [{"n": 0}]
    # A condition or-ed with others is no lookup; a commit drops the copy and its index with it.
    for _ in range(3):
        workers.query("SELECT * FROM workers WHERE role = 'dev' OR id = 5").read_all()
    assert len(_indexed_columns(workers, timeout=0.2, expect=2)) == 1
    # Nor does a column whose values each match thousands of rows: DuckDB would scan anyway.
    for state in ("IL", "CA", "NY"):
        assert workers.query("SELECT count(*) AS n FROM workers WHERE state = ?", [state]).read_all().num_rows == 1
    assert len(_indexed_columns(workers, timeout=0.3, expect=2)) == 1
    workers.ingest_arrow("workers", pa.table({"id": pa.array([10_000], pa.int64()), "role": ["dev"], "state": ["IL"], "rate": [1.0]}).to_reader(), mode="append")
    assert workers.query(lookup, [10_000]).read_all().num_rows == 1
    assert _indexed_columns(workers, timeout=0.2) == []


def test_in_memory_copies_stay_within_their_budget(workers: Lake) -> None:
    size = workers.manifest("workers").total_bytes
    workers.query_engine.hot.max_bytes = size + workers.manifest("roles").total_bytes - 1  # not both
    for _ in range(2):
        workers.query("SELECT count(*) AS n FROM workers WHERE state = 'IL'").read_all()
    assert _held(workers, "workers")
    for _ in range(2):
        workers.query("SELECT * FROM roles").read_all()
    assert _held(workers, "roles")
    assert list(workers.query_engine.hot._copies) == ["roles"]  # the least recently used went
    assert REGISTRY.get_sample_value("lakehouse_hot_datasets") == 1
    assert REGISTRY.get_sample_value("lakehouse_hot_bytes") == workers.manifest("roles").total_bytes
    assert workers.query("SELECT count(*) AS n FROM workers WHERE state = 'IL'").read_all().to_pylist() == [{"n": 5_000}]
