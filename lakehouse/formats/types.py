"""Column type names as users write them, DuckDB's or Arrow's spelling, to Arrow types.

A user declaring `types={"zip": "VARCHAR", "price": "decimal128(10,2)"}` thinks in the SQL
they will query with or in the Arrow they produce; both spellings are accepted, compared
ignoring case, and nothing else: a name this module does not know is refused, not guessed.
"""

from __future__ import annotations

import re
import zoneinfo

import pyarrow as pa

from lakehouse.errors import InvalidInput

__all__ = ["parse_type"]

_DUCKDB = {
    "bigint": pa.int64(), "int8": pa.int64(), "long": pa.int64(),
    "integer": pa.int32(), "int": pa.int32(), "int4": pa.int32(), "signed": pa.int32(),
    "smallint": pa.int16(), "int2": pa.int16(), "short": pa.int16(),
    "tinyint": pa.int8(), "int1": pa.int8(),
    "ubigint": pa.uint64(), "uinteger": pa.uint32(), "usmallint": pa.uint16(), "utinyint": pa.uint8(),
    "double": pa.float64(), "float8": pa.float64(),
    "float": pa.float32(), "real": pa.float32(), "float4": pa.float32(),
    "varchar": pa.string(), "text": pa.string(), "string": pa.string(), "char": pa.string(), "bpchar": pa.string(),
    "boolean": pa.bool_(), "bool": pa.bool_(), "logical": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "datetime": pa.timestamp("us"),
    "timestamp_s": pa.timestamp("s"), "timestamp_ms": pa.timestamp("ms"), "timestamp_ns": pa.timestamp("ns"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "blob": pa.binary(), "bytea": pa.binary(),
}
_DECIMAL_RE = re.compile(r"^(?:decimal|numeric|decimal128)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_TIMESTAMP_RE = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([^\]]+))?\]$")
_OFFSET_RE = re.compile(r"^[+-]\d\d:\d\d$")
_DUCKDB_DECIMAL = (18, 3)  # DuckDB's DECIMAL without arguments


def parse_type(name: str) -> pa.DataType:
    """The Arrow type `name` spells (`BIGINT`, `DECIMAL(10,2)`, `int64`, `timestamp[ms]`...).

    Raises `InvalidInput` naming the type for anything else.
    """
    text = " ".join(str(name).split()).lower()
    if text in _DUCKDB:
        return _DUCKDB[text]
    m = _DECIMAL_RE.match(text)
    if m is not None:
        precision = int(m.group(1)) if m.group(1) else _DUCKDB_DECIMAL[0]
        scale = int(m.group(2)) if m.group(2) else (0 if m.group(1) else _DUCKDB_DECIMAL[1])
        if not 1 <= precision <= 38 or scale > precision:
            raise InvalidInput(f"invalid decimal type {name!r}: precision 1 to 38, scale at most the precision")
        return pa.decimal128(precision, scale)
    m = _TIMESTAMP_RE.match(text)
    if m is not None and m.group(2):  # Arrow's own spelling, as a manifest's schema shows it
        zone = " ".join(str(name).split())[m.start(2) : m.end(2)]
        if not _OFFSET_RE.match(zone):
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise InvalidInput(f"unknown time zone {zone!r} in type {name!r}") from None
        return pa.timestamp(m.group(1), tz=zone)
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        raise InvalidInput(f"unknown type {name!r}: use a DuckDB name (BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMP, DECIMAL(p,s)...) or an Arrow one (int64, float64, string, date32, timestamp[us]...)") from None
