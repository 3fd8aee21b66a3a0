"""Flight SQL messages on the wire: a small, dependency-free protobuf codec.

Flight SQL rides on plain Arrow Flight: every command is a protobuf message from the
``arrow.flight.protocol.sql`` package, packed into a ``google.protobuf.Any`` and carried as
opaque bytes (``FlightDescriptor.cmd``, ``Ticket.ticket``, ``Action.body``). Only a dozen
small messages matter and they use a handful of field kinds, so a hand-written codec is
shorter to audit than a generated one and keeps ``protobuf`` out of the server's
dependencies. Field numbers, types and presence rules are those of the public spec
(``format/FlightSql.proto`` in apache/arrow).

Entry points:

* :func:`decode_command` turns an ``Any`` into a typed dataclass (one per message kind).
  Messages the spec defines but this server does not implement (transactions,
  savepoints, Substrait, CancelQuery) come back as :class:`Unsupported` so the caller
  can answer UNIMPLEMENTED with the name; anything else raises :class:`DecodeError`
  (a ``ValueError``) naming the type.
* :func:`encode_any` wraps a message for the places the spec wants an ``Any``
  (action results such as ``ActionCreatePreparedStatementResult``, tickets).
* :func:`encode_message` gives the bare message for the places that carry one
  unwrapped: ``DoPutUpdateResult`` and ``DoPutPreparedStatementResult`` travel as
  ``PutResult.app_metadata`` without an ``Any``, as the reference servers do.

Decoding follows protobuf's rules where a client could tell the difference: unknown
fields are skipped, a repeated scalar may arrive packed or unpacked (or both), the last
occurrence of a scalar wins, repeated occurrences of a sub-message merge, and proto3
``optional`` fields keep their presence (``None`` when absent, which the spec gives a
different meaning from an empty string, e.g. ``catalog``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass, field
from typing import Any, Iterator, TypeVar, Union

__all__ = [
    "PACKAGE",
    "TYPE_URL_PREFIX",
    "ACTION_CREATE_PREPARED_STATEMENT",
    "ACTION_CLOSE_PREPARED_STATEMENT",
    "DecodeError",
    "TableNotExistOption",
    "TableExistsOption",
    "TableDefinitionOptions",
    "CommandStatementQuery",
    "CommandStatementUpdate",
    "CommandStatementIngest",
    "CommandPreparedStatementQuery",
    "CommandPreparedStatementUpdate",
    "TicketStatementQuery",
    "ActionCreatePreparedStatementRequest",
    "ActionCreatePreparedStatementResult",
    "ActionClosePreparedStatementRequest",
    "DoPutUpdateResult",
    "DoPutPreparedStatementResult",
    "CommandGetCatalogs",
    "CommandGetDbSchemas",
    "CommandGetTables",
    "CommandGetTableTypes",
    "CommandGetSqlInfo",
    "CommandGetPrimaryKeys",
    "CommandGetExportedKeys",
    "CommandGetImportedKeys",
    "CommandGetCrossReference",
    "CommandGetXdbcTypeInfo",
    "Unsupported",
    "Message",
    "Command",
    "decode_command",
    "decode_any",
    "decode_message",
    "encode_any",
    "encode_message",
    "type_url",
]

PACKAGE = "arrow.flight.protocol.sql"
TYPE_URL_PREFIX = "type.googleapis.com/"

# Flight SQL action type names (``Action.type``); the bodies are Any-wrapped messages.
ACTION_CREATE_PREPARED_STATEMENT = "CreatePreparedStatement"
ACTION_CLOSE_PREPARED_STATEMENT = "ClosePreparedStatement"
ACTION_CANCEL_FLIGHT_INFO = "CancelFlightInfo"
ACTION_CANCEL_QUERY = "CancelQuery"


class DecodeError(ValueError):
    """The bytes are not a well-formed message of the expected kind."""


# --------------------------------------------------------------------------------------
# Field kinds and the dataclass field helper
# --------------------------------------------------------------------------------------

# Protobuf wire types. Groups (3, 4) are deprecated and never used by Flight SQL.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class _Kind(enum.Enum):
    STRING = "string"
    BYTES = "bytes"
    BOOL = "bool"
    INT32 = "int32"
    INT64 = "int64"
    UINT32 = "uint32"
    ENUM = "enum"
    MESSAGE = "message"
    REPEATED_STRING = "repeated string"
    REPEATED_UINT32 = "repeated uint32"
    STRING_MAP = "map<string, string>"


_WIRE_OF = {
    _Kind.STRING: _LEN, _Kind.BYTES: _LEN, _Kind.MESSAGE: _LEN,
    _Kind.REPEATED_STRING: _LEN, _Kind.STRING_MAP: _LEN,
    _Kind.BOOL: _VARINT, _Kind.INT32: _VARINT, _Kind.INT64: _VARINT,
    _Kind.UINT32: _VARINT, _Kind.ENUM: _VARINT,
}


@dataclass(frozen=True)
class _Spec:
    number: int
    kind: _Kind
    of: type | None  # sub-message class for MESSAGE, IntEnum class for ENUM


def _pb(number: int, kind: _Kind, default: Any = None, *, of: type | None = None) -> Any:
    """Declare a dataclass field as protobuf field ``number`` of ``kind``.

    A default of ``None`` marks explicit presence (proto3 ``optional`` scalars and
    sub-messages): the field is written whenever it is not ``None``, even if empty.
    Any other default is the proto3 zero value, which is never written.
    """
    meta = {"pb": _Spec(number, kind, of)}
    if kind in (_Kind.REPEATED_STRING, _Kind.REPEATED_UINT32):
        return field(default_factory=list, metadata=meta)
    if kind is _Kind.STRING_MAP:
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------
# Messages (field numbers from format/FlightSql.proto)
# --------------------------------------------------------------------------------------


class TableNotExistOption(enum.IntEnum):
    """``CommandStatementIngest.TableDefinitionOptions.TableNotExistOption``."""

    UNSPECIFIED = 0  # the spec says servers should reject this
    CREATE = 1
    FAIL = 2


class TableExistsOption(enum.IntEnum):
    """``CommandStatementIngest.TableDefinitionOptions.TableExistsOption``."""

    UNSPECIFIED = 0  # the spec says servers should reject this
    FAIL = 1
    APPEND = 2
    REPLACE = 3


@dataclass(frozen=True)
class TableDefinitionOptions:
    """What an ingest does when the target table is missing / already there."""

    if_not_exist: TableNotExistOption | int = _pb(1, _Kind.ENUM, TableNotExistOption.UNSPECIFIED, of=TableNotExistOption)
    if_exists: TableExistsOption | int = _pb(2, _Kind.ENUM, TableExistsOption.UNSPECIFIED, of=TableExistsOption)


@dataclass(frozen=True)
class CommandStatementQuery:
    """GetFlightInfo / GetSchema: run a SQL query."""

    query: str = _pb(1, _Kind.STRING, "")
    transaction_id: bytes | None = _pb(2, _Kind.BYTES)


@dataclass(frozen=True)
class CommandStatementUpdate:
    """DoPut: run a SQL statement and answer a ``DoPutUpdateResult``."""

    query: str = _pb(1, _Kind.STRING, "")
    transaction_id: bytes | None = _pb(2, _Kind.BYTES)


@dataclass(frozen=True)
class CommandStatementIngest:
    """DoPut: bulk-load the uploaded Arrow stream into ``table``."""

    table_definition_options: TableDefinitionOptions | None = _pb(1, _Kind.MESSAGE, of=TableDefinitionOptions)
    table: str = _pb(2, _Kind.STRING, "")
    schema: str | None = _pb(3, _Kind.STRING)  # db_schema of the target; None = server default
    catalog: str | None = _pb(4, _Kind.STRING)
    temporary: bool = _pb(5, _Kind.BOOL, False)
    transaction_id: bytes | None = _pb(6, _Kind.BYTES)
    options: dict[str, str] = _pb(1000, _Kind.STRING_MAP)


@dataclass(frozen=True)
class CommandPreparedStatementQuery:
    """GetFlightInfo / GetSchema: run a prepared query; DoPut: bind its parameters."""

    prepared_statement_handle: bytes = _pb(1, _Kind.BYTES, b"")


@dataclass(frozen=True)
class CommandPreparedStatementUpdate:
    """DoPut: run a prepared statement as an update (parameters in the stream)."""

    prepared_statement_handle: bytes = _pb(1, _Kind.BYTES, b"")


@dataclass(frozen=True)
class TicketStatementQuery:
    """The ticket a server may hand out for a ``CommandStatementQuery`` result."""

    statement_handle: bytes = _pb(1, _Kind.BYTES, b"")


@dataclass(frozen=True)
class ActionCreatePreparedStatementRequest:
    """Body of the ``CreatePreparedStatement`` action."""

    query: str = _pb(1, _Kind.STRING, "")
    transaction_id: bytes | None = _pb(2, _Kind.BYTES)


@dataclass(frozen=True)
class ActionCreatePreparedStatementResult:
    """Result of ``CreatePreparedStatement`` (sent Any-wrapped).

    The schemas are IPC-encapsulated Arrow schemas
    (see ``flight.sql_schemas.ipc_schema_bytes``); empty means "none".
    """

    prepared_statement_handle: bytes = _pb(1, _Kind.BYTES, b"")
    dataset_schema: bytes = _pb(2, _Kind.BYTES, b"")
    parameter_schema: bytes = _pb(3, _Kind.BYTES, b"")


@dataclass(frozen=True)
class ActionClosePreparedStatementRequest:
    """Body of the ``ClosePreparedStatement`` action."""

    prepared_statement_handle: bytes = _pb(1, _Kind.BYTES, b"")


@dataclass(frozen=True)
class ActionCancelQueryRequest:
    """Body of Flight SQL's older ``CancelQuery`` action: the serialized FlightInfo to cancel."""

    info: bytes = _pb(1, _Kind.BYTES, b"")


