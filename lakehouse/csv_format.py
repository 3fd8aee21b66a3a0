"""CSV bytes in, Arrow record batches out, with type inference that never corrupts a value.

The body of a CSV ingest can be gigabytes arriving over HTTP, so nothing here reads it whole:
Arrow's streaming CSV reader parses it block by block (`BLOCK_SIZE`, large so that the
Parquet writer gets large batches) and a small adapter (`_Input`) feeds it from the caller's
file object, counts bytes against `max_bytes` and applies back-pressure (see `_Input`).

Every column is first parsed as *string*: that is the only way to look at the values before
committing to a type, and it keeps the original text at hand for when a guess proves wrong.
Arrow is set up so that an empty unquoted field is NULL while a quoted empty field `""` is the
empty string, the distinction a CSV can express. Types are then inferred from the first
`sample_rows` rows and each batch is converted with `pyarrow.compute` casts plus a few cheap
vectorised checks for the inputs a cast would accept but mangle (`007` -> 7, `0x1F` -> 31,
`1` -> true, `1e400` -> inf, `12345678901234567890` -> a rounded float).

When a later batch holds a value the column's type cannot represent exactly, the column is
*widened* (int64 -> float64 -> string; bool, date32 and timestamp -> string) from that batch
on, instead of failing the ingest or altering the value. The schema returned up front is the
one inferred from the sample (and any batches read with it); batches yielded later may carry a
wider type for some columns. The caller must accept that and bring earlier batches up to the
final schema (ingest rewrites the objects it wrote before: `_ObjectWriter.unify`).
`CsvNotes.widened` tells which columns widened, and is complete once the iterator is exhausted.
"""

from __future__ import annotations

import math
import queue
import re
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lakehouse.errors import InvalidInput, TooLarge

__all__ = ["CsvNotes", "read_csv_batches", "BLOCK_SIZE"]

_T = TypeVar("_T")

BLOCK_SIZE = 4 << 20
"""Bytes Arrow parses at a time; one block becomes one record batch (~tens of thousands of rows).
Measured on 1 GB of CSV: 8 MiB blocks peaked at 453 MB of RSS, 4 MiB at 368 MB, at the same
speed (ingest regroups batches into row groups anyway); 2 MiB was slower."""

_READ_AHEAD = 1
"""Blocks Arrow may read beyond the one it is parsing. Arrow itself would queue up to 32."""

_STALL_SECONDS = 0.25
"""How long a reader held back by back-pressure waits while the consumer is itself waiting
for a batch before it reads anyway: a row larger than a block needs more blocks than usual."""

_RELEASE_GRACE_SECONDS = 0.01
"""After Arrow lets go of the input, how long its thread may take to leave Python for good."""

_MAX_HEADER_BYTES = BLOCK_SIZE
_PEEK_BYTES = 64 << 10

_FLOAT_EXACT_INT = 2**53  # integers above this magnitude are not all representable as float64
_TIMESTAMP_UNIT = "us"

_INT_RE = re.compile(r"-?[0-9]+")
_INT_PATTERN = r"^-?[0-9]+$"
_FLOAT_PATTERN = r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NONFINITE_WORDS = ("nan", "inf", "infinity", "-inf", "-infinity", "+inf", "+infinity", "-nan", "+nan")
_NONFINITE_SET = pa.array(_NONFINITE_WORDS)
_BOOL_SET = pa.array(["true", "false"])
_LEADING_ZERO_PATTERN = r"^[+-]?0[0-9]"
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
_ZONED_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_BAD_ROW_RE = re.compile(r"Expected (\d+) columns, got (\d+)")

_TYPE_NAMES = {
    pa.int64(): "int64",
    pa.float64(): "float64",
    pa.bool_(): "bool",
    pa.date32(): "date32",
    pa.timestamp(_TIMESTAMP_UNIT): f"timestamp[{_TIMESTAMP_UNIT}]",
    pa.timestamp(_TIMESTAMP_UNIT, tz="UTC"): f"timestamp[{_TIMESTAMP_UNIT}, UTC]",
    pa.string(): "string",
}


