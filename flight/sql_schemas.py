"""Arrow schemas of the Flight SQL metadata results, and the GetSqlInfo table builder.

The shapes come from the comments in the public spec (``format/FlightSql.proto``), with
the field-level details (union child nullability, list child names, column order of
GetPrimaryKeys) taken from the reference implementations (Arrow C++ ``SqlSchema``, Go
``flightsql/schema_ref``), because that is what clients check against. The ADBC Flight
SQL driver, for one, rejects a GetCatalogs / GetDbSchemas / GetTables answer whose
schema is not *equal* (names, types, nullability) to the Go reference, and on connect
reads GetSqlInfo's union by child position, so "close enough" is not.

Where the spec comment and the references disagree, the references win, noted below:

* GetSqlInfo: the spec comment leaves the union members without "not null"; both
  references declare ``value`` and every union member non-nullable, and name list
  children ``item`` (the comment says ``string_data`` / ``$data$``).
* GetPrimaryKeys: the comment lists ``key_name`` before ``key_sequence``; both
  references put ``key_sequence`` first.
"""

from __future__ import annotations

import enum
from typing import Mapping, Sequence

import pyarrow as pa

__all__ = [
    "CATALOGS_SCHEMA",
    "DB_SCHEMAS_SCHEMA",
    "TABLES_SCHEMA",
    "TABLES_SCHEMA_WITH_TABLE_SCHEMA",
    "TABLE_TYPES_SCHEMA",
    "PRIMARY_KEYS_SCHEMA",
    "KEYS_SCHEMA",
    "XDBC_TYPE_INFO_SCHEMA",
    "SQL_INFO_VALUE_TYPE",
    "SQL_INFO_SCHEMA",
    "SqlInfoValueCode",
    "SqlInfo",
    "INT32_SQL_INFO",
    "SqlSupportedTransaction",
    "SqlSupportedCaseSensitivity",
    "SqlNullOrdering",
    "tables_schema",
    "ipc_schema_bytes",
    "sql_info_table",
]


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


_utf8 = pa.utf8()

# --------------------------------------------------------------------------------------
# Catalog metadata results
# --------------------------------------------------------------------------------------

CATALOGS_SCHEMA = pa.schema([_f("catalog_name", _utf8, False)])

DB_SCHEMAS_SCHEMA = pa.schema([
    _f("catalog_name", _utf8),
    _f("db_schema_name", _utf8, False),
])

TABLES_SCHEMA = pa.schema([
    _f("catalog_name", _utf8),
    _f("db_schema_name", _utf8),
    _f("table_name", _utf8, False),
    _f("table_type", _utf8, False),
])

# ``table_schema`` holds each table's Arrow schema as an IPC message (see ipc_schema_bytes).
TABLES_SCHEMA_WITH_TABLE_SCHEMA = TABLES_SCHEMA.append(_f("table_schema", pa.binary(), False))

TABLE_TYPES_SCHEMA = pa.schema([_f("table_type", _utf8, False)])

PRIMARY_KEYS_SCHEMA = pa.schema([
    _f("catalog_name", _utf8),
    _f("db_schema_name", _utf8),
    _f("table_name", _utf8, False),
    _f("column_name", _utf8, False),
    _f("key_sequence", pa.int32(), False),  # references' order; the spec comment lists key_name first
    _f("key_name", _utf8),
])

# Shared by GetExportedKeys, GetImportedKeys and GetCrossReference.
KEYS_SCHEMA = pa.schema([
    _f("pk_catalog_name", _utf8),
    _f("pk_db_schema_name", _utf8),
    _f("pk_table_name", _utf8, False),
    _f("pk_column_name", _utf8, False),
    _f("fk_catalog_name", _utf8),
    _f("fk_db_schema_name", _utf8),
    _f("fk_table_name", _utf8, False),
    _f("fk_column_name", _utf8, False),
    _f("key_sequence", pa.int32(), False),
    _f("fk_key_name", _utf8),
    _f("pk_key_name", _utf8),
    _f("update_rule", pa.uint8(), False),
    _f("delete_rule", pa.uint8(), False),
])

XDBC_TYPE_INFO_SCHEMA = pa.schema([
    _f("type_name", _utf8, False),
    _f("data_type", pa.int32(), False),
    _f("column_size", pa.int32()),
    _f("literal_prefix", _utf8),
    _f("literal_suffix", _utf8),
    _f("create_params", pa.list_(_f("item", _utf8, False))),
    _f("nullable", pa.int32(), False),
    _f("case_sensitive", pa.bool_(), False),
    _f("searchable", pa.int32(), False),
    _f("unsigned_attribute", pa.bool_()),
    _f("fixed_prec_scale", pa.bool_(), False),
    _f("auto_increment", pa.bool_()),
    _f("local_type_name", _utf8),
    _f("minimum_scale", pa.int32()),
    _f("maximum_scale", pa.int32()),
    _f("sql_data_type", pa.int32(), False),
    _f("datetime_subcode", pa.int32()),
    _f("num_prec_radix", pa.int32()),
    _f("interval_precision", pa.int32()),
])


