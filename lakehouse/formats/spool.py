"""A body copied to a local file, for formats that must seek (Parquet's footer is at its end)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

import pyarrow as pa

from lakehouse.formats.compression import READ_SIZE

if TYPE_CHECKING:
    from lakehouse.formats import ReadContext


def spooled(source: BinaryIO, context: "ReadContext") -> tuple[Path, Callable[[], None]]:
    """Copy `source` to a fresh local file; the path and a function that removes it.

    Disk, not memory, holds the body, and the upload limit already bounds its size.
    """
    if context.spool is None:
        raise RuntimeError("this reader needs a spool directory")
    path = context.spool()

    def cleanup() -> None:
        path.unlink(missing_ok=True)

    try:
        with open(path, "wb") as out:
            shutil.copyfileobj(source, out, READ_SIZE)
    except BaseException:
        cleanup()
        raise
    return path, cleanup


class SpooledBatches:
    """Batches read from a spooled file, which is removed when they end or are closed."""

    def __init__(self, batches: Iterator[pa.RecordBatch], cleanup: Callable[[], None]) -> None:
        self._batches = batches
        self._cleanup = cleanup

    def __iter__(self) -> "SpooledBatches":
        return self

    def __next__(self) -> pa.RecordBatch:
        try:
            return next(self._batches)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self._cleanup()
