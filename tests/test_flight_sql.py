"""Flight SQL against a real server, through the ADBC driver, pandas and polars, as users call it."""

from __future__ import annotations

import threading
import time
import warnings
from typing import Iterator

import adbc_driver_flightsql.dbapi as dbapi
import adbc_driver_manager
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flight import sql_codec as codec
from flight import sql_schemas
from tests.test_flight import ServeFactory, Served, put, serve, served, workers  # noqa: F401 (fixtures)


@pytest.fixture
def conn(served: Served) -> Iterator[dbapi.Connection]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the driver warns when the server's answers look wrong
        connection = dbapi.connect(served.uri, autocommit=True)
    yield connection
    connection.close()


@pytest.fixture
def with_workers(served: Served) -> Served:
    put(served.client(), flight.FlightDescriptor.for_path("workers"), workers(1000))
    return served


def rows(conn: dbapi.Connection, sql: str) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


# -- queries ----------------------------------------------------------------------------------


def test_execute_and_fetch_arrow_table(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM workers ORDER BY id")
        assert cur.fetch_arrow_table().equals(workers(1000))


def test_execute_and_fetch_df(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT id, name FROM workers WHERE id < 3 ORDER BY id")
        df = cur.fetch_df()
    assert df.to_dict("list") == {"id": [0, 1, 2], "name": ["w0", "w1", "w2"]}


def test_parameter_bound_query(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM workers WHERE id = ? OR name = ? ORDER BY id", (3, "w7"))
        assert cur.fetchall() == [("w3",), ("w7",)]
        cur.execute("SELECT name FROM workers WHERE id = ? OR name = ? ORDER BY id", (4, "w8"))
        assert cur.fetchall() == [("w4",), ("w8",)]


def test_parameter_bound_insert(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO workers (id, name) VALUES (?, ?)", (4242, "bound"))
        assert cur.rowcount == 1
    assert rows(conn, "SELECT name, rate FROM workers WHERE id = 4242") == [("bound", None)]


def test_flight_info_schema_equals_the_stream_schema_with_nullability(with_workers: Served) -> None:
    schema = pa.schema([pa.field("k", pa.int64(), nullable=False), pa.field("v", pa.string())])
    put(with_workers.client(), flight.FlightDescriptor.for_path("strict"), pa.table({"k": [1, 2], "v": ["a", None]}, schema=schema))
    client = with_workers.client()
    for sql in ["SELECT * FROM strict", "SELECT id * 2 AS d, upper(name) AS n FROM workers", "SELECT count(*) FROM workers"]:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandStatementQuery(sql))))
        got = client.do_get(info.endpoints[0].ticket).read_all()
        assert got.schema == info.schema, sql
        assert [f.nullable for f in got.schema] == [f.nullable for f in info.schema], sql


def test_low_level_statement_query(with_workers: Served, conn: dbapi.Connection) -> None:
    stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
    stmt.set_sql_query("SELECT count(*) AS n FROM workers")
    stream, _ = stmt.execute_query()
    assert pa.RecordBatchReader._import_from_c(stream.address).read_all().to_pylist() == [{"n": 1000}]
    stmt.close()


def test_a_result_of_wide_rows_fits_the_clients_message_limit(served: Served, conn: dbapi.Connection) -> None:
    wide = pa.table({"id": pa.array(range(150_000), pa.int64()), "text": pa.array(["x" * 200] * 150_000)})
    put(served.client(), flight.FlightDescriptor.for_path("wide"), wide)
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM wide ORDER BY id")
        assert cur.fetch_arrow_table().equals(wide)


# -- writes -----------------------------------------------------------------------------------


def test_executemany_appends_every_row_in_one_commit(with_workers: Served, conn: dbapi.Connection) -> None:
    before = with_workers.lake.manifest("workers").version
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO workers VALUES (?, ?, ?, ?)", [(5000 + i, f"n{i}", 1.5, True) for i in range(50)])
        assert cur.rowcount == 50
    assert rows(conn, "SELECT count(*), min(id) FROM workers WHERE id >= 5000") == [(50, 5000)]
    assert with_workers.lake.manifest("workers").version == before + 1


def test_executemany_with_a_query_runs_it_per_row(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE picked AS SELECT id, name FROM workers WHERE false")
        cur.executemany("INSERT INTO picked SELECT id, name FROM workers WHERE id = ?", [(1,), (2,), (3,)])
    assert rows(conn, "SELECT id FROM picked ORDER BY id") == [(1,), (2,), (3,)]


def test_executescript_runs_every_statement(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.executescript(
            "CREATE TABLE a AS SELECT id FROM workers WHERE id < 10;"
            "INSERT INTO a VALUES (100), (101);"
            "CREATE TABLE b (x INTEGER, y VARCHAR);"
            "DROP TABLE b;"
        )
    assert rows(conn, "SELECT count(*), max(id) FROM a") == [(12, 101)]
    assert [m.name for m in with_workers.lake.datasets()] == ["a", "workers"]


def test_doput_update_replies_with_a_raw_doput_update_result(with_workers: Served) -> None:
    descriptor = flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandStatementUpdate("INSERT INTO workers SELECT * FROM workers WHERE id < 7")))
    writer, reader = with_workers.client().do_put(descriptor, pa.schema([]))
    writer.done_writing()
    result = reader.read()
    writer.close()
    assert codec.decode_message(codec.DoPutUpdateResult, result.to_pybytes()) == codec.DoPutUpdateResult(7)


def test_sql_writes_take_effect_without_a_fetch(with_workers: Served) -> None:
    command = codec.encode_any(codec.CommandStatementQuery("CREATE TABLE copy AS SELECT * FROM workers"))
    info = with_workers.client().get_flight_info(flight.FlightDescriptor.for_command(command))
    assert info.total_records == 1000
    assert with_workers.lake.manifest("copy").row_count == 1000
    fetched = with_workers.client().do_get(info.endpoints[0].ticket).read_all()
    assert fetched.to_pylist() == [{"count": 1000}] and fetched.schema == info.schema


def test_an_empty_parameter_batch_does_nothing(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO workers (id) VALUES (?)", pa.table({"0": pa.array([], pa.int64())}))
    assert with_workers.lake.manifest("workers").row_count == 1000


def test_sql_insert_values_and_select_append(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO workers VALUES (2000, 'new', 1, false), (2001, 'newer', 2.5, true)")
        assert cur.rowcount == 2
        cur.execute("INSERT INTO workers (name, id) SELECT name || '!', id + 10000 FROM workers WHERE id < 3")
        assert cur.rowcount == 3
    assert rows(conn, "SELECT id, name, rate, active FROM workers WHERE id >= 2000 ORDER BY id") == [
        (2000, "new", 1.0, False),
        (2001, "newer", 2.5, True),
        (10000, "w0!", None, None),
        (10001, "w1!", None, None),
        (10002, "w2!", None, None),
    ]


def test_sql_create_table_as_and_drop_table(conn: dbapi.Connection, served: Served) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE evens AS SELECT range AS n FROM range(10) WHERE range % 2 = 0")
        assert rows(conn, "SELECT sum(n) FROM evens") == [(20,)]
        cur.execute("CREATE OR REPLACE TABLE evens AS SELECT 1 AS n")
        assert rows(conn, "SELECT count(*) FROM evens") == [(1,)]
        cur.execute("DROP TABLE evens")
        cur.execute("DROP TABLE IF EXISTS evens")
    assert served.lake.datasets() == []


def test_sql_create_table_with_columns_makes_an_empty_dataset(conn: dbapi.Connection, served: Served) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE people (id BIGINT, name VARCHAR, born DATE)")
        cur.execute("INSERT INTO people VALUES (1, 'ada', '1815-12-10')")
    assert served.lake.manifest("people").schema == pa.schema([("id", pa.int64()), ("name", pa.string()), ("born", pa.date32())])
    assert rows(conn, "SELECT id, name, CAST(born AS VARCHAR) FROM people") == [(1, "ada", "1815-12-10")]


def test_sql_delete_without_where_empties_the_table(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM workers")
        assert cur.rowcount == 1000
    assert rows(conn, "SELECT count(*) FROM workers") == [(0,)]
    assert with_workers.lake.manifest("workers").schema == workers(1).schema


# -- bulk ingest ------------------------------------------------------------------------------


def test_adbc_ingest_create_makes_a_dataset(conn: dbapi.Connection, served: Served) -> None:
    with conn.cursor() as cur:
        assert cur.adbc_ingest("workers", workers(100), mode="create") == 100
        with pytest.raises(dbapi.ProgrammingError, match="already exists"):
            cur.adbc_ingest("workers", workers(100), mode="create")
    assert served.lake.manifest("workers").row_count == 100


def test_adbc_ingest_append_adds_rows_to_an_existing_dataset(conn: dbapi.Connection, served: Served) -> None:
    with conn.cursor() as cur:
        with pytest.raises(dbapi.ProgrammingError, match="not found"):
            cur.adbc_ingest("workers", workers(10), mode="append")
        cur.adbc_ingest("workers", workers(10), mode="create")
        assert cur.adbc_ingest("workers", workers(5, 10), mode="append") == 5
    assert rows(conn, "SELECT count(*), max(id) FROM workers") == [(15, 14)]


def test_adbc_ingest_replace_swaps_the_content(conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.adbc_ingest("workers", workers(10), mode="replace")
        cur.adbc_ingest("workers", pa.table({"other": ["x"]}), mode="replace")
    assert rows(conn, "SELECT * FROM workers") == [("x",)]


def test_adbc_ingest_create_append_creates_then_appends(conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.adbc_ingest("workers", workers(10), mode="create_append")
        cur.adbc_ingest("workers", workers(10, 10), mode="create_append")
    assert rows(conn, "SELECT count(DISTINCT id) FROM workers") == [(20,)]


# -- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", ["catalogs", "db_schemas", "tables", "columns", "all"])
def test_adbc_get_objects_at_every_depth(with_workers: Served, conn: dbapi.Connection, depth: str) -> None:
    objects = conn.adbc_get_objects(depth=depth).read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["memory"]
    schemas = objects[0]["catalog_db_schemas"]
    if depth == "catalogs":
        assert not schemas
        return
    assert [s["db_schema_name"] for s in schemas] == ["main"]
    tables = schemas[0]["db_schema_tables"]
    if depth == "db_schemas":
        assert not tables
        return
    assert [(t["table_name"], t["table_type"]) for t in tables] == [("workers", "TABLE")]
    columns = tables[0]["table_columns"]
    if depth == "tables":
        assert not columns
        return
    assert [(c["column_name"], c["ordinal_position"]) for c in columns] == [("id", 1), ("name", 2), ("rate", 3), ("active", 4)]


def test_adbc_get_objects_filters_by_table_name(with_workers: Served, conn: dbapi.Connection) -> None:
    put(with_workers.client(), flight.FlightDescriptor.for_path("other"), workers(1))
    objects = conn.adbc_get_objects(depth="tables", table_name_filter="work%").read_all().to_pylist()
    assert [t["table_name"] for t in objects[0]["catalog_db_schemas"][0]["db_schema_tables"]] == ["workers"]


def test_adbc_get_table_schema(with_workers: Served, conn: dbapi.Connection) -> None:
    assert conn.adbc_get_table_schema("workers") == workers(1).schema
    with pytest.raises(dbapi.ProgrammingError):
        conn.adbc_get_table_schema("nope")


def test_adbc_get_info(conn: dbapi.Connection) -> None:
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "lakehouse"
    assert info["vendor_version"] == "0.1.0"
    assert info["vendor_arrow_version"] == pa.__version__


def test_adbc_get_table_types(conn: dbapi.Connection) -> None:
    assert conn.adbc_get_table_types() == ["TABLE"]


@pytest.mark.parametrize(
    "command,schema",
    [
        (codec.CommandGetCatalogs(), sql_schemas.CATALOGS_SCHEMA),
        (codec.CommandGetDbSchemas(), sql_schemas.DB_SCHEMAS_SCHEMA),
        (codec.CommandGetTables(), sql_schemas.TABLES_SCHEMA),
        (codec.CommandGetTables(include_schema=True), sql_schemas.TABLES_SCHEMA_WITH_TABLE_SCHEMA),
        (codec.CommandGetTableTypes(), sql_schemas.TABLE_TYPES_SCHEMA),
        (codec.CommandGetSqlInfo(), sql_schemas.SQL_INFO_SCHEMA),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, pa.Schema) else "",
)
def test_metadata_results_have_exactly_the_spec_schemas(with_workers: Served, command: codec.Message, schema: pa.Schema) -> None:
    client = with_workers.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(codec.encode_any(command)))
    got = client.do_get(info.endpoints[0].ticket).read_all()
    assert info.schema.equals(schema) and got.schema.equals(schema)
    assert got.num_rows == info.total_records > 0


def test_sql_info_answers_what_clients_ask(served: Served) -> None:
    client = served.client()
    wanted = [sql_schemas.SqlInfo.FLIGHT_SQL_SERVER_NAME, sql_schemas.SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY, sql_schemas.SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION]
    info = client.get_flight_info(flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandGetSqlInfo(list(wanted)))))
    got = client.do_get(info.endpoints[0].ticket).read_all().to_pylist()
    assert [(r["info_name"], r["value"]) for r in got] == [(0, "lakehouse"), (3, False), (8, 0)]


# -- pandas and polars ------------------------------------------------------------------------


def test_pandas_read_sql(with_workers: Served, conn: dbapi.Connection) -> None:
    df = pd.read_sql("SELECT id, rate FROM workers WHERE id < 4 ORDER BY id", conn)
    assert df.to_dict("list") == {"id": [0, 1, 2, 3], "rate": [0.0, 0.25, 0.5, 0.75]}


def test_pandas_read_sql_of_a_table_name(with_workers: Served, conn: dbapi.Connection) -> None:
    assert len(pd.read_sql("workers", conn)) == 1000


def test_pandas_to_sql_replace(with_workers: Served, conn: dbapi.Connection) -> None:
    df = pd.DataFrame({"city": ["Oslo", "Lima"], "pop": [709_000, 10_000_000]})
    assert df.to_sql("workers", conn, if_exists="replace", index=False) == 2
    assert pd.read_sql("SELECT * FROM workers ORDER BY city", conn).to_dict("list") == {"city": ["Lima", "Oslo"], "pop": [10_000_000, 709_000]}


def test_pandas_to_sql_append(conn: dbapi.Connection, served: Served) -> None:
    df = pd.DataFrame({"city": ["Oslo"], "pop": [709_000]})
    df.to_sql("cities", conn, if_exists="append", index=False)
    df.to_sql("cities", conn, if_exists="append", index=False)
    assert served.lake.manifest("cities").row_count == 2


def test_pandas_to_sql_delete_rows(conn: dbapi.Connection, served: Served) -> None:
    pd.DataFrame({"n": [1, 2, 3]}).to_sql("numbers", conn, index=False)
    pd.DataFrame({"n": [9]}).to_sql("numbers", conn, if_exists="delete_rows", index=False)
    assert pd.read_sql("SELECT n FROM numbers", conn)["n"].tolist() == [9]


def test_polars_read_database(with_workers: Served, conn: dbapi.Connection) -> None:
    df = pl.read_database("SELECT id, name FROM workers WHERE id < 2 ORDER BY id", conn)
    assert df.to_dict(as_series=False) == {"id": [0, 1], "name": ["w0", "w1"]}


def test_polars_write_database_creates_and_appends(conn: dbapi.Connection, served: Served) -> None:
    df = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert df.write_database("letters", conn, engine="adbc") == 3
    assert df.write_database("letters", conn, if_table_exists="append", engine="adbc") == 3
    assert df.write_database("fresh", conn, if_table_exists="append", engine="adbc") == 3
    assert pl.read_database("SELECT b, count(*) AS n FROM letters GROUP BY b ORDER BY b", conn).to_dict(as_series=False) == {"b": ["x", "y", "z"], "n": [2, 2, 2]}
    assert served.lake.manifest("fresh").row_count == 3


def test_polars_write_database_replaces(conn: dbapi.Connection) -> None:
    pl.DataFrame({"a": [1, 2, 3]}).write_database("letters", conn, engine="adbc")
    pl.DataFrame({"z": ["only"]}).write_database("letters", conn, if_table_exists="replace", engine="adbc")
    assert pl.read_database("SELECT * FROM letters", conn).to_dict(as_series=False) == {"z": ["only"]}


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,message",
    [
        ("SELEKT 1", "syntax error"),
        ("SELECT * FROM nope", "nope does not exist"),
        ("SELECT * FROM read_csv('/etc/passwd')", "sandbox"),
        ("UPDATE workers SET rate = 0", "UPDATE statements are not supported"),
        ("DELETE FROM workers WHERE id = 1", "WHERE clause is not supported"),
        ("INSERT INTO nope VALUES (1)", "not found"),
        ("INSERT INTO workers VALUES ('x', 'y', 'z', 'w')", "cannot store"),
        ("EXPLAIN ANALYZE CREATE OR REPLACE VIEW workers AS SELECT 1 AS id", "EXPLAIN is accepted for read queries only"),
    ],
    ids=["bad SQL", "unknown table", "sandbox refusal", "update", "delete where", "insert unknown table", "insert bad type", "explain analyze write"],
)
def test_user_errors_raise_programming_error_with_the_message(with_workers: Served, conn: dbapi.Connection, sql: str, message: str) -> None:
    with conn.cursor() as cur, pytest.raises(dbapi.ProgrammingError, match=message):
        cur.execute(sql)
    assert rows(conn, "SELECT count(*) FROM workers") == [(1000,)]
    assert with_workers.lake.manifest("workers").row_count == 1000


# -- prepared statements ----------------------------------------------------------------------


def prepare(client: flight.FlightClient, sql: str) -> bytes:
    body = codec.encode_any(codec.ActionCreatePreparedStatementRequest(sql))
    result = list(client.do_action(flight.Action(codec.ACTION_CREATE_PREPARED_STATEMENT, body)))[0]
    _, value = codec.decode_any(result.body.to_pybytes())
    return codec.decode_message(codec.ActionCreatePreparedStatementResult, value).prepared_statement_handle


def test_closed_prepared_statements_are_forgotten(served: Served) -> None:
    client = served.client()
    handle = prepare(client, "SELECT 1")
    descriptor = flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandPreparedStatementQuery(handle)))
    assert client.get_flight_info(descriptor).schema.names == ["1"]
    close = codec.encode_any(codec.ActionClosePreparedStatementRequest(handle))
    list(client.do_action(flight.Action(codec.ACTION_CLOSE_PREPARED_STATEMENT, close)))
    with pytest.raises(KeyError, match="unknown or expired prepared statement"):
        client.get_flight_info(descriptor)


