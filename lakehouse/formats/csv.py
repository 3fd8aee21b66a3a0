"""CSV bytes in, Arrow record batches out, with type inference that never corrupts a value.

The body of a CSV ingest can be gigabytes arriving over HTTP, so nothing here reads it whole.
The input is cut into blocks of about `BLOCK_SIZE` bytes that end where a record ends (after
a line break outside quotes), and each block is parsed on its own by Arrow from memory, all
columns as strings: Arrow never calls back into Python, and the next blocks are parsed on
helper threads while the current one is converted, so parsing and conversion overlap.

Every column is first parsed as *string*: that is the only way to look at the values before
committing to a type, and it keeps the original text at hand for when a guess proves wrong.
An empty unquoted field is NULL while a quoted empty field `""` is the empty string, the
distinction a CSV can express; null markers (`NA`, `NULL`, ... see `options`) are NULL in
typed columns. Types are inferred from the first `sample_rows` rows and each batch is
converted with `pyarrow.compute` casts plus a few cheap vectorised checks for the inputs a
cast would accept but mangle (`007` -> 7, `0x1F` -> 31, `1` -> true, `1e400` -> inf,
`12345678901234567890` -> a rounded float).

When a later batch holds a value the column's type cannot represent exactly, the column is
*widened* (int -> float64 -> string; others -> string) from that batch on, instead of failing
the ingest or altering the value. The schema returned up front is the one inferred from the
sample; batches yielded later may carry a wider type for some columns, and the caller brings
earlier batches up to the final schema (ingest rewrites the objects it wrote before).
`CsvNotes.widened` tells which columns widened, complete once the iterator is exhausted.
A column whose type was declared (`types=`, or the dataset's when appending without
evolution) never widens: a value that does not fit fails the read, naming row and column.
"""

from __future__ import annotations

import math
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lakehouse.errors import InvalidInput
from lakehouse.formats.compression import peek
from lakehouse.formats.options import DEFAULT_NULL_MARKERS, DELIMITERS, ReadOptions

__all__ = ["CsvNotes", "read_csv", "sniff_delimiter", "BLOCK_SIZE"]

BLOCK_SIZE = 4 << 20
"""Bytes parsed at a time; one block becomes one record batch (~tens of thousands of rows).
Measured on 1 GB of CSV: 8 MiB blocks peaked at 453 MB of RSS, 4 MiB at 368 MB, at the same
speed (ingest regroups batches into row groups anyway); 2 MiB was slower."""

PARSE_AHEAD = 2
"""Blocks parsed at once on helper threads while the calling one converts. Measured on 88 MB
of CSV on two cores: with one helper the parse was the bottleneck (0.67 s), with two 0.50 s,
as fast as Arrow's own streaming reader fed through a Python file (0.53 s), at 60 MB more
peak RSS (about two blocks and their tables)."""

SNIFF_BYTES = 64 << 10
"""How much of the start is looked at to sniff the delimiter: the header and a few dozen rows."""
_SNIFF_RECORDS = 30
_BOM = b"\xef\xbb\xbf"
_FLOAT_EXACT_INT = 2**53  # integers above this magnitude are not all representable as float64
_TIMESTAMP_UNIT = "us"

_INT_RE = re.compile(r"-?[0-9]+")
_INT_PATTERN = r"^-?[0-9]+$"
_FLOAT_PATTERN = r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NONFINITE_WORDS = ("nan", "inf", "infinity", "-inf", "-infinity", "+inf", "+infinity", "-nan", "+nan")
_NONFINITE_SET = pa.array(_NONFINITE_WORDS)
_BOOL_SET = pa.array(["true", "false"])
_LEADING_ZERO_PATTERN = r"^[+-]?0[0-9]"
_DATE_PATTERN = r"^[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}$"
_TIMESTAMP_PATTERN = r"^[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
_ZONED_PATTERN = r"^[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_SLASHED = r"^([0-9]{4})/([0-9]{2})/([0-9]{2})"
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%p", "%T", "%R", "%z", "%c")
_BAD_ROW_RE = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.DOTALL)

_INT = pa.int64()
_FLOAT = pa.float64()
_BOOL = pa.bool_()
_DATE = pa.date32()
_TS = pa.timestamp(_TIMESTAMP_UNIT)
_TS_UTC = pa.timestamp(_TIMESTAMP_UNIT, tz="UTC")
_STRING = pa.string()