class CancelStatus(enum.IntEnum):
    UNSPECIFIED = 0  # unknown, e.g. the query had already finished
    CANCELLED = 1
    CANCELLING = 2
    NOT_CANCELLABLE = 3


@dataclass(frozen=True)
class ActionCancelQueryResult:
    """Answer to ``CancelQuery``; its CancelResult values equal :class:`CancelStatus`'s."""

    result: CancelStatus | int = _pb(1, _Kind.ENUM, CancelStatus.UNSPECIFIED, of=CancelStatus)


@dataclass(frozen=True)
class CancelFlightInfoRequest:
    """The body of Flight's ``CancelFlightInfo`` action (Flight.proto, sent bare): the serialized
    FlightInfo of the query to cancel."""

    info: bytes = _pb(1, _Kind.BYTES, b"")


@dataclass(frozen=True)
class CancelFlightInfoResult:
    """The answer to ``CancelFlightInfo`` (sent bare)."""

    status: CancelStatus | int = _pb(1, _Kind.ENUM, CancelStatus.UNSPECIFIED, of=CancelStatus)


@dataclass(frozen=True)
class DoPutUpdateResult:
    """DoPut answer to updates and ingests (sent bare in ``PutResult.app_metadata``).

    ``record_count`` -1 means "unknown".
    """

    record_count: int = _pb(1, _Kind.INT64, 0)


