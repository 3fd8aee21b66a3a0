"""Flight SQL metadata results: the lake seen as one catalog with one schema of tables.

The names are DuckDB's (`memory`.`main`), so whatever a client reads here it can also write
in SQL: `memory.main.t`, `main.t` and `t` are the same dataset. Every dataset is a TABLE.
Results use the exact schemas of `flight/sql_schemas.py`; clients reject anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata as package_metadata

import pyarrow as pa

from flight import sql_codec as codec
from flight import sql_schemas as schemas
from flight.sql_schemas import SqlInfo
from flight.prepared import MAX_OPEN
from lakehouse.auth import Identity
from lakehouse.lake import Lake
from lakehouse.sandbox import vocabulary
from lakehouse.statements import CATALOG_NAME, MAX_SQL_BYTES, SCHEMA_NAME

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


@dataclass(frozen=True)
class _XdbcType:
    name: str
    data_type: int  # the XdbcDataType value
    size: int | None = None
    quotes: tuple[str, str] | None = None  # literal prefix and suffix
    params: tuple[str, ...] | None = None
    unsigned: bool | None = None  # None: not a number
    scale: tuple[int, int] | None = None
    subcode: int | None = None  # dates and times: the XdbcDatetimeSubcode
    radix: int | None = None


_XDBC_TYPES = [
    _XdbcType("BOOLEAN", -7, 1),
    _XdbcType("TINYINT", -6, 3, unsigned=False, scale=(0, 0), radix=10),
    _XdbcType("BIGINT", -5, 19, unsigned=False, scale=(0, 0), radix=10),
    _XdbcType("BLOB", -3, quotes=("'", "'::BLOB")),
    _XdbcType("DECIMAL", 3, 38, params=("precision", "scale"), unsigned=False, scale=(0, 38), radix=10),
    _XdbcType("INTEGER", 4, 10, unsigned=False, scale=(0, 0), radix=10),
    _XdbcType("SMALLINT", 5, 5, unsigned=False, scale=(0, 0), radix=10),
    _XdbcType("FLOAT", 7, 7, unsigned=False, radix=2),
    _XdbcType("DOUBLE", 8, 15, unsigned=False, radix=2),
    _XdbcType("VARCHAR", 12, quotes=("'", "'")),
    _XdbcType("DATE", 91, 10, quotes=("DATE '", "'"), subcode=1),
    _XdbcType("TIME", 92, 15, quotes=("TIME '", "'"), scale=(0, 6), subcode=2),
    _XdbcType("TIMESTAMP", 93, 26, quotes=("TIMESTAMP '", "'"), scale=(0, 6), subcode=3),
    _XdbcType("TIMESTAMP WITH TIME ZONE", 93, 32, quotes=("TIMESTAMPTZ '", "'"), scale=(0, 6), subcode=5),
]
_DATETIME = 9  # XDBC_DATETIME: the sql_data_type of dates and times, told apart by the subcode
_NULLABLE, _SEARCHABLE = 1, 3  # nullable; searchable with any operator


def xdbc_type_info(cmd: codec.CommandGetXdbcTypeInfo) -> pa.Table:
    """The SQL types the lake stores, as GetXdbcTypeInfo rows, sorted by data type (filtered
    to one when the command names it)."""
    rows = [
        {
            "type_name": t.name,
            "data_type": t.data_type,
            "column_size": t.size,
            "literal_prefix": t.quotes[0] if t.quotes else None,
            "literal_suffix": t.quotes[1] if t.quotes else None,
            "create_params": list(t.params) if t.params else None,
            "nullable": _NULLABLE,
            "case_sensitive": t.name == "VARCHAR",
            "searchable": _SEARCHABLE,
            "unsigned_attribute": t.unsigned,
            "fixed_prec_scale": t.name == "DECIMAL",
            "auto_increment": False if t.unsigned is not None else None,
            "local_type_name": t.name,
            "minimum_scale": t.scale[0] if t.scale else None,
            "maximum_scale": t.scale[1] if t.scale else None,
            "sql_data_type": _DATETIME if t.subcode is not None else t.data_type,
            "datetime_subcode": t.subcode,
            "num_prec_radix": t.radix,
            "interval_precision": None,
        }
        for t in sorted(_XDBC_TYPES, key=lambda t: (t.data_type, t.name))
        if cmd.data_type is None or t.data_type == cmd.data_type
    ]
    return pa.Table.from_pylist(rows, schema=schemas.XDBC_TYPE_INFO_SCHEMA)


def table_types() -> pa.Table:
    return pa.Table.from_pylist([{"table_type": TABLE_TYPE}], schema=schemas.TABLE_TYPES_SCHEMA)


def no_keys(schema: pa.Schema) -> pa.Table:
    """Primary and foreign keys: datasets have none."""
    return schema.empty_table()


def sql_info(cmd: codec.CommandGetSqlInfo, statement_timeout_seconds: float) -> pa.Table:
    """Every SqlInfo the spec defines, answered truthfully for this server over DuckDB."""
    words = vocabulary()
    info: dict[int, object] = {
        SqlInfo.FLIGHT_SQL_SERVER_NAME: SERVER_NAME,
        SqlInfo.FLIGHT_SQL_SERVER_VERSION: package_metadata.version("lakehouse"),
        SqlInfo.FLIGHT_SQL_SERVER_ARROW_VERSION: pa.__version__,
        SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY: False,
        SqlInfo.FLIGHT_SQL_SERVER_SQL: True,
        SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT: False,
        SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION: schemas.SqlSupportedTransaction.NONE,
        SqlInfo.FLIGHT_SQL_SERVER_CANCEL: False,
        SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION: "",
        SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION: "",
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
        SqlInfo.SQL_KEYWORDS: list(words.keywords),
        SqlInfo.SQL_NUMERIC_FUNCTIONS: list(words.numeric_functions),
        SqlInfo.SQL_STRING_FUNCTIONS: list(words.string_functions),
        SqlInfo.SQL_SYSTEM_FUNCTIONS: list(words.system_functions),
        SqlInfo.SQL_DATETIME_FUNCTIONS: list(words.datetime_functions),
        SqlInfo.SQL_SUPPORTS_CONVERT: CONVERSIONS,
        SqlInfo.SQL_SUPPORTS_TABLE_CORRELATION_NAMES: True,
        SqlInfo.SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES: False,
        SqlInfo.SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY: True,
        SqlInfo.SQL_SUPPORTS_ORDER_BY_UNRELATED: True,
        SqlInfo.SQL_SUPPORTED_GROUP_BY: _bits(0, 1),  # unrelated columns, beyond the select list
        SqlInfo.SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE: True,
        SqlInfo.SQL_SUPPORTS_NON_NULLABLE_COLUMNS: True,
        SqlInfo.SQL_SUPPORTED_GRAMMAR: _bits(0, 1, 2),  # minimum, core, extended
        SqlInfo.SQL_ANSI92_SUPPORTED_LEVEL: _bits(0, 1),  # entry, intermediate
        SqlInfo.SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY: False,
        SqlInfo.SQL_OUTER_JOINS_SUPPORT_LEVEL: 2,  # full outer joins
        SqlInfo.SQL_SCHEMA_TERM: "schema",
        SqlInfo.SQL_PROCEDURE_TERM: "procedure",
        SqlInfo.SQL_CATALOG_TERM: "catalog",
        SqlInfo.SQL_CATALOG_AT_START: True,
        SqlInfo.SQL_SCHEMAS_SUPPORTED_ACTIONS: 0,
        SqlInfo.SQL_CATALOGS_SUPPORTED_ACTIONS: 0,
        SqlInfo.SQL_SUPPORTED_POSITIONED_COMMANDS: 0,
        SqlInfo.SQL_SELECT_FOR_UPDATE_SUPPORTED: False,
        SqlInfo.SQL_STORED_PROCEDURES_SUPPORTED: False,
        SqlInfo.SQL_SUPPORTED_SUBQUERIES: _bits(0, 1, 2, 3),  # comparisons, EXISTS, IN, quantified
        SqlInfo.SQL_CORRELATED_SUBQUERIES_SUPPORTED: True,
        SqlInfo.SQL_SUPPORTED_UNIONS: _bits(0, 1),  # UNION, UNION ALL
        **{limit: 0 for limit in _NO_LIMIT},
        SqlInfo.SQL_MAX_ROW_SIZE_INCLUDES_BLOBS: False,
        SqlInfo.SQL_MAX_STATEMENT_LENGTH: MAX_SQL_BYTES,
        SqlInfo.SQL_MAX_STATEMENTS: MAX_OPEN,
        SqlInfo.SQL_MAX_TABLE_NAME_LENGTH: 128,
        SqlInfo.SQL_DEFAULT_TRANSACTION_ISOLATION: 0,  # none: every statement commits on its own
        SqlInfo.SQL_TRANSACTIONS_SUPPORTED: False,
        SqlInfo.SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS: _bits(0),
        SqlInfo.SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT: False,
        SqlInfo.SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED: False,
        SqlInfo.SQL_SUPPORTED_RESULT_SET_TYPES: _bits(1),  # forward only
        SqlInfo.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED: 0,
        SqlInfo.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_FORWARD_ONLY: _bits(1),  # read only
        SqlInfo.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_SENSITIVE: 0,
        SqlInfo.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_INSENSITIVE: 0,
        SqlInfo.SQL_BATCH_UPDATES_SUPPORTED: True,
        SqlInfo.SQL_SAVEPOINTS_SUPPORTED: False,
        SqlInfo.SQL_NAMED_PARAMETERS_SUPPORTED: False,
        SqlInfo.SQL_LOCATORS_UPDATE_COPY: False,
        SqlInfo.SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED: False,
    }
    return schemas.sql_info_table(info, cmd.info)


def _bits(*positions: int) -> int:
    """An int32 bitmask with the enum values at `positions` set, as the spec encodes them."""
    return sum(1 << p for p in positions)


_NO_LIMIT = (
    SqlInfo.SQL_MAX_BINARY_LITERAL_LENGTH, SqlInfo.SQL_MAX_CHAR_LITERAL_LENGTH, SqlInfo.SQL_MAX_COLUMN_NAME_LENGTH,
    SqlInfo.SQL_MAX_COLUMNS_IN_GROUP_BY, SqlInfo.SQL_MAX_COLUMNS_IN_INDEX, SqlInfo.SQL_MAX_COLUMNS_IN_ORDER_BY,
    SqlInfo.SQL_MAX_COLUMNS_IN_SELECT, SqlInfo.SQL_MAX_COLUMNS_IN_TABLE, SqlInfo.SQL_MAX_CONNECTIONS,
    SqlInfo.SQL_MAX_CURSOR_NAME_LENGTH, SqlInfo.SQL_MAX_INDEX_LENGTH, SqlInfo.SQL_DB_SCHEMA_NAME_LENGTH,
    SqlInfo.SQL_MAX_PROCEDURE_NAME_LENGTH, SqlInfo.SQL_MAX_CATALOG_NAME_LENGTH, SqlInfo.SQL_MAX_ROW_SIZE,
    SqlInfo.SQL_MAX_TABLES_IN_SELECT, SqlInfo.SQL_MAX_USERNAME_LENGTH,
)
"""The limits the spec asks about that DuckDB does not have (the spec's 0: none, or not known)."""

# SqlSupportsConvert values: what CAST turns into what (DuckDB casts between all of these).
_NUMBERS = [0, 2, 5, 6, 7, 12, 13, 14, 17]  # BIGINT, BIT, DECIMAL, FLOAT, INTEGER, NUMERIC, REAL, SMALLINT, TINYINT
_TEXT = [3, 11, 19]  # CHAR, LONGVARCHAR, VARCHAR
_TIMES = [4, 15, 16]  # DATE, TIME, TIMESTAMP
_BYTES = [1, 10, 18]  # BINARY, LONGVARBINARY, VARBINARY
CONVERSIONS: dict[int, list[int]] = {
    **{n: _NUMBERS + _TEXT for n in _NUMBERS},
    **{t: _NUMBERS + _TEXT + _TIMES + _BYTES for t in _TEXT},
    **{d: _TEXT + _TIMES for d in _TIMES},
    **{b: _TEXT + _BYTES for b in _BYTES},
}


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