@dataclass
class CsvNotes:
    """What inference decided, returned to the user in the ingest result.

    The user did not choose the types, so they are told where the guess was weak: columns kept
    as string although their sample looked typed (or was empty), and columns whose type had to
    widen after the sample because a later value did not fit.
    """

    string_fallback: list[str] = field(default_factory=list)
    """Columns kept as string because the sample was empty, ambiguous (values of mixed kinds,
    integers too large for int64 or float64, mixed time zones) or had leading zeros."""
    widened: dict[str, str] = field(default_factory=dict)
    """Column -> final type name, for columns widened after the sample. The same object is
    mutated while batches are produced: complete once the iterator is exhausted."""


def read_csv_batches(source: BinaryIO, sample_rows: int = 1000, max_bytes: int | None = None) -> tuple[pa.Schema, Iterator[pa.RecordBatch], CsvNotes]:
    """Parse a CSV stream into Arrow batches, inferring column types from the first rows.

    `source` is read incrementally, a block at a time; memory stays within a few blocks
    whatever the size of the input. More than `max_bytes` bytes of input raises `TooLarge`.

    The first line is the header: column names, which must be non-empty and unique (compared
    case-insensitively, as DuckDB does). Returns `(schema, batches, notes)`: `schema` is the
    schema inferred from the first `sample_rows` rows; a batch from `batches` may have a WIDER
    type for a column than `schema` or than the batches before it (see the module docstring);
    the caller unifies. `notes` is filled in as the batches are produced.

    Raises `InvalidInput` for an empty body, a bad header, a row with the wrong number of
    fields (naming its line) or invalid UTF-8, here or while iterating.
    """
    sample_rows = max(1, sample_rows)
    inp = _Input(source, max_bytes)
    try:
        stream = _BatchStream(inp, inp.header_width(), sample_rows)
    except BaseException:
        inp.close()
        inp.wait_released()
        raise
    return stream.schema, stream, stream.notes


# -- input -------------------------------------------------------------------------------------