@dataclass(frozen=True)
class DoPutPreparedStatementResult:
    """Optional DoPut answer to parameter binding (bare in ``app_metadata``).

    A handle here replaces the client's previous one; ``None`` keeps it.
    """

    prepared_statement_handle: bytes | None = _pb(1, _Kind.BYTES)


@dataclass(frozen=True)
class CommandGetCatalogs:
    """Metadata: list catalogs."""


@dataclass(frozen=True)
class CommandGetDbSchemas:
    """Metadata: list database schemas. ``None`` filters mean "do not filter";
    an empty ``catalog`` means "schemas without a catalog"."""

    catalog: str | None = _pb(1, _Kind.STRING)
    db_schema_filter_pattern: str | None = _pb(2, _Kind.STRING)  # LIKE-style: % and _


@dataclass(frozen=True)
class CommandGetTables:
    """Metadata: list tables, optionally with their IPC-serialized Arrow schemas."""

    catalog: str | None = _pb(1, _Kind.STRING)
    db_schema_filter_pattern: str | None = _pb(2, _Kind.STRING)
    table_name_filter_pattern: str | None = _pb(3, _Kind.STRING)
    table_types: list[str] = _pb(4, _Kind.REPEATED_STRING)  # empty = any type
    include_schema: bool = _pb(5, _Kind.BOOL, False)


@dataclass(frozen=True)
class CommandGetTableTypes:
    """Metadata: list table types."""


@dataclass(frozen=True)
class CommandGetSqlInfo:
    """Metadata: server/SQL capabilities; an empty ``info`` asks for everything."""

    info: list[int] = _pb(1, _Kind.REPEATED_UINT32)


@dataclass(frozen=True)
class CommandGetPrimaryKeys:
    """Metadata: primary key columns of ``table``."""

    catalog: str | None = _pb(1, _Kind.STRING)
    db_schema: str | None = _pb(2, _Kind.STRING)
    table: str = _pb(3, _Kind.STRING, "")


