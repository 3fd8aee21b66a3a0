"""Tests of the Flight SQL wire layer: flight.sql_codec and flight.sql_schemas.

Three kinds of evidence:

* byte strings built by hand from the spec's field numbers (format/FlightSql.proto), so
  the decoder is not only checked against its own encoder;
* round trips of every message, and the protobuf rules a peer could observe (unknown
  fields, packed and unpacked repeated scalars, last-one-wins, sub-message merge);
* a live cross-check against the ADBC Flight SQL driver, whose Go protobuf runtime
  encodes the commands we decode and decodes the results we encode, and which checks
  the metadata result schemas for strict equality with its reference schemas.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Iterator

import pyarrow as pa
import pytest

from flight import sql_codec as sc
from flight.sql_codec import (
    ActionCancelQueryRequest,
    ActionCancelQueryResult,
    ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult,
    CommandGetCatalogs,
    CommandGetCrossReference,
    CommandGetDbSchemas,
    CommandGetExportedKeys,
    CommandGetImportedKeys,
    CommandGetPrimaryKeys,
    CommandGetSqlInfo,
    CommandGetTables,
    CommandGetTableTypes,
    CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate,
    CommandStatementIngest,
    CommandStatementQuery,
    CommandStatementUpdate,
    DecodeError,
    DoPutPreparedStatementResult,
    DoPutUpdateResult,
    TableDefinitionOptions,
    TableExistsOption,
    TableNotExistOption,
    TicketStatementQuery,
    Unsupported,
    decode_any,
    decode_command,
    decode_message,
    encode_any,
    encode_message,
    type_url,
)
from flight.sql_schemas import (
    CATALOGS_SCHEMA,
    DB_SCHEMAS_SCHEMA,
    INT32_SQL_INFO,
    KEYS_SCHEMA,
    PRIMARY_KEYS_SCHEMA,
    SQL_INFO_SCHEMA,
    SQL_INFO_VALUE_TYPE,
    TABLE_TYPES_SCHEMA,
    TABLES_SCHEMA,
    TABLES_SCHEMA_WITH_TABLE_SCHEMA,
    XDBC_TYPE_INFO_SCHEMA,
    SqlInfo,
    SqlInfoValueCode,
    SqlSupportedTransaction,
    ipc_schema_bytes,
    sql_info_table,
    tables_schema,
)

# --------------------------------------------------------------------------------------
# Hand encoding, independent of the codec under test
# --------------------------------------------------------------------------------------


def _vint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        out += bytes([low | (0x80 if value else 0)])
        if not value:
            return out


def key(number: int, wire: int) -> bytes:
    return _vint(number << 3 | wire)


def ld(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (wire type 2)."""
    raw = payload.encode() if isinstance(payload, str) else payload
    return key(number, 2) + _vint(len(raw)) + raw


def vi(number: int, value: int) -> bytes:
    """A varint field (wire type 0)."""
    return key(number, 0) + _vint(value)


def any_of(name: str, value: bytes) -> bytes:
    return ld(1, f"type.googleapis.com/arrow.flight.protocol.sql.{name}") + ld(2, value)


# --------------------------------------------------------------------------------------
# Decoding known byte strings
# --------------------------------------------------------------------------------------


def test_hand_helpers_match_protobuf_examples() -> None:
    # The protobuf encoding guide's own examples: 150 in field 1, "testing" in field 2.
    assert vi(1, 150) == bytes.fromhex("089601")
    assert ld(2, "testing") == bytes.fromhex("120774657374696e67")


def test_statement_query_literal_bytes() -> None:
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    body = b"\x0a\x08SELECT 1"
    data = b"\x0a" + bytes([len(url)]) + url + b"\x12" + bytes([len(body)]) + body
    assert decode_command(data) == CommandStatementQuery(query="SELECT 1", transaction_id=None)
    assert encode_any(CommandStatementQuery("SELECT 1")) == data


def test_statement_query_with_transaction() -> None:
    cmd = decode_command(any_of("CommandStatementQuery", ld(1, "SELECT 2") + ld(2, b"\x00tx")))
    assert cmd == CommandStatementQuery("SELECT 2", b"\x00tx")


@pytest.mark.parametrize(
    "body",
    [
        ld(1, bytes([0, 1, 8])),  # packed
        vi(1, 0) + vi(1, 1) + vi(1, 8),  # unpacked
        ld(1, bytes([0])) + vi(1, 1) + ld(1, bytes([8])),  # both, interleaved
    ],
    ids=["packed", "unpacked", "mixed"],
)
def test_sql_info_packed_and_unpacked(body: bytes) -> None:
    assert decode_command(any_of("CommandGetSqlInfo", body)) == CommandGetSqlInfo([0, 1, 8])


def test_sql_info_multibyte_values() -> None:
    body = ld(1, _vint(500) + _vint(10_000) + _vint(0xFFFFFFFF))
    assert decode_command(any_of("CommandGetSqlInfo", body)).info == [500, 10_000, 0xFFFFFFFF]
    assert decode_command(any_of("CommandGetSqlInfo", b"")) == CommandGetSqlInfo([])


