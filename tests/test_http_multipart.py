"""The streaming multipart reader: exact part bytes whatever the read sizes, bad framing refused."""

from __future__ import annotations

import io

import pytest

from http_edge.multipart import open_part
from lakehouse.errors import InvalidInput

BOUNDARY = "----lakehouse7MA4YWxk"
# Bytes that look like a boundary without being one: no CRLF before it, or a longer token.
TRICKY = b"id,note\r\n1,--" + BOUNDARY.encode() + b"\r\n2,\r\n--" + BOUNDARY.encode()[:-1] + b"X\r\n3,\r\n-\r\n"


class Trickle(io.RawIOBase):
    """A source that hands out at most `step` bytes per read, as a slow socket does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def form(*parts: tuple[str, bytes], preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    out = preamble
    for disposition, data in parts:
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--".encode() + epilogue


def read_part(body: bytes, step: int = 1 << 20, field: str = "file", boundary: str | None = BOUNDARY) -> bytes:
    return open_part(io.BufferedReader(Trickle(body, step)), boundary, field).stream.read()


@pytest.mark.parametrize("step", [1, 2, 7, 64, 1 << 20])
def test_the_file_part_comes_back_exactly_whatever_the_read_size(step: int) -> None:
    body = form(('form-data; name="note"', b"skip me"), ('form-data; name="file"; filename="w.csv"', TRICKY), preamble=b"ignored preamble\r\n")
    assert read_part(body, step) == TRICKY


def test_large_part_is_read_exactly() -> None:
    data = bytes(range(256)) * 40_000
    assert read_part(form(('form-data; name=file; filename="b.bin"', data)), step=65_536) == data


def test_an_empty_file_part_is_empty() -> None:
    assert read_part(form(('form-data; name="file"; filename="e.csv"', b""))) == b""


def test_boundary_line_may_carry_transport_padding() -> None:
    body = f"--{BOUNDARY}  \t\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--{BOUNDARY}--".encode()
    assert read_part(body, step=3) == b"abc"


def test_a_body_without_the_file_part_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no part named 'file'"):
        read_part(form(('form-data; name="other"; filename="w.csv"', b"a\n1\n")))


def test_a_body_cut_before_its_closing_boundary_is_refused() -> None:
    body = form(('form-data; name="file"', b"a\n1\n"))
    with pytest.raises(InvalidInput, match="closing boundary"):
        read_part(body[: body.rindex(b"\r\n--")], step=5)


def test_a_missing_or_overlong_boundary_is_refused() -> None:
    for boundary in [None, "", "x" * 71]:
        with pytest.raises(InvalidInput, match="boundary"):
            read_part(form(('form-data; name="file"', b"a")), boundary=boundary)


def test_overlong_part_headers_are_refused() -> None:
    body = f"--{BOUNDARY}\r\nX-Junk: {'j' * 20_000}\r\n\r\nabc\r\n--{BOUNDARY}--".encode()
    with pytest.raises(InvalidInput, match="multipart"):
        read_part(body, step=4096)


def test_text_after_a_boundary_is_refused() -> None:
    body = f"--{BOUNDARY}garbage\r\n\r\nabc\r\n--{BOUNDARY}--".encode()
    with pytest.raises(InvalidInput, match="after a boundary"):
        read_part(body)