@dataclass
class CsvNotes:
    """What reading decided, returned to the user in the ingest result.

    The user did not choose the dialect or the types, so they are told what was sniffed and
    where the guess was weak: columns kept as string although their sample looked typed (or
    was empty), columns whose type had to widen after the sample, and the null markers met.
    """

    string_fallback: list[str] = field(default_factory=list)
    """Columns kept as string because the sample was empty, ambiguous (values of mixed kinds,
    integers too large for int64 or float64, mixed time zones) or had leading zeros."""
    widened: dict[str, str] = field(default_factory=dict)
    """Column -> final type name, for columns widened after the sample. The same object is
    mutated while batches are produced: complete once the iterator is exhausted."""
    null_markers: dict[str, dict[str, int]] = field(default_factory=dict)
    """Column -> marker -> how many values it made NULL; complete once the iterator is exhausted."""
    delimiter: str = field(default=",", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"delimiter": self.delimiter, "string_fallback": self.string_fallback, "widened": self.widened, "null_markers": self.null_markers}


def read_csv(
    source: BinaryIO,
    options: ReadOptions | None = None,
    sample_rows: int = 1000,
    declared: Mapping[str, pa.DataType] | None = None,
    widen_declared: bool = False,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch], CsvNotes]:
    """Parse a UTF-8 CSV stream into Arrow batches, inferring column types from the first rows.

    `source` is read incrementally, a block at a time; memory stays within a few blocks
    whatever the size of the input. `declared` gives the types of some columns (by name,
    compared ignoring case) on top of `options.types`, such as the types of the dataset a
    file is appended to; with `widen_declared` those (not `options.types`) may still widen.

    Returns `(schema, batches, notes)`: `schema` is the one from the first `sample_rows` rows;
    a batch may have a WIDER type for a column than `schema` or than the batches before it
    (see the module docstring). Raises `InvalidInput` for an empty body, a bad header, a row
    with the wrong number of fields (naming its line), invalid UTF-8, or a value that does not
    fit a declared type (naming its row and column), here or while iterating.
    """
    options = options or ReadOptions()
    head, source = peek(source, SNIFF_BYTES)
    start = len(_BOM) if head.startswith(_BOM) else 0
    quote = options.quote.encode() if options.quote else None
    delimiter = options.delimiter or sniff_delimiter(head[start:], quote)
    if start:
        source.read(start)
    blocks = _Blocks(source, quote, options.escape.encode() if options.escape else None)
    stream = _BatchStream(blocks, options, delimiter, max(1, sample_rows), declared or {}, widen_declared)
    return stream.schema, stream, stream.notes


def sniff_delimiter(head: bytes, quote: bytes | None = b'"') -> str:
    """The delimiter of a CSV from its first bytes: the candidate that splits the header and
    every following record into the same number of fields, the most fields winning; else
    the one most frequent in the header; else a comma."""
    records = _first_records(head, quote)
    if not records:
        return ","
    best, best_count = None, 0
    for d in DELIMITERS:
        counts = [_count_outside_quotes(r, d.encode(), quote) for r in records]
        if counts[0] > best_count and all(c == counts[0] for c in counts):
            best, best_count = d, counts[0]
    if best is not None:
        return best
    header_counts = {d: _count_outside_quotes(records[0], d.encode(), quote) for d in DELIMITERS}
    top = max(DELIMITERS, key=lambda d: header_counts[d])
    return top if header_counts[top] > 0 else ","


def _first_records(head: bytes, quote: bytes | None) -> list[bytes]:
    """Up to `_SNIFF_RECORDS` complete, non-blank records from the start of the input."""
    records: list[bytes] = []
    pending = b""
    lines = head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    complete = lines[:-1] if len(lines) > 1 else lines
    for line in complete:
        pending = pending + b"\n" + line if pending else line
        if quote is not None and pending.count(quote) % 2:
            continue
        if pending.strip():
            records.append(pending)
        pending = b""
        if len(records) >= _SNIFF_RECORDS:
            break
    return records


def _count_outside_quotes(record: bytes, delimiter: bytes, quote: bytes | None) -> int:
    if quote is None:
        return record.count(delimiter)
    return sum(part.count(delimiter) for part in record.split(quote)[::2])


# -- blocks ------------------------------------------------------------------------------------


@dataclass
class _Block:
    data: bytes
    line: int
    """1-based line number of the block's first line."""


