"""Bridges between ASGI's async bodies and the core's blocking streams, in both directions.

Requests: the core reads bodies synchronously (`ingest_csv`, `put_object`,
`pa.ipc.open_stream` call `.read(n)`) while the body arrives as async chunks. A task on the
event loop pumps the chunks into a small bounded queue that the core's call, running in a
worker thread, reads from: memory holds a few MiB at most, and a slow consumer slows the
client down through TCP (the pump stops reading while the queue is full) instead of piling up
bytes. Litestar's body-size limit (`request_max_body_size`) is checked on each chunk, and its
error, like a client that goes away, is raised inside the core's read, so the core aborts
what it was writing.

Responses: a blocking iterator of byte chunks (query results, an object's bytes) is advanced
in a worker thread, one chunk per step.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import BinaryIO, TypeVar

import anyio
from litestar import Request

BUFFER_BYTES = 256 * 1024
QUEUE_CHUNKS = 64  # chunks of up to 64 KiB each from uvicorn: a few MiB in flight at most

T = TypeVar("T")


async def run_with_body(request: Request, work: Callable[[BinaryIO], T]) -> T:
    """Run blocking `work` in a worker thread on the request body as a stream; return its result.

    A task on the event loop pumps the body's chunks into a small bounded queue that the
    blocking side reads from: neither side waits for the other chunk by chunk (a round trip to
    the event loop per chunk costs a GIL hand-over each, which made a CSV ingest several times
    slower than reading a file), and memory stays bounded by the queue. If `work` stops
    reading early, the pump is cancelled and the rest of the body is left unread.
    """
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
    stop = threading.Event()

    async def pump() -> None:
        item: bytes | BaseException | None = None
        try:
            async for chunk in request.stream():
                if chunk:
                    await _put(chunks, chunk, stop)
        except BaseException as exc:  # raised inside the core's read, so it aborts its write
            item = exc
        await _put(chunks, item, stop)

    pumping = asyncio.ensure_future(pump())
    try:
        return await anyio.to_thread.run_sync(work, io.BufferedReader(_BodyReader(chunks), BUFFER_BYTES))
    finally:
        stop.set()
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping


async def _put(chunks: "queue.Queue[bytes | BaseException | None]", item: bytes | BaseException | None, stop: threading.Event) -> None:
    """Queue one item; when the reader is behind, wait off the event loop's thread."""
    try:
        chunks.put_nowait(item)
    except queue.Full:
        while not stop.is_set():
            if await anyio.to_thread.run_sync(_put_blocking, chunks, item):
                return


def _put_blocking(chunks: "queue.Queue[bytes | BaseException | None]", item: bytes | BaseException | None) -> bool:
    try:
        chunks.put(item, timeout=0.1)
        return True
    except queue.Full:
        return False


class _BodyReader(io.RawIOBase):
    """The blocking side of the pump: reads from any thread (Arrow's CSV reader reads on its own)."""

    def __init__(self, chunks: "queue.Queue[bytes | BaseException | None]") -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            item = self._chunks.get()
            if item is None:
                self._eof = True
            elif isinstance(item, BaseException):
                self._eof = True
                raise item
            else:
                self._pending = memoryview(item)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


async def iterate_in_thread(chunks: Iterator[bytes], on_close: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    """Yield a blocking iterator's chunks without blocking the event loop.

    Unlike Litestar's wrapper for sync iterators, an error here (even a `ValueError` such as
    pyarrow's) propagates, so the server aborts the response instead of ending it as if whole.
    `on_close` runs however the response ends.
    """
    done = object()
    try:
        while (chunk := await anyio.to_thread.run_sync(next, chunks, done)) is not done:
            yield chunk  # type: ignore[misc]
    finally:
        # A client that goes away leaves the iterator half read: release what it holds now.
        if isinstance(chunks, Generator):
            chunks.close()
        if on_close is not None:
            on_close()


class DisconnectWatch:
    """Notices, from the event loop, that the client of a request has gone away.

    A query runs in a worker thread that never hears of the client; `gone` is what the core's
    watchdog polls (`Lake.query(client_gone=...)`), so the query is interrupted within its poll
    interval. Use it once the request body has been read: it reads the ASGI messages that
    follow, of which only `http.disconnect` remains.
    """

    def __init__(self, request: Request) -> None:
        self._gone = threading.Event()
        self._task = asyncio.ensure_future(self._watch(request))

    async def _watch(self, request: Request) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        self._gone.set()

    def gone(self) -> bool:
        return self._gone.is_set()

    def close(self) -> None:
        self._task.cancel()