@dataclass(frozen=True)
class CommandGetExportedKeys:
    """Metadata: foreign keys referencing ``table``'s primary key."""

    catalog: str | None = _pb(1, _Kind.STRING)
    db_schema: str | None = _pb(2, _Kind.STRING)
    table: str = _pb(3, _Kind.STRING, "")


@dataclass(frozen=True)
class CommandGetImportedKeys:
    """Metadata: foreign keys of ``table``."""

    catalog: str | None = _pb(1, _Kind.STRING)
    db_schema: str | None = _pb(2, _Kind.STRING)
    table: str = _pb(3, _Kind.STRING, "")


@dataclass(frozen=True)
class CommandGetCrossReference:
    """Metadata: foreign keys of ``fk_table`` that reference ``pk_table``."""

    pk_catalog: str | None = _pb(1, _Kind.STRING)
    pk_db_schema: str | None = _pb(2, _Kind.STRING)
    pk_table: str = _pb(3, _Kind.STRING, "")
    fk_catalog: str | None = _pb(4, _Kind.STRING)
    fk_db_schema: str | None = _pb(5, _Kind.STRING)
    fk_table: str = _pb(6, _Kind.STRING, "")


@dataclass(frozen=True)
class CommandGetXdbcTypeInfo:
    """Metadata: SQL type catalogue; ``data_type`` None means all types."""

    data_type: int | None = _pb(1, _Kind.INT32)


@dataclass(frozen=True)
class Unsupported:
    """A Flight SQL message the spec defines but this server does not implement.

    Returned instead of raising so the server can answer UNIMPLEMENTED (naming
    ``type_name``) rather than INVALID_ARGUMENT. ``value`` is the undecoded body.
    """

    type_name: str
    value: bytes = b""


Message = Union[
    CommandStatementQuery, CommandStatementUpdate, CommandStatementIngest,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, TicketStatementQuery,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    ActionClosePreparedStatementRequest, ActionCancelQueryRequest, ActionCancelQueryResult,
    DoPutUpdateResult, DoPutPreparedStatementResult,
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables, CommandGetTableTypes,
    CommandGetSqlInfo, CommandGetPrimaryKeys, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetCrossReference, CommandGetXdbcTypeInfo,
]
"""Every message this codec can encode and decode (all are Any-wrappable)."""

Command = Union[Message, Unsupported]
"""What :func:`decode_command` returns."""

_MESSAGES: dict[str, type] = {cls.__name__: cls for cls in Message.__args__}  # type: ignore[attr-defined]

# Spec messages that decode to ``Unsupported`` rather than an error.
_UNSUPPORTED = frozenset({
    "CommandStatementSubstraitPlan",
    "ActionCreatePreparedSubstraitPlanRequest",
    "ActionBeginTransactionRequest",
    "ActionEndTransactionRequest",
    "ActionBeginSavepointRequest",
    "ActionEndSavepointRequest",
})


# --------------------------------------------------------------------------------------
# Wire primitives
# --------------------------------------------------------------------------------------

_U64 = (1 << 64) - 1


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a base-128 varint (at most 10 bytes, truncated to 64 bits)."""
    result = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _U64, i + 1
        shift += 7
    if pos + 10 <= len(data):
        raise DecodeError(f"varint at byte {pos} is longer than 10 bytes")
    raise DecodeError(f"truncated varint at byte {pos}")


def _varint(value: int) -> bytes:
    """Encode ``value`` as a varint; negatives become 10-byte two's complement, as protobuf does."""
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """The generic field reader: yield ``(field number, wire type, value)`` in order.

    ``value`` is an ``int`` for varint and fixed-width fields and ``bytes`` for
    length-delimited ones. All current wire types are understood, so the caller can
    skip unknown fields of any kind; only the deprecated groups are refused.
    """
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError(f"field number 0 at byte {pos}")
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            if size > end - pos:
                raise DecodeError(f"field {number}: length {size} runs past the end of the message")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if size > end - pos:
                raise DecodeError(f"field {number}: truncated fixed-width value")
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        else:
            raise DecodeError(f"field {number}: unsupported wire type {wire} (groups are not used by Flight SQL)")
        yield number, wire, value


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{where}: string is not valid UTF-8") from exc


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len_field(number: int, payload: bytes) -> bytes:
    return _tag(number, _LEN) + _varint(len(payload)) + payload


# --------------------------------------------------------------------------------------
# Generic message codec driven by the dataclass field specs
# --------------------------------------------------------------------------------------