class _Blocks:
    """The input cut into blocks that each end where a record ends.

    A block ends after the last line break at which the quotes seen so far are balanced; what
    follows goes to the front of the next block. A record that does not end within
    `BLOCK_SIZE` bytes of its start is refused (it is nearly always a quote left open).
    """

    def __init__(self, source: BinaryIO, quote: bytes | None, escape: bytes | None) -> None:
        self._source = source
        self._quote = quote
        self._escape = escape
        self._carry = b""
        self._eof = False
        self._line = 1

    def next(self) -> _Block | None:
        """The next block, or None at the end. Called by one thread at a time."""
        while True:
            if self._eof:
                data, self._carry = self._carry, b""
                return self._emit(data) if data.strip(b"\r\n") else None
            chunk = _read_full(self._source, BLOCK_SIZE)
            if not chunk:
                self._eof = True
                continue
            data = self._carry + chunk if self._carry else chunk
            cut = self._last_record_end(data)
            if cut is None:
                if len(data) > BLOCK_SIZE:
                    raise InvalidInput(f"CSV row longer than {BLOCK_SIZE} bytes, the block size, at line {self._line} or after (is a quote left open?)")
                self._carry = data
                continue
            self._carry = data[cut:]
            if data[:cut].strip(b"\r\n"):
                return self._emit(data[:cut])
            self._emit(data[:cut])  # blank lines: counted, not parsed

    def _emit(self, data: bytes) -> _Block:
        block = _Block(data, self._line)
        self._line += data.count(b"\n") or data.count(b"\r")
        return block

    def _quotes(self, data: bytes, start: int = 0, end: int | None = None) -> int:
        assert self._quote is not None
        n = data.count(self._quote, start, end)
        return n - data.count(self._escape + self._quote, start, end) if self._escape else n

    def _last_record_end(self, data: bytes) -> int | None:
        end = len(data)
        if self._quote is None:
            brk = max(data.rfind(b"\n"), data.rfind(b"\r"))
            return brk + 1 if brk >= 0 else None
        total = self._quotes(data)
        after = 0
        while True:
            brk = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end))
            if brk < 0:
                return None
            after += self._quotes(data, brk, end)
            if (total - after) % 2 == 0:
                return brk + 1
            end = brk


def _read_full(source: BinaryIO, size: int) -> bytes:
    """`size` bytes unless the input ends first: a socket hands out small pieces."""
    first = source.read(size)
    if not first or len(first) == size:
        return first
    parts = [first]
    have = len(first)
    while have < size:
        chunk = source.read(size - have)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def _record_end(data: bytes, start: int, quote: bytes | None) -> int | None:
    """Offset just past the line break ending the record that starts at `start`, or None."""
    pos = start
    quotes = 0
    while True:
        cr = data.find(b"\r", pos)
        lf = data.find(b"\n", pos)
        brk = min(p for p in (cr, lf) if p >= 0) if cr >= 0 or lf >= 0 else -1
        if brk < 0:
            return None
        if quote is not None:
            quotes += data.count(quote, pos, brk)
        if quotes % 2 == 0:
            return brk + 2 if data[brk : brk + 2] == b"\r\n" else brk + 1
        pos = brk + 1


# -- columns -----------------------------------------------------------------------------------


@dataclass
class _Column:
    name: str
    type: pa.DataType = _STRING
    declared: bool = False
    """The type was given, not inferred: parse it as the user (or the dataset) wants."""
    strict: bool = False
    """A value that does not fit fails the read instead of widening the column."""
    nulls: pa.Array | None = None
    """Values that are NULL in this column besides the empty field."""
    comma: bool = False
    """Numbers are written with a decimal comma."""
    max_abs: int = 0
    """The largest magnitude of the integers converted so far: widening to float64 keeps them
    exact only below 2**53."""


# -- batches -----------------------------------------------------------------------------------


@dataclass
class _Raw:
    table: pa.Table
    block: _Block
    rows_before: int


