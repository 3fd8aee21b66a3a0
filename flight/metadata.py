"""Flight SQL metadata results: the lake seen as one catalog with one schema of tables.

The names are DuckDB's (`memory`.`main`), so whatever a client reads here it can also write
in SQL: `memory.main.t`, `main.t` and `t` are the same dataset. Every dataset is a TABLE.
Results use the exact schemas of `flight/sql_schemas.py`; clients reject anything else.
"""

from __future__ import annotations

import re
from importlib import metadata as package_metadata

import pyarrow as pa

from flight import sql_codec as codec
from flight import sql_schemas as schemas
from flight.sql_schemas import SqlInfo
from lakehouse.auth import Identity
from lakehouse.lake import Lake
from lakehouse.statements import CATALOG_NAME, SCHEMA_NAME

TABLE_TYPE = "TABLE"
SERVER_NAME = "lakehouse"


def catalogs() -> pa.Table:
    return pa.Table.from_pylist([{"catalog_name": CATALOG_NAME}], schema=schemas.CATALOGS_SCHEMA)


def db_schemas(cmd: codec.CommandGetDbSchemas) -> pa.Table:
    rows = []
    if _catalog_matches(cmd.catalog) and _like(cmd.db_schema_filter_pattern, SCHEMA_NAME):
        rows.append({"catalog_name": CATALOG_NAME, "db_schema_name": SCHEMA_NAME})
    return pa.Table.from_pylist(rows, schema=schemas.DB_SCHEMAS_SCHEMA)


def tables(lake: Lake, cmd: codec.CommandGetTables, who: Identity) -> pa.Table:
    """The datasets `who` may use, as GetTables rows."""
    schema = schemas.tables_schema(cmd.include_schema)
    rows: list[dict[str, object]] = []
    types_ok = not cmd.table_types or TABLE_TYPE in cmd.table_types
    if types_ok and _catalog_matches(cmd.catalog) and _like(cmd.db_schema_filter_pattern, SCHEMA_NAME):
        for m in lake.datasets():
            if not _like(cmd.table_name_filter_pattern, m.name) or not who.may_use(m.name):
                continue
            row: dict[str, object] = {"catalog_name": CATALOG_NAME, "db_schema_name": SCHEMA_NAME, "table_name": m.name, "table_type": TABLE_TYPE}
            if cmd.include_schema:
                row["table_schema"] = schemas.ipc_schema_bytes(m.schema)
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def table_types() -> pa.Table:
    return pa.Table.from_pylist([{"table_type": TABLE_TYPE}], schema=schemas.TABLE_TYPES_SCHEMA)


def no_keys(schema: pa.Schema) -> pa.Table:
    """Primary and foreign keys: datasets have none."""
    return schema.empty_table()


def sql_info(cmd: codec.CommandGetSqlInfo, statement_timeout_seconds: float) -> pa.Table:
    info: dict[int, object] = {
        SqlInfo.FLIGHT_SQL_SERVER_NAME: SERVER_NAME,
        SqlInfo.FLIGHT_SQL_SERVER_VERSION: package_metadata.version("lakehouse"),
        SqlInfo.FLIGHT_SQL_SERVER_ARROW_VERSION: pa.__version__,
        SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY: False,
        SqlInfo.FLIGHT_SQL_SERVER_SQL: True,
        SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT: False,
        SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION: schemas.SqlSupportedTransaction.NONE,
        SqlInfo.FLIGHT_SQL_SERVER_CANCEL: False,
        SqlInfo.FLIGHT_SQL_SERVER_BULK_INGESTION: True,
        SqlInfo.FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED: False,
        SqlInfo.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: int(statement_timeout_seconds * 1000),
        SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT: 0,
        SqlInfo.SQL_DDL_CATALOG: False,
        SqlInfo.SQL_DDL_SCHEMA: False,
        SqlInfo.SQL_DDL_TABLE: True,
        SqlInfo.SQL_IDENTIFIER_CASE: schemas.SqlSupportedCaseSensitivity.CASE_INSENSITIVE,
        SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR: '"',
        SqlInfo.SQL_QUOTED_IDENTIFIER_CASE: schemas.SqlSupportedCaseSensitivity.CASE_INSENSITIVE,
        SqlInfo.SQL_ALL_TABLES_ARE_SELECTABLE: True,
        SqlInfo.SQL_NULL_ORDERING: schemas.SqlNullOrdering.SORTED_AT_END,
        SqlInfo.SQL_SEARCH_STRING_ESCAPE: "\\",
        SqlInfo.SQL_EXTRA_NAME_CHARACTERS: "",
        SqlInfo.SQL_SUPPORTS_COLUMN_ALIASING: True,
        SqlInfo.SQL_NULL_PLUS_NULL_IS_NULL: True,
        SqlInfo.SQL_SCHEMA_TERM: "schema",
        SqlInfo.SQL_PROCEDURE_TERM: "procedure",
        SqlInfo.SQL_CATALOG_TERM: "catalog",
        SqlInfo.SQL_CATALOG_AT_START: True,
        SqlInfo.SQL_MAX_TABLE_NAME_LENGTH: 128,
        SqlInfo.SQL_TRANSACTIONS_SUPPORTED: False,
    }
    return schemas.sql_info_table(info, cmd.info)


def _catalog_matches(catalog: str | None) -> bool:
    return catalog is None or catalog == CATALOG_NAME


def _like(pattern: str | None, value: str) -> bool:
    """SQL LIKE with `%`, `_` and `\\` escapes, as the Flight SQL filters are defined; case-sensitive."""
    if pattern is None:
        return True
    regex, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None
