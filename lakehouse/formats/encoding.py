"""Text in other encodings, transcoded to UTF-8 while it streams.

The readers of text formats take UTF-8 only (Arrow's parsers do). A file from a spreadsheet on
Windows is cp1252, an old export latin-1, a "Unicode text" export UTF-16 with a BOM: the user
names the encoding (a UTF-16 BOM names itself), and the bytes are decoded and re-encoded one
chunk at a time, so memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO

from lakehouse.errors import InvalidInput
from lakehouse.formats.compression import READ_SIZE, peek

__all__ = ["open_utf8"]

_PASS_THROUGH = {"utf-8", "utf-8-sig"}  # the readers handle a UTF-8 BOM themselves
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def open_utf8(source: BinaryIO, encoding: str | None) -> BinaryIO:
    """`source` re-encoded as UTF-8 from `encoding` (a codec name `codecs` knows).

    Without an encoding, UTF-16 is recognised by its BOM and anything else passes as is.
    Bytes the encoding cannot decode are an `InvalidInput` from a read.
    """
    if encoding is None:
        head, source = peek(source, 2)
        if head not in _UTF16_BOMS:
            return source
        encoding = "utf-16"
    if codecs.lookup(encoding).name in _PASS_THROUGH:
        return source
    return io.BufferedReader(_Transcoded(source, encoding), READ_SIZE)


class _Transcoded(io.RawIOBase):
    def __init__(self, source: BinaryIO, encoding: str) -> None:
        self._source = source
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._pending = memoryview(b"")
        self._eof = False
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            raw = self._source.read(READ_SIZE)
            self._eof = not raw
            try:
                self._pending = memoryview(self._decoder.decode(raw, final=self._eof).encode("utf-8"))
            except UnicodeDecodeError as exc:
                at = self._offset + exc.start
                raise InvalidInput(f"the text is not valid {self._encoding} (byte {at})", {"byte": at}) from None
            self._offset += len(raw)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