class _BatchStream:
    """The iterator of converted batches; constructing it reads the header and the sample.

    The next block is read and parsed on a helper thread while the current one is converted.
    Dropping the stream or `close()` stops that; exhausting the iterator or an error closes it.
    """

    def __init__(
        self,
        blocks: _Blocks,
        options: ReadOptions,
        delimiter: str,
        sample_rows: int,
        declared: Mapping[str, pa.DataType],
        widen_declared: bool,
    ) -> None:
        self._blocks = blocks
        self._options = options
        self._delimiter = delimiter
        self.notes = CsvNotes(delimiter=delimiter)
        self._columns: list[_Column] = []
        self._rows = 0
        self._done = False
        self._ready: list[pa.RecordBatch] = []
        self._pool: ThreadPoolExecutor | None = None
        self._parsing: deque[Future[tuple[pa.Table, _Block]]] = deque()
        self._blocks_done = False
        first = blocks.next()
        if first is None:
            raise InvalidInput("empty CSV")
        rest = self._read_header(first)
        self._setup(rest, sample_rows, declared, widen_declared)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self._columns])

    # header
    def _parse_options(self) -> pacsv.ParseOptions:
        o = self._options
        return pacsv.ParseOptions(
            delimiter=self._delimiter,
            quote_char=o.quote or False,
            double_quote=True,
            escape_char=o.escape or False,
            newlines_in_values=o.quote is not None,
        )

    def _read_header(self, first: _Block) -> _Block:
        """Read the names (or count the fields) from the first record; the block after it."""
        data = first.data
        start = 0
        while start < len(data) and data[start] in b"\r\n":
            start += 1
        quote = self._options.quote.encode() if self._options.quote else None
        end = _record_end(data, start, quote) or len(data)
        record = data[start:end]
        width = self._parse_text(record, None).num_columns
        header = self._parse_text(record, [f"f{i}" for i in range(width)])
        try:
            header.validate(full=True)
        except pa.ArrowInvalid:
            raise InvalidInput(f"CSV is not valid UTF-8 at line {first.line} (the first row; give encoding= for another encoding)", {"line": first.line}) from None
        row = [header.column(i)[0].as_py() for i in range(width)] if header.num_rows else []
        given = self._options.names
        if given is not None and len(given) != width:
            raise InvalidInput(f"names lists {len(given)} columns but the CSV has {width}")
        if self._options.header:
            names = list(given) if given is not None else [v if v is not None else "" for v in row]
            lines_used = data.count(b"\n", 0, end) or data.count(b"\r", 0, end)
            rest = _Block(data[end:], first.line + lines_used)
        else:
            names = list(given) if given is not None else [f"column{i}" for i in range(width)]
            rest = first
        _check_names(names)
        self._columns = [_Column(n) for n in names]
        return rest

    def _parse_text(self, data: bytes, names: list[str] | None) -> pa.Table:
        read = pacsv.ReadOptions(autogenerate_column_names=names is None, column_names=names, use_threads=False)
        convert = pacsv.ConvertOptions(
            column_types={n: _STRING for n in names} if names else None,
            strings_can_be_null=names is not None,
            quoted_strings_can_be_null=False,
            null_values=[""],
            check_utf8=False,
        )
        try:
            return pacsv.read_csv(pa.py_buffer(data + (b"" if data.endswith((b"\n", b"\r")) else b"\n")), read, self._parse_options(), convert)
        except pa.ArrowInvalid as exc:
            raise InvalidInput(f"cannot parse the CSV header row ({_plain(exc)}): are its quotes balanced?") from None

    # blocks
    def _parse(self, block: _Block) -> pa.Table:
        """One block as a table of string columns, parsed by Arrow from memory."""
        names = [f"f{i}" for i in range(len(self._columns))]
        # One chunk per column: parsing runs on the helper thread, beside the conversion, and
        # chunks would have to be copied together before the conversion anyway.
        read = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=len(block.data) + 1)
        convert = pacsv.ConvertOptions(
            column_types={n: _STRING for n in names},
            strings_can_be_null=True,  # an empty unquoted field is NULL...
            quoted_strings_can_be_null=False,  # ...and "" is the empty string
            null_values=[""],
            check_utf8=False,  # checked while converting, string columns only (_check_utf8)
        )
        try:
            return pacsv.read_csv(pa.py_buffer(block.data), read, self._parse_options(), convert)
        except pa.ArrowInvalid as exc:
            raise self._bad_row(exc, block) from None

    def _bad_row(self, exc: pa.ArrowInvalid, block: _Block) -> InvalidInput:
        m = _BAD_ROW_RE.search(str(exc))
        if m is None:
            return InvalidInput(f"malformed CSV near line {block.line}: {_plain(exc)}", {"line": block.line})
        expected, got, text = int(m.group(1)), int(m.group(2)), m.group(3)
        line = _line_of(block, text.encode("utf-8", "surrogateescape"))
        where = f"line {line}" if line is not None else "a row"
        shown = text if len(text) <= 200 else text[:200] + "..."
        return InvalidInput(f"CSV {where}: expected {expected} fields (as in the header), got {got}: {shown!r}", {"line": line, "expected": expected, "got": got})

    def _read_raw(self) -> _Raw | None:
        while True:
            block = self._blocks.next()
            if block is None:
                return None
            table = self._parse(block)
            if table.num_rows:
                return _Raw(table, block, 0)

    def _start(self) -> None:
        self._pool = ThreadPoolExecutor(PARSE_AHEAD, thread_name_prefix="csv-parse")
        self._submit()

    def _submit(self) -> None:
        """Read blocks (in order, here) and hand them to the helper threads to parse."""
        assert self._pool is not None
        while not self._blocks_done and len(self._parsing) < PARSE_AHEAD:
            block = self._blocks.next()
            if block is None:
                self._blocks_done = True
                return
            self._parsing.append(self._pool.submit(lambda b=block: (self._parse(b), b)))

    def _take(self) -> _Raw | None:
        """The next parsed block, in order; the blocks after it are parsed meanwhile."""
        while self._parsing:
            parsing = self._parsing.popleft()
            self._submit()
            table, block = parsing.result()
            if table.num_rows:
                return _Raw(table, block, 0)
        return None

    # sample and types
    def _setup(self, rest: _Block, sample_rows: int, declared: Mapping[str, pa.DataType], widen_declared: bool) -> None:
        sample: list[_Raw] = []
        table = self._parse(rest) if rest.data.strip(b"\r\n") else None
        if table is not None and table.num_rows:
            sample.append(_Raw(table, rest, 0))
        rows = table.num_rows if table is not None else 0
        while rows < sample_rows:
            raw = self._read_raw()
            if raw is None:
                self._done = True
                break
            sample.append(raw)
            rows += raw.table.num_rows
        if not self._done:
            self._start()  # the next block is parsed while the sample is examined
        self._decide_types(sample, sample_rows, declared, widen_declared)
        # Convert what was read with the sample now: a widening it forces then costs no rewrite.
        converted = self._convert_all(sample)
        while any(not c.schema.equals(self.schema) for c in converted):
            converted = self._convert_all(sample)
        self._ready = converted

    def _convert_all(self, sample: list[_Raw]) -> list[pa.RecordBatch]:
        self._rows = 0
        self.notes.null_markers.clear()
        return [self._convert(r) for r in sample]

    def _decide_types(self, sample: list[_Raw], sample_rows: int, declared: Mapping[str, pa.DataType], widen_declared: bool) -> None:
        options = self._options
        given = {k.lower(): t for k, t in options.types.items()}
        by_dataset = {k.lower(): t for k, t in declared.items()}
        unknown = [k for k in options.types if k.lower() not in {c.name.lower() for c in self._columns}]
        if unknown:
            raise InvalidInput(f"types names columns the CSV does not have: {', '.join(map(repr, unknown))}")
        explicit = pa.array([m for m in options.null_values if m], _STRING) if options.null_values is not None else None
        defaults = pa.array(DEFAULT_NULL_MARKERS, _STRING)
        table = pa.concat_tables([r.table for r in sample]).slice(0, sample_rows) if sample else None
        decimal_comma = options.decimal == "," or (options.decimal is None and self._delimiter == ";")
        for i, col in enumerate(self._columns):
            key = col.name.lower()
            values = table.column(i).combine_chunks() if table is not None else pa.array([], _STRING)
            self._check_utf8(values, i, sample[0].block if sample else None)
            markers = explicit if explicit is not None else defaults
            col.comma = decimal_comma
            if key in given or key in by_dataset:
                col.type = given.get(key, by_dataset.get(key))
                col.declared = True
                col.strict = key in given or not widen_declared
                _check_readable(col)
            else:
                col.type, fallback = _infer(_mask(values, markers), decimal_comma, options.date_format)
                if fallback:
                    self.notes.string_fallback.append(col.name)
            if explicit is not None:
                col.nulls = explicit if len(explicit) else None
            elif not pa.types.is_string(col.type):
                col.nulls = defaults

    # converting
    def _convert(self, raw: _Raw) -> pa.RecordBatch:
        raw.rows_before = self._rows
        arrays = [self._column(i, _single(raw.table.column(i)), raw) for i in range(len(self._columns))]
        self._rows += raw.table.num_rows
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _check_utf8(self, s: pa.Array, i: int, block: _Block | None) -> None:
        """Arrow's UTF-8 check is off (it would run while parsing): a value that cast to a
        number, bool or time was ASCII, so only string columns need it."""
        try:
            s.validate(full=True)
        except pa.ArrowInvalid:
            line = _line_of_bad_utf8(block) if block is not None else None
            where = f" at line {line}" if line is not None else ""
            raise InvalidInput(f"CSV is not valid UTF-8{where} in column {self._columns[i].name!r} (give encoding= for another encoding)", {"line": line}) from None

    def _column(self, i: int, s: pa.Array, raw: _Raw) -> pa.Array:
        col = self._columns[i]
        text = s
        masked = col.nulls is None  # markers are looked for only when a value does not parse
        while True:
            t = col.type
            if pa.types.is_string(t):
                if not masked:
                    s, masked = self._null_markers(col, text), True
                self._check_utf8(s, i, raw.block)
                return s
            v = _parse_as(s, col, self._options.date_format)
            if v is not None and not masked and pa.types.is_floating(t) and _any(pc.is_nan(v)):
                v = None  # "nan" parses, but may be one of the markers
            if v is not None:
                if pa.types.is_integer(t) and len(v):
                    bounds = pc.min_max(v)
                    if bounds["min"].as_py() is not None:
                        col.max_abs = max(col.max_abs, abs(bounds["min"].as_py()), abs(bounds["max"].as_py()))
                return v
            if not masked:
                s, masked = self._null_markers(col, text), True
                continue
            if col.strict:
                raise _misfit(col, s, raw.rows_before, self._options.date_format)
            wider = _FLOAT if pa.types.is_integer(t) and col.max_abs <= _FLOAT_EXACT_INT else _STRING
            col.type, col.declared = wider, False
            self.notes.widened[col.name] = _type_name(wider)

    def _null_markers(self, col: _Column, s: pa.Array) -> pa.Array:
        assert col.nulls is not None
        hits = pc.is_in(s, value_set=col.nulls)
        if not _any(hits):
            return s
        met = self.notes.null_markers.setdefault(col.name, {})
        counts = pc.value_counts(pc.filter(s, hits))
        for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()):
            met[value] = met.get(value, 0) + count
        return pc.if_else(hits, pa.scalar(None, _STRING), s)

    # iteration
    def __iter__(self) -> "_BatchStream":
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._ready:
            return self._ready.pop(0)
        if self._done:
            self.close()
            raise StopIteration
        try:
            raw = self._take()
            if raw is None:
                self.close()
                raise StopIteration
            return self._convert(raw)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop reading: no block is parsed after the one under way."""
        self._done = True
        self._ready.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            for parsing in self._parsing:
                parsing.cancel()
            self._parsing.clear()
            pool.shutdown(wait=True)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _check_names(names: list[str]) -> None:
    empty = [str(i + 1) for i, n in enumerate(names) if n is None or n.strip() == ""]
    if empty:
        raise InvalidInput(f"CSV header has an empty column name (column {', '.join(empty)})")
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for n in names:
        key = n.lower()
        if key in seen:
            clashes.append(f"{seen[key]!r} and {n!r}" if seen[key] != n else repr(n))
        else:
            seen[key] = n
    if clashes:
        raise InvalidInput(f"CSV header has duplicate column names (compared ignoring case, as DuckDB does): {', '.join(clashes)}")


def _check_readable(col: _Column) -> None:
    t = col.type
    ok = (
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
        or pa.types.is_decimal(t) or pa.types.is_boolean(t) or pa.types.is_date32(t) or pa.types.is_timestamp(t)
        or pa.types.is_binary(t)
    )
    if not ok:
        raise InvalidInput(f"cannot read CSV column {col.name!r} as {t}: numbers, text, booleans, dates, timestamps and binary can be read from CSV")


def _plain(exc: Exception) -> str:
    return str(exc).replace("CSV parse error: ", "")[:300]


def _line_of(block: _Block, needle: bytes) -> int | None:
    """The line where the raw row `needle` starts in the block: the first place where it fills
    a whole line (rows before it had the right number of fields, so they are not the same text)."""
    data = block.data
    pos = data.find(needle)
    while pos >= 0:
        end = pos + len(needle)
        starts_line = pos == 0 or data[pos - 1 : pos] in (b"\n", b"\r")
        if starts_line and (end == len(data) or data[end : end + 1] in (b"\r", b"\n")):
            return block.line + data.count(b"\n", 0, pos)
        pos = data.find(needle, pos + 1)
    return None


def _line_of_bad_utf8(block: _Block) -> int | None:
    try:
        block.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return block.line + block.data.count(b"\n", 0, exc.start)
    return None


def _mask(values: pa.Array, markers: pa.Array) -> pa.Array:
    if not len(markers):
        return values
    return pc.if_else(pc.is_in(values, value_set=markers), pa.scalar(None, _STRING), values)


_TYPE_NAMES = {_FLOAT: "float64", _BOOL: "bool", _DATE: "date32", _TS: f"timestamp[{_TIMESTAMP_UNIT}]", _TS_UTC: f"timestamp[{_TIMESTAMP_UNIT}, UTC]"}


def _type_name(t: pa.DataType) -> str:
    return _TYPE_NAMES.get(t, str(t))


def _misfit(col: _Column, s: pa.Array, rows_before: int, date_format: str | None) -> InvalidInput:
    """The error for the first value of `s` that does not fit `col`'s declared type."""
    for j, value in enumerate(s.to_pylist()):
        if value is not None and _parse_as(pa.array([value], _STRING), col, date_format) is None:
            row = rows_before + j + 1
            shown = value if len(value) <= 100 else value[:100] + "..."
            return InvalidInput(
                f"CSV row {row}, column {col.name!r}: {shown!r} is not a valid {_type_name(col.type)}; nothing was written",
                {"row": row, "column": col.name, "value": shown, "type": _type_name(col.type)},
            )
    return InvalidInput(f"CSV column {col.name!r}: a value is not a valid {_type_name(col.type)}; nothing was written", {"column": col.name})