M = TypeVar("M")


def _specs(cls: type) -> dict[int, tuple[str, _Spec]]:
    return {f.metadata["pb"].number: (f.name, f.metadata["pb"]) for f in dataclasses.fields(cls) if "pb" in f.metadata}


def _decode_scalar(kind: _Kind, raw: int | bytes, where: str, of: type | None) -> Any:
    if kind is _Kind.STRING:
        return _utf8(raw, where)  # type: ignore[arg-type]
    if kind is _Kind.BYTES:
        return bytes(raw)  # type: ignore[arg-type]
    if kind is _Kind.BOOL:
        return raw != 0
    if kind is _Kind.INT64:
        return _signed(raw, 64)  # type: ignore[arg-type]
    if kind is _Kind.INT32:
        return _signed(raw, 32)  # type: ignore[arg-type]
    if kind is _Kind.UINT32:
        return raw & 0xFFFFFFFF  # type: ignore[operator]
    if kind is _Kind.ENUM:
        value = _signed(raw, 32)  # type: ignore[arg-type]
        try:
            return of(value)  # type: ignore[misc]
        except ValueError:
            return value  # proto3 enums are open: keep values newer than this codec
    raise AssertionError(kind)


def decode_message(cls: type[M], data: bytes) -> M:
    """Decode the bare (not Any-wrapped) protobuf message ``data`` as ``cls``."""
    data = bytes(data)
    specs = _specs(cls)
    values: dict[str, Any] = {}
    submessages: dict[int, bytearray] = {}
    for number, wire, raw in _iter_fields(data):
        if number not in specs:
            continue  # unknown field: skip, as protobuf requires
        name, spec = specs[number]
        where = f"{cls.__name__}.{name}"
        if spec.kind is _Kind.REPEATED_UINT32 and wire in (_LEN, _VARINT):
            items = values.setdefault(name, [])
            if wire == _VARINT:
                items.append(raw & 0xFFFFFFFF)  # type: ignore[operator]
            else:  # packed: a run of varints
                pos = 0
                while pos < len(raw):  # type: ignore[arg-type]
                    item, pos = _read_varint(raw, pos)  # type: ignore[arg-type]
                    items.append(item & 0xFFFFFFFF)
            continue
        if wire != _WIRE_OF.get(spec.kind):
            raise DecodeError(f"{where} (field {number}): wire type {wire}, expected {_WIRE_OF.get(spec.kind, '0 or 2')}")
        if spec.kind is _Kind.MESSAGE:
            submessages.setdefault(number, bytearray()).extend(raw)  # type: ignore[arg-type]
        elif spec.kind is _Kind.REPEATED_STRING:
            values.setdefault(name, []).append(_utf8(raw, where))  # type: ignore[arg-type]
        elif spec.kind is _Kind.STRING_MAP:
            entry = decode_message(_MapEntry, raw)  # type: ignore[arg-type]
            values.setdefault(name, {})[entry.key] = entry.value
        else:
            values[name] = _decode_scalar(spec.kind, raw, where, spec.of)
    for number, raw in submessages.items():
        # Repeated occurrences of a sub-message merge, which is what decoding their
        # concatenation does.
        name, spec = specs[number]
        values[name] = decode_message(spec.of, bytes(raw))  # type: ignore[arg-type]
    return cls(**values)


@dataclass(frozen=True)
class _MapEntry:
    """A ``map<string, string>`` entry, which protobuf encodes as this message."""

    key: str = _pb(1, _Kind.STRING, "")
    value: str = _pb(2, _Kind.STRING, "")


def _encode_scalar(kind: _Kind, value: Any, where: str) -> tuple[int, bytes]:
    """Wire type and payload of one scalar value."""
    if kind is _Kind.STRING:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected str, got {type(value).__name__}")
        return _LEN, value.encode("utf-8")
    if kind is _Kind.BYTES:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"{where}: expected bytes, got {type(value).__name__}")
        return _LEN, bytes(value)
    if not isinstance(value, int):
        raise TypeError(f"{where}: expected int, got {type(value).__name__}")
    if kind is _Kind.UINT32 and not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{where}: {value} is out of range for uint32")
    if kind in (_Kind.INT32, _Kind.ENUM) and not -(1 << 31) <= value < (1 << 31):
        raise ValueError(f"{where}: {value} is out of range for int32")
    if kind is _Kind.INT64 and not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{where}: {value} is out of range for int64")
    return _VARINT, _varint(int(value))


