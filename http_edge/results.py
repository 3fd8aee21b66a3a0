"""Query results as the formats a client can ask for: a JSON array, NDJSON, CSV or Arrow IPC.

A result is cut at a row limit. Its first `LOOKAHEAD_BYTES` are read before the response
starts: a result that ends (or passes the limit) within them is answered whole, with an exact
truncation header; any other streams from there, batch by batch, so memory holds that much
plus a batch whatever the result's size, and the header says `unknown` (the body's trailer
says for certain). Nothing past the limit is ever read.

JSON values are written faithfully: dates and timestamps as ISO 8601, decimals as strings
(a DuckDB `sum` of integers is a 128-bit decimal), binary as base64, lists as arrays, structs
as objects, maps as arrays of [key, value], NULL and NaN as null. Python's datetime holds
microseconds only, so nanosecond times are turned into text by Arrow before rows become
Python values: ISO 8601 with nine digits for a column, Arrow's text form when nested.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any, Callable

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from lakehouse.query import QueryResult

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
ARROW_STREAM = "application/vnd.apache.arrow.stream"


# Anything msgspec has no notation for is written as its text rather than failing the response.
_JSON = msgspec.json.Encoder(enc_hook=str)
_ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"  # Arrow adds the fraction digits of the unit


LOOKAHEAD_BYTES = 1024 * 1024
"""How much of a result is read before the response starts (a few batches): a result that
ends (or passes the row limit) within it is answered whole, with an exact truncation header,
and an error met in it is a 4xx; a larger one streams on from there."""


TRUNCATED_KEY = "$truncated"
"""The key of the object that ends a cut JSON or NDJSON body (see `Rows.trailer`)."""
TRUNCATED_METADATA = b"lakehouse.truncated"


class Rows:
    """A result cut at a row limit: the batches read ahead, then the rest as they come.

    `truncated` is True or False when the result ended (or passed the limit) within the
    look-ahead, and None when it was still going: the response streams before that is known.
    Once the batches are exhausted, `cut` says for certain whether rows were left out, and the
    encoders end a cut body with a trailer a client sees without looking at headers.
    """

    def __init__(self, schema: pa.Schema, head: list[pa.RecordBatch], rest: Iterator[pa.RecordBatch], truncated: bool | None, limit: int) -> None:
        self.schema = schema
        self.head = head
        self._rest = rest
        self.truncated = truncated
        self.limit = limit
        self.cut = bool(truncated)

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self.head
        for item in self._rest:
            if item is _CUT:
                self.cut = True
            else:
                yield item  # type: ignore[misc]

    def trailer(self) -> dict[str, Any]:
        return {TRUNCATED_KEY: {"max_rows": self.limit, "message": f"the result has more than {self.limit} rows; only the first {self.limit} are here"}}


_CUT = object()


def first_rows(result: QueryResult, limit: int, lookahead_bytes: int = LOOKAHEAD_BYTES) -> Rows:
    """Read `result` until the limit, its end or `lookahead_bytes`, whichever comes first."""
    head: list[pa.RecordBatch] = []
    count = size = 0
    try:
        for batch in result:
            if count + batch.num_rows > limit:
                head.append(batch.slice(0, limit - count))
                result.close()
                return Rows(result.schema, head, iter(()), True, limit)
            head.append(batch)
            count += batch.num_rows
            size += batch.nbytes
            if size >= lookahead_bytes:
                return Rows(result.schema, head, _up_to(result, limit - count), None, limit)
    except BaseException:
        result.close()
        raise
    return Rows(result.schema, head, iter(()), False, limit)


def _up_to(result: QueryResult, remaining: int) -> Iterator[pa.RecordBatch | object]:
    """The rest of a result up to `remaining` rows, then `_CUT` if any row was left out."""
    with result:
        for batch in result:
            if batch.num_rows > remaining:
                if remaining:
                    yield batch.slice(0, remaining)
                yield _CUT
                return
            remaining -= batch.num_rows
            yield batch


def json_array(rows: Rows) -> Iterator[bytes]:
    """A JSON array of row objects; a cut result ends with one more object, `{"$truncated": ...}`."""
    yield b"["
    separator = b""
    for batch in rows.batches():
        if batch.num_rows:
            yield separator + _JSON.encode(_pylist(batch))[1:-1]
            separator = b","
    if rows.cut:
        yield separator + _JSON.encode(rows.trailer())
    yield b"]"


def ndjson(rows: Rows) -> Iterator[bytes]:
    """One row object per line; a cut result ends with a line `{"$truncated": ...}`."""
    for batch in rows.batches():
        if batch.num_rows:
            yield _JSON.encode_lines(_pylist(batch))
    if rows.cut:
        yield _JSON.encode_lines([rows.trailer()])


def csv(rows: Rows) -> Iterator[bytes]:
    """CSV with a header; columns CSV has no notation for are written as text: binary as
    base64, lists, structs, maps, intervals and durations as JSON."""
    converters = {i: _text_converter(f.type) for i, f in enumerate(rows.schema) if not _csv_native(f.type)}
    schema = pa.schema([pa.field(f.name, pa.string()) if i in converters else f for i, f in enumerate(rows.schema)])
    sink = io.BytesIO()
    writer = pa_csv.CSVWriter(sink, schema)
    for batch in rows.batches():
        columns = [pa.array([converters[i](v) for v in _ns_as_text(c).to_pylist()], pa.string()) if i in converters else c for i, c in enumerate(batch.columns)]
        writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
        yield _drain(sink)
    writer.close()
    yield _drain(sink)
    if rows.cut:  # a comment line, as readers that take comment="#" skip it
        yield f"# truncated: {rows.trailer()[TRUNCATED_KEY]['message']}\n".encode()


def arrow_stream(rows: Rows) -> Iterator[bytes]:
    """The IPC stream; a cut result ends with an empty batch whose custom metadata says
    `lakehouse.truncated: true` (`read_next_batch_with_custom_metadata`)."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        for batch in rows.batches():
            writer.write_batch(batch)
            yield _drain(sink)
        if rows.cut:
            metadata = {TRUNCATED_METADATA: b"true", b"lakehouse.max_rows": str(rows.limit).encode()}
            writer.write_batch(pa.RecordBatch.from_pylist([], schema=rows.schema), custom_metadata=metadata)
    yield _drain(sink)