# -- types -------------------------------------------------------------------------------------


def _infer(column: pa.Array, decimal_comma: bool = False, date_format: str | None = None) -> tuple[pa.DataType, bool]:
    """The narrowest type that holds every sample value exactly, and whether string is a fallback.

    Order: int64, float64, bool, date32, timestamp, string (a `date_format` is tried first). A
    fallback is a column kept as string although most of its values looked typed (or there
    were none): the user should know. Patterns are matched with Arrow's vectorised kernels;
    Python only sees the odd long number.
    """
    s = pc.drop_null(column)
    n = len(s)
    if n == 0:
        return _STRING, True
    if date_format is not None:
        target = _format_type(date_format)
        if _strptime(s, date_format, target) is not None:
            return target, False

    def count(mask: pa.Array) -> int:
        return int(pc.sum(mask).as_py() or 0)

    def match(pattern: str, values: pa.Array = s) -> pa.Array:
        return pc.match_substring_regex(values, pattern)

    num = _decimal_point(s) if decimal_comma else s
    lower = pc.utf8_lower(s)
    is_int = match(_INT_PATTERN)
    is_float = pc.and_not(match(_FLOAT_PATTERN, num), is_int)
    is_word = pc.is_in(lower, value_set=_NONFINITE_SET)
    is_bool = pc.is_in(lower, value_set=_BOOL_SET)
    is_date = match(_DATE_PATTERN)
    is_stamp = match(_TIMESTAMP_PATTERN)
    ints, floats, words, bools, dates, stamps = map(count, (is_int, is_float, is_word, is_bool, is_date, is_stamp))
    looked_typed = ints + floats + words + bools + dates + stamps
    if looked_typed < n:  # some value is plain text: ambiguous if most were not
        return _STRING, looked_typed * 2 > n
    if ints + floats + words == n:
        if _any(match(_LEADING_ZERO_PATTERN)):
            return _STRING, True
        long_ones = pc.filter(num, pc.greater_equal(pc.binary_length(num), 16)).to_pylist()  # 2**53 has 16 digits
        if ints == n:
            if all(-(2**63) <= int(v) < 2**63 for v in long_ones):
                return _INT, False
            return _STRING, True  # beyond int64: as float it would lose digits
        if words == n:
            return _STRING, True  # only nan/inf words
        exponents = pc.filter(num, pc.match_substring(num, "e", ignore_case=True)).to_pylist()
        if all(_float_exact(v) for v in long_ones + exponents):
            return _FLOAT, False
        return _STRING, True
    if bools == n:
        return _BOOL, False
    if dates + stamps == n:
        zoned = count(match(_ZONED_PATTERN))
        if stamps == 0:
            target = _DATE
        elif zoned == n:
            target = _TS_UTC
        elif zoned == 0:
            target = _TS  # a date alone is that day's midnight
        else:
            return _STRING, True  # some with a zone, some without
        if _to_temporal(s, target) is None:
            return _STRING, True  # 2024-02-30, 25:00, more than microseconds...
        return target, False
    return _STRING, True  # a mix of kinds