def tables_schema(include_schema: bool) -> pa.Schema:
    """The GetTables result schema for ``CommandGetTables.include_schema``."""
    return TABLES_SCHEMA_WITH_TABLE_SCHEMA if include_schema else TABLES_SCHEMA


def ipc_schema_bytes(schema: pa.Schema) -> bytes:
    """An Arrow schema as the IPC-encapsulated message Flight SQL puts in ``bytes`` fields
    (GetTables ``table_schema``, ``ActionCreatePreparedStatementResult`` schemas)."""
    return schema.serialize().to_pybytes()


# --------------------------------------------------------------------------------------
# GetSqlInfo
# --------------------------------------------------------------------------------------


class SqlInfoValueCode(enum.IntEnum):
    """Type codes of the GetSqlInfo ``value`` union; each equals its child's position."""

    STRING_VALUE = 0
    BOOL_VALUE = 1
    BIGINT_VALUE = 2
    INT32_BITMASK = 3
    STRING_LIST = 4
    INT32_TO_INT32_LIST_MAP = 5


_INT32_LIST_MAP = pa.map_(pa.int32(), pa.list_(pa.int32()))

SQL_INFO_VALUE_TYPE = pa.dense_union(
    [
        _f("string_value", _utf8, False),
        _f("bool_value", pa.bool_(), False),
        _f("bigint_value", pa.int64(), False),
        _f("int32_bitmask", pa.int32(), False),
        _f("string_list", pa.list_(_utf8), False),
        _f("int32_to_int32_list_map", _INT32_LIST_MAP, False),
    ],
    type_codes=[int(c) for c in SqlInfoValueCode],
)

SQL_INFO_SCHEMA = pa.schema([
    _f("info_name", pa.uint32(), False),
    _f("value", SQL_INFO_VALUE_TYPE, False),
])