ENCODERS: dict[str, Callable[[Rows], Iterator[bytes]]] = {JSON: json_array, NDJSON: ndjson, CSV: csv, ARROW_STREAM: arrow_stream}


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _csv_native(t: pa.DataType) -> bool:
    return not (_is_binary(t) or pa.types.is_nested(t) or pa.types.is_interval(t) or pa.types.is_duration(t))


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t)


def _text_converter(t: pa.DataType) -> Callable[[Any], str | None]:
    if _is_binary(t):
        return lambda v: None if v is None else base64.b64encode(v).decode("ascii")
    return lambda v: None if v is None else _JSON.encode(v).decode()


def _pylist(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    if any(_has_ns(f.type) for f in batch.schema):
        batch = pa.RecordBatch.from_arrays([_ns_as_text(c) for c in batch.columns], names=batch.schema.names)
    return batch.to_pylist()


def _has_ns(t: pa.DataType) -> bool:
    """Whether a type is, or holds, a timestamp, time or duration of nanoseconds."""
    return getattr(t, "unit", None) == "ns" or any(_has_ns(t.field(i).type) for i in range(t.num_fields))


def _ns_as_text(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_timestamp(t) and t.unit == "ns":
        return pc.strftime(column, _ISO_SECONDS + ("%Ez" if t.tz else ""))
    return column.cast(_text_for_ns(t)) if _has_ns(t) else column


def _text_for_ns(t: pa.DataType) -> pa.DataType:
    """The same type with every nanosecond leaf as string, for Arrow's nested cast."""
    if getattr(t, "unit", None) == "ns":
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_text_for_ns(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(t.key_field.with_type(_text_for_ns(t.key_type)), t.item_field.with_type(_text_for_ns(t.item_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_text_for_ns(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_text_for_ns(t.value_type)), t.list_size)
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_text_for_ns(t.value_type)))
    return t