def _parse_as(s: pa.Array, col: _Column, date_format: str | None) -> pa.Array | None:
    """`s` as `col`'s type, or None if some value does not fit it exactly."""
    t = col.type
    if pa.types.is_integer(t):
        return _to_int(s, t, col.declared)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        num = _decimal_point(s) if col.comma else s
        if pa.types.is_decimal(t):
            return _cast(num, t)
        return _to_float(num, t, col.declared)
    if pa.types.is_boolean(t):
        return _cast(s, t) if col.declared else _to_bool(s)
    if pa.types.is_date32(t) or pa.types.is_timestamp(t):
        if date_format is not None:
            parsed = _strptime(s, date_format, t)
            if parsed is not None:
                return parsed
        return _to_temporal(s, t)
    if pa.types.is_large_string(t) or pa.types.is_binary(t):
        return s.cast(t)
    return None


def _decimal_point(s: pa.Array) -> pa.Array:
    """Numbers written with a decimal comma, rewritten with a point (`1,5` -> `1.5`)."""
    return pc.replace_substring(s, ",", ".")


def _cast(s: pa.Array, t: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(s, t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _float_exact(text: str) -> bool:
    """Whether float64 keeps what `text` says: integers exactly, no overflow to infinity."""
    lower = text.lower()
    if lower in _NONFINITE_WORDS:
        return True
    value = float(text)
    if math.isinf(value):
        return False
    if _INT_RE.fullmatch(text) and abs(value) >= _FLOAT_EXACT_INT:
        return int(text) == int(value)
    return True


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask, min_count=0).as_py())


