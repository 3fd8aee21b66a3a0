"""Real-world files over HTTP, on both backends: dialects, null markers, compression, encodings,
declared types, Parquet and NDJSON, appends read against the dataset, and schema evolution
read back through HTTP, Flight and ADBC. Every file is generated here and every value read
back is compared with what was written."""

from __future__ import annotations

import bz2
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
from typing import Any, Iterator

import adbc_driver_flightsql.dbapi as dbapi
import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from lakehouse.lake import Lake
from tests.test_flight import Served, put, serve, served  # noqa: F401  (fixtures)
from tests.test_http import assert_error, serving

ZSTD = pa.Codec("zstd")


@pytest.fixture
def http(lake: Lake) -> Iterator[httpx.Client]:
    with serving(lake) as running:
        yield running.client


def flights(n: int, na_from: int = 5_500) -> tuple[list[str], list[list[Any]]]:
    """Rows like a flights file: delays with `NA` for cancelled flights, first after row 5,000."""
    header = ["flight", "carrier", "dep_delay", "air_time", "day"]
    rows = []
    for i in range(n):
        cancelled = i >= na_from and i % 7 == 0
        rows.append([i, ["AA", "UA", "NA"][i % 3], None if cancelled else (i % 50) - 10, None if cancelled else round(30 + (i % 400) * 0.5, 1), dt.date(2013, 1, 1) + dt.timedelta(days=i % 365)])
    return header, rows


def to_csv(header: list[str], rows: list[list[Any]], delimiter: str = ",", na: str = "NA", decimal: str = ".") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([na if v is None else (str(v).replace(".", decimal) if isinstance(v, float) else v) for v in row])
    return out.getvalue().encode()


def ingest(http: httpx.Client, name: str, body: bytes, content_type: str = "text/csv", status: int = 200, headers: dict[str, str] | None = None, **params: str) -> dict[str, Any]:
    response = http.post("/v1/ingest", params={"name": name, **params}, content=body, headers={"Content-Type": content_type, **(headers or {})})
    assert response.status_code == status, response.text
    return response.json()


def upload(http: httpx.Client, name: str, filename: str, body: bytes, status: int = 200, **params: str) -> dict[str, Any]:
    response = http.post("/v1/ingest", params={"name": name, **params}, files={"file": (filename, body, "application/octet-stream")})
    assert response.status_code == status, response.text
    return response.json()


def rows_of(http: httpx.Client, query: str) -> list[dict[str, Any]]:
    response = http.post("/v1/sql", json={"sql": query}, headers={"Accept": "application/vnd.apache.arrow.stream"})
    assert response.status_code == 200, response.text
    return pa.ipc.open_stream(response.content).read_all().to_pylist()


def types_of(result: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["type"] for c in result["schema"]}


def storage_bytes(lake: Lake) -> list[tuple[str, str]]:
    return [(o.key, hashlib.sha256(lake.store.read_bytes(o.key)).hexdigest()) for o in lake.store.list()]


# -- null markers ----------------------------------------------------------------------------


def test_na_in_numeric_columns_first_seen_after_row_5000_keeps_them_numeric(http: httpx.Client) -> None:
    header, rows = flights(8_000)
    result = ingest(http, "flights", to_csv(header, rows))
    assert types_of(result) == {"flight": "int64", "carrier": "string", "dep_delay": "int64", "air_time": "double", "day": "date32[day]"}
    cancelled = sum(1 for r in rows if r[2] is None)
    assert result["notes"]["null_markers"] == {"dep_delay": {"NA": cancelled}, "air_time": {"NA": cancelled}}
    got = rows_of(http, "SELECT * FROM flights ORDER BY flight")
    assert [[g[h] for h in header] for g in got] == rows  # carrier "NA" (a text column) is kept as written
    assert rows_of(http, "SELECT max(dep_delay) AS m, count(dep_delay) AS c FROM flights") == [{"m": 39, "c": 8_000 - cancelled}]