def test_get_tables_bytes() -> None:
    body = ld(1, "") + ld(3, "tr%") + ld(4, "TABLE") + ld(4, "VIEW") + vi(5, 1)
    assert decode_command(any_of("CommandGetTables", body)) == CommandGetTables(
        catalog="",  # present but empty: "those without a catalog", not "any catalog"
        db_schema_filter_pattern=None,
        table_name_filter_pattern="tr%",
        table_types=["TABLE", "VIEW"],
        include_schema=True,
    )


def test_ingest_bytes() -> None:
    options = vi(1, 1) + vi(2, 2)  # if_not_exist=CREATE, if_exists=APPEND
    body = (
        ld(1, options) + ld(2, "trips") + ld(3, "main") + vi(5, 1) + ld(6, b"t1")
        + ld(1000, ld(1, "k") + ld(2, "v")) + ld(1000, ld(1, "z") + ld(2, ""))
    )
    cmd = decode_command(any_of("CommandStatementIngest", body))
    assert cmd == CommandStatementIngest(
        table_definition_options=TableDefinitionOptions(TableNotExistOption.CREATE, TableExistsOption.APPEND),
        table="trips",
        schema="main",
        catalog=None,
        temporary=True,
        transaction_id=b"t1",
        options={"k": "v", "z": ""},
    )
    assert isinstance(cmd.table_definition_options.if_exists, TableExistsOption)
    assert key(1000, 2) == b"\xc2\x3e"  # field 1000 needs a two-byte key


def test_ingest_enum_values_newer_than_codec_are_kept() -> None:
    cmd = decode_command(any_of("CommandStatementIngest", ld(1, vi(1, 7) + vi(2, 9)) + ld(2, "t")))
    assert cmd.table_definition_options == TableDefinitionOptions(7, 9)


def test_do_put_update_result_negative_count() -> None:
    # int64 -1 is a 10-byte varint.
    raw = b"\x08" + b"\xff" * 9 + b"\x01"
    assert decode_message(DoPutUpdateResult, raw) == DoPutUpdateResult(-1)
    assert encode_message(DoPutUpdateResult(-1)) == raw
    assert encode_message(DoPutUpdateResult(0)) == b""  # proto3 zero values are not written


def test_prepared_statement_result_bytes() -> None:
    raw = ld(1, b"h") + ld(2, b"ds") + ld(3, b"ps")
    assert decode_message(ActionCreatePreparedStatementResult, raw) == ActionCreatePreparedStatementResult(b"h", b"ds", b"ps")
    assert encode_message(ActionCreatePreparedStatementResult(b"h", b"ds", b"ps")) == raw


def test_do_put_prepared_statement_result_presence() -> None:
    assert encode_message(DoPutPreparedStatementResult(None)) == b""
    assert encode_message(DoPutPreparedStatementResult(b"")) == b"\x0a\x00"  # optional: empty is still sent
    assert decode_message(DoPutPreparedStatementResult, b"\x0a\x00").prepared_statement_handle == b""
    assert decode_message(DoPutPreparedStatementResult, b"").prepared_statement_handle is None


def test_xdbc_type_info_negative_data_type() -> None:
    # XDBC_BIGINT = -5: int32 negatives are sign-extended to 10 bytes on the wire.
    raw = b"\x08" + _vint(-5)
    assert len(raw) == 11
    assert decode_command(any_of("CommandGetXdbcTypeInfo", raw)) == CommandGetXdbcTypeInfo(-5)
    assert encode_message(CommandGetXdbcTypeInfo(-5)) == raw
    assert decode_command(any_of("CommandGetXdbcTypeInfo", b"")) == CommandGetXdbcTypeInfo(None)


def test_cross_reference_bytes() -> None:
    body = ld(3, "orders") + ld(4, "") + ld(6, "lines")
    assert decode_command(any_of("CommandGetCrossReference", body)) == CommandGetCrossReference(
        pk_catalog=None, pk_db_schema=None, pk_table="orders", fk_catalog="", fk_db_schema=None, fk_table="lines"
    )


def test_empty_commands_without_value_field() -> None:
    # An Any whose message has no fields may omit field 2 altogether.
    assert decode_command(ld(1, "type.googleapis.com/arrow.flight.protocol.sql.CommandGetCatalogs")) == CommandGetCatalogs()
    assert decode_command(ld(1, "type.googleapis.com/arrow.flight.protocol.sql.CommandGetTableTypes")) == CommandGetTableTypes()


def test_type_url_prefix_is_not_checked() -> None:
    # Like protobuf's Any.Is, only the name after the last "/" matters.
    data = ld(1, "example.com/x/arrow.flight.protocol.sql.CommandStatementQuery") + ld(2, ld(1, "SELECT 3"))
    assert decode_command(data) == CommandStatementQuery("SELECT 3")


def test_accepts_buffer_objects() -> None:
    data = encode_any(CommandStatementQuery("SELECT 4"))
    assert decode_command(pa.py_buffer(data)) == CommandStatementQuery("SELECT 4")
    assert decode_command(memoryview(data)) == CommandStatementQuery("SELECT 4")


