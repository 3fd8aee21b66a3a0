"""Bridges between ASGI's async bodies and the core's blocking streams, in both directions.

Requests: the core reads bodies synchronously (`ingest_csv`, `put_object`,
`pa.ipc.open_stream` call `.read(n)`) while the body arrives as async chunks. The core's call
runs in a worker thread whose reads pull the next chunk from the event loop, one at a time:
memory holds one chunk, and a slow consumer slows the client down through TCP (uvicorn stops
reading the socket while a chunk waits) instead of piling up bytes. Litestar's body-size
limit (`request_max_body_size`) is checked on each chunk, and its error, like a client that
goes away, is raised inside the core's read, so the core aborts what it was writing.

Responses: a blocking iterator of byte chunks (query results, an object's bytes) is advanced
in a worker thread, one chunk per step.
"""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import BinaryIO, TypeVar

import anyio
from anyio.lowlevel import EventLoopToken, current_token
from litestar import Request

BUFFER_BYTES = 256 * 1024

T = TypeVar("T")


async def run_with_body(request: Request, work: Callable[[BinaryIO], T]) -> T:
    """Run blocking `work` in a worker thread on the request body as a stream; return its result.

    If `work` stops reading early, the rest of the body is left unread.
    """
    chunks = request.stream()
    reader = _BodyReader(chunks, current_token())
    try:
        return await anyio.to_thread.run_sync(work, io.BufferedReader(reader, BUFFER_BYTES))
    finally:
        await chunks.aclose()


class _BodyReader(io.RawIOBase):
    """Read from any thread (Arrow's CSV reader reads on its own IO thread); each refill waits
    for the next chunk from the event loop."""

    def __init__(self, chunks: AsyncGenerator[bytes, None], loop: EventLoopToken) -> None:
        self._chunks = chunks
        self._loop = loop
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            try:
                self._pending = memoryview(anyio.from_thread.run(self._chunks.__anext__, token=self._loop))
            except StopAsyncIteration:
                self._eof = True
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


async def iterate_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Yield a blocking iterator's chunks without blocking the event loop.

    Unlike Litestar's wrapper for sync iterators, an error here (even a `ValueError` such as
    pyarrow's) propagates, so the server aborts the response instead of ending it as if whole.
    """
    done = object()
    try:
        while (chunk := await anyio.to_thread.run_sync(next, chunks, done)) is not done:
            yield chunk  # type: ignore[misc]
    finally:
        # A client that goes away leaves the iterator half read: release what it holds now.
        if isinstance(chunks, Generator):
            chunks.close()