def test_null_values_override_the_markers_in_every_column(http: httpx.Client) -> None:
    body = b"code,amount\n-,1\nNA,-\nx,2\n"
    result = ingest(http, "custom", body, null_values="-")
    assert types_of(result) == {"code": "string", "amount": "int64"}
    assert rows_of(http, "SELECT * FROM custom") == [{"code": None, "amount": 1}, {"code": "NA", "amount": None}, {"code": "x", "amount": 2}]
    off = ingest(http, "off", b"v\n1\nNA\n", null_values="")
    assert types_of(off) == {"v": "string"}


# -- dialects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["\t", "|", ";"], ids=["tsv", "pipe", "semicolon"])
def test_delimiters_are_sniffed(http: httpx.Client, delimiter: str) -> None:
    header = ["name", "city", "amount"]
    rows = [[f"n{i}", f"city, {i}", i * 3] for i in range(500)]
    result = ingest(http, "dialect", to_csv(header, rows, delimiter=delimiter))
    assert types_of(result) == {"name": "string", "city": "string", "amount": "int64"}
    assert result["notes"]["delimiter"] == delimiter
    assert [[g[h] for h in header] for g in rows_of(http, "SELECT * FROM dialect")] == rows


def test_delimiter_may_be_given_as_backslash_t(http: httpx.Client) -> None:
    ingest(http, "tabbed", b"a\tb\n1\tx,y\n", delimiter="\\t")
    assert rows_of(http, "SELECT * FROM tabbed") == [{"a": 1, "b": "x,y"}]


def test_semicolons_with_decimal_commas(http: httpx.Client) -> None:
    header = ["item", "price", "qty"]
    rows = [[f"i{i}", round(i * 1.25 + 0.5, 2), i] for i in range(300)]
    body = to_csv(header, rows, delimiter=";", decimal=",")
    for params in ({}, {"decimal": ",", "delimiter": ";"}):
        result = ingest(http, "euro", body, mode="replace", **params)
        assert types_of(result) == {"item": "string", "price": "double", "qty": "int64"}
        assert [[g[h] for h in header] for g in rows_of(http, "SELECT * FROM euro")] == rows


def test_headerless_file_with_names_and_declared_types(http: httpx.Client) -> None:
    body = b"007,2024-01-31,12.50\n042,2024-02-01,3\n"
    result = ingest(http, "bare", body, header="false", names="zip,day,price", types=json.dumps({"zip": "VARCHAR", "price": "DECIMAL(10,2)"}))
    assert types_of(result) == {"zip": "string", "day": "date32[day]", "price": "decimal128(10, 2)"}
    got = rows_of(http, "SELECT * FROM bare")
    assert got == [{"zip": "007", "day": dt.date(2024, 1, 31), "price": pytest.approx(12.5)}, {"zip": "042", "day": dt.date(2024, 2, 1), "price": pytest.approx(3)}]


def test_dates_in_other_layouts(http: httpx.Client) -> None:
    ingest(http, "slashed", b"d,t\n2012/01/01,2012/01/01 10:11:12\n2012/12/31,2012/12/31 23:59:59\n")
    assert rows_of(http, "SELECT * FROM slashed") == [
        {"d": dt.date(2012, 1, 1), "t": dt.datetime(2012, 1, 1, 10, 11, 12)},
        {"d": dt.date(2012, 12, 31), "t": dt.datetime(2012, 12, 31, 23, 59, 59)},
    ]
    ingest(http, "us", b"d\n01/02/2012\n12/31/2012\n", date_format="%m/%d/%Y")
    assert rows_of(http, "SELECT * FROM us") == [{"d": dt.date(2012, 1, 2)}, {"d": dt.date(2012, 12, 31)}]
    ingest(http, "eu", b"d\n01/02/2012 08:30\n31/12/2012 23:59\n", date_format="%d/%m/%Y %H:%M")
    assert rows_of(http, "SELECT * FROM eu") == [{"d": dt.datetime(2012, 2, 1, 8, 30)}, {"d": dt.datetime(2012, 12, 31, 23, 59)}]