# --------------------------------------------------------------------------------------
# Protobuf rules
# --------------------------------------------------------------------------------------


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (
        vi(15, 123)
        + key(16, 1) + b"\x01" * 8  # fixed64
        + ld(17, b"\x00\xff junk")
        + key(18, 5) + b"\x02" * 4  # fixed32
        + vi(536870911, 1)  # the largest field number
    )
    body = unknown + ld(1, "SELECT 5") + unknown
    assert decode_command(any_of("CommandStatementQuery", body)) == CommandStatementQuery("SELECT 5")
    # Unknown fields in the Any itself, and in a nested message, too.
    assert decode_command(vi(9, 1) + any_of("CommandGetSqlInfo", vi(1, 3)) + ld(7, b"x")) == CommandGetSqlInfo([3])
    cmd = decode_command(any_of("CommandStatementIngest", ld(1, vi(1, 1) + vi(3, 99))))
    assert cmd.table_definition_options == TableDefinitionOptions(TableNotExistOption.CREATE, TableExistsOption.UNSPECIFIED)


def test_last_scalar_wins_and_messages_merge() -> None:
    body = ld(1, "first") + ld(1, "second")
    assert decode_command(any_of("CommandStatementUpdate", body)).query == "second"
    body = ld(1, vi(1, 2)) + ld(2, "t") + ld(1, vi(2, 3))  # options split in two occurrences
    assert decode_command(any_of("CommandStatementIngest", body)).table_definition_options == TableDefinitionOptions(
        TableNotExistOption.FAIL, TableExistsOption.REPLACE
    )
    body = ld(1000, ld(1, "k") + ld(2, "a")) + ld(1000, ld(1, "k") + ld(2, "b"))
    assert decode_command(any_of("CommandStatementIngest", body)).options == {"k": "b"}


def test_non_canonical_varints_and_bools() -> None:
    assert decode_command(any_of("CommandGetTables", key(5, 0) + b"\x80\x00")).include_schema is False
    assert decode_command(any_of("CommandGetTables", vi(5, 2))).include_schema is True
    assert decode_message(CommandGetSqlInfo, key(1, 0) + b"\xff\xff\xff\xff\x1f").info == [0xFFFFFFFF]
    # uint32 wider than 32 bits is truncated, as protobuf does.
    assert decode_message(CommandGetSqlInfo, vi(1, (1 << 32) + 7)).info == [7]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_unknown_flight_sql_type_names_the_type() -> None:
    with pytest.raises(ValueError, match="CommandFrobnicate"):
        decode_command(any_of("CommandFrobnicate", b""))


def test_foreign_type_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="google.protobuf.Empty"):
        decode_command(ld(1, "type.googleapis.com/google.protobuf.Empty"))
    with pytest.raises(ValueError, match="arrow.flight.protocol.CommandGetCatalogs"):
        decode_command(ld(1, "type.googleapis.com/arrow.flight.protocol.CommandGetCatalogs"))


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no type URL at all
        b"SELECT 1",  # raw SQL instead of an Any
        b"\x0a\x05abc",  # length past the end
        b"\x0a\x80",  # truncated length varint
        b"\x08" + b"\xff" * 10 + b"\x01",  # varint longer than 10 bytes
        b"\x0b\x0c",  # group wire types
        b"\x00\x01",  # field number 0
        b"\x0d\x01\x02",  # truncated fixed32
    ],
)
def test_malformed_bytes_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_command(data)


def test_wire_type_mismatch_and_bad_utf8() -> None:
    with pytest.raises(DecodeError, match=r"CommandStatementQuery\.query"):
        decode_command(any_of("CommandStatementQuery", vi(1, 1)))
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_command(any_of("CommandStatementQuery", ld(1, b"\xff\xfe")))
    with pytest.raises(DecodeError, match=r"CommandGetSqlInfo\.info"):
        decode_command(any_of("CommandGetSqlInfo", key(1, 5) + b"\x00\x00\x00\x00"))
    with pytest.raises(DecodeError):  # a packed run that ends mid-varint
        decode_command(any_of("CommandGetSqlInfo", ld(1, b"\x01\x80")))


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


@pytest.mark.parametrize(
    "name",
    [
        "ActionBeginTransactionRequest",
        "ActionEndTransactionRequest",
        "ActionBeginSavepointRequest",
        "ActionEndSavepointRequest",
        "CommandStatementSubstraitPlan",
        "ActionCreatePreparedSubstraitPlanRequest",
    ],
)
def test_spec_messages_without_support_decode_as_unsupported(name: str) -> None:
    assert decode_command(any_of(name, ld(1, b"tx"))) == Unsupported(name, ld(1, b"tx"))