def test_abandoned_prepared_statements_expire_after_the_timeout(serve: ServeFactory) -> None:
    served = serve(statement_timeout=0.5)
    client = served.client()
    handle = prepare(client, "SELECT 1")
    descriptor = flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandPreparedStatementQuery(handle)))
    client.get_flight_info(descriptor)
    time.sleep(1.0)
    with pytest.raises(KeyError, match="unknown or expired prepared statement"):
        client.get_flight_info(descriptor)


# -- concurrency ------------------------------------------------------------------------------


def test_readers_and_a_writer_at_once_see_only_whole_commits(serve: ServeFactory) -> None:
    served = serve(row_group_rows=1_000, max_object_bytes=16 * 1024)
    batch = 5_000  # each commit adds 5,000 rows in several objects
    put(served.client(), flight.FlightDescriptor.for_path("workers"), workers(batch))
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def read() -> None:
        try:
            with dbapi.connect(served.uri, autocommit=True) as connection:
                last = 0
                for _ in range(500):
                    if stop.is_set():
                        return
                    (n, s), = rows(connection, "SELECT count(*), sum(id) FROM workers")
                    assert n % batch == 0 and n >= last, n  # never part of a commit, never going back
                    assert s == n * (n - 1) // 2
                    seen.append(n)
                    last = n
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def write() -> None:
        try:
            client = served.client()
            for i in range(1, 40):
                if stop.is_set():
                    return
                put(client, flight.FlightDescriptor.for_path("workers", "append"), workers(batch, i * batch), chunk=700)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    time.sleep(4.0)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(set(seen)) > 1, "the readers never saw the writer's commits"