def test_a_value_that_does_not_fit_a_declared_type_names_row_and_column(lake: Lake, http: httpx.Client) -> None:
    before = storage_bytes(lake)
    body = assert_error(http.post("/v1/ingest", params={"name": "typed", "types": '{"n": "INTEGER"}'}, content=b"n\n1\n2\nthree\n", headers={"Content-Type": "text/csv"}), 400)
    assert "row 3" in body["error"] and "'n'" in body["error"] and body["detail"]["row"] == 3
    assert storage_bytes(lake) == before


# -- compression and encodings ---------------------------------------------------------------


COMPRESSORS = {"gzip": gzip.compress, "zstd": lambda b: ZSTD.compress(b, asbytes=True), "bzip2": bz2.compress}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_compressed_uploads_multipart_and_raw(http: httpx.Client, codec: str) -> None:
    header, rows = flights(3_000, na_from=100)
    packed = COMPRESSORS[codec](to_csv(header, rows))
    upload(http, "packed_form", f"flights.csv.{codec}", packed)
    ingest(http, "packed_raw", packed)  # found by its first bytes
    ingest(http, "packed_declared", packed, headers={"Content-Encoding": codec})
    for name in ("packed_form", "packed_raw", "packed_declared"):
        assert [[g[h] for h in header] for g in rows_of(http, f"SELECT * FROM {name} ORDER BY flight")] == rows


def test_a_form_file_is_known_by_its_name_whatever_type_the_browser_gave(http: httpx.Client) -> None:
    response = http.post("/v1/ingest", params={"name": "excel"}, files={"file": ("data.csv", b"a;b\n1;2,5\n", "application/vnd.ms-excel")})
    assert response.status_code == 200, response.text
    assert rows_of(http, "SELECT * FROM excel") == [{"a": 1, "b": 2.5}]