class _Input:
    """The caller's stream as the file object Arrow's CSV reader reads from.

    Arrow reads on a background IO thread and, unchecked, queues up to 32 blocks ahead of the
    consumer whenever the consumer is slower than the network, as it is while it uploads
    objects. So `read` holds the IO thread back until the consumer has taken enough batches
    (one block makes one batch). It also fills each block completely
    (a socket hands out small pieces; a small block would make a small batch), counts bytes
    against `max_bytes`, and keeps the last few blocks so that an error can be located by line
    (Arrow's streaming reader does not number rows).
    """

    def __init__(self, source: BinaryIO, max_bytes: int | None) -> None:
        self._source = source
        self._max_bytes = max_bytes
        self._pending = b""  # peeked while looking at the header, served first
        self.total = 0
        self.closed = False
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._blocks = 0
        self._consumed = 0  # batches Arrow has handed out: what back-pressure counts
        self._released = 0  # batches fully converted: what the kept blocks are trimmed by
        self._waiting = False
        self._window: deque[tuple[int, bytes | bytearray]] = deque()
        self._lines_before_window = 0
        self._window_at_start = True
        self._byte_before_window = b""
        self._arrow_done = threading.Event()  # set once Arrow has dropped its file object
        self._arrow_done.set()
        self.arrow_threads: set[int] = set()  # Arrow's threads that ran our Python code
        self._released_by: int | None = None

    def arrow_file(self) -> pa.PythonFile:
        """The file object to hand Arrow, which tells when Arrow has let go of it.

        Arrow's IO thread calls into Python through it, and may still do so (a last read, the
        final release of the object) after the reader has failed or been dropped. A process
        that exits meanwhile aborts ("PyGILState_Release ... finalizing"), so `wait_released`
        waits for that moment before a stream counts as closed.
        """
        proxy = _ArrowSide(self)
        self._arrow_done.clear()
        weakref.finalize(proxy, self._on_arrow_release)
        return pa.PythonFile(proxy, mode="r")

    def _on_arrow_release(self) -> None:
        self._released_by = threading.get_ident()
        self._arrow_done.set()

    def wait_released(self, timeout: float = 5.0) -> bool:
        if not self._arrow_done.wait(timeout):
            return False
        if self._released_by in self.arrow_threads:
            # That thread of Arrow's is still leaving Python (PyGILState_Release): a moment.
            time.sleep(_RELEASE_GRACE_SECONDS)
        return True

    def close(self) -> None:
        """From now on reads return end of input at once (the kept blocks stay, to locate errors).

        An end rather than an error: Arrow keeps an error's traceback alive after the reader is
        gone, and with it Python objects that its threads would free later (see `arrow_file`).
        """
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def drop_window(self) -> None:
        with self._cond:
            self._window.clear()

    def read(self, size: int = -1) -> bytes | bytearray:
        self.arrow_threads.add(threading.get_ident())
        try:
            self._hold_back()
            if self.closed:
                return b""
            size = size if size is not None and size >= 0 else BLOCK_SIZE
            data = self._fill(size)
            if len(data) == size:
                cut = _safe_end(data)
                if cut < len(data):
                    self._pending = data[cut:] + self._pending
                    data = data[:cut]
            with self._cond:
                self._window.append((self._blocks, data))
                self._blocks += 1
                self._evict()
            return data
        except BaseException as exc:
            # Kept so the consumer re-raises the original, not Arrow's wrapping of it.
            if self.error is None:
                self.error = exc
            raise

    def _hold_back(self) -> None:
        with self._cond:
            while not self.closed and self._blocks >= self._consumed + 1 + _READ_AHEAD:
                seen = self._consumed
                if not self._cond.wait(_STALL_SECONDS) and self._waiting and self._consumed == seen:
                    return  # Arrow needs more than the usual blocks for the batch it owes

    def _fill(self, size: int) -> bytes | bytearray:
        """Read exactly `size` bytes unless the source ends first, as one buffer.

        A socket hands out small pieces, and a small block would make a small batch. Arrow
        wraps the returned object without copying, so each block is in memory once.
        """
        head = self._pending[:size]
        self._pending = self._pending[size:]
        if len(head) == size:
            return head
        buf: bytearray | None = None
        have = len(head)
        while have < size:
            chunk = self._source.read(size - have)
            if not chunk:
                break
            self._count(len(chunk))
            if buf is None:
                if not head and len(chunk) == size and isinstance(chunk, bytes):
                    return chunk  # the usual case for a file: no copy at all
                buf = bytearray(size)
                buf[:have] = head
            buf[have : have + len(chunk)] = chunk
            have += len(chunk)
        if buf is None:
            return head
        if have < size:
            del buf[have:]
        return buf

    def _count(self, n: int) -> None:
        self.total += n
        if self._max_bytes is not None and self.total > self._max_bytes:
            raise TooLarge(f"CSV body larger than {self._max_bytes} bytes", {"max_bytes": self._max_bytes})

    def _evict(self) -> None:
        # A batch not yet released starts at the earliest in the block before its own (its
        # first row may straddle), and a batch's own block is at least the batch's index.
        while self._window and self._window[0][0] < self._released - 1:
            _, old = self._window.popleft()
            self._lines_before_window += old.count(b"\n")
            self._window_at_start = False
            self._byte_before_window = old[-1:]

    # consumer side
    def begin_wait(self) -> None:
        with self._cond:
            self._waiting = True
            self._cond.notify_all()

    def end_wait(self, got_batch: bool) -> None:
        with self._cond:
            self._waiting = False
            if got_batch:
                self._consumed += 1
            self._cond.notify_all()

    def release(self) -> None:
        """One more batch is converted: errors can no longer be in blocks before it."""
        with self._cond:
            self._released += 1

    # header
    def header_width(self) -> int:
        """An upper bound on the number of fields in the header row, from the raw bytes.

        Arrow is told to type every column as string by name, before it has read the names;
        with generated names (f0, f1, ...) a bound on their count is enough. The header record
        ends at the first line break outside quotes (an even number of quotes before it).
        """
        buf = bytearray()
        start = 0
        while True:
            chunk = self._source.read(_PEEK_BYTES)
            if chunk:
                self._count(len(chunk))
                buf += chunk
            eof = not chunk
            if start == 0 and buf.startswith(b"\xef\xbb\xbf"):
                start = 3
            while start < len(buf) and buf[start] in b"\r\n":  # Arrow skips empty lines
                start += 1
            end = _record_end(buf, start)
            if end is not None or eof:
                break
            if len(buf) > _MAX_HEADER_BYTES:
                raise InvalidInput(f"CSV header row longer than {_MAX_HEADER_BYTES} bytes")
        if start >= len(buf):
            raise InvalidInput("empty CSV")
        if end is None and eof:
            buf += b"\n"  # Arrow cannot take a lone header line without its line break
        self._pending = bytes(buf)
        return buf.count(b",", start, len(buf) if end is None else end) + 1

    # locating errors
    def _window_bytes(self) -> tuple[bytes, int, bool, bytes]:
        with self._cond:
            data = b"".join(d for _, d in self._window)
            return data, self._lines_before_window, self._window_at_start, self._byte_before_window

    def line_of_row(self, text: str) -> int | None:
        """The 1-based line where the raw row `text` starts, if it is in the kept blocks.

        The first place where `text` fills a whole line is taken: rows before it in the kept
        blocks had the right number of fields, so they cannot be the same text.
        """
        data, lines, at_start, before = self._window_bytes()
        needle = text.encode("utf-8", "surrogateescape")
        pos = data.find(needle)
        while pos >= 0:
            end = pos + len(needle)
            previous = data[pos - 1 : pos] if pos > 0 else before
            starts_line = previous in (b"\n", b"\r") or (at_start and (pos == 0 or (pos == 3 and data.startswith(b"\xef\xbb\xbf"))))
            if starts_line and (end == len(data) or data[end : end + 1] in (b"\r", b"\n")):
                return lines + data.count(b"\n", 0, pos) + 1
            pos = data.find(needle, pos + 1)
        return None

    def line_of_bad_utf8(self) -> int | None:
        """The 1-based line of the first invalid UTF-8 byte in the kept blocks, if any."""
        data, lines, at_start, _ = self._window_bytes()
        skip = 0
        if not at_start:  # the kept blocks may begin inside a multi-byte character
            while skip < 3 and skip < len(data) and 0x80 <= data[skip] <= 0xBF:
                skip += 1
        try:
            data[skip:].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data" and exc.end >= len(data) - skip:
                return None  # a character cut at the end of what was read so far
            return lines + data.count(b"\n", 0, skip + exc.start) + 1
        return None


