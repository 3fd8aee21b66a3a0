"""The formats the lake ingests, each in a module of its own, and how an upload finds its reader.

An upload is bytes plus what the client said about them: a media type, a file name, a
`Content-Encoding`, the user's `ReadOptions`. `read_upload` inflates compressed bytes,
transcodes text to UTF-8, picks the reader (by media type, else by file name, else by the
first bytes) and returns Arrow batches; every edge (HTTP, Flight, the CLI) goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping

import pyarrow as pa

from lakehouse.errors import InvalidInput, UnsupportedMedia
from lakehouse.formats import arrow_ipc, csv, ndjson, parquet
from lakehouse.formats.compression import open_decompressed, peek
from lakehouse.formats.encoding import open_utf8
from lakehouse.formats.options import ReadOptions

__all__ = ["Format", "FORMATS", "Parsed", "ReadContext", "ReadOptions", "format_for", "read_upload", "MEDIA_TYPES"]


@dataclass
class Parsed:
    """A file as Arrow: the schema known up front, the batches, and what reading noticed.

    A batch of a text format may widen a column of `schema` (inference meeting a later value);
    `notes()` is complete once the batches are exhausted."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    notes: Callable[[], dict[str, Any]] = field(default=lambda: {})


@dataclass(frozen=True)
class ReadContext:
    """What a reader may need beside the bytes and the user's options."""

    sample_rows: int = 1000
    declared: Mapping[str, pa.DataType] = field(default_factory=dict)
    """Column types to read as (the dataset's, when appending); by name, ignoring case."""
    widen_declared: bool = False
    """Whether `declared` types may still widen (schema evolution) instead of failing."""
    spool: Callable[[], Path] | None = None
    """A fresh local file path, for formats that need random access (Parquet)."""


@dataclass(frozen=True)
class Format:
    name: str
    media_types: tuple[str, ...]
    suffixes: tuple[str, ...]
    text: bool
    options: frozenset[str]
    """The `ReadOptions` that mean something for this format."""
    read: Callable[[BinaryIO, ReadOptions, ReadContext], Parsed]


def _read_csv(source: BinaryIO, options: ReadOptions, context: ReadContext) -> Parsed:
    schema, batches, notes = csv.read_csv(source, options, context.sample_rows, context.declared, context.widen_declared)
    return Parsed(schema, batches, notes=notes.to_json)


_CSV_OPTIONS = frozenset({"null_values", "delimiter", "quote", "escape", "header", "names", "types", "date_format", "decimal"})

FORMATS = (
    Format("csv", ("text/csv", "text/tab-separated-values", "text/plain", "application/csv"), (".csv", ".tsv", ".txt", ".tab"), True, _CSV_OPTIONS, _read_csv),
    Format("parquet", ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet"), (".parquet", ".pq"), False, frozenset(), parquet.read),
    Format("ndjson", ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines"), (".ndjson", ".jsonl"), True, frozenset({"types"}), ndjson.read),
    Format(
        "arrow",
        ("application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"),
        (".arrow", ".arrows", ".ipc", ".feather"),
        False,
        frozenset(),
        arrow_ipc.read,
    ),
)
MEDIA_TYPES = [m for f in FORMATS for m in f.media_types]
_BY_MEDIA_TYPE = {m: f for f in FORMATS for m in f.media_types}
_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".bz2")
_GENERIC = ("", "application/octet-stream", "binary/octet-stream", "application/gzip", "application/x-gzip", "application/zstd", "application/x-bzip2")


def format_for(media_type: str | None = None, filename: str | None = None) -> Format | None:
    """The format a file's name says (`x.csv.gz` is CSV), else its media type; None when
    neither says (the first bytes decide, in `read_upload`).

    The name comes first because it is what a form upload reliably has: browsers label a
    `.csv` file `application/vnd.ms-excel` on some systems. A body without a file name in a
    media type the lake does not read is an `UnsupportedMedia` naming the accepted ones.
    """
    if filename:
        name = filename.lower()
        for suffix in _COMPRESSION_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        for f in FORMATS:
            if name.endswith(f.suffixes):
                return f
    kind = (media_type or "").split(";")[0].strip().lower()
    if kind in _BY_MEDIA_TYPE:
        return _BY_MEDIA_TYPE[kind]
    if kind not in _GENERIC and not filename:
        raise UnsupportedMedia(f"cannot ingest a body of type {kind[:100]!r}", {"accepted": MEDIA_TYPES})
    return None


def read_upload(
    source: BinaryIO,
    fmt: Format | None,
    options: ReadOptions,
    context: ReadContext,
    content_encoding: str | None = None,
    max_bytes: int | None = None,
) -> Parsed:
    """An upload as Arrow batches: inflated, transcoded and read as `fmt` (None: sniffed).

    More than `max_bytes` bytes, counted after decompression, raise `TooLarge`.
    """
    source, _ = open_decompressed(source, content_encoding, max_bytes)
    if fmt is None:
        head, source = peek(source, 8)
        fmt = _sniff(head)
    unused = sorted(set(options.text_options_given()) - fmt.options)
    if unused:
        raise InvalidInput(f"{', '.join(unused)} cannot be used with {fmt.name} (they apply to CSV)")
    if fmt.text:
        source = open_utf8(source, options.encoding)
    elif options.encoding is not None:
        raise InvalidInput(f"encoding cannot be used with {fmt.name}: it is not a text format")
    return fmt.read(source, options, context)


def _sniff(head: bytes) -> Format:
    """The format of a body nobody named, from its first bytes; CSV when nothing else fits."""
    by_name = {f.name: f for f in FORMATS}
    if head.startswith(b"PAR1"):
        return by_name["parquet"]
    if head.startswith((b"\xff\xff\xff\xff", b"ARROW1")):
        return by_name["arrow"]
    if head.lstrip().startswith(b"{"):
        return by_name["ndjson"]
    return by_name["csv"]