def _starts_long(s: pa.Array, prefix: str, min_len: int) -> bool:
    """Whether a value starts with `prefix` and is at least `min_len` bytes long."""
    hits = pc.starts_with(s, prefix)
    if not _any(hits):
        return False
    return bool(pc.max(pc.binary_length(pc.filter(s, hits))).as_py() >= min_len)


def _has_leading_zero(s: pa.Array) -> bool:
    """Whether a number is written with a leading zero (007, -01.5): such text is a code, not a
    number, and a number would drop the zeros. Only values starting with 0 get the regex."""
    for prefix in ("0", "-0", "+0"):
        hits = pc.starts_with(s, prefix)
        if _any(hits) and _any(pc.match_substring_regex(pc.filter(s, hits), _LEADING_ZERO_PATTERN)):
            return True
    return False


def _to_int(s: pa.Array, t: pa.DataType = _INT, declared: bool = False) -> pa.Array | None:
    v = _cast(s, t)
    if v is None:
        return None  # not an integer, or out of the type's range
    if declared:
        # The cast also reads 0x1F as 31: hexadecimal is never what a CSV means by a number.
        return None if _any(pc.match_substring(s, "x", ignore_case=True)) else v
    # ...and 007 as 7 (and -0 as 0): all start with 0 or -0.
    if _starts_long(s, "0", 2) or _starts_long(s, "-0", 2):
        return None
    return v


