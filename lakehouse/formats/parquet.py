"""Parquet uploads: spooled to local disk (the footer is at the end), then read a row group at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.errors import InvalidInput
from lakehouse.formats.spool import SpooledBatches, spooled

if TYPE_CHECKING:
    from lakehouse.formats import Parsed, ReadContext
    from lakehouse.formats.options import ReadOptions

BATCH_ROWS = 65_536
_MAGIC = b"PAR1"


def read(source: BinaryIO, options: "ReadOptions", context: "ReadContext") -> "Parsed":
    from lakehouse.formats import Parsed

    path, cleanup = spooled(source, context)
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != _MAGIC:
                raise InvalidInput("the body is not a Parquet file (it does not start with PAR1)")
        reader = pq.ParquetFile(str(path))
    except InvalidInput:
        cleanup()
        raise
    except (pa.ArrowException, OSError) as exc:
        cleanup()
        raise InvalidInput(f"the body is not a valid Parquet file: {exc}") from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader.iter_batches(BATCH_ROWS)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"the Parquet file is corrupt: {exc}") from None

    def done() -> None:
        reader.close()
        cleanup()

    return Parsed(reader.schema_arrow, SpooledBatches(batches(), done))
