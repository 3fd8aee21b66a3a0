"""A streaming reader of `multipart/form-data` bodies: one named part as a file-like object.

Litestar's form parsing holds the whole body before a handler sees it; an upload of gigabytes
must flow through instead. This reads the framing incrementally from a blocking byte source,
skips the parts before the wanted one, and hands that part's bytes on as they arrive, keeping
no more than one read and a boundary's length of lookahead in memory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from email.message import Message
from typing import BinaryIO

from lakehouse.errors import InvalidInput

READ_SIZE = 256 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY = 70  # RFC 2046


@dataclass(frozen=True)
class Part:
    """One part of a form: its bytes as a stream, and what its headers say of them."""

    stream: BinaryIO
    filename: str | None
    content_type: str | None


def open_part(source: BinaryIO, boundary: str | None, field: str) -> Part:
    """Skip to the form field named `field` in a multipart body and return it as a stream.

    `boundary` is the Content-Type's parameter. The stream ends where the part ends; a body
    that ends first, or bad framing, is an `InvalidInput`.
    """
    if not boundary or len(boundary) > MAX_BOUNDARY or not boundary.isascii():
        raise InvalidInput("multipart body needs a boundary of 1 to 70 ASCII characters in its Content-Type")
    framing = _Framing(source, boundary.encode("ascii"))
    while (headers := framing.next_part()) is not None:
        disposition = headers.get("content-disposition", "")
        if _param(disposition, "content-disposition", "name") == field:
            stream = io.BufferedReader(_PartReader(framing), READ_SIZE)
            return Part(stream, _param(disposition, "content-disposition", "filename"), headers.get("content-type"))
    raise InvalidInput(f"multipart body has no part named {field!r} (send the file as -F {field}=@data.csv)")


def _param(value: str, header: str, name: str) -> str | None:
    """A parameter of a header value such as `form-data; name="file"`, quoting undone."""
    message = Message()
    message[header] = value
    found = message.get_param(name, header=header)
    return found if isinstance(found, str) else None


class _Framing:
    """The body seen as parts: finds delimiters across reads without holding more than one read."""

    def __init__(self, source: BinaryIO, boundary: bytes) -> None:
        self.source = source
        self.delimiter = b"\r\n--" + boundary
        # A leading CRLF lets the first boundary line match the same delimiter as the others.
        self.buffer = bytearray(b"\r\n")
        self.eof = False

    def _fill(self) -> None:
        chunk = b"" if self.eof else self.source.read(READ_SIZE)
        if not chunk:
            self.eof = True
            raise InvalidInput("multipart body ended before its closing boundary")
        self.buffer += chunk

    def read_data(self, limit: int) -> bytes:
        """Up to `limit` bytes of the current part; b"" once its closing delimiter is reached."""
        while True:
            end = self.buffer.find(self.delimiter)
            # Without a delimiter in sight, the tail may still be the start of one: keep it.
            available = end if end >= 0 else len(self.buffer) - len(self.delimiter) + 1
            if end == 0:
                return b""
            if available > 0:
                data = bytes(self.buffer[: min(available, limit)])
                del self.buffer[: len(data)]
                return data
            self._fill()

    def next_part(self) -> dict[str, str] | None:
        """Skip the rest of the current part; the next part's headers, or None after the last."""
        while self.read_data(READ_SIZE):
            pass
        del self.buffer[: len(self.delimiter)]
        while len(self.buffer) < 2:
            self._fill()
        if self.buffer.startswith(b"--"):
            return None
        if self._line().strip(b" \t"):
            raise InvalidInput("malformed multipart body: text after a boundary")
        headers: dict[str, str] = {}
        budget = MAX_PART_HEADER_BYTES
        while line := self._line():
            budget -= len(line) + 2
            name, colon, value = line.partition(b":")
            if budget < 0 or not colon:
                raise InvalidInput("malformed multipart part headers")
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("utf-8", "replace")
        return headers

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_PART_HEADER_BYTES:
                raise InvalidInput("malformed multipart body: part header line too long")
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line


class _PartReader(io.RawIOBase):
    def __init__(self, framing: _Framing) -> None:
        self._framing = framing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._framing.read_data(len(buffer))
        buffer[: len(data)] = data
        return len(data)