def _to_float(s: pa.Array, t: pa.DataType = _FLOAT, declared: bool = False) -> pa.Array | None:
    v = _cast(s, t)
    if v is None:
        return None
    if not declared and _has_leading_zero(s):
        return None
    # Infinity is either written so or an overflow (1e400), and past 2**53 float64 no longer
    # holds every integer: such rare values get a closer look. (NaN only comes from "nan".)
    bounds = pc.min_max(v)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is None or (-_FLOAT_EXACT_INT < lo and hi < _FLOAT_EXACT_INT):
        return v
    suspect = pc.or_kleene(pc.is_inf(v), pc.greater_equal(pc.abs(v), _FLOAT_EXACT_INT))
    texts = pc.filter(s, suspect)
    words = pc.is_in(pc.utf8_lower(texts), value_set=_NONFINITE_SET)
    for text in pc.filter(texts, pc.invert(words)).to_pylist():
        if not _float_exact(text):
            return None
    return v


def _to_bool(s: pa.Array) -> pa.Array | None:
    # Arrow also reads 1 and 0 as booleans: in a CSV those are integers, so they do not fit.
    shortest = pc.min(pc.binary_length(s)).as_py()
    if shortest is not None and shortest < 4:
        return None
    return _cast(s, _BOOL)


def _to_temporal(s: pa.Array, target: pa.DataType) -> pa.Array | None:
    """ISO 8601 dates and times, also with slashes (`2012/01/31`)."""
    v = _cast(s, target)
    if v is None and _any(pc.match_substring(s, "/")):
        v = _cast(pc.replace_substring_regex(s, _SLASHED, r"\1-\2-\3"), target)
    return v


def _format_type(date_format: str) -> pa.DataType:
    if "%z" in date_format:
        return _TS_UTC
    return _TS if any(d in date_format for d in _TIME_DIRECTIVES) else _DATE


def _strptime(s: pa.Array, date_format: str, target: pa.DataType) -> pa.Array | None:
    """`s` read with a strptime format as `target`; None if a value does not match it exactly."""
    try:
        parsed = pc.strptime(s, format=date_format, unit=_TIMESTAMP_UNIT, error_is_null=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_timestamp(target) and target.tz is not None and parsed.type.tz is None:
        parsed = pc.assume_timezone(parsed, target.tz)
    return _cast(parsed, target)
