"""CSV bytes to Arrow batches: type inference, widening, and the errors a caller sees.

The reference for every value is an independent parse with Python's `csv` module, converted
by plain Python (`int`, `float`, `date.fromisoformat`, ...) to the type the batch declares.
Small block sizes force many batches so that widening after the sample really happens.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import math
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.errors import InvalidInput, TooLarge
from lakehouse.formats import csv as csv_format
from lakehouse.formats.compression import open_decompressed
from lakehouse.formats.csv import CsvNotes, read_csv
from lakehouse.formats.options import ReadOptions


def read_csv_batches(source: Any, sample_rows: int = 1000, max_bytes: int | None = None) -> tuple[pa.Schema, Any, CsvNotes]:
    """A plain CSV stream read as an upload is: bounded by `max_bytes`, then parsed."""
    stream, _ = open_decompressed(source, None, max_bytes)
    return read_csv(stream, sample_rows=sample_rows)


# -- helpers ---------------------------------------------------------------------------------


def read_all(data: bytes, sample_rows: int = 1000, max_bytes: int | None = None) -> tuple[pa.Schema, list[pa.RecordBatch], CsvNotes]:
    schema, batches, notes = read_csv_batches(io.BytesIO(data), sample_rows, max_bytes)
    return schema, list(batches), notes


def column(batches: list[pa.RecordBatch], name: str) -> list[Any]:
    return [v for b in batches for v in b.column(name).to_pylist()]


def final_types(batches: list[pa.RecordBatch]) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in batches[-1].schema}


def write_csv(header: list[str], rows: list[list[str | None]], newline: str = "\n", bom: bool = False) -> bytes:
    """A CSV where None is an empty unquoted field and every string that needs it is quoted."""

    def field(v: str | None) -> str:
        if v is None:
            return ""
        if v == "" or any(c in v for c in ',"\r\n'):
            return '"' + v.replace('"', '""') + '"'
        return v

    text = newline.join(",".join(field(v) for v in row) for row in [header, *rows]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def expected_cell(text: str, was_null: bool, t: pa.DataType) -> Any:
    """What a cell must hold, computed without Arrow from the csv module's text."""
    if was_null:
        return None
    if t == pa.string():
        return text
    if t == pa.int64():
        return int(text)
    if t == pa.float64():
        return float(text)
    if t == pa.bool_():
        return {"true": True, "false": False}[text.lower()]
    if t == pa.date32():
        return dt.date.fromisoformat(text)
    if pa.types.is_timestamp(t):
        value = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
        if t.tz is None:
            assert value.tzinfo is None
            return value
        assert value.tzinfo is not None
        return value.astimezone(dt.timezone.utc)
    raise AssertionError(f"unexpected type {t}")


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime) and a.tzinfo is not None:
        return b.tzinfo is not None and a == b
    return type(a) is type(b) and a == b


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 1 KiB, so a few hundred rows make many batches (and widening after the sample)."""
    monkeypatch.setattr(csv_format, "BLOCK_SIZE", 1024)
    return 1024


# -- the whole contract on one tricky file ----------------------------------------------------

TRICKY_HEADER = ["id", "zip", "nullable", "label", "int_to_float", "int_to_string", "float_to_string", "flag", "flag_to_string", "day", "stamp", "stamp_tz", "huge", "note"]


def tricky_rows(n: int = 400) -> list[list[str | None]]:
    rows: list[list[str | None]] = []
    for i in range(n):
        late = i >= 300  # well past the sample (50 rows) and the first blocks
        rows.append([
            str(i),
            f"{i % 1000:05d}",  # leading zeros: string, noted
            None if i % 3 == 0 else ("" if i % 3 == 1 else f"v{i}"),  # NULL vs ""
            f"a, b {i}" if i % 4 == 0 else (f"line one\nline two {i}" if i % 4 == 1 else f'say "hi" {i}'),
            f"{i}.5" if late and i % 7 == 0 else str(i * 10),
            f"n/a-{i}" if late and i % 11 == 0 else str(-i),
            f"{i}.25" if not (late and i % 13 == 0) else "about 3",
            "TRUE" if i % 2 else "false",
            ("yes" if i % 2 else "no") if late and i % 17 == 0 else ("True" if i % 2 else "False"),
            (dt.date(2024, 1, 1) + dt.timedelta(days=i)).isoformat(),
            (dt.datetime(2024, 3, 1, 12, 0) + dt.timedelta(minutes=7 * i, microseconds=i)).isoformat(sep="T" if i % 2 else " "),
            (dt.datetime(2024, 3, 1, 12, 0) + dt.timedelta(hours=i)).isoformat(sep=" ") + ("+02:00" if i % 2 else "Z"),
            "12345678901234567890" if late and i == 350 else str(2**40 + i),
            None if i % 5 == 0 else f"note {i}",
        ])
    return rows


def test_tricky_csv_matches_python_csv_cell_by_cell(small_blocks: int) -> None:
    rows = tricky_rows()
    data = write_csv(TRICKY_HEADER, rows, newline="\r\n", bom=True)
    schema, batches, notes = read_all(data, sample_rows=50)

    reference = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert reference[0] == TRICKY_HEADER
    assert schema.names == TRICKY_HEADER
    assert len(batches) > 5
    assert sum(b.num_rows for b in batches) == len(reference) - 1 == len(rows)

    r = 0
    for batch in batches:
        assert batch.schema.names == TRICKY_HEADER
        for i in range(batch.num_rows):
            text_row, built_row = reference[1 + r], rows[r]
            for c, name in enumerate(TRICKY_HEADER):
                got = batch.column(c)[i].as_py()
                want = expected_cell(text_row[c], built_row[c] is None, batch.schema.field(c).type)
                assert same(got, want), f"row {r} column {name}: got {got!r}, want {want!r} ({batch.schema.field(c).type})"
            r += 1

    assert schema.field("id").type == pa.int64()
    assert schema.field("day").type == pa.date32()
    assert schema.field("stamp").type == pa.timestamp("us")
    assert schema.field("stamp_tz").type == pa.timestamp("us", tz="UTC")
    assert final_types(batches) == {
        "id": pa.int64(),
        "zip": pa.string(),
        "nullable": pa.string(),
        "label": pa.string(),
        "int_to_float": pa.float64(),
        "int_to_string": pa.string(),
        "float_to_string": pa.string(),
        "flag": pa.bool_(),
        "flag_to_string": pa.string(),
        "day": pa.date32(),
        "stamp": pa.timestamp("us"),
        "stamp_tz": pa.timestamp("us", tz="UTC"),
        "huge": pa.string(),
        "note": pa.string(),
    }
    assert notes.widened == {"int_to_float": "float64", "int_to_string": "string", "float_to_string": "string", "flag_to_string": "string", "huge": "string"}
    assert notes.string_fallback == ["zip"]


# -- inference --------------------------------------------------------------------------------


def test_empty_unquoted_field_is_null_and_quoted_empty_is_empty_string() -> None:
    _, batches, _ = read_all(b'a,b,c\n1,,""\n2,"",\n')
    assert column(batches, "b") == [None, ""]
    assert column(batches, "c") == ["", None]


def test_column_types_are_inferred_in_order() -> None:
    data = (
        b"i,f,b,d,t,tz,s\n"
        b"1,1.5,true,2024-01-31,2024-01-31 10:11:12,2024-01-31T10:11:12Z,x\n"
        b"-20,2,False,2024-02-29,2024-01-31T10:11:12.123456,2024-01-31 10:11:12-05:30,y\n"
    )
    schema, batches, notes = read_all(data)
    assert schema.types == [pa.int64(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.string()]
    assert column(batches, "i") == [1, -20]
    assert column(batches, "f") == [1.5, 2.0]
    assert column(batches, "b") == [True, False]
    assert column(batches, "d") == [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]
    assert column(batches, "t") == [dt.datetime(2024, 1, 31, 10, 11, 12), dt.datetime(2024, 1, 31, 10, 11, 12, 123456)]
    utc = dt.timezone.utc
    assert [v.astimezone(utc) for v in column(batches, "tz")] == [dt.datetime(2024, 1, 31, 10, 11, 12, tzinfo=utc), dt.datetime(2024, 1, 31, 15, 41, 12, tzinfo=utc)]
    assert notes == CsvNotes([], {})


def test_zero_and_one_are_integers_not_booleans() -> None:
    schema, batches, _ = read_all(b"flag\n0\n1\n1\n")
    assert schema.field("flag").type == pa.int64()
    assert column(batches, "flag") == [0, 1, 1]


def test_leading_zeros_keep_the_column_string_and_are_noted() -> None:
    schema, batches, notes = read_all(b"zip,n\n02134,0\n10001,0.5\n")
    assert schema.field("zip").type == pa.string()
    assert column(batches, "zip") == ["02134", "10001"]
    assert schema.field("n").type == pa.float64()  # a lone 0 and 0.5 are not leading zeros
    assert notes.string_fallback == ["zip"]


def test_all_null_sample_column_is_string_and_noted() -> None:
    schema, batches, notes = read_all(b"a,b\n1,\n2,\n")
    assert schema.field("b").type == pa.string()
    assert column(batches, "b") == [None, None]
    assert notes.string_fallback == ["b"]


def test_mixed_kinds_in_the_sample_fall_back_to_string() -> None:
    schema, _, notes = read_all(b"a,b,c\n1,2024-01-01,2024-01-01 10:00:00Z\ntrue,2024-01-02,2024-01-01 10:00:00\n")
    assert schema.types == [pa.string(), pa.date32(), pa.string()]
    assert notes.string_fallback == ["a", "c"]  # int and bool; with and without a zone


def test_plain_text_column_is_string_without_a_note() -> None:
    schema, _, notes = read_all(b"name\nalice\nbob\n7\n")
    assert schema.field("name").type == pa.string()
    assert notes.string_fallback == []


def test_huge_int_in_sample_is_string_with_every_digit() -> None:
    schema, batches, notes = read_all(b"big\n1\n12345678901234567890\n")
    assert schema.field("big").type == pa.string()
    assert column(batches, "big") == ["1", "12345678901234567890"]
    assert notes.string_fallback == ["big"]


def test_hex_and_plus_signs_are_not_numbers() -> None:
    schema, _, _ = read_all(b"a,b\n0x1F,+5\n0x20,+6\n")
    assert schema.types == [pa.string(), pa.string()]


def test_invalid_calendar_dates_are_string() -> None:
    schema, batches, _ = read_all(b"d\n2024-02-30\n2024-01-01\n")
    assert schema.field("d").type == pa.string()
    assert column(batches, "d") == ["2024-02-30", "2024-01-01"]


# -- widening after the sample ------------------------------------------------------------------


def widening_csv(first: str, later: str, rows: int = 2000) -> bytes:
    return ("x\n" + (first + "\n") * rows + later + "\n").encode()


def test_int_widens_to_float_after_the_sample(small_blocks: int) -> None:
    schema, batches, notes = read_all(widening_csv("7", "2.5"), sample_rows=10)
    assert schema.field("x").type == pa.int64()
    assert batches[0].schema.field("x").type == pa.int64()
    assert batches[-1].schema.field("x").type == pa.float64()
    assert column(batches, "x")[0] == 7 and column(batches, "x")[-1] == 2.5
    assert notes.widened == {"x": "float64"}


def test_int_widens_to_string_keeping_the_original_text(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("7", "007 bond"), sample_rows=10)
    assert batches[-1].column("x").to_pylist()[-1] == "007 bond"
    assert notes.widened == {"x": "string"}


def test_leading_zero_after_the_sample_widens_to_string(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("7", "007"), sample_rows=10)
    assert column(batches, "x")[-1] == "007"
    assert notes.widened == {"x": "string"}


def test_hex_after_the_sample_is_not_read_as_an_int(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("7", "0x1F"), sample_rows=10)
    assert column(batches, "x")[-1] == "0x1F"
    assert notes.widened == {"x": "string"}


def test_huge_int_after_the_sample_widens_to_string_not_float(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("7", "12345678901234567890"), sample_rows=10)
    assert column(batches, "x")[-1] == "12345678901234567890"
    assert notes.widened == {"x": "string"}


def test_int_beyond_float_precision_then_float_widens_to_string(small_blocks: int) -> None:
    # 2**53 + 1 fits int64 but not float64: turning the column to float would change it.
    data = ("x\n" + f"{2**53 + 1}\n" * 300 + "2.5\n").encode()
    _, batches, notes = read_all(data, sample_rows=10)
    assert notes.widened == {"x": "string"}
    assert column(batches, "x")[-1] == "2.5"


def test_float_widens_to_string(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("1.5", "about 3"), sample_rows=10)
    assert column(batches, "x")[0] == 1.5 and column(batches, "x")[-1] == "about 3"
    assert notes.widened == {"x": "string"}


def test_float_overflow_widens_to_string(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("1.5", "1e400"), sample_rows=10)
    assert column(batches, "x")[-1] == "1e400"
    assert notes.widened == {"x": "string"}


def test_float_column_reads_nan_as_missing_and_keeps_infinity(small_blocks: int) -> None:
    _, batches, notes = read_all(("x\n" + "1.5\n" * 2000 + "nan\n-inf\n").encode(), sample_rows=10)
    values = column(batches, "x")
    assert values[-2] is None and values[-1] == -math.inf
    assert notes.widened == {} and notes.null_markers == {"x": {"nan": 1}}


def test_float_column_keeps_nan_when_markers_are_turned_off(small_blocks: int) -> None:
    data = ("x\n" + "1.5\n" * 2000 + "nan\n-inf\n").encode()
    _, batches, notes = read_csv(io.BytesIO(data), ReadOptions(null_values=()), sample_rows=10)
    values = column(list(batches), "x")
    assert math.isnan(values[-2]) and values[-1] == -math.inf
    assert notes.null_markers == {}


def test_bool_widens_to_string(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("true", "1"), sample_rows=10)
    assert column(batches, "x")[0] is True and column(batches, "x")[-1] == "1"
    assert notes.widened == {"x": "string"}


def test_date_widens_to_string(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("2024-01-01", "soon"), sample_rows=10)
    assert column(batches, "x")[0] == dt.date(2024, 1, 1) and column(batches, "x")[-1] == "soon"
    assert notes.widened == {"x": "string"}


def test_timestamp_without_zone_widens_to_string_on_a_zoned_value(small_blocks: int) -> None:
    _, batches, notes = read_all(widening_csv("2024-01-01 10:00:00", "2024-01-01 10:00:00+01:00"), sample_rows=10)
    assert column(batches, "x")[-1] == "2024-01-01 10:00:00+01:00"
    assert notes.widened == {"x": "string"}


def test_widened_column_stays_widened(small_blocks: int) -> None:
    data = ("x\n" + "1\n" * 200 + "oops\n" + "2\n" * 200).encode()
    _, batches, notes = read_all(data, sample_rows=10)
    types = [b.schema.field("x").type for b in batches]
    first_string = types.index(pa.string())
    assert all(t == pa.string() for t in types[first_string:])
    assert column(batches, "x")[-1] == "2"
    assert notes.widened == {"x": "string"}


def test_widening_within_the_sample_batches_shows_in_the_returned_schema() -> None:
    # The first block holds the sample and more: a widening there is folded into the schema.
    schema, batches, notes = read_all(widening_csv("7", "2.5", rows=50), sample_rows=10)
    assert schema.field("x").type == pa.float64()
    assert all(b.schema.equals(schema) for b in batches)
    assert notes.widened == {"x": "float64"}


def test_notes_are_complete_once_the_iterator_is_exhausted(small_blocks: int) -> None:
    schema, batches, notes = read_csv_batches(io.BytesIO(widening_csv("7", "x")), 10)
    assert notes.widened == {}
    for _ in batches:
        pass
    assert notes.widened == {"x": "string"}


# -- layout ---------------------------------------------------------------------------------------


def test_bom_is_stripped_and_crlf_accepted() -> None:
    schema, batches, _ = read_all(b"\xef\xbb\xbfa,b\r\n1,x\r\n2,y\r\n")
    assert schema.names == ["a", "b"]
    assert column(batches, "b") == ["x", "y"]


def test_quoted_commas_quotes_and_newlines_are_kept() -> None:
    _, batches, _ = read_all(b'a,b\n"x, y","say ""hi""\nand\r\nbye"\n')
    assert column(batches, "a") == ["x, y"]
    assert column(batches, "b") == ['say "hi"\nand\r\nbye']


@pytest.mark.parametrize("offset", [-2, -1, 0, 1])
def test_crlf_inside_a_quoted_value_across_a_block_boundary_is_kept(small_blocks: int, offset: int) -> None:
    # Arrow itself drops the "\n" when a block ends right after the "\r" (apache/arrow#51368).
    head = b"a,b\r\n" + b"1,filler\r\n" * 90 + b'2,"'
    pad = (small_blocks - 1 - len(head) + offset) % small_blocks
    data = head + b"x" * pad + b'\r\ny"\r\n3,z\r\n'
    assert data.index(b"\r\ny") % small_blocks == (small_blocks - 1 + offset) % small_blocks
    _, batches, _ = read_all(data, sample_rows=10)
    assert column(batches, "b")[-2:] == ["x" * pad + "\r\ny", "z"]


def test_header_only_gives_string_columns_and_no_batches() -> None:
    schema, batches, notes = read_all(b"a,b\n")
    assert schema == pa.schema([("a", pa.string()), ("b", pa.string())])
    assert batches == []
    assert notes.string_fallback == ["a", "b"]


def test_quoted_header_names_may_hold_commas() -> None:
    schema, batches, _ = read_all(b'"a,b",c\n1,2\n')
    assert schema.names == ["a,b", "c"]
    assert column(batches, "a,b") == [1]


def test_value_spanning_block_boundaries_is_read_whole(small_blocks: int) -> None:
    big = "x" * (small_blocks // 2) + "\n" + "y" * (small_blocks // 3)
    data = ("a,b\n" + "1,s\n" * 300 + f'2,"{big}"\n' + "3,t\n" * 300).encode()
    _, batches, _ = read_all(data, sample_rows=10)
    values = column(batches, "b")
    assert len(values) == 601 and values[300] == big


def test_row_longer_than_a_block_is_invalid_input(small_blocks: int) -> None:
    data = ("a,b\n" + "1,s\n" * 300 + f'2,"{"x" * 5 * small_blocks}"\n' + "3,t\n" * 300).encode()
    with pytest.raises(InvalidInput, match=r"row longer than .* bytes"):
        read_all(data, sample_rows=10)


def test_random_text_survives_block_boundaries(small_blocks: int) -> None:
    rng = random.Random(1234)
    alphabet = ["a", "b", " ", ",", '"', "\n", "\r\n", "\r", "é", "€", "😀", "0", "1"]
    header = ["w", "x", "y", "z"]
    rows: list[list[str | None]] = [
        [None if rng.random() < 0.1 else "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in header] for _ in range(1500)
    ]
    data = write_csv(header, rows, newline="\r\n")
    _, batches, _ = read_all(data, sample_rows=20)

    reference = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[1:]
    assert len(batches) > 10
    assert sum(b.num_rows for b in batches) == len(reference) == len(rows)
    r = 0
    for batch in batches:
        for i in range(batch.num_rows):
            for c, name in enumerate(header):
                got = batch.column(c)[i].as_py()
                want = expected_cell(reference[r][c], rows[r][c] is None, batch.schema.field(c).type)
                assert same(got, want), f"row {r} column {name}: got {got!r}, want {want!r}"
            r += 1


def test_header_without_trailing_newline() -> None:
    schema, batches, _ = read_all(b"a,b")
    assert schema.names == ["a", "b"] and batches == []


def test_blank_lines_are_skipped() -> None:
    _, batches, _ = read_all(b"\n\na,b\n\n1,2\n\n\n3,4\n\n")
    assert column(batches, "a") == [1, 3]


def test_default_blocks_make_large_batches() -> None:
    row = b"1,hello,2024-01-01\n"
    per_block = csv_format.BLOCK_SIZE // len(row)
    _, batches, _ = read_all(b"a,b,c\n" + row * (3 * per_block))
    assert sum(b.num_rows for b in batches) == 3 * per_block
    assert all(b.num_rows >= 0.9 * per_block for b in batches[:-1]) and len(batches) <= 4


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"\n\r\n\n", b"\xef\xbb\xbf"], ids=["nothing", "blank-lines", "bom-only"])
def test_empty_body_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="empty CSV"):
        read_csv_batches(io.BytesIO(body))


def test_duplicate_column_names_are_named() -> None:
    with pytest.raises(InvalidInput, match=r"duplicate column names.*'price'"):
        read_csv_batches(io.BytesIO(b"id,price,price\n1,2,3\n"))


def test_column_names_differing_only_in_case_are_duplicates() -> None:
    with pytest.raises(InvalidInput, match=r"duplicate column names.*'Id' and 'ID'"):
        read_csv_batches(io.BytesIO(b"Id,ID\n1,2\n"))


@pytest.mark.parametrize("header", [b"a,,b", b'a,"",b', b"a, ,b"], ids=["unquoted", "quoted", "blank"])
def test_empty_column_name_is_invalid(header: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"empty column name \(column 2\)"):
        read_csv_batches(io.BytesIO(header + b"\n1,2,3\n"))


def test_row_with_too_few_fields_names_its_line() -> None:
    with pytest.raises(InvalidInput, match=r"line 4: expected 3 fields \(as in the header\), got 2: '4,5'") as err:
        read_all(b"a,b,c\n1,2,3\n\n4,5\n")
    assert err.value.detail == {"line": 4, "expected": 3, "got": 2}


def test_row_with_too_many_fields_names_its_line_counting_quoted_newlines_and_crlf() -> None:
    data = b'a,b\r\n1,"two\r\nlines"\r\n\r\n"x\ny",2,3\r\n'
    with pytest.raises(InvalidInput, match=r"line 5: expected 2 fields \(as in the header\), got 3"):
        read_all(data)


def test_row_with_wrong_field_count_far_into_the_stream_names_its_line(small_blocks: int) -> None:
    lines = ["a,b"] + [f'{i},"x{i}\nmore"' if i % 10 == 0 else f"{i},y" for i in range(2000)]
    physical = 1 + sum(2 if i % 10 == 0 else 1 for i in range(2000))
    data = ("\n".join(lines) + "\nbad row,with,three\n" + "1,2\n" * 50).encode()
    with pytest.raises(InvalidInput, match=rf"line {physical + 1}: expected 2 fields"):
        read_all(data, sample_rows=10)


def test_invalid_utf8_is_invalid_input_with_its_line(small_blocks: int) -> None:
    data = b"a,b\n" + b"1,fine\n" * 500 + b"2,caf\xe9\n" + b"3,fine\n" * 10
    with pytest.raises(InvalidInput, match=r"not valid UTF-8 at line 502 in column 'b'"):
        read_all(data, sample_rows=10)


def test_invalid_utf8_in_a_number_column_is_invalid_input_with_its_line(small_blocks: int) -> None:
    data = b"a,b\n" + b"1,x\n" * 3000 + b"2\xff,x\n" + b"3,x\n" * 3000
    with pytest.raises(InvalidInput, match=r"not valid UTF-8 at line 3002 in column 'a'"):
        read_all(data, sample_rows=10)


def test_invalid_utf8_in_the_sample_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"not valid UTF-8 at line 3 in column 'b'"):
        read_all(b"a,b\n1,x\n2,\xc3\x28\n")


def test_invalid_utf8_in_the_header_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"not valid UTF-8 at line 1"):
        read_all(b"\xffa,b\n1,2\n")


def test_more_than_max_bytes_is_too_large(small_blocks: int) -> None:
    data = b"a,b\n" + b"1,2\n" * 10_000
    with pytest.raises(TooLarge, match="larger than 5000 bytes"):
        read_all(data, max_bytes=5000)
    schema, batches, _ = read_all(data, max_bytes=len(data))  # exactly the bound is fine
    assert sum(b.num_rows for b in batches) == 10_000


def test_too_large_midway_is_raised_promptly(small_blocks: int) -> None:
    data = b"a,b\n" + b"1,2\n" * 50_000
    limit = csv_format.SNIFF_BYTES + 50 * small_blocks  # past what is read to find the header
    started = time.monotonic()
    with pytest.raises(TooLarge):
        read_all(data, max_bytes=limit)
    assert time.monotonic() - started < 2


def test_failure_of_the_source_is_raised_as_is(small_blocks: int) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            if self.sent > 20_000:
                raise ConnectionResetError("client went away")
            chunk = (b"a,b\n" if self.sent == 0 else b"") + b"1,2\n" * (len(b) // 4 - 1)
            b[: len(chunk)] = chunk
            self.sent += len(chunk)
            return len(chunk)

    with pytest.raises(ConnectionResetError, match="client went away"):
        schema, batches, _ = read_csv_batches(Broken(), 10)  # type: ignore[arg-type]
        list(batches)


# -- streaming ---------------------------------------------------------------------------------


class CountingSource(io.RawIOBase):
    """An endless-looking CSV body that records how much was read and in what pieces."""

    def __init__(self, rows: int, piece: int | None = None) -> None:
        self.body = b"a,b\n" + b"12345,hello\n" * rows
        self.pos = 0
        self.piece = piece
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = len(self.body) - self.pos if size < 0 else size
        if self.piece is not None:
            n = min(n, self.piece)  # like a socket: short reads
        chunk = self.body[self.pos : self.pos + n]
        self.pos += len(chunk)
        self.reads.append(size)
        return chunk


def test_source_is_read_incrementally_with_bounded_read_ahead(small_blocks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_format, "SNIFF_BYTES", 256)  # what is read to find the header
    source = CountingSource(rows=20_000)  # ~240 KiB: ~240 blocks of 1 KiB
    _, batches, _ = read_csv_batches(source, 10)  # type: ignore[arg-type]
    next(batches)
    time.sleep(0.3)  # unchecked, Arrow's IO thread would read 32 blocks ahead meanwhile
    assert source.pos <= 8 * small_blocks
    assert all(0 <= size <= small_blocks for size in source.reads[1:])


def test_whole_stream_is_delivered_after_read_ahead(small_blocks: int) -> None:
    source = CountingSource(rows=20_000)
    _, batches, _ = read_csv_batches(source, 10)  # type: ignore[arg-type]
    assert sum(b.num_rows for b in batches) == 20_000
    assert source.pos == len(source.body)


def test_short_reads_still_make_full_blocks() -> None:
    source = CountingSource(rows=100_000, piece=1000)  # 1.2 MB in 1000-byte pieces
    _, batches, _ = read_csv_batches(source, 10)  # type: ignore[arg-type]
    sizes = [b.num_rows for b in batches]
    assert sum(sizes) == 100_000
    assert len(sizes) == 1


def test_dropping_a_half_read_stream_releases_the_reader(small_blocks: int) -> None:
    before = threading.active_count()
    source = CountingSource(rows=20_000)
    _, batches, _ = read_csv_batches(source, 10)  # type: ignore[arg-type]
    next(batches)
    next(batches)
    del batches
    gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before
    assert source.pos < len(source.body)


def test_closing_a_stream_stops_reading(small_blocks: int) -> None:
    source = CountingSource(rows=20_000)
    _, batches, _ = read_csv_batches(source, 10)  # type: ignore[arg-type]
    next(batches)
    started = time.monotonic()
    batches.close()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 2  # Arrow let go of the input: no wait ran out
    read = source.pos
    time.sleep(0.2)
    assert source.pos == read < len(source.body)
    with pytest.raises(StopIteration):
        next(batches)


@pytest.mark.parametrize("bad", [b"2\xff,x\n", b"1,2,3\n", b'"' + b"x" * 3000 + b'"\n'], ids=["utf8", "fields", "long-row"])
def test_a_stream_failing_midway_fails_promptly(small_blocks: int, bad: bytes) -> None:
    data = b"a,b\n" + b"1,x\n" * 3000 + bad + b"3,x\n" * 3000
    started = time.monotonic()
    with pytest.raises(InvalidInput):
        read_all(data, sample_rows=10)
    assert time.monotonic() - started < 2  # closing waited for Arrow, and Arrow let go


EXIT_SCRIPT = """
import io, sys
from lakehouse.formats import csv as csv_format
from lakehouse.formats.compression import open_decompressed
from lakehouse.errors import InvalidInput
csv_format.BLOCK_SIZE = 1024
def read(data, limit=None):
    return csv_format.read_csv(open_decompressed(io.BytesIO(data), None, limit)[0], sample_rows=5)
late = b"a,b\\n" + b"1,2\\n" * 1000 + b"x,y,z\\n"
early = b"a,b\\n" + b"1,2\\n" * 10 + b"x,y,z\\n" + b"1,2\\n" * 100
batches = read(late)[1]
next(batches)
del batches  # dropped half read
errors = []  # kept, as a server keeps what it logs: their tracebacks keep the streams alive
big = b"a,b\\n" + b"1,2\\n" * 30_000
straddle = b"a,b\\n1,\\"" + b"x" * 5000 + b"\\"\\n"
for data, limit in ((big, 100_000), (late, None), (straddle, None), (early, None)):
    try:  # the last fails in the first block, right before the exit
        list(read(data, limit)[1])
    except InvalidInput as e:
        errors.append(e)
print("done")
"""


def test_process_exits_cleanly_right_after_failed_and_dropped_streams() -> None:
    # A parsing thread still running while the interpreter shuts down must not abort it.
    root = Path(__file__).resolve().parents[1]
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], cwd=root, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