class SqlInfo(enum.IntEnum):
    """Every ``SqlInfo`` id the spec defines (its ``SqlInfo`` enum); the server answers them all."""

    # Server information: [0, 500)
    FLIGHT_SQL_SERVER_NAME = 0  # str
    FLIGHT_SQL_SERVER_VERSION = 1  # str
    FLIGHT_SQL_SERVER_ARROW_VERSION = 2  # str
    FLIGHT_SQL_SERVER_READ_ONLY = 3  # bool
    FLIGHT_SQL_SERVER_SQL = 4  # bool
    FLIGHT_SQL_SERVER_SUBSTRAIT = 5  # bool
    FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION = 6  # str
    FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION = 7  # str
    FLIGHT_SQL_SERVER_TRANSACTION = 8  # int32, a SqlSupportedTransaction
    FLIGHT_SQL_SERVER_CANCEL = 9  # bool
    FLIGHT_SQL_SERVER_BULK_INGESTION = 10  # bool
    FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED = 11  # bool
    FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT = 100  # int32, milliseconds, 0 = none
    FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT = 101  # int32, milliseconds, 0 = none
    # SQL syntax information: [500, 1000)
    SQL_DDL_CATALOG = 500  # bool
    SQL_DDL_SCHEMA = 501  # bool
    SQL_DDL_TABLE = 502  # bool
    SQL_IDENTIFIER_CASE = 503  # int32, a SqlSupportedCaseSensitivity
    SQL_IDENTIFIER_QUOTE_CHAR = 504  # str
    SQL_QUOTED_IDENTIFIER_CASE = 505  # int32, a SqlSupportedCaseSensitivity
    SQL_ALL_TABLES_ARE_SELECTABLE = 506  # bool
    SQL_NULL_ORDERING = 507  # int32, a SqlNullOrdering
    SQL_KEYWORDS = 508  # list[str]
    SQL_NUMERIC_FUNCTIONS = 509  # list[str]
    SQL_STRING_FUNCTIONS = 510  # list[str]
    SQL_SYSTEM_FUNCTIONS = 511  # list[str]
    SQL_DATETIME_FUNCTIONS = 512  # list[str]
    SQL_SEARCH_STRING_ESCAPE = 513  # str
    SQL_EXTRA_NAME_CHARACTERS = 514  # str
    SQL_SUPPORTS_COLUMN_ALIASING = 515  # bool
    SQL_NULL_PLUS_NULL_IS_NULL = 516  # bool
    SQL_SUPPORTS_CONVERT = 517  # dict[int, list[int]]
    SQL_SUPPORTS_TABLE_CORRELATION_NAMES = 518  # bool
    SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES = 519  # bool
    SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY = 520  # bool
    SQL_SUPPORTS_ORDER_BY_UNRELATED = 521  # bool
    SQL_SUPPORTED_GROUP_BY = 522  # int32 bitmask of SqlSupportedGroupBy
    SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE = 523  # bool
    SQL_SUPPORTS_NON_NULLABLE_COLUMNS = 524  # bool
    SQL_SUPPORTED_GRAMMAR = 525  # int32 bitmask of SupportedSqlGrammar
    SQL_ANSI92_SUPPORTED_LEVEL = 526  # int32 bitmask of SupportedAnsi92SqlGrammarLevel
    SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY = 527  # bool
    SQL_OUTER_JOINS_SUPPORT_LEVEL = 528  # int32, a SqlOuterJoinsSupportLevel
    SQL_SCHEMA_TERM = 529  # str
    SQL_PROCEDURE_TERM = 530  # str
    SQL_CATALOG_TERM = 531  # str
    SQL_CATALOG_AT_START = 532  # bool
    SQL_SCHEMAS_SUPPORTED_ACTIONS = 533  # int32 bitmask of SqlSupportedElementActions
    SQL_CATALOGS_SUPPORTED_ACTIONS = 534  # int32 bitmask of SqlSupportedElementActions
    SQL_SUPPORTED_POSITIONED_COMMANDS = 535  # int32 bitmask
    SQL_SELECT_FOR_UPDATE_SUPPORTED = 536  # bool
    SQL_STORED_PROCEDURES_SUPPORTED = 537  # bool
    SQL_SUPPORTED_SUBQUERIES = 538  # int32 bitmask of SqlSupportedSubqueries
    SQL_CORRELATED_SUBQUERIES_SUPPORTED = 539  # bool
    SQL_SUPPORTED_UNIONS = 540  # int32 bitmask of SqlSupportedUnions
    SQL_MAX_BINARY_LITERAL_LENGTH = 541  # int64 (here and below, 0 = no limit or unknown)
    SQL_MAX_CHAR_LITERAL_LENGTH = 542
    SQL_MAX_COLUMN_NAME_LENGTH = 543
    SQL_MAX_COLUMNS_IN_GROUP_BY = 544
    SQL_MAX_COLUMNS_IN_INDEX = 545
    SQL_MAX_COLUMNS_IN_ORDER_BY = 546
    SQL_MAX_COLUMNS_IN_SELECT = 547
    SQL_MAX_COLUMNS_IN_TABLE = 548
    SQL_MAX_CONNECTIONS = 549
    SQL_MAX_CURSOR_NAME_LENGTH = 550
    SQL_MAX_INDEX_LENGTH = 551
    SQL_DB_SCHEMA_NAME_LENGTH = 552
    SQL_MAX_PROCEDURE_NAME_LENGTH = 553
    SQL_MAX_CATALOG_NAME_LENGTH = 554
    SQL_MAX_ROW_SIZE = 555
    SQL_MAX_ROW_SIZE_INCLUDES_BLOBS = 556  # bool
    SQL_MAX_STATEMENT_LENGTH = 557
    SQL_MAX_STATEMENTS = 558
    SQL_MAX_TABLE_NAME_LENGTH = 559
    SQL_MAX_TABLES_IN_SELECT = 560
    SQL_MAX_USERNAME_LENGTH = 561
    SQL_DEFAULT_TRANSACTION_ISOLATION = 562  # int32, an SqlTransactionIsolationLevel
    SQL_TRANSACTIONS_SUPPORTED = 563  # bool
    SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS = 564  # int32 bitmask of SqlTransactionIsolationLevel
    SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT = 565  # bool
    SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED = 566  # bool
    SQL_SUPPORTED_RESULT_SET_TYPES = 567  # int32 bitmask of SqlSupportedResultSetType
    SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED = 568  # int32 bitmask
    SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_FORWARD_ONLY = 569  # int32 bitmask
    SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_SENSITIVE = 570  # int32 bitmask
    SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_INSENSITIVE = 571  # int32 bitmask
    SQL_BATCH_UPDATES_SUPPORTED = 572  # bool
    SQL_SAVEPOINTS_SUPPORTED = 573  # bool
    SQL_NAMED_PARAMETERS_SUPPORTED = 574  # bool
    SQL_LOCATORS_UPDATE_COPY = 575  # bool
    SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED = 576  # bool