def encode_message(msg: Any) -> bytes:
    """Encode a message dataclass as a bare protobuf message (fields in number order)."""
    out = bytearray()
    fields = sorted((f for f in dataclasses.fields(msg) if "pb" in f.metadata), key=lambda f: f.metadata["pb"].number)
    for f in fields:
        spec: _Spec = f.metadata["pb"]
        value = getattr(msg, f.name)
        where = f"{type(msg).__name__}.{f.name}"
        if spec.kind is _Kind.REPEATED_UINT32:
            if value:  # proto3 packs repeated scalars
                out += _len_field(spec.number, b"".join(_encode_scalar(_Kind.UINT32, v, where)[1] for v in value))
        elif spec.kind is _Kind.REPEATED_STRING:
            for item in value:
                out += _len_field(spec.number, _encode_scalar(_Kind.STRING, item, where)[1])
        elif spec.kind is _Kind.STRING_MAP:
            for key in sorted(value):  # sorted for deterministic output
                out += _len_field(spec.number, encode_message(_MapEntry(key, value[key])))
        elif value is None:
            continue  # explicit-presence field that is absent
        elif spec.kind is _Kind.MESSAGE:
            out += _len_field(spec.number, encode_message(value))
        elif f.default is not None and value == f.default:
            continue  # proto3 does not write zero values of implicit-presence fields
        else:
            wire, payload = _encode_scalar(spec.kind, value, where)
            out += _len_field(spec.number, payload) if wire == _LEN else _tag(spec.number, wire) + payload
    return bytes(out)


# --------------------------------------------------------------------------------------
# google.protobuf.Any
# --------------------------------------------------------------------------------------


def type_url(msg: Any) -> str:
    """The ``Any`` type URL of a message dataclass (or class), e.g.
    ``type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery``."""
    cls = msg if isinstance(msg, type) else type(msg)
    if cls.__name__ not in _MESSAGES:
        raise TypeError(f"{cls.__name__} is not a Flight SQL message")
    return f"{TYPE_URL_PREFIX}{PACKAGE}.{cls.__name__}"


def encode_any(msg: Message) -> bytes:
    """Encode ``msg`` wrapped in a ``google.protobuf.Any`` (type_url = 1, value = 2)."""
    body = encode_message(msg)
    return _len_field(1, type_url(msg).encode("utf-8")) + (_len_field(2, body) if body else b"")


def decode_any(data: bytes) -> tuple[str, bytes]:
    """Split a ``google.protobuf.Any`` into its type URL and undecoded value."""
    url, value = "", b""
    for number, wire, raw in _iter_fields(bytes(data)):
        if number == 1 and wire == _LEN:
            url = _utf8(raw, "Any.type_url")  # type: ignore[arg-type]
        elif number == 2 and wire == _LEN:
            value = raw  # type: ignore[assignment]
    return url, value


KEPT_MAX_BYTES = 1024
"""Commands and tickets up to this size are decoded once and kept (see `decode_command`)."""


def decode_command(data: bytes) -> Command:
    """Decode an Any-wrapped Flight SQL message into its dataclass.

    Accepts any buffer-protocol object (``bytes``, ``pyarrow.Buffer``, ...). Like
    protobuf's ``Any.Is``, only the part of the type URL after the last ``/`` is
    looked at. Raises :class:`DecodeError` for malformed bytes, for type URLs outside
    the Flight SQL package and for Flight SQL types this codec does not know.

    A client sends the same small command again and again (a prepared statement's, a
    query's ticket): those are decoded once and the (frozen) message is shared.
    """
    raw = bytes(memoryview(data))
    return _decode_kept(raw) if len(raw) <= KEPT_MAX_BYTES else _decode_command(raw)


@functools.lru_cache(maxsize=1024)
def _decode_kept(raw: bytes) -> Command:
    return _decode_command(raw)


def _decode_command(raw: bytes) -> Command:
    url, value = decode_any(raw)
    if not url:
        raise DecodeError("not a Flight SQL command: no google.protobuf.Any type URL")
    full_name = url.rpartition("/")[2]
    package, _, name = full_name.rpartition(".")
    if package != PACKAGE:
        raise DecodeError(f"not a Flight SQL command: type {full_name!r} (type URL {url!r})")
    if name in _MESSAGES:
        return decode_message(_MESSAGES[name], value)
    if name in _UNSUPPORTED:
        return Unsupported(name, value)
    raise DecodeError(f"unknown Flight SQL message type {name!r} (type URL {url!r})")
