"""Compressed uploads: gzip, zstd and bz2, recognised by their first bytes, inflated as read.

People compress what they upload, and say so either in the file (`data.csv.gz` in a form) or
in `Content-Encoding`. The magic bytes decide, so a form upload needs no declaration; a
declared encoding the body does not start with is refused rather than read as garbage.
Decompression streams (Arrow's codecs, no new dependency) and the bytes it yields count
against the upload limit, so a small bomb that inflates without end is stopped at the limit.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import pyarrow as pa

from lakehouse.errors import InvalidInput, TooLarge, UnsupportedMedia

__all__ = ["open_decompressed", "peek", "ReadOnlyStream", "READ_SIZE"]

READ_SIZE = 1 << 20

_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bz2"}
_DECLARED = {"gzip": "gzip", "x-gzip": "gzip", "zstd": "zstd", "bzip2": "bz2", "x-bzip2": "bz2", "identity": None}


def open_decompressed(source: BinaryIO, content_encoding: str | None = None, max_bytes: int | None = None) -> tuple[BinaryIO, str | None]:
    """`source` as the bytes it holds, inflated if compressed; and the codec found, if any.

    More than `max_bytes` bytes once inflated raise `TooLarge` from a read.
    """
    declared = _declared(content_encoding)
    head, source = peek(source, 4)
    codec = _codec_of(head)
    if declared is not None and codec != declared:
        raise InvalidInput(f"the body is declared {content_encoding} but is not {declared}-compressed")
    if codec is not None:
        stream = pa.CompressedInputStream(pa.PythonFile(source, mode="r"), codec)
        source = io.BufferedReader(_ArrowReader(stream, codec), READ_SIZE)
    return (_Bounded(source, max_bytes) if max_bytes is not None else source), codec  # type: ignore[return-value]


def peek(source: BinaryIO, n: int) -> tuple[bytes, BinaryIO]:
    """The first `n` bytes of `source` (fewer at its end), and a stream that still starts with them."""
    head = b""
    while len(head) < n:
        chunk = source.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head, (_Prefixed(head, source) if head else source)  # type: ignore[return-value]


def _declared(content_encoding: str | None) -> str | None:
    if not content_encoding:
        return None
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    if len(codings) > 1:
        raise UnsupportedMedia(f"cannot take a body encoded more than once ({content_encoding[:60]!r})")
    if codings[0] not in _DECLARED:
        raise UnsupportedMedia(f"unsupported Content-Encoding {codings[0][:30]!r}: gzip, zstd or bzip2")
    return _DECLARED[codings[0]]


def _codec_of(head: bytes) -> str | None:
    for magic, codec in _MAGIC.items():
        if head.startswith(magic) and (codec != "bz2" or head[3:4].isdigit()):
            return codec
    return None


class ReadOnlyStream:
    """The little of a file object that readers (Arrow's included) ask of a stream; reads pass
    through unbuffered, so a reader's own read sizes reach the source."""

    closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class _Prefixed(ReadOnlyStream):
    """A stream with bytes already read put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            # A short read would look like the end to Arrow: fill up from the rest.
            return data + self._rest.read(size - len(data)) if len(data) < size else data
        return self._rest.read(size)


class _ArrowReader(io.RawIOBase):
    """Arrow's decompressing stream as a Python file; a corrupt stream is an `InvalidInput`."""

    def __init__(self, stream: pa.NativeFile, codec: str) -> None:
        self._stream = stream
        self._codec = codec

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            if isinstance(exc.__context__, (TooLarge, InvalidInput)):
                raise exc.__context__ from None
            raise InvalidInput(f"the {self._codec} data is corrupt or cut short") from None
        buffer[: len(data)] = data
        return len(data)


class _Bounded(ReadOnlyStream):
    def __init__(self, source: BinaryIO, max_bytes: int) -> None:
        self._source = source
        self._max = max_bytes
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size is not None and size >= 0 else READ_SIZE)
        self.total += len(data)
        if self.total > self._max:
            raise TooLarge(f"upload larger than {self._max} bytes (counted decompressed)", {"max_bytes": self._max})
        return data
