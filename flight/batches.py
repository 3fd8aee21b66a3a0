"""Record batches sized for the wire."""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.flight as flight

from flight.errors import stream_errors

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Largest batch sent in one message: gRPC clients refuse messages over 16 MiB by default
(the ADBC driver among them), and DuckDB's batches of wide rows can be bigger than that."""


def bounded_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`batches`, with any batch over `MAX_MESSAGE_BYTES` cut into slices under it."""
    for batch in batches:
        size = batch.nbytes
        if size <= MAX_MESSAGE_BYTES or batch.num_rows < 2:
            yield batch
            continue
        rows = max(1, batch.num_rows * MAX_MESSAGE_BYTES // size)
        for offset in range(0, batch.num_rows, rows):
            yield batch.slice(offset, rows)


def result_stream(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> flight.FlightDataStream:
    """A DoGet stream of `batches`. A result that ends within its first batch (most small
    queries) is handed over whole, so Flight sends it without calling back into Python; any
    other streams batch by batch, errors mapped as handlers' are."""
    sized = bounded_batches(batches)
    head = list(itertools.islice(sized, 2))
    if len(head) < 2:
        return flight.RecordBatchStream(pa.Table.from_batches(head, schema))
    return flight.GeneratorStream(schema, stream_errors(itertools.chain(head, sized)))
