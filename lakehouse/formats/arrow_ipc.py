"""Arrow IPC uploads: the streaming format as it arrives; the file format via a local spool."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Iterator

import pyarrow as pa

from lakehouse.errors import InvalidInput
from lakehouse.formats.compression import peek
from lakehouse.formats.spool import SpooledBatches, spooled

if TYPE_CHECKING:
    from lakehouse.formats import Parsed, ReadContext
    from lakehouse.formats.options import ReadOptions

_FILE_MAGIC = b"ARROW1"


def read(source: BinaryIO, options: "ReadOptions", context: "ReadContext") -> "Parsed":
    from lakehouse.formats import Parsed

    head, source = peek(source, len(_FILE_MAGIC))
    if head == _FILE_MAGIC:
        return _file(source, context)
    try:
        reader = pa.ipc.open_stream(source)
    except pa.ArrowException as exc:
        raise InvalidInput(f"the body is not a valid Arrow IPC stream: {exc}") from None
    return Parsed(reader.schema, _checked(reader))


def _file(source: BinaryIO, context: "ReadContext") -> "Parsed":
    from lakehouse.formats import Parsed

    path, cleanup = spooled(source, context)
    try:
        reader = pa.ipc.open_file(str(path))
    except pa.ArrowException as exc:
        cleanup()
        raise InvalidInput(f"the body is not a valid Arrow IPC file: {exc}") from None

    batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
    return Parsed(reader.schema, SpooledBatches(_checked(batches), cleanup))


def _checked(batches: "pa.RecordBatchReader | Iterator[pa.RecordBatch]") -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except pa.ArrowException as exc:
        raise InvalidInput(f"the Arrow data is invalid or cut short: {exc}") from None