# Every SqlInfo id the spec defines as int32 (ordinal or bitmask): these go in the
# ``int32_bitmask`` member; any other int goes in ``bigint_value``. The ADBC driver reads
# FLIGHT_SQL_SERVER_TRANSACTION from the int32 member and ignores it anywhere else. One
# exception to the spec: SQL_DEFAULT_TRANSACTION_ISOLATION (562) travels as int64, because
# the JDBC driver (18.3) reads it as a long and fails on an int32.
INT32_SQL_INFO: frozenset[int] = frozenset({
    8, 100, 101,  # transaction support, statement / transaction timeouts
    503, 505, 507,  # identifier cases, null ordering
    522, 525, 526, 528,  # GROUP BY, grammar, ANSI92 level, outer joins
    533, 534, 535, 538, 540,  # schema / catalog actions, positioned commands, subqueries, unions
    564,  # supported isolation levels
    567, 568, 569, 570, 571,  # result set types and concurrencies
})


class SqlSupportedTransaction(enum.IntEnum):
    """Values of FLIGHT_SQL_SERVER_TRANSACTION."""

    NONE = 0
    TRANSACTION = 1
    SAVEPOINT = 2


class SqlSupportedCaseSensitivity(enum.IntEnum):
    """Values of SQL_IDENTIFIER_CASE and SQL_QUOTED_IDENTIFIER_CASE."""

    UNKNOWN = 0
    CASE_INSENSITIVE = 1
    UPPERCASE = 2
    LOWERCASE = 3


class SqlNullOrdering(enum.IntEnum):
    """Values of SQL_NULL_ORDERING."""

    SORTED_HIGH = 0
    SORTED_LOW = 1
    SORTED_AT_START = 2
    SORTED_AT_END = 3


def _value_code(info_id: int, value: object) -> SqlInfoValueCode:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return SqlInfoValueCode.BOOL_VALUE
    if isinstance(value, int):
        return SqlInfoValueCode.INT32_BITMASK if info_id in INT32_SQL_INFO else SqlInfoValueCode.BIGINT_VALUE
    if isinstance(value, str):
        return SqlInfoValueCode.STRING_VALUE
    if isinstance(value, Mapping):
        return SqlInfoValueCode.INT32_TO_INT32_LIST_MAP
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return SqlInfoValueCode.STRING_LIST
    raise TypeError(f"SqlInfo {info_id}: cannot represent {type(value).__name__} {value!r}")


def sql_info_table(info: Mapping[int, object], requested: Sequence[int] = ()) -> pa.Table:
    """Build a GetSqlInfo result (schema :data:`SQL_INFO_SCHEMA`).

    ``info`` maps SqlInfo ids to Python values: ``str``, ``bool``, ``int`` (int32 for the
    ids in :data:`INT32_SQL_INFO`, int64 otherwise), ``list[str]``, or
    ``dict[int, list[int]]`` (SQL_SUPPORTS_CONVERT). ``None`` values are treated as
    absent. ``requested`` is ``CommandGetSqlInfo.info``: empty means every known id
    (ascending, as the spec's "if omitted, all metadata"); otherwise one row per
    requested id in request order, duplicates once, and ids the server does not know
    left out rather than failing the whole request.
    """
    known = {int(k): v for k, v in info.items() if v is not None}
    ids = sorted(known) if not requested else [i for i in dict.fromkeys(int(r) for r in requested) if i in known]

    members: list[list[object]] = [[] for _ in SqlInfoValueCode]
    type_codes: list[int] = []
    offsets: list[int] = []
    for info_id in ids:
        value = known[info_id]
        code = _value_code(info_id, value)
        if code is SqlInfoValueCode.INT32_BITMASK and not -(1 << 31) <= value < (1 << 31):  # type: ignore[operator]
            raise ValueError(f"SqlInfo {info_id}: {value} does not fit the int32 the spec defines")
        if code is SqlInfoValueCode.INT32_TO_INT32_LIST_MAP:
            value = list(value.items())  # type: ignore[union-attr]
        type_codes.append(code)
        offsets.append(len(members[code]))
        members[code].append(value)

    children = [pa.array(values, SQL_INFO_VALUE_TYPE.field(i).type) for i, values in enumerate(members)]
    # Built from buffers so the union carries the exact (non-nullable) member fields;
    # UnionArray.from_dense would declare them nullable.
    value_array = pa.Array.from_buffers(
        SQL_INFO_VALUE_TYPE,
        len(ids),
        [None, pa.array(type_codes, pa.int8()).buffers()[1], pa.array(offsets, pa.int32()).buffers()[1]],
        children=children,
    )
    value_array.validate(full=True)
    return pa.Table.from_arrays([pa.array(ids, pa.uint32()), value_array], schema=SQL_INFO_SCHEMA)
