"""CSV ingest through the lake, on both backends: exact values back from a query, widening
across objects, and bad input that leaves storage byte-for-byte unchanged."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

import pytest

from lakehouse.config import Config
from lakehouse.errors import InvalidInput, TooLarge
from lakehouse.lake import Lake
from tests.conftest import MINIO_SECRETS

TRICKY = (
    "\ufeffid,zip,name,note,rate,active,hired,seen\r\n"
    '1,02134,"Smith, Jane",,1.5,true,2020-01-02,2021-03-04 05:06:07\r\n'
    '2,60601,"multi\nline","","2.25",false,2019-12-31,2021-03-04T05:06:07\r\n'
    '3,00501,plain,"quote ""inside""",,TRUE,,\r\n'
    "4,,,x,-0.5,False,2000-02-29,1999-12-31 23:59:59\r\n"
)


def independent_parse(text: str) -> list[dict[str, str | None]]:
    """What a careful reader expects: the csv module's fields, '' unquoted as NULL."""
    text = text.lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    raw_lines = text.split("\r\n")
    out = []
    for row in body:
        out.append(dict(zip(header, row)))
    # the csv module cannot tell "" from an empty field; the CSV above has exactly one "" (row 2, note)
    for rec in out:
        for k, v in rec.items():
            if v == "" and not (rec["id"] == "2" and k == "note"):
                rec[k] = None
    assert raw_lines[0].startswith("id")
    return out


def snapshot(lake: Lake) -> list[tuple[str, int]]:
    return [(o.key, o.size) for o in lake.store.list()]


def test_tricky_csv_values_survive_exactly(lake: Lake) -> None:
    result = lake.ingest_csv("tricky", io.BytesIO(TRICKY.encode()))
    assert result.rows == 4
    types = {f.name: str(f.type) for f in result.schema}
    assert types["id"] == "int64" and types["zip"] == "string" and types["rate"] == "double"
    assert types["active"] == "bool" and types["hired"] == "date32[day]" and types["seen"].startswith("timestamp")
    got = lake.query("SELECT * FROM tricky ORDER BY id").read_all().to_pylist()
    expected = independent_parse(TRICKY)
    for g, e in zip(got, expected, strict=True):
        assert g["id"] == int(e["id"])  # type: ignore[arg-type]
        for col in ("zip", "name", "note"):
            assert g[col] == e[col], (col, g, e)
        assert g["rate"] == (float(e["rate"]) if e["rate"] is not None else None)
        assert g["active"] == (e["active"].lower() == "true" if e["active"] is not None else None)
        assert g["hired"] == (dt.date.fromisoformat(e["hired"]) if e["hired"] else None)
        seen = e["seen"]
        assert (g["seen"].replace(tzinfo=None) if g["seen"] else None) == (dt.datetime.fromisoformat(seen) if seen else None)


def test_late_value_widens_the_column_across_objects(config: Config) -> None:
    small = dataclasses.replace(
        config,
        ingest=dataclasses.replace(config.ingest, sample_rows=100, row_group_rows=1000, max_object_bytes=4096),
    )
    lines = ["n,code"] + [f"{i},{i}" for i in range(50_000)] + ["50000,A-17", "50001,3.5"]
    lake = Lake.open(small, MINIO_SECRETS)
    try:
        result = lake.ingest_csv("wide", io.BytesIO(("\n".join(lines) + "\n").encode()))
        assert len(result.objects) > 1
        assert result.notes["widened"] == {"code": "string"}
        assert {f.name: str(f.type) for f in result.schema} == {"n": "int64", "code": "string"}
        got = lake.query("SELECT n, code FROM wide ORDER BY n").read_all().to_pylist()
        assert got == [{"n": i, "code": str(i)} for i in range(50_000)] + [{"n": 50000, "code": "A-17"}, {"n": 50001, "code": "3.5"}]
        referenced = {o.key for o in result.objects}
        assert {o.key for o in lake.store.list("datasets/")} == referenced
    finally:
        lake.close()


def test_header_only_makes_an_empty_string_dataset(lake: Lake) -> None:
    result = lake.ingest_csv("empty", io.BytesIO(b"a,b\n"))
    assert result.rows == 0
    out = lake.query("SELECT * FROM empty").read_all()
    assert out.num_rows == 0 and [str(f.type) for f in out.schema] == ["string", "string"]


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"", "empty"),
        (b"a,a\n1,2\n", "duplicate"),
        (b"a,,c\n1,2,3\n", "empty column name"),
        (b"a,b\n1,2\n3\n", "line 3"),
        (b"a,b\n1,2\n\xff\xfe,3\n", "UTF-8"),
    ],
)
def test_bad_csv_is_refused_and_leaves_storage_unchanged(lake: Lake, body: bytes, needle: str) -> None:
    lake.ingest_csv("kept", io.BytesIO(b"x\n1\n"))
    before = snapshot(lake)
    with pytest.raises(InvalidInput) as err:
        lake.ingest_csv("bad", io.BytesIO(body))
    assert needle.lower() in err.value.message.lower()
    assert snapshot(lake) == before
    assert lake.catalog.find("bad") is None


def test_bad_name_is_refused_before_reading(lake: Lake) -> None:
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        lake.ingest_csv("no-dashes", io.BytesIO(b"a\n1\n"))
    assert snapshot(lake) == []


def test_body_over_the_upload_bound_is_refused_and_leaves_nothing(config: Config) -> None:
    capped = dataclasses.replace(config, http=dataclasses.replace(config.http, max_upload_bytes=100_000))
    lake = Lake.open(capped, MINIO_SECRETS)
    try:
        body = ("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(100_000))).encode()
        with pytest.raises(TooLarge):
            lake.ingest_csv("big", io.BytesIO(body))
        assert snapshot(lake) == []
    finally:
        lake.close()