def test_encode_type_errors() -> None:
    with pytest.raises(TypeError, match=r"CommandStatementQuery\.query"):
        encode_message(CommandStatementQuery(b"SELECT"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_message(CommandStatementQuery("q", "tx"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint32"):
        encode_message(CommandGetSqlInfo([-1]))
    with pytest.raises(ValueError, match="int64"):
        encode_message(DoPutUpdateResult(1 << 63))
    with pytest.raises(TypeError):
        encode_any(Unsupported("ActionBeginTransactionRequest"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Round trips of every message
# --------------------------------------------------------------------------------------

POPULATED = [
    CommandStatementQuery("SELECT 'ünïcode' AS x", b"\x00\x01tx"),
    CommandStatementUpdate("DELETE FROM t WHERE a = 1", b"tx"),
    CommandStatementIngest(
        TableDefinitionOptions(TableNotExistOption.CREATE, TableExistsOption.REPLACE),
        "trips", "main", "lake", True, b"tx", {"compression": "zstd", "": "empty key"},
    ),
    CommandPreparedStatementQuery(b"\x00handle\xff"),
    CommandPreparedStatementUpdate(b"h" * 300),  # two-byte length
    TicketStatementQuery(uuid.uuid4().bytes),
    ActionCreatePreparedStatementRequest("SELECT ?", b"tx"),
    ActionCreatePreparedStatementResult(b"h", ipc_schema_bytes(pa.schema([("a", pa.int64())])), ipc_schema_bytes(pa.schema([("0", pa.utf8())]))),
    ActionClosePreparedStatementRequest(b"h"),
    ActionCancelQueryRequest(b"serialized flight info"),
    ActionCancelQueryResult(sc.CancelStatus.CANCELLED),
    DoPutUpdateResult(-1),
    DoPutUpdateResult((1 << 63) - 1),
    DoPutPreparedStatementResult(b"new handle"),
    CommandGetCatalogs(),
    CommandGetDbSchemas("lake", "ma%"),
    CommandGetTables("lake", "main", "t_%", ["TABLE", "VIEW"], True),
    CommandGetTableTypes(),
    CommandGetSqlInfo([0, 1, 2, 3, 8, 100, 500, 508, 10_000, 0xFFFFFFFF]),
    CommandGetPrimaryKeys("lake", "main", "trips"),
    CommandGetExportedKeys("lake", "main", "trips"),
    CommandGetImportedKeys("lake", "main", "trips"),
    CommandGetCrossReference("a", "b", "c", "d", "e", "f"),
    CommandGetXdbcTypeInfo(-9),
]

# Explicit-presence fields set to empty values must survive (None and "" differ).
EMPTY_BUT_PRESENT = [
    CommandStatementQuery("", b""),
    CommandStatementIngest(TableDefinitionOptions(), "", "", "", False, b"", {}),
    CommandGetDbSchemas("", ""),
    CommandGetTables("", "", ""),
    CommandGetPrimaryKeys("", ""),
    CommandGetXdbcTypeInfo(0),
    DoPutPreparedStatementResult(b""),
]


@pytest.mark.parametrize("msg", POPULATED + EMPTY_BUT_PRESENT, ids=lambda m: type(m).__name__)
def test_round_trip(msg: sc.Message) -> None:
    wrapped = encode_any(msg)
    assert decode_command(wrapped) == msg
    assert decode_any(wrapped) == (type_url(msg), encode_message(msg))
    assert decode_message(type(msg), encode_message(msg)) == msg


@pytest.mark.parametrize("cls", sc.Message.__args__, ids=lambda c: c.__name__)  # type: ignore[attr-defined]
def test_round_trip_defaults(cls: type) -> None:
    msg = cls()
    assert encode_message(msg) == b""  # nothing set, nothing written
    assert decode_command(encode_any(msg)) == msg
    assert type_url(cls) == f"type.googleapis.com/arrow.flight.protocol.sql.{cls.__name__}"


def test_every_message_is_covered() -> None:
    assert {type(m) for m in POPULATED} == set(sc.Message.__args__)  # type: ignore[attr-defined]


def test_encoding_writes_fields_in_number_order() -> None:
    # Matches protobuf's own serializers, so encoded commands are byte-stable.
    msg = CommandStatementIngest(TableDefinitionOptions(TableNotExistOption.FAIL, TableExistsOption.FAIL), "t", options={"b": "2", "a": "1"})
    expected = ld(1, vi(1, 2) + vi(2, 1)) + ld(2, "t") + ld(1000, ld(1, "a") + ld(2, "1")) + ld(1000, ld(1, "b") + ld(2, "2"))
    assert encode_message(msg) == expected
    assert encode_message(CommandGetSqlInfo([1, 300])) == ld(1, _vint(1) + _vint(300))  # packed


def test_field_numbers_follow_the_spec() -> None:
    """Pin each field number, so a typo in a declaration cannot round-trip unnoticed."""
    numbers = {
        cls.__name__: {f.name: f.metadata["pb"].number for f in dataclasses.fields(cls)}
        for cls in sc.Message.__args__  # type: ignore[attr-defined]
    }
    assert numbers == {
        "CommandStatementQuery": {"query": 1, "transaction_id": 2},
        "CommandStatementUpdate": {"query": 1, "transaction_id": 2},
        "CommandStatementIngest": {"table_definition_options": 1, "table": 2, "schema": 3, "catalog": 4, "temporary": 5, "transaction_id": 6, "options": 1000},
        "CommandPreparedStatementQuery": {"prepared_statement_handle": 1},
        "CommandPreparedStatementUpdate": {"prepared_statement_handle": 1},
        "TicketStatementQuery": {"statement_handle": 1},
        "ActionCreatePreparedStatementRequest": {"query": 1, "transaction_id": 2},
        "ActionCreatePreparedStatementResult": {"prepared_statement_handle": 1, "dataset_schema": 2, "parameter_schema": 3},
        "ActionClosePreparedStatementRequest": {"prepared_statement_handle": 1},
        "ActionCancelQueryRequest": {"info": 1},
        "ActionCancelQueryResult": {"result": 1},
        "DoPutUpdateResult": {"record_count": 1},
        "DoPutPreparedStatementResult": {"prepared_statement_handle": 1},
        "CommandGetCatalogs": {},
        "CommandGetDbSchemas": {"catalog": 1, "db_schema_filter_pattern": 2},
        "CommandGetTables": {"catalog": 1, "db_schema_filter_pattern": 2, "table_name_filter_pattern": 3, "table_types": 4, "include_schema": 5},
        "CommandGetTableTypes": {},
        "CommandGetSqlInfo": {"info": 1},
        "CommandGetPrimaryKeys": {"catalog": 1, "db_schema": 2, "table": 3},
        "CommandGetExportedKeys": {"catalog": 1, "db_schema": 2, "table": 3},
        "CommandGetImportedKeys": {"catalog": 1, "db_schema": 2, "table": 3},
        "CommandGetCrossReference": {"pk_catalog": 1, "pk_db_schema": 2, "pk_table": 3, "fk_catalog": 4, "fk_db_schema": 5, "fk_table": 6},
        "CommandGetXdbcTypeInfo": {"data_type": 1},
    }
    assert [int(v) for v in TableNotExistOption] == [0, 1, 2]
    assert [int(v) for v in TableExistsOption] == [0, 1, 2, 3]


# --------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------


def _shape(schema: pa.Schema) -> list[tuple[str, pa.DataType, bool]]:
    return [(f.name, f.type, f.nullable) for f in schema]


utf8 = pa.utf8()


def test_catalog_metadata_schemas() -> None:
    assert _shape(CATALOGS_SCHEMA) == [("catalog_name", utf8, False)]
    assert _shape(DB_SCHEMAS_SCHEMA) == [("catalog_name", utf8, True), ("db_schema_name", utf8, False)]
    tables = [("catalog_name", utf8, True), ("db_schema_name", utf8, True), ("table_name", utf8, False), ("table_type", utf8, False)]
    assert _shape(TABLES_SCHEMA) == tables
    assert _shape(TABLES_SCHEMA_WITH_TABLE_SCHEMA) == tables + [("table_schema", pa.binary(), False)]
    assert tables_schema(False) is TABLES_SCHEMA and tables_schema(True) is TABLES_SCHEMA_WITH_TABLE_SCHEMA
    assert _shape(TABLE_TYPES_SCHEMA) == [("table_type", utf8, False)]
    assert _shape(PRIMARY_KEYS_SCHEMA) == [
        ("catalog_name", utf8, True), ("db_schema_name", utf8, True), ("table_name", utf8, False),
        ("column_name", utf8, False), ("key_sequence", pa.int32(), False), ("key_name", utf8, True),
    ]
    assert [f.name for f in KEYS_SCHEMA][-3:] == ["pk_key_name", "update_rule", "delete_rule"]
    assert KEYS_SCHEMA.field("update_rule").type == pa.uint8() and not KEYS_SCHEMA.field("delete_rule").nullable
    assert len(XDBC_TYPE_INFO_SCHEMA) == 19
    create_params = XDBC_TYPE_INFO_SCHEMA.field("create_params")
    assert create_params.nullable and not create_params.type.value_field.nullable
    for schema in (CATALOGS_SCHEMA, DB_SCHEMAS_SCHEMA, TABLES_SCHEMA, PRIMARY_KEYS_SCHEMA, SQL_INFO_SCHEMA):
        assert not schema.metadata


def test_sql_info_schema_field_by_field() -> None:
    info_name, value = SQL_INFO_SCHEMA
    assert (info_name.name, info_name.type, info_name.nullable) == ("info_name", pa.uint32(), False)
    assert (value.name, value.nullable) == ("value", False)
    union = value.type
    assert union == SQL_INFO_VALUE_TYPE and union.mode == "dense"
    assert list(union.type_codes) == [0, 1, 2, 3, 4, 5]
    members = [(f.name, f.nullable) for f in union]
    assert members == [
        ("string_value", False), ("bool_value", False), ("bigint_value", False),
        ("int32_bitmask", False), ("string_list", False), ("int32_to_int32_list_map", False),
    ]
    assert [union.field(i).type for i in range(4)] == [utf8, pa.bool_(), pa.int64(), pa.int32()]
    string_list = union.field(4).type
    assert pa.types.is_list(string_list) and string_list.value_field == pa.field("item", utf8, nullable=True)
    int_map = union.field(5).type
    assert pa.types.is_map(int_map)
    assert int_map.key_field == pa.field("key", pa.int32(), nullable=False)
    assert int_map.item_field == pa.field("value", pa.list_(pa.int32()), nullable=True)
    assert int_map.item_type.value_field == pa.field("item", pa.int32(), nullable=True)
    # Code == child position: the ADBC driver reads values.Field(3) as the int32 member.
    assert [int(c) for c in SqlInfoValueCode] == [0, 1, 2, 3, 4, 5]


def test_sql_info_ids_follow_the_spec() -> None:
    assert SqlInfo.FLIGHT_SQL_SERVER_NAME == 0 and SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY == 3
    assert SqlInfo.FLIGHT_SQL_SERVER_SQL == 4 and SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT == 5
    assert SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION == 8 and SqlInfo.FLIGHT_SQL_SERVER_CANCEL == 9
    assert SqlInfo.FLIGHT_SQL_SERVER_BULK_INGESTION == 10 and SqlInfo.FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED == 11
    assert SqlInfo.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT == 100 and SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT == 101
    assert SqlInfo.SQL_DDL_CATALOG == 500 and SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR == 504 and SqlInfo.SQL_KEYWORDS == 508
    assert SqlInfo.SQL_SUPPORTS_CONVERT == 517 and SqlInfo.SQL_TRANSACTIONS_SUPPORTED == 563


def test_sql_info_table_values_land_in_the_right_member() -> None:
    info = {
        SqlInfo.FLIGHT_SQL_SERVER_NAME: "lakehouse",
        SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY: False,
        SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION: SqlSupportedTransaction.NONE,
        SqlInfo.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: 0,
        SqlInfo.SQL_KEYWORDS: ["SELECT", "FROM"],
        SqlInfo.SQL_SUPPORTS_CONVERT: {0: [7, 19], 7: []},
        SqlInfo.SQL_MAX_STATEMENT_LENGTH: 1 << 40,
        10_001: 12,  # a custom id: int64
        SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION: None,  # None = absent
    }
    table = sql_info_table(info, [])
    assert table.schema.equals(SQL_INFO_SCHEMA, check_metadata=True)
    assert table.column("info_name").to_pylist() == [0, 3, 8, 100, 508, 517, 557, 10_001]  # all, ascending
    union = table.column("value").chunk(0)
    assert [int(c) for c in union.type_codes.to_pylist()] == [0, 1, 3, 3, 4, 5, 2, 2]
    assert union.to_pylist() == ["lakehouse", False, 0, 0, ["SELECT", "FROM"], [(0, [7, 19]), (7, [])], 1 << 40, 12]
    assert set(INT32_SQL_INFO) >= {8, 100, 101, 503, 505, 507}


def test_sql_info_table_requested_subset() -> None:
    info = {0: "lakehouse", 1: "0.1.0", 3: True}
    table = sql_info_table(info, [3, 0, 3, 999])  # request order, duplicate once, unknown dropped
    assert table.to_pylist() == [{"info_name": 3, "value": True}, {"info_name": 0, "value": "lakehouse"}]
    assert sql_info_table(info, [999]).num_rows == 0
    empty = sql_info_table({}, [])
    assert empty.num_rows == 0 and empty.schema.equals(SQL_INFO_SCHEMA)


def test_sql_info_table_rejects_what_it_cannot_represent() -> None:
    with pytest.raises(TypeError, match="501"):
        sql_info_table({501: 1.5}, [])
    with pytest.raises(TypeError):
        sql_info_table({508: ["a", 1]}, [])
    with pytest.raises(ValueError, match="int32"):
        sql_info_table({SqlInfo.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: 1 << 40}, [])


def test_sql_info_table_survives_ipc() -> None:
    table = sql_info_table({0: "x", 3: True, 8: 1, 508: ["A"], 517: {1: [2]}}, [])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    back = pa.ipc.open_stream(sink.getvalue()).read_all()
    assert back.equals(table) and back.schema.equals(SQL_INFO_SCHEMA)


def test_ipc_schema_bytes_round_trip() -> None:
    schema = pa.schema([pa.field("a", pa.int64(), nullable=False), ("b", pa.utf8())], metadata={"k": "v"})
    assert pa.ipc.read_schema(pa.py_buffer(ipc_schema_bytes(schema))).equals(schema, check_metadata=True)


# --------------------------------------------------------------------------------------
# Live cross-check with the ADBC Flight SQL driver (Go protobuf, Go reference schemas)
# --------------------------------------------------------------------------------------

flight = pytest.importorskip("pyarrow.flight")
adbc_flightsql = pytest.importorskip("adbc_driver_flightsql.dbapi")

TRIPS_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("city", pa.utf8())])
SERVER_INFO = {
    SqlInfo.FLIGHT_SQL_SERVER_NAME: "lakehouse-test",
    SqlInfo.FLIGHT_SQL_SERVER_VERSION: "0.0.1",
    SqlInfo.FLIGHT_SQL_SERVER_ARROW_VERSION: pa.__version__,
    SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY: False,
    # Claiming transactions makes ADBC send BeginTransaction when autocommit goes off,
    # which shows it found this value in the int32 member.
    SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION: SqlSupportedTransaction.TRANSACTION,
    SqlInfo.SQL_KEYWORDS: ["SELECT"],
}


class FakeFlightSqlServer(flight.FlightServerBase):
    """Just enough of a Flight SQL server, built only on the codec and schemas under test.

    Records every decoded command as ``(rpc, command)`` in ``seen``.
    """

    def __init__(self) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self.seen: list[tuple[str, object]] = []
        self.statements: dict[bytes, str] = {}
        self.bound: dict[bytes, pa.Table] = {}
        self.ingested: dict[str, pa.Table] = {}
        self._lock = threading.Lock()

    def _decode(self, rpc: str, data: bytes) -> sc.Command:
        cmd = decode_command(data)
        with self._lock:
            self.seen.append((rpc, cmd))
        return cmd

    def _result(self, cmd: sc.Command) -> pa.Table:
        match cmd:
            case CommandGetSqlInfo(info=requested):
                return sql_info_table(SERVER_INFO, requested)
            case CommandGetCatalogs():
                return pa.Table.from_pylist([{"catalog_name": "lake"}], CATALOGS_SCHEMA)
            case CommandGetDbSchemas():
                return pa.Table.from_pylist([{"catalog_name": "lake", "db_schema_name": "main"}], DB_SCHEMAS_SCHEMA)
            case CommandGetTables(include_schema=include):
                row = {"catalog_name": "lake", "db_schema_name": "main", "table_name": "trips", "table_type": "TABLE"}
                if include:
                    row["table_schema"] = ipc_schema_bytes(TRIPS_SCHEMA)
                return pa.Table.from_pylist([row], tables_schema(include))
            case CommandGetTableTypes():
                return pa.Table.from_pylist([{"table_type": "TABLE"}, {"table_type": "VIEW"}], TABLE_TYPES_SCHEMA)
            case CommandGetXdbcTypeInfo():
                return XDBC_TYPE_INFO_SCHEMA.empty_table()
            case CommandStatementQuery(query=query) | ActionCreatePreparedStatementRequest(query=query):
                return pa.table({"query": [query]})
            case TicketStatementQuery(statement_handle=handle):
                return pa.table({"query": [self.statements[handle]]})
            case CommandPreparedStatementQuery(prepared_statement_handle=handle):
                if handle in self.bound:
                    return self.bound[handle]
                return pa.table({"query": [handle.removeprefix(b"prepared:").decode()]})
        raise NotImplementedError(f"not in this fake: {cmd!r}")

    def get_flight_info(self, context, descriptor):
        cmd = self._decode("GetFlightInfo", descriptor.command)
        table = self._result(cmd)
        ticket = descriptor.command
        if isinstance(cmd, CommandStatementQuery):
            handle = uuid.uuid4().bytes
            self.statements[handle] = cmd.query
            ticket = encode_any(TicketStatementQuery(handle))
        return flight.FlightInfo(table.schema, descriptor, [flight.FlightEndpoint(ticket, [])], table.num_rows, -1)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self._result(self._decode("DoGet", ticket.ticket)))

    def do_put(self, context, descriptor, reader, writer):
        cmd = self._decode("DoPut", descriptor.command)
        match cmd:
            case CommandStatementIngest(table=name):
                data = reader.read_all()
                self.ingested[name] = data
                writer.write(pa.py_buffer(encode_message(DoPutUpdateResult(data.num_rows))))
            case CommandStatementUpdate():
                writer.write(pa.py_buffer(encode_message(DoPutUpdateResult(42))))
            case CommandPreparedStatementQuery(prepared_statement_handle=handle):
                new_handle = handle + b"/bound"  # the client must switch to this one
                self.bound[new_handle] = reader.read_all()
                writer.write(pa.py_buffer(encode_message(DoPutPreparedStatementResult(new_handle))))
            case _:
                raise NotImplementedError(f"not in this fake: {cmd!r}")

    def do_action(self, context, action):
        cmd = self._decode(f"DoAction:{action.type}", action.body.to_pybytes())
        match cmd:
            case ActionCreatePreparedStatementRequest(query=query):
                assert action.type == sc.ACTION_CREATE_PREPARED_STATEMENT
                result = ActionCreatePreparedStatementResult(
                    prepared_statement_handle=b"prepared:" + query.encode(),
                    dataset_schema=ipc_schema_bytes(self._result(cmd).schema),
                    parameter_schema=ipc_schema_bytes(pa.schema([("0", pa.int64())])),
                )
                return [flight.Result(pa.py_buffer(encode_any(result)))]
            case ActionClosePreparedStatementRequest():
                assert action.type == sc.ACTION_CLOSE_PREPARED_STATEMENT
                return []
            case Unsupported(type_name=name):
                raise NotImplementedError(f"{name} is not supported")
        raise NotImplementedError(f"not in this fake: {cmd!r}")


@pytest.fixture
def fake_server() -> Iterator[FakeFlightSqlServer]:
    server = FakeFlightSqlServer()
    yield server
    server.shutdown()


@pytest.fixture
def adbc_conn(fake_server: FakeFlightSqlServer) -> Iterator[object]:
    conn = adbc_flightsql.connect(f"grpc://127.0.0.1:{fake_server.port}", autocommit=True)
    yield conn
    conn.close()


def _commands(server: FakeFlightSqlServer, cls: type) -> list:
    return [cmd for _, cmd in server.seen if isinstance(cmd, cls)]


def test_adbc_connect_and_get_info(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    info = adbc_conn.adbc_get_info()
    assert info["vendor_name"] == "lakehouse-test"
    assert info["vendor_version"] == "0.0.1"
    assert info["vendor_arrow_version"] == pa.__version__
    # Go's protobuf packs repeated uint32: these arrived packed and decoded.
    requested = [cmd.info for cmd in _commands(fake_server, CommandGetSqlInfo)]
    assert [SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION] in requested  # asked on connect
    assert any({0, 1, 2} <= set(ids) for ids in requested)


def test_adbc_reads_transaction_support_from_int32_member(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    with pytest.raises(Exception, match="BeginTransaction|not supported|NOT_IMPLEMENTED|Unimplemented"):
        adbc_conn.adbc_connection.set_autocommit(False)
    assert Unsupported("ActionBeginTransactionRequest") in [cmd for _, cmd in fake_server.seen]


def test_adbc_query_uses_ticket(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    # The low-level statement API: DB-API execute() would prepare the statement first.
    with adbc_conn.cursor() as cur:
        cur.adbc_statement.set_sql_query("SELECT 'ü' AS x")
        stream, _ = cur.adbc_statement.execute_query()
        result = pa.RecordBatchReader._import_from_c(stream.address).read_all()
    assert result.to_pylist() == [{"query": "SELECT 'ü' AS x"}]
    assert CommandStatementQuery("SELECT 'ü' AS x") in _commands(fake_server, CommandStatementQuery)
    assert [rpc for rpc, cmd in fake_server.seen if isinstance(cmd, TicketStatementQuery)] == ["DoGet"]


def test_adbc_prepared_statement_without_parameters(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    with adbc_conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchall() == [("SELECT 1",)]
    assert ActionCreatePreparedStatementRequest("SELECT 1") in _commands(fake_server, ActionCreatePreparedStatementRequest)
    assert ("GetFlightInfo", CommandPreparedStatementQuery(b"prepared:SELECT 1")) in fake_server.seen


def test_adbc_prepared_statement_with_parameters(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    with adbc_conn.cursor() as cur:
        cur.execute("SELECT ?", parameters=(7,))
        assert [row[0] for row in cur.fetchall()] == [7]
    handle = b"prepared:SELECT ?"
    assert ActionCreatePreparedStatementRequest("SELECT ?") in _commands(fake_server, ActionCreatePreparedStatementRequest)
    rpcs = [(rpc, cmd.prepared_statement_handle) for rpc, cmd in fake_server.seen if isinstance(cmd, CommandPreparedStatementQuery)]
    # The bind went out with the handle from our Any-wrapped result, and the client took
    # up the new handle from our bare DoPutPreparedStatementResult.
    assert ("DoPut", handle) in rpcs and ("GetFlightInfo", handle + b"/bound") in rpcs
    assert ActionClosePreparedStatementRequest(handle + b"/bound") in _commands(fake_server, ActionClosePreparedStatementRequest)


def test_adbc_update_reads_record_count(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    with adbc_conn.cursor() as cur:
        cur.adbc_statement.set_sql_query("DELETE FROM trips")
        assert cur.adbc_statement.execute_update() == 42
    assert _commands(fake_server, CommandStatementUpdate) == [CommandStatementUpdate("DELETE FROM trips")]


@pytest.mark.parametrize(
    ("mode", "if_not_exist", "if_exists"),
    [
        ("create", TableNotExistOption.CREATE, TableExistsOption.FAIL),
        ("append", TableNotExistOption.FAIL, TableExistsOption.APPEND),
        ("replace", TableNotExistOption.CREATE, TableExistsOption.REPLACE),
        ("create_append", TableNotExistOption.CREATE, TableExistsOption.APPEND),
    ],
)
def test_adbc_ingest(fake_server: FakeFlightSqlServer, adbc_conn, mode, if_not_exist, if_exists) -> None:
    data = pa.table({"id": [1, 2, 3], "city": ["a", None, "c"]}, schema=TRIPS_SCHEMA)
    with adbc_conn.cursor() as cur:
        assert cur.adbc_ingest("trips", data, mode=mode, db_schema_name="main") == 3
    (cmd,) = _commands(fake_server, CommandStatementIngest)
    assert (cmd.table, cmd.schema, cmd.catalog, cmd.temporary, cmd.transaction_id) == ("trips", "main", None, False, None)
    assert cmd.table_definition_options == TableDefinitionOptions(if_not_exist, if_exists)
    assert fake_server.ingested["trips"].equals(data)


def test_adbc_metadata_schemas_pass_driver_checks(fake_server: FakeFlightSqlServer, adbc_conn) -> None:
    # The driver compares these result schemas with its reference ones for equality.
    objects = adbc_conn.adbc_get_objects(depth="all").read_all().to_pylist()
    (catalog,) = objects
    assert catalog["catalog_name"] == "lake"
    (db_schema,) = catalog["catalog_db_schemas"]
    assert db_schema["db_schema_name"] == "main"
    (table,) = db_schema["db_schema_tables"]
    assert table["table_name"] == "trips" and table["table_type"] == "TABLE"
    assert [c["column_name"] for c in table["table_columns"]] == ["id", "city"]

    assert adbc_conn.adbc_get_table_schema("trips") == TRIPS_SCHEMA
    assert adbc_conn.adbc_get_table_types() == ["TABLE", "VIEW"]
    assert any(cmd.include_schema for cmd in _commands(fake_server, CommandGetTables))
    assert _commands(fake_server, CommandGetCatalogs) and _commands(fake_server, CommandGetDbSchemas)