def _safe_end(block: bytes | bytearray) -> int:
    """Where a full block may end so that no block boundary falls where Arrow mishandles it.

    Arrow drops a "\n" that starts a block after one that ended in "\r", even inside a quoted
    value ("a\r\nb" becomes "a\rb": apache/arrow#51368). And a row cut inside a UTF-8
    character, as the last one is when a stream is closed early, makes pyarrow print
    "Exception ignored" instead of calling the invalid-row handler. The bytes past the
    returned offset go to the front of the next block.
    """
    end = len(block)
    lead = end - 1
    while lead > end - 4 and lead > 0 and 0x80 <= block[lead] <= 0xBF:
        lead -= 1  # back over continuation bytes to the character's first byte
    first = block[lead]
    need = 2 if 0xC0 <= first < 0xE0 else 3 if 0xE0 <= first < 0xF0 else 4 if first >= 0xF0 else 1
    if lead + need > end and lead > 0:
        end = lead  # the character is cut: keep it whole for the next block
    if end > 1 and block[end - 1] == 0x0D:
        end -= 1
    return end


class _ArrowSide:
    """What Arrow holds: reads go to the `_Input`; its end marks Arrow letting go (`arrow_file`)."""

    closed = False  # after `_Input.close`, reads return end of input instead

    def __init__(self, inp: _Input) -> None:
        # The bound method itself, not a method calling it: a traceback Arrow keeps from a
        # failed read then holds the `_Input`, not this object, whose end must be observable.
        self.read = inp.read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _record_end(buf: bytes | bytearray, start: int) -> int | None:
    """Offset of the line break ending the record that starts at `start`, or None if unseen."""
    pos = start
    quotes = 0
    while True:
        cr = buf.find(b"\r", pos)
        lf = buf.find(b"\n", pos)
        brk = min(p for p in (cr, lf) if p >= 0) if cr >= 0 or lf >= 0 else -1
        if brk < 0:
            return None
        quotes += buf.count(b'"', pos, brk)
        if quotes % 2 == 0:
            return brk
        pos = brk + 1