def test_prepared_statements_describe_their_parameters(served: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        cur.adbc_ingest("typed", pa.table({"id": pa.array([1, 2], pa.int64()), "price": pa.array([1.5, 2.5]).cast(pa.decimal128(10, 2)), "name": ["a", "b"]}), mode="create")
        assert cur.adbc_prepare("SELECT name FROM typed WHERE id = ? AND price < ?") == pa.schema([("1", pa.int64()), ("2", pa.decimal128(10, 2))])
        assert cur.adbc_prepare("INSERT INTO typed (name, id) VALUES (?, ?)").types == [pa.string(), pa.int64()]
        assert cur.adbc_prepare("SELECT ? AS anything").types == [pa.string()]


@pytest.mark.slow
def test_jdbc_prepared_statements_select_insert_and_batch(served: Served, conn: dbapi.Connection) -> None:
    from scripts import jdbc

    with conn.cursor() as cur:
        cur.adbc_ingest("grid", pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["one", "two"]}), mode="create")
    port = served.uri.rsplit(":", 1)[1]
    done = jdbc.run("Prepared", f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false", "grid")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:3] == ["selected two", "inserted 1", "batched 3"]
    assert rows(conn, "SELECT id, name FROM grid ORDER BY id") == [(1, "one"), (2, "two"), (10, "ten"), (11, "batch11"), (12, "batch12"), (13, "batch13")]


@pytest.mark.slow
def test_jdbc_browses_like_a_database_tool(with_workers: Served) -> None:
    """Every no-argument DatabaseMetaData method answers (tools call them all on connect)."""
    from scripts import jdbc

    port = with_workers.uri.rsplit(":", 1)[1]
    done = jdbc.run("Browse", f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false", "workers")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("FAILED")] == []
    found = dict(line.split(" ", 1) for line in lines)
    assert int(found["methods"]) > 100 and found["tables"] == "1" and found["columns"] == "4" and int(found["keywords"]) > 100
    assert "types" in found  # the 18.3 driver answers getTypeInfo itself, without asking the server


def test_get_xdbc_type_info_lists_the_stored_types_and_filters(served: Served) -> None:
    client = served.client()

    def fetch(data_type: int | None) -> pa.Table:
        command = codec.encode_any(codec.CommandGetXdbcTypeInfo(data_type))
        info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
        return client.do_get(info.endpoints[0].ticket).read_all()

    every = fetch(None)
    assert every.schema.equals(sql_schemas.XDBC_TYPE_INFO_SCHEMA)
    assert {"BIGINT", "VARCHAR", "DECIMAL", "TIMESTAMP WITH TIME ZONE"} <= set(every.column("type_name").to_pylist())
    assert every.column("data_type").to_pylist() == sorted(every.column("data_type").to_pylist())
    assert fetch(12).column("type_name").to_pylist() == ["VARCHAR"]


def test_get_sql_info_answers_every_id_of_the_spec(served: Served) -> None:
    from flight.sql_schemas import SqlInfo

    command = codec.encode_any(codec.CommandGetSqlInfo([]))
    client = served.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert set(table.column("info_name").to_pylist()) == {int(i) for i in SqlInfo}


@pytest.mark.slow
def test_jdbc_result_metadata_and_every_stored_type(served: Served) -> None:
    from scripts import jdbc

    every_type = pa.table(
        {
            "i8": pa.array([1], pa.int8()), "i16": pa.array([2], pa.int16()), "i32": pa.array([3], pa.int32()), "i64": pa.array([4], pa.int64()),
            "f32": pa.array([1.5], pa.float32()), "f64": pa.array([2.5], pa.float64()), "flag": [True],
            "price": pa.array([12.34]).cast(pa.decimal128(10, 2)), "name": ["ada"], "blob": [b"\x01\x02"],
            "day": pa.array([19_000], pa.date32()), "at": pa.array([1_700_000_000_000_000], pa.timestamp("us", tz="UTC")),
            "naive": pa.array([1_700_000_000_000_000], pa.timestamp("us")),
        }
    )
    put(served.client(), flight.FlightDescriptor.for_path("typed"), every_type)
    port = served.uri.rsplit(":", 1)[1]
    done = jdbc.run_query(f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false", "SELECT * FROM typed")
    assert done.returncode == 0, done.stderr[-3000:]
    columns = jdbc.columns(done)
    assert columns["price"][1:] == ["10", "2", "typed"]
    assert columns["i64"][1:] == ["19", "0", "typed"] and columns["name"][0] == "VARCHAR"
    row = jdbc.rows(done)[0]
    assert row[:9] == ["1", "2", "3", "4", "1.5", "2.5", "true", "12.34", "ada"] and row[10] == "2022-01-08"
    computed = jdbc.run_query(f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false", "SELECT count(*) AS n FROM typed")
    assert jdbc.columns(computed)["n"] == ["BIGINT", "19", "0", "null"]  # computed: no source table


@pytest.mark.slow
def test_the_go_client_reads_the_type_catalogue(served: Served) -> None:
    from scripts import go_client

    done = go_client.xdbc_types(served.uri.removeprefix("grpc://"))
    assert done.returncode == 0, done.stderr[-2000:]
    types = dict(line.split("\t") for line in done.stdout.splitlines())
    assert types["BIGINT"] == "-5" and types["VARCHAR"] == "12" and types["DECIMAL"] == "3"


@pytest.mark.parametrize("action", [codec.ACTION_CANCEL_FLIGHT_INFO, codec.ACTION_CANCEL_QUERY])
def test_cancel_flight_info_stops_the_running_query(served: Served, action: str) -> None:
    runaway = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b"
    client = served.client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandStatementQuery(runaway))))
    failures: list[BaseException] = []

    def fetch() -> None:
        try:
            served.client().do_get(info.endpoints[0].ticket).read_all()
        except BaseException as exc:  # the cancellation
            failures.append(exc)

    fetching = threading.Thread(target=fetch)
    fetching.start()
    watchdog = served.lake.query_engine.watchdog
    deadline = time.monotonic() + 10
    while watchdog.running == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    if action == codec.ACTION_CANCEL_FLIGHT_INFO:
        body = codec.encode_message(codec.CancelFlightInfoRequest(info.serialize()))
        answer = next(iter(client.do_action(flight.Action(action, body)))).body.to_pybytes()
        status = codec.decode_message(codec.CancelFlightInfoResult, answer).status
    else:
        body = codec.encode_any(codec.ActionCancelQueryRequest(info.serialize()))
        answer = next(iter(client.do_action(flight.Action(action, body)))).body.to_pybytes()
        status = codec.decode_message(codec.ActionCancelQueryResult, codec.decode_any(answer)[1]).result
    cancelled = time.monotonic()
    assert status == codec.CancelStatus.CANCELLED
    fetching.join(10)
    assert watchdog.running == 0 and time.monotonic() - cancelled < 1.5
    assert failures and "cancel" in str(failures[0]).lower()


def test_dense_union_parameters_bind_to_typed_columns(with_workers: Served) -> None:
    """flightsql-dbapi binds executemany rows as dense unions; the lake stores their values."""
    handle = next(iter(with_workers.client().do_action(flight.Action(codec.ACTION_CREATE_PREPARED_STATEMENT, codec.encode_any(codec.ActionCreatePreparedStatementRequest("INSERT INTO workers (id, name) VALUES (?, ?)"))))))
    prepared = codec.decode_message(codec.ActionCreatePreparedStatementResult, codec.decode_any(handle.body.to_pybytes())[1])
    union = pa.dense_union([pa.field("int64", pa.int64()), pa.field("string", pa.string())])

    def column(values: list[object]) -> pa.Array:
        codes = [0 if isinstance(v, int) else 1 for v in values]
        offsets = [sum(1 for c in codes[:i] if c == code) for i, code in enumerate(codes)]
        ints, strings = [v for v in values if isinstance(v, int)], [v for v in values if isinstance(v, str)]
        return pa.UnionArray.from_dense(pa.array(codes, pa.int8()), pa.array(offsets, pa.int32()), [pa.array(ints, pa.int64()), pa.array(strings, pa.string())], ["int64", "string"])

    params = pa.table({"0": column([5001, 5002]), "1": column(["u1", "u2"])})
    assert params.schema.field("0").type == union
    descriptor = flight.FlightDescriptor.for_command(codec.encode_any(codec.CommandPreparedStatementUpdate(prepared.prepared_statement_handle)))
    writer, reader = with_workers.client().do_put(descriptor, params.schema)
    writer.write_table(params)
    writer.done_writing()
    assert codec.decode_message(codec.DoPutUpdateResult, reader.read().to_pybytes()).record_count == 2
    writer.close()
    got = with_workers.lake.query("SELECT id, name FROM workers WHERE id > 5000 ORDER BY id").read_all().to_pylist()
    assert got == [{"id": 5001, "name": "u1"}, {"id": 5002, "name": "u2"}]


@pytest.mark.slow
def test_jdbc_execute_update_creates_inserts_and_drops(served: Served) -> None:
    from scripts import jdbc

    port = served.uri.rsplit(":", 1)[1]
    done = jdbc.run(
        "Update",
        f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false",
        "CREATE TABLE made (id BIGINT, name VARCHAR)",
        "INSERT INTO made VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE copied AS SELECT * FROM made",
        "DROP TABLE made",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[1] == "2"
    assert served.lake.catalog.find("made") is None and served.lake.manifest("copied").row_count == 2


def test_adbc_execute_partitions(with_workers: Served, conn: dbapi.Connection) -> None:
    with conn.cursor() as cur:
        partitions, schema = cur.adbc_execute_partitions("SELECT id FROM workers WHERE id < 10")
        assert schema.names == ["id"] and len(partitions) == 1
        cur.adbc_read_partition(partitions[0])
        assert cur.fetch_arrow_table().num_rows == 10
