"""Newline-delimited JSON uploads: one object per line, read a block of lines at a time.

Each block (whole lines, about `BLOCK_SIZE` bytes) is parsed by Arrow from memory. The first
block's inferred types, with the user's `types`, make the schema; a later block whose value
needs a wider type widens the column along the evolution rules (int -> float64 -> string)
instead of failing, and the ingest brings earlier objects up to it, as for CSV. A field that
first appears after the first block is refused, naming it: declare it with `types=`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.json as pajson

from lakehouse.errors import InvalidInput
from lakehouse.evolution import fit, promote

if TYPE_CHECKING:
    from lakehouse.formats import Parsed, ReadContext
    from lakehouse.formats.options import ReadOptions

BLOCK_SIZE = 4 << 20


def read(source: BinaryIO, options: "ReadOptions", context: "ReadContext") -> "Parsed":
    from lakehouse.formats import Parsed

    lines = _Lines(source)
    first = lines.next()
    if first is None:
        raise InvalidInput("empty NDJSON body")
    declared = {**{k.lower(): t for k, t in context.declared.items()}, **{k.lower(): t for k, t in options.types.items()}}
    table = _parse(first[0], first[1], None)
    fields = [f.with_type(declared.get(f.name.lower(), f.type)) for f in table.schema]
    fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in fields]
    stream = _Stream(lines, pa.schema(fields), table, first[1])
    return Parsed(stream.schema, stream)


class _Stream:
    def __init__(self, lines: "_Lines", schema: pa.Schema, first: pa.Table, line: int) -> None:
        self._lines = lines
        self.schema = schema
        self._pending: pa.Table | None = first
        self._line = line
        self._rows = 0

    def __iter__(self) -> "_Stream":
        return self

    def __next__(self) -> pa.RecordBatch:
        table = self._pending
        self._pending = None
        if table is None:
            block = self._lines.next()
            if block is None:
                raise StopIteration
            table = _parse(block[0], block[1], self.schema)
        self._widen(table)
        batch = fit(table, self.schema, self._rows).combine_chunks().to_batches()
        self._rows += table.num_rows
        return batch[0] if batch else pa.RecordBatch.from_pylist([], schema=self.schema)

    def _widen(self, table: pa.Table) -> None:
        known = {f.name for f in self.schema}
        extra = [n for n in table.schema.names if n not in known]
        if extra:
            raise InvalidInput(f"NDJSON field {extra[0]!r} first appears after the first {BLOCK_SIZE >> 20} MiB: declare it with types=")
        fields = []
        for f in self.schema:
            other = table.schema.field(f.name) if f.name in table.schema.names else None
            t = promote(f.type, other.type) if other is not None else f.type
            fields.append(f.with_type(t) if t is not None else f)
        self.schema = pa.schema(fields)

    def close(self) -> None:
        self._pending = None


def _parse(data: bytes, line: int, schema: pa.Schema | None) -> pa.Table:
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False)
    try:
        return pajson.read_json(pa.py_buffer(data), read_options=pajson.ReadOptions(use_threads=True, block_size=1 << 20), parse_options=parse)
    except pa.ArrowInvalid as exc:
        if schema is not None:
            return _parse(data, line, None)  # a value wider than the schema: inferred, then widened
        raise InvalidInput(f"invalid NDJSON in the lines from line {line}: {str(exc)[:300]}", {"line": line}) from None


class _Lines:
    """The input as blocks of whole lines."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._carry = b""
        self._eof = False
        self._line = 1

    def next(self) -> tuple[bytes, int] | None:
        while True:
            if self._eof:
                data, self._carry = self._carry, b""
                return self._emit(data) if data.strip() else None
            chunk = self._source.read(BLOCK_SIZE)
            if not chunk:
                self._eof = True
                continue
            data = self._carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) > 4 * BLOCK_SIZE:
                    raise InvalidInput(f"an NDJSON line longer than {4 * BLOCK_SIZE} bytes at line {self._line}")
                self._carry = data
                continue
            self._carry = data[cut:]
            if data[:cut].strip():
                return self._emit(data[:cut])

    def _emit(self, data: bytes) -> tuple[bytes, int]:
        line = self._line
        self._line += data.count(b"\n")
        return data, line