# -- types -------------------------------------------------------------------------------------


_INT = pa.int64()
_FLOAT = pa.float64()
_BOOL = pa.bool_()
_DATE = pa.date32()
_TS = pa.timestamp(_TIMESTAMP_UNIT)
_TS_UTC = pa.timestamp(_TIMESTAMP_UNIT, tz="UTC")
_STRING = pa.string()


def _infer(column: pa.Array) -> tuple[pa.DataType, bool]:
    """The narrowest type that holds every sample value exactly, and whether string is a fallback.

    Order: int64, float64, bool, date32, timestamp, string. A fallback is a column kept as
    string although most of its values looked typed (or there were none): the user should know.
    Patterns are matched with Arrow's vectorised kernels; Python only sees the odd long number.
    """
    s = pc.drop_null(column)
    n = len(s)
    if n == 0:
        return _STRING, True

    def count(mask: pa.Array) -> int:
        return int(pc.sum(mask).as_py() or 0)

    def match(pattern: str) -> pa.Array:
        return pc.match_substring_regex(s, pattern)

    lower = pc.utf8_lower(s)
    is_int = match(_INT_PATTERN)
    is_float = pc.and_not(match(_FLOAT_PATTERN), is_int)
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
        long_ones = pc.filter(s, pc.greater_equal(pc.binary_length(s), 16)).to_pylist()  # 2**53 has 16 digits
        if ints == n:
            if all(-(2**63) <= int(v) < 2**63 for v in long_ones):
                return _INT, False
            return _STRING, True  # beyond int64: as float it would lose digits
        if words == n:
            return _STRING, True  # only nan/inf words
        exponents = pc.filter(s, pc.match_substring(s, "e", ignore_case=True)).to_pylist()
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
        try:
            pc.cast(s, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _STRING, True  # 2024-02-30, 25:00, more than microseconds...
        return target, False
    return _STRING, True  # a mix of kinds


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


def _to_int(s: pa.Array) -> pa.Array | None:
    try:
        v = pc.cast(s, _INT)
    except pa.ArrowInvalid:
        return None  # not an integer, or beyond int64
    # The cast also reads 007 as 7 and 0x1F as 31 (and -0 as 0): all start with 0 or -0.
    if _starts_long(s, "0", 2) or _starts_long(s, "-0", 2):
        return None
    return v


def _to_float(s: pa.Array) -> pa.Array | None:
    try:
        v = pc.cast(s, _FLOAT)
    except pa.ArrowInvalid:
        return None
    if _has_leading_zero(s):
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
    try:
        return pc.cast(s, _BOOL)
    except pa.ArrowInvalid:
        return None


def _to_temporal(s: pa.Array, target: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(s, target)
    except pa.ArrowInvalid:
        return None


# -- batches -----------------------------------------------------------------------------------


class _RawBatches:
    """Arrow's streaming reader of all-string batches, and the thread that reads ahead.

    Arrow parses one block at a time on one core and converting a batch costs about half as
    much again, so a thread takes the next batch from Arrow (which releases the GIL while it
    parses) while the consumer converts the last one, and at the end tears the reader down
    (`_teardown`). It holds this object only, not the `_BatchStream`, so an abandoned stream
    is still collected and its `__del__` stops it.
    """

    def __init__(self, inp: _Input, width: int, row_errors: list[pacsv.InvalidRow]) -> None:
        self.inp = inp
        errors = row_errors
        arrow_threads = inp.arrow_threads

        def on_invalid_row(row: pacsv.InvalidRow) -> str:
            arrow_threads.add(threading.get_ident())
            # Kept to be raised with its line (Arrow's message has none) after the batch. Not
            # "error": a reader that fails while opening can leave its IO thread running
            # briefly, and a process exiting meanwhile aborts (see `_Input.arrow_file`).
            errors.append(row)
            return "skip"

        read = pacsv.ReadOptions(block_size=BLOCK_SIZE, autogenerate_column_names=True)
        parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row)
        convert = pacsv.ConvertOptions(
            column_types={f"f{i}": _STRING for i in range(width)},
            strings_can_be_null=True,  # an empty unquoted field is NULL...
            quoted_strings_can_be_null=False,  # ...and "" is the empty string
            null_values=[""],
            check_utf8=False,  # checked while converting, off the parsing thread (_check_utf8)
        )
        self._queue: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # reads ahead, then tears down
        inp.begin_wait()
        try:
            self.reader: pacsv.CSVStreamingReader | None = pacsv.open_csv(inp.arrow_file(), read_options=read, parse_options=parse, convert_options=convert)
        finally:
            inp.end_wait(False)

    def next_now(self) -> pa.RecordBatch | None:
        """The next batch, read on this thread; None at the end."""
        self.inp.begin_wait()
        got = False
        try:
            assert self.reader is not None
            batch = self.reader.read_next_batch()
            got = True
            return batch
        except StopIteration:
            return None
        finally:
            self.inp.end_wait(got)

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="csv-read-ahead", daemon=True)
                self._thread.start()

    def take(self) -> pa.RecordBatch | None:
        """The next batch from the read-ahead thread (started on first use); None at the end."""
        if self._thread is None:
            self.start()
        assert self._thread is not None
        while True:
            try:
                item = self._queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("CSV read-ahead thread ended without a result") from None
        if isinstance(item, BaseException):
            raise item
        return item

    def _run(self) -> None:
        try:
            self._pump()
        finally:
            # Not in _pump: an error it held would hold Arrow's file object (its traceback).
            self._teardown()

    def _pump(self) -> None:
        while not self._stop.is_set():
            item: pa.RecordBatch | BaseException | None
            try:
                item = self.next_now()
            except BaseException as exc:  # raised again on the consumer's thread
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item is None or isinstance(item, BaseException):
                return

    def _teardown(self) -> None:
        """End Arrow's reader the one safe way: run it to its end, then drop it.

        A streaming reader dropped while its IO thread is still reading ahead can crash the
        process, and one dropped at exit aborts it (see `_Input.arrow_file`). So the input is
        closed (reads return end of input at once), the reader run to its end, dropped, and
        its file object awaited. Runs on the read-ahead thread, never on one of Arrow's.
        """
        self.inp.close()
        reader, self.reader = self.reader, None
        if reader is not None:
            for _ in range(1000):
                try:
                    reader.read_next_batch()
                except Exception:  # StopIteration at the end, or the error it already had
                    break
            del reader
        self.inp.wait_released()

    def close(self, wait: bool = True) -> None:
        """Stop reading; with `wait`, return only once Arrow is done with the input."""
        self._stop.set()
        self.inp.close()  # Arrow's IO thread gets end of input instead of waiting
        self.start()  # tears down if it has not read ahead yet: whatever thread calls this
        assert self._thread is not None
        if wait and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break


