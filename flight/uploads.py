"""Reading what a client sends with DoPut: data to ingest, or parameters to bind.

A DoPut stream ends the same way whether the client finished or was cut off (a killed
process, a deadline): pyarrow's reader just stops. Only the call context tells them apart,
so the stream is checked for cancellation at its end, before the ingest may commit.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.flight as flight

from lakehouse.errors import InvalidInput, TooLarge

MAX_PARAM_BYTES = 64 * 1024 * 1024


def incoming_batches(reader: flight.MetadataRecordBatchReader, context: flight.ServerCallContext) -> Iterator[pa.RecordBatch]:
    """The batches of a DoPut, one at a time; raises `InvalidInput` for a stream that was cut
    off or that is not valid Arrow IPC."""
    try:
        for chunk in reader:
            if chunk.data is not None:
                yield chunk.data
    except (pa.ArrowInvalid, OSError) as exc:  # how Arrow reports a malformed message
        raise InvalidInput(f"the upload is not a valid Arrow IPC stream: {exc}") from None
    if context.is_cancelled():
        raise InvalidInput("the upload was cancelled before it ended; nothing was committed")


def read_params(reader: flight.MetadataRecordBatchReader) -> pa.Table:
    """Bound parameter rows (columns "0", "1", ... in placeholder order), bounded in size."""
    batches, size = [], 0
    for chunk in reader:
        if chunk.data is None:
            continue
        size += chunk.data.nbytes
        if size > MAX_PARAM_BYTES:
            raise TooLarge(f"bound parameters over {MAX_PARAM_BYTES} bytes; load large data with bulk ingest (adbc_ingest) instead")
        batches.append(chunk.data)
    return pa.Table.from_batches(batches, reader.schema)