def test_a_declared_encoding_the_body_lacks_is_refused(http: httpx.Client) -> None:
    body = assert_error(http.post("/v1/ingest", params={"name": "x"}, content=b"a\n1\n", headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"}), 400)
    assert "not gzip" in body["error"]
    assert_error(http.post("/v1/ingest", params={"name": "x"}, content=b"a\n1\n", headers={"Content-Type": "text/csv", "Content-Encoding": "br"}), 415)


def test_corrupt_gzip_is_a_clear_400(http: httpx.Client) -> None:
    packed = gzip.compress(b"a,b\n" + b"1,2\n" * 10_000)
    body = assert_error(http.post("/v1/ingest", params={"name": "x"}, content=packed[: len(packed) // 2], headers={"Content-Type": "text/csv"}), 400)
    assert "gzip" in body["error"] and "\\x" not in body["error"]


def test_zip_bomb_is_refused_with_413_and_leaves_nothing(lake: Lake) -> None:
    with serving(lake, max_upload_bytes=1_000_000) as running:
        before = storage_bytes(lake)
        bomb = gzip.compress(b"a,b\n" + b"1,2\n" * 5_000_000)  # 20 MB from ~20 KB
        assert len(bomb) < 1_000_000
        assert_error(running.client.post("/v1/ingest", params={"name": "bomb"}, content=bomb, headers={"Content-Type": "text/csv"}), 413)
        assert storage_bytes(lake) == before
        assert running.client.get("/catalog/manifest/bomb").status_code == 404


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_encodings(http: httpx.Client, encoding: str) -> None:
    names = ["José", "Zoë", "Ångström", "naïve"] + (["€uro", "“quoted”"] if encoding != "latin-1" else [])
    text = "name,n\n" + "".join(f"{v},{i}\n" for i, v in enumerate(names))
    ingest(http, "encoded", text.encode(encoding), mode="replace", encoding=encoding)
    assert rows_of(http, "SELECT * FROM encoded ORDER BY n") == [{"name": v, "n": i} for i, v in enumerate(names)]


def test_utf16_with_a_bom_needs_no_encoding(http: httpx.Client) -> None:
    ingest(http, "wide", "a,b\nÅ,1\n".encode("utf-16"))
    assert rows_of(http, "SELECT * FROM wide") == [{"a": "Å", "b": 1}]


def test_latin1_without_encoding_says_how_to_fix_it(http: httpx.Client) -> None:
    body = assert_error(http.post("/v1/ingest", params={"name": "x"}, content="a\nJosé\n".encode("latin-1"), headers={"Content-Type": "text/csv"}), 400)
    assert "UTF-8" in body["error"] and "encoding=" in body["error"]


# -- more formats ----------------------------------------------------------------------------


def sample_table() -> pa.Table:
    return pa.table({"id": pa.array(range(1000), pa.int64()), "name": [f"n{i}" for i in range(1000)], "x": [i / 4 for i in range(1000)]})


def test_parquet_upload_raw_and_multipart(http: httpx.Client) -> None:
    sink = io.BytesIO()
    pq.write_table(sample_table(), sink, row_group_size=100)
    result = ingest(http, "pq_raw", sink.getvalue(), "application/vnd.apache.parquet")
    assert types_of(result) == {"id": "int64", "name": "string", "x": "double"}
    upload(http, "pq_form", "data.parquet", sink.getvalue())
    for name in ("pq_raw", "pq_form"):
        assert rows_of(http, f"SELECT * FROM {name} ORDER BY id") == sample_table().to_pylist()


def test_ndjson_upload(http: httpx.Client) -> None:
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in sample_table().to_pylist())
    ingest(http, "nd", lines, "application/x-ndjson")
    assert rows_of(http, "SELECT * FROM nd ORDER BY id") == sample_table().to_pylist()
    upload(http, "nd_form", "data.jsonl.gz", gzip.compress(lines))
    assert rows_of(http, "SELECT count(*) AS n FROM nd_form") == [{"n": 1000}]


def test_bad_parquet_and_ndjson_are_clear_400s(lake: Lake, http: httpx.Client) -> None:
    before = storage_bytes(lake)
    assert_error(http.post("/v1/ingest", params={"name": "x"}, content=b"PAR1 not really", headers={"Content-Type": "application/vnd.apache.parquet"}), 400)
    assert_error(http.post("/v1/ingest", params={"name": "x"}, content=b'{"a": 1}\n{"a": \n', headers={"Content-Type": "application/x-ndjson"}), 400)
    assert_error(http.post("/v1/ingest", params={"name": "x", "delimiter": ";"}, content=b'{"a": 1}\n', headers={"Content-Type": "application/x-ndjson"}), 400)
    assert storage_bytes(lake) == before


# -- appends read against the dataset ----------------------------------------------------------


@pytest.mark.parametrize("order", ["first-half-first", "second-half-first"])
def test_a_file_split_in_two_appends_cleanly_in_both_orders(http: httpx.Client, order: str) -> None:
    header = ["flight", "dep_time", "price"]
    rows = [[i, None if (i >= 6_000 and i % 5 == 0) else 500 + i % 1000, float(i % 90) + (0.5 if i % 2 else 0.0)] for i in range(10_000)]
    halves = [rows[:5_000], rows[5_000:]]  # NA only in the second; whole-number prices in both
    if order == "second-half-first":
        halves.reverse()
    ingest(http, "split", to_csv(header, halves[0]))
    result = ingest(http, "split", to_csv(header, halves[1]), mode="append")
    assert types_of(result) == {"flight": "int64", "dep_time": "int64", "price": "double"}
    assert [[g[h] for h in header] for g in rows_of(http, "SELECT * FROM split ORDER BY flight")] == rows


def test_an_append_value_that_does_not_fit_names_row_and_column_and_changes_nothing(lake: Lake, http: httpx.Client) -> None:
    ingest(http, "fixed", b"id,n\n1,10\n2,20\n")
    before = storage_bytes(lake)
    body = assert_error(http.post("/v1/ingest", params={"name": "fixed", "mode": "append"}, content=b"id,n\n3,30\n4,forty\n", headers={"Content-Type": "text/csv"}), 400)
    assert "row 2" in body["error"] and "'n'" in body["error"]
    assert storage_bytes(lake) == before
    body = assert_error(http.post("/v1/ingest", params={"name": "fixed", "mode": "append"}, content=b"id,n,extra\n3,30,x\n", headers={"Content-Type": "text/csv"}), 400)
    assert "'extra'" in body["error"] and "evolve=true" in body["error"]
    assert storage_bytes(lake) == before


# -- schema evolution --------------------------------------------------------------------------


def test_evolve_adds_accepts_missing_and_promotes_read_through_every_protocol(served: Served) -> None:
    with serving(served.lake) as running:
        http = running.client
        ingest(http, "ev", b"id,score\n1,10\n2,20\n")
        # HTTP: a new column, and score as float64
        ingest(http, "ev", b"id,score,tag\n3,2.5,new\n", mode="append", evolve="true")
        # Flight DoPut with the path option: score missing
        put(served.client(), flight.FlightDescriptor.for_path("ev", "append", "evolve"), pa.table({"id": pa.array([4], pa.int64()), "tag": ["flight"]}))
        # ADBC ingest with the call header: score as text
        with dbapi.connect(served.uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.adbc_statement.set_options(**{"adbc.flight.sql.rpc.call_header.lakehouse-evolve": "true"})
            cur.adbc_ingest("ev", pa.table({"id": pa.array([5], pa.int64()), "score": ["n/a yet"], "tag": ["adbc"]}), mode="append")
        manifest = http.get("/catalog/manifest/ev").json()
        assert [(c["name"], c["type"]) for c in manifest["schema"]] == [("id", "int64"), ("score", "string"), ("tag", "string")]
        expected = [
            {"id": 1, "score": "10", "tag": None},
            {"id": 2, "score": "20", "tag": None},
            {"id": 3, "score": "2.5", "tag": "new"},
            {"id": 4, "score": None, "tag": "flight"},
            {"id": 5, "score": "n/a yet", "tag": "adbc"},
        ]
        assert rows_of(http, "SELECT * FROM ev ORDER BY id") == expected
        info = served.client().get_flight_info(flight.FlightDescriptor.for_command("SELECT * FROM ev ORDER BY id"))
        assert served.client().do_get(info.endpoints[0].ticket).read_all().to_pylist() == expected
        with dbapi.connect(served.uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM ev ORDER BY id")
            assert cur.fetch_arrow_table().to_pylist() == expected


def test_evolve_promotes_int64_to_float64_keeping_old_rows(http: httpx.Client) -> None:
    ingest(http, "prom", b"id,v\n1,7\n2,9007199254740993\n")
    assert_error(http.post("/v1/ingest", params={"name": "prom", "mode": "append"}, content=b"id,v\n3,1.5\n", headers={"Content-Type": "text/csv"}), 400)
    ingest(http, "prom", b"id,v\n3,1.5\n", mode="append", evolve="true")
    assert rows_of(http, "SELECT * FROM prom ORDER BY id") == [{"id": 1, "v": 7.0}, {"id": 2, "v": 9007199254740992.0}, {"id": 3, "v": 1.5}]


def test_without_evolve_an_arrow_append_of_another_schema_names_the_column(served: Served) -> None:
    put(served.client(), flight.FlightDescriptor.for_path("strict"), pa.table({"id": pa.array([1], pa.int64())}))
    with pytest.raises(pa.ArrowInvalid, match="'extra'"):
        put(served.client(), flight.FlightDescriptor.for_path("strict", "append"), pa.table({"id": pa.array([2], pa.int64()), "extra": ["x"]}))
    narrower = put(served.client(), flight.FlightDescriptor.for_path("strict", "append"), pa.table({"id": pa.array([2], pa.int32())}))
    assert narrower["rows"] == 1  # int32 into int64: read against the dataset


# -- dropping ----------------------------------------------------------------------------------


def test_delete_drops_a_dataset(http: httpx.Client) -> None:
    ingest(http, "gone", b"a\n1\n")
    response = http.delete("/catalog/gone")
    assert response.status_code == 200 and response.json()["dropped"]["name"] == "gone"
    assert http.get("/catalog/manifest/gone").status_code == 404
    assert_error(http.post("/v1/sql", json={"sql": "SELECT * FROM gone"}), 400)
    assert_error(http.delete("/catalog/gone"), 404)