class _BatchStream:
    """The iterator of converted batches; constructing it reads the header and the sample.

    A class rather than a generator so that dropping it unread, or half read, still stops the
    read-ahead and releases Arrow's IO thread (`__del__`). `close()` does that and also waits
    until Arrow has let go of the input; exhausting the iterator or an error closes it.
    """

    def __init__(self, inp: _Input, width: int, sample_rows: int) -> None:
        self._inp = inp
        self._names: list[str] = []
        self._types: list[pa.DataType] = []
        self._done = False
        self._ready: deque[pa.RecordBatch] = deque()
        self.notes = CsvNotes()
        self._row_errors: list[pacsv.InvalidRow] = []  # rows Arrow found with a wrong field count
        self._raw = self._call(lambda: _RawBatches(inp, width, self._row_errors))
        try:
            self._setup(width, sample_rows)
        except BaseException:
            self._raw.close()
            raise

    def _setup(self, width: int, sample_rows: int) -> None:
        assert self._raw.reader is not None
        raw_schema = self._raw.reader.schema
        if any(not t.equals(_STRING) for t in raw_schema.types) or len(raw_schema) > width:
            raise InvalidInput("cannot parse the CSV header row: are its quotes balanced?")
        buffered = self._read_sample(sample_rows)
        if not self._done:
            self._raw.start()  # Arrow parses the next block while the sample is examined
        sample = pa.Table.from_batches(buffered, raw_schema).slice(0, sample_rows) if buffered else None
        for i, name in enumerate(self._names):
            col = sample.column(i).combine_chunks() if sample is not None else pa.array([], _STRING)
            self._check_utf8(col, i)
            t, fallback = _infer(col)
            self._types.append(t)
            if fallback:
                self.notes.string_fallback.append(name)
        self._int_max_abs = [0] * len(self._names)
        # Convert what was read with the sample now: a widening it forces then costs no rewrite.
        converted = [self._convert(b) for b in buffered]
        while any(not c.schema.equals(self.schema) for c in converted):
            converted = [self._convert(b) for b in buffered]
        self._ready.extend(converted)
        for _ in range(self._sample_batches):
            self._inp.release()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, t) for n, t in zip(self._names, self._types)])

    # reading
    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run a read, turning Arrow's errors into the core's (with a line number if we can)."""
        try:
            return fn()
        except Exception as exc:
            if self._inp.error is not None:
                # TooLarge, or the source's own failure. Its traceback is dropped: it holds
                # frames of Arrow's IO thread, and with them Arrow's file object (`arrow_file`).
                raise self._inp.error.with_traceback(None) from None
            if isinstance(exc, pa.ArrowInvalid):
                raise self._translate(exc) from None
            raise

    def _check_rows(self) -> None:
        """Raise for the first row Arrow found with the wrong number of fields, naming its line."""
        if not self._row_errors:
            return
        row = self._row_errors[0]
        line = self._inp.line_of_row(row.text)
        where = f"line {line}" if line is not None else "a row"
        text = row.text if len(row.text) <= 200 else row.text[:200] + "..."
        raise InvalidInput(
            f"CSV {where}: expected {row.expected_columns} fields (as in the header), got {row.actual_columns}: {text!r}",
            {"line": line, "expected": row.expected_columns, "got": row.actual_columns},
        )

    def _translate(self, exc: Exception) -> InvalidInput:
        message = str(exc)
        if "Empty CSV file" in message:
            return InvalidInput("empty CSV")
        if "straddling object straddles" in message:
            return InvalidInput(f"CSV row longer than {BLOCK_SIZE} bytes, the block size (is a quote left open?)")
        m = _BAD_ROW_RE.search(message)
        if m is not None:
            return InvalidInput(f"CSV row with {m.group(2)} fields, expected {m.group(1)}: {message}")
        return InvalidInput(f"malformed CSV: {message}")

    def _read_sample(self, sample_rows: int) -> list[pa.RecordBatch]:
        raw = self._raw
        first = self._call(raw.next_now)
        self._sample_batches = 1
        self._check_rows()
        while first is not None and first.num_rows == 0:  # a block of blank lines
            first = self._call(raw.next_now)
            self._sample_batches += 1
            self._check_rows()
        if first is None:
            raise InvalidInput("empty CSV")
        self._names = self._header(first)
        buffered = [first.slice(1)] if first.num_rows > 1 else []
        rows = first.num_rows - 1
        while rows < sample_rows:
            batch = self._call(raw.next_now)
            self._check_rows()
            if batch is None:
                self._done = True
                break
            self._sample_batches += 1
            if batch.num_rows:
                buffered.append(batch)
                rows += batch.num_rows
        return buffered

    def _header(self, first: pa.RecordBatch) -> list[str]:
        for i in range(first.num_columns):
            self._check_utf8(first.column(i).slice(0, 1), i)
        names = [first.column(i)[0].as_py() for i in range(first.num_columns)]
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
        return names

    # converting
    def _convert(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [self._column(i, raw.column(i)) for i in range(len(self._names))]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _check_utf8(self, s: pa.Array, i: int) -> None:
        """Arrow's UTF-8 check is off (it would run on the parsing thread, the bottleneck): a
        value that cast to a number, bool or time was ASCII, so only string columns need it."""
        try:
            s.validate(full=True)
        except pa.ArrowInvalid:
            line = self._inp.line_of_bad_utf8()
            where = f" at line {line}" if line is not None else ""
            column = f" in column {self._names[i]!r}" if i < len(self._names) else f" in column {i + 1}"
            raise InvalidInput(f"CSV is not valid UTF-8{where}{column}", {"line": line}) from None

    def _column(self, i: int, s: pa.Array) -> pa.Array:
        t = self._types[i]
        if t == _STRING:
            self._check_utf8(s, i)
            return s
        if t == _INT:
            v = _to_int(s)
            if v is not None:
                bounds = pc.min_max(v)
                lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
                if lo is not None:
                    self._int_max_abs[i] = max(self._int_max_abs[i], abs(lo), abs(hi))
                return v
            if self._int_max_abs[i] <= _FLOAT_EXACT_INT:  # the values before stay exact as floats
                v = _to_float(s)
                if v is not None:
                    self._widen(i, _FLOAT)
                    return v
        elif t == _FLOAT:
            v = _to_float(s)
            if v is not None:
                return v
        elif t == _BOOL:
            v = _to_bool(s)
            if v is not None:
                return v
        else:
            v = _to_temporal(s, t)
            if v is not None:
                return v
        self._widen(i, _STRING)
        self._check_utf8(s, i)
        return s  # the original text of every value

    def _widen(self, i: int, t: pa.DataType) -> None:
        self._types[i] = t
        self.notes.widened[self._names[i]] = _TYPE_NAMES[t]

    # iteration
    def __iter__(self) -> "_BatchStream":
        return self

    def __next__(self) -> pa.RecordBatch:
        while True:
            if self._ready:
                return self._ready.popleft()
            if self._done:
                self.close()
                raise StopIteration
            try:
                raw = self._call(self._raw.take)
                self._check_rows()
                batch = self._convert(raw) if raw is not None and raw.num_rows else None
            except BaseException:
                self.close()
                raise
            if raw is None:
                self._done = True
                continue
            self._inp.release()
            if batch is not None:
                return batch

    def close(self) -> None:
        """Stop reading: ends the read-ahead thread, releases Arrow's IO thread and the blocks."""
        self._done = True
        self._ready.clear()
        self._raw.close()
        self._inp.drop_window()

    def __del__(self) -> None:
        # The garbage collector may run this on any thread: on one of Arrow's, waiting for
        # Arrow could deadlock, so there (and at exit) the read-ahead thread finishes alone.
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close(wait=threading.get_ident() not in self._inp.arrow_threads and not sys.is_finalizing())
