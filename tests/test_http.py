"""The HTTP edge over real HTTP: a uvicorn server on a free port, httpx as the client, both backends.

Each test reads as a curl example of docs/http.md: it sends what a user would send and checks
what comes back, then looks at the lake itself where the answer alone would not prove it.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from http_edge.server import HttpServer, serve_http
from lakehouse.config import StorageConfig, load_config
from lakehouse.errors import NotFound
from lakehouse.lake import Lake
from scripts import minio as minio_script
from tests.conftest import MINIO_SECRETS

ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEPTS = ["eng", "ops", "sales"]


@dataclass
class Running:
    server: HttpServer
    thread: threading.Thread
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@contextmanager
def serving(lake: Lake, **http: Any) -> Iterator[Running]:
    """Serve `lake` on a free port (port 0), with `http` overriding the [http] config."""
    lake.config = dataclasses.replace(lake.config, http=dataclasses.replace(lake.config.http, port=0, **http))
    server = serve_http(lake)
    thread = threading.Thread(target=server.run, name="http-edge", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the HTTP edge did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=120) as client:
            yield Running(server, thread, client)
    finally:
        server.stop()
        thread.join(60)


@pytest.fixture
def http(lake: Lake) -> Iterator[httpx.Client]:
    with serving(lake) as running:
        yield running.client


def workers_csv(n: int) -> bytes:
    lines = ["id,name,dept,salary,hired"]
    lines += [f"{i},worker {i},{DEPTS[i % 3]},{1000 + i},2024-01-{i % 28 + 1:02d}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def ingest_workers(http: httpx.Client, name: str = "workers", n: int = 300) -> httpx.Response:
    response = http.post("/v1/ingest", params={"name": name}, files={"file": ("workers.csv", workers_csv(n), "text/csv")})
    assert response.status_code == 200, response.text
    return response


def sql(http: httpx.Client, query: str, **body: Any) -> Any:
    response = http.post("/v1/sql", json={"sql": query, **body})
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str) and body["error"]
    return body


def arrow_body(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=100)
    return sink.getvalue()


# -- health ------------------------------------------------------------------------------------


def test_health_answers_ok(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "lakehouse-http"}


def test_ready_reports_storage_catalog_and_query_engine(http: httpx.Client) -> None:
    ingest_workers(http)
    body = http.get("/ready").json()
    assert body["status"] == "ok" and body["storage"] is True and body["query_engine"] is True
    assert body["catalog_datasets"] == 1


def test_ready_is_503_when_storage_is_unreachable(tmp_path: Path) -> None:
    server = minio_script.start(tmp_path / "minio")
    base = load_config(environ={})
    storage = StorageConfig(uri=f"s3://{server.bucket}/ready", endpoint=server.endpoint, cache_dir=str(tmp_path / "cache"), timeout_seconds=1.0)
    lake = Lake.open(dataclasses.replace(base, storage=storage, query=dataclasses.replace(base.query, view_ttl_seconds=0.0)), MINIO_SECRETS)
    try:
        with serving(lake) as running:
            assert running.client.get("/ready").status_code == 200
            server.stop()
            body = assert_error(running.client.get("/ready"), 503)
            assert body["detail"]["storage"] is False
    finally:
        server.stop()
        lake.close()


# -- ingest ------------------------------------------------------------------------------------


def test_multipart_csv_ingest_answers_the_manifest_and_row_count(http: httpx.Client) -> None:
    body = ingest_workers(http, n=300).json()
    assert body["rows"] == 300 and body["mode"] == "create"
    assert body["manifest"]["name"] == "workers" and body["manifest"]["row_count"] == 300
    assert [c["name"] for c in body["manifest"]["schema"]] == ["id", "name", "dept", "salary", "hired"]
    assert body["notes"] == {"delimiter": ",", "string_fallback": [], "widened": {}, "null_markers": {}}


def test_manifest_carries_an_etag_and_answers_304_when_unchanged(http: httpx.Client) -> None:
    ingest_workers(http)
    first = http.get("/catalog/manifest/workers")
    assert first.status_code == 200 and first.json()["row_count"] == 300
    etag = first.headers["etag"]
    assert etag == f'"{first.json()["etag"]}"'
    assert http.get("/catalog/manifest/workers", headers={"If-None-Match": etag}).status_code == 304
    http.post("/v1/ingest", params={"name": "workers", "mode": "append"}, files={"file": ("more.csv", workers_csv(5), "text/csv")})
    changed = http.get("/catalog/manifest/workers", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag and changed.json()["row_count"] == 305


def test_sql_counts_and_groups_an_ingested_csv(http: httpx.Client) -> None:
    ingest_workers(http, n=300)
    assert sql(http, "SELECT count(*) FROM workers") == [{"count_star()": 300}]
    got = sql(http, "SELECT dept, count(*) AS n, max(salary) AS top FROM workers GROUP BY dept ORDER BY dept")
    assert got == [{"dept": d, "n": 100, "top": max(1000 + i for i in range(300) if DEPTS[i % 3] == d)} for d in DEPTS]


def test_raw_csv_body_is_ingested(http: httpx.Client) -> None:
    response = http.post("/v1/ingest", params={"name": "raw"}, content=workers_csv(50), headers={"Content-Type": "text/csv"})
    assert response.status_code == 200 and response.json()["rows"] == 50
    assert sql(http, "SELECT sum(id)::BIGINT AS s FROM raw") == [{"s": sum(range(50))}]


def test_arrow_stream_body_is_ingested_with_its_types(http: httpx.Client) -> None:
    table = pa.table(
        {
            "id": pa.array(range(1000), pa.int64()),
            "seen": pa.array([i * 1_000_000 for i in range(1000)], pa.timestamp("us", tz="UTC")),
            "ok": pa.array([i % 2 == 0 for i in range(1000)]),
        }
    )
    body = arrow_body(table)
    chunked = iter([body[i : i + 4096] for i in range(0, len(body), 4096)])
    response = http.post("/v1/ingest", params={"name": "events"}, content=chunked, headers={"Content-Type": ARROW_STREAM})
    assert response.status_code == 200, response.text
    assert [c["type"] for c in response.json()["manifest"]["schema"]] == ["int64", "timestamp[us, tz=UTC]", "bool"]
    assert sql(http, "SELECT count(*) AS n, max(seen) AS last, count(*) FILTER (WHERE ok) AS even FROM events") == [{"n": 1000, "last": "1970-01-01T00:16:39Z", "even": 500}]


def test_ingest_modes_append_and_refuse_a_second_create(http: httpx.Client) -> None:
    ingest_workers(http, n=10)
    assert_error(http.post("/v1/ingest", params={"name": "workers"}, files={"file": ("w.csv", workers_csv(10), "text/csv")}), 409)
    appended = http.post("/v1/ingest", params={"name": "workers", "mode": "append"}, files={"file": ("w.csv", workers_csv(7), "text/csv")})
    assert appended.status_code == 200 and appended.json()["manifest"]["row_count"] == 17


def test_alias_routes_ingest_and_query(http: httpx.Client) -> None:
    assert http.post("/ingest", params={"name": "alias"}, content=workers_csv(3), headers={"Content-Type": "text/csv"}).status_code == 200
    response = http.post("/sql", json={"sql": "SELECT count(*) AS n FROM alias"})
    assert response.status_code == 200 and response.json() == [{"n": 3}]


def test_large_multipart_csv_streams_through(http: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = 0
    with path.open("wb") as out:
        out.write(b"id,name,dept,salary\n")
        while out.tell() < 50_000_000:
            out.write(b"".join(b"%d,worker-%d,%s,%d.25\n" % (i, i, DEPTS[i % 3].encode(), i % 1000) for i in range(rows, rows + 100_000)))
            rows += 100_000
    with path.open("rb") as f:
        response = http.post("/v1/ingest", params={"name": "big"}, files={"file": ("big.csv", f, "text/csv")})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == rows
    got = sql(http, "SELECT count(*) AS n, sum(id)::BIGINT AS ids, count(DISTINCT dept) AS depts FROM big")
    assert got == [{"n": rows, "ids": rows * (rows - 1) // 2, "depts": 3}]


def test_ingest_over_the_upload_cap_is_413_and_creates_nothing(lake: Lake) -> None:
    with serving(lake, max_upload_bytes=2000) as running:
        response = running.client.post("/v1/ingest", params={"name": "big"}, files={"file": ("w.csv", workers_csv(200), "text/csv")})
        assert_error(response, 413)
        assert running.client.get("/catalog/list").json() == {"datasets": []}
        assert lake.list_objects("datasets/") == []


# -- SQL results -------------------------------------------------------------------------------


def test_sql_json_writes_every_type_faithfully(http: httpx.Client) -> None:
    got = sql(
        http,
        r"""SELECT DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05.123456' AS ts,
        TIMESTAMPTZ '2024-01-02 03:04:05+02' AS tz, TIMESTAMP_NS '2024-01-01 00:00:00.123456789' AS ns,
        [TIMESTAMP_NS '2024-01-01 00:00:00.000000001'] AS nested_ns,
        12.34::DECIMAL(10, 2) AS dec, '\x00\xFFhi'::BLOB AS bin, [1, NULL, 3] AS list,
        {'a': 1, 'b': 'x', 'c': [DATE '2024-01-01']} AS struct, NULL::INTEGER AS nothing,
        'nan'::DOUBLE AS nan, 9007199254740993::BIGINT AS big, true AS yes""",
    )
    assert got == [
        {
            "d": "2024-02-29",
            "ts": "2024-01-02T03:04:05.123456",
            "tz": "2024-01-02T01:04:05Z",
            "ns": "2024-01-01T00:00:00.123456789",
            "nested_ns": ["2024-01-01 00:00:00.000000001"],
            "dec": "12.34",
            "bin": base64.b64encode(b"\x00\xffhi").decode(),
            "list": [1, None, 3],
            "struct": {"a": 1, "b": "x", "c": ["2024-01-01"]},
            "nothing": None,
            "nan": None,
            "big": 9007199254740993,
            "yes": True,
        }
    ]


def test_sql_streams_ndjson(http: httpx.Client) -> None:
    ingest_workers(http, n=300)
    with http.stream("POST", "/v1/sql", json={"sql": "SELECT id, dept FROM workers ORDER BY id"}, headers={"Accept": "application/x-ndjson"}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
        lines = list(response.iter_lines())
    assert [json.loads(line) for line in lines] == [{"id": i, "dept": DEPTS[i % 3]} for i in range(300)]


def test_sql_streams_csv(http: httpx.Client) -> None:
    response = http.post(
        "/v1/sql",
        json={"sql": "SELECT 1 AS n, 'a, \"b\"' AS text, DATE '2024-01-02' AS d, NULL AS z, [1, 2] AS list, '\\x01'::BLOB AS bin"},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(response.text))) == [["n", "text", "d", "z", "list", "bin"], ["1", 'a, "b"', "2024-01-02", "", "[1,2]", "AQ=="]]


def test_sql_streams_arrow_ipc(http: httpx.Client) -> None:
    ingest_workers(http, n=300)
    response = http.post("/v1/sql", json={"sql": "SELECT id, hired FROM workers ORDER BY id"}, headers={"Accept": ARROW_STREAM})
    assert response.status_code == 200 and response.headers["content-type"] == ARROW_STREAM
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.schema.field("hired").type == pa.date32()
    assert table.column("id").to_pylist() == list(range(300))


def test_sql_refuses_an_accept_it_cannot_answer(http: httpx.Client) -> None:
    body = assert_error(http.post("/v1/sql", json={"sql": "SELECT 1"}, headers={"Accept": "text/html"}), 406)
    assert "application/x-ndjson" in body["detail"]["available"]


def test_sql_cut_at_the_configured_max_rows_says_so_in_the_header_and_the_body(lake: Lake) -> None:
    with serving(lake, max_rows=5) as running:
        client = running.client
        for accept in ["application/json", "application/x-ndjson", "text/csv", ARROW_STREAM]:
            response = client.post("/v1/sql", json={"sql": "SELECT * FROM range(12)"}, headers={"Accept": accept})
            assert response.status_code == 200 and response.headers["x-lakehouse-truncated"] == "true", accept
        trailer = {"$truncated": {"max_rows": 5, "message": "the result has more than 5 rows; only the first 5 are here"}}
        assert client.post("/v1/sql", json={"sql": "SELECT * FROM range(12)"}).json() == [{"range": i} for i in range(5)] + [trailer]
        lines = client.post("/v1/sql", json={"sql": "SELECT * FROM range(12)"}, headers={"Accept": "application/x-ndjson"}).text.splitlines()
        assert [json.loads(line) for line in lines] == [{"range": i} for i in range(5)] + [trailer]
        text = client.post("/v1/sql", json={"sql": "SELECT * FROM range(12)"}, headers={"Accept": "text/csv"}).text
        assert text.splitlines()[-1].startswith("# truncated") and len(text.splitlines()) == 7
        reader = pa.ipc.open_stream(client.post("/v1/sql", json={"sql": "SELECT * FROM range(12)"}, headers={"Accept": ARROW_STREAM}).content)
        batches = []
        while True:
            try:
                batches.append(reader.read_next_batch_with_custom_metadata())
            except StopIteration:
                break
        assert sum(b.batch.num_rows for b in batches) == 5
        assert batches[-1].batch.num_rows == 0 and batches[-1].custom_metadata[b"lakehouse.truncated"] == b"true"
        whole = client.post("/v1/sql", json={"sql": "SELECT * FROM range(5)"}).json()
        assert whole == [{"range": i} for i in range(5)]


def test_sql_max_rows_above_the_server_limit_is_refused_naming_it(lake: Lake) -> None:
    with serving(lake, max_rows=5) as running:
        body = assert_error(running.client.post("/v1/sql", json={"sql": "SELECT * FROM range(12)", "max_rows": 1000}), 400)
        assert "limit of 5 rows" in body["error"] and body["detail"] == {"max_rows": 5}


def test_sql_max_rows_in_the_body_truncates_and_says_so(http: httpx.Client) -> None:
    cut = http.post("/v1/sql", json={"sql": "SELECT * FROM range(10)", "max_rows": 3})
    assert cut.headers["x-lakehouse-truncated"] == "true" and cut.json()[:3] == [{"range": 0}, {"range": 1}, {"range": 2}]
    assert cut.json()[3]["$truncated"]["max_rows"] == 3 and len(cut.json()) == 4
    whole = http.post("/v1/sql", json={"sql": "SELECT * FROM range(3)", "max_rows": 3})
    assert whole.headers["x-lakehouse-truncated"] == "false" and len(whole.json()) == 3


def test_a_small_result_is_one_response_and_a_large_one_streams(http: httpx.Client) -> None:
    small = http.post("/v1/sql", json={"sql": "SELECT * FROM range(100)"})
    assert small.headers.get("content-length") == str(len(small.content)) and "transfer-encoding" not in small.headers
    assert small.headers["x-lakehouse-truncated"] == "false" and len(small.json()) == 100
    with http.stream("POST", "/v1/sql", json={"sql": "SELECT repeat('x', 1000) AS s FROM range(5000)"}) as large:
        assert large.headers.get("transfer-encoding") == "chunked" and "content-length" not in large.headers
        assert large.headers["x-lakehouse-truncated"] == "unknown"
        assert len(json.loads(large.read())) == 5000


def test_sql_takes_parameters(http: httpx.Client) -> None:
    ingest_workers(http, n=30)
    assert sql(http, "SELECT count(*) AS n FROM workers WHERE dept = ? AND id < ?", params=["ops", 10]) == [{"n": 3}]


def test_sql_refuses_writes_and_bad_sql_with_400(http: httpx.Client) -> None:
    ingest_workers(http, n=3)
    for query in ["DROP VIEW workers", "COPY workers TO '/tmp/x.csv'", "SELEC 1", "SELECT * FROM missing", "SELECT 1; SELECT 2"]:
        assert_error(http.post("/v1/sql", json={"sql": query}), 400)
    assert sql(http, "SELECT count(*) AS n FROM workers") == [{"n": 3}]


# -- catalog -----------------------------------------------------------------------------------

SCHEMA = [{"name": "id", "type": "int64"}, {"name": "name", "type": "string"}, {"name": "seen", "type": "timestamp[us]"}, {"name": "day", "type": "date32"}]


def test_register_is_idempotent_for_the_same_schema(http: httpx.Client) -> None:
    first = http.post("/catalog/register", json={"name": "people", "schema": SCHEMA})
    again = http.post("/catalog/register", json={"name": "people", "schema": SCHEMA})
    assert first.status_code == again.status_code == 200
    assert first.json()["dataset_id"] == again.json()["dataset_id"] and again.json()["version"] == 1
    assert sql(http, "SELECT count(*) AS n FROM people") == [{"n": 0}]


def test_register_with_another_schema_is_409(http: httpx.Client) -> None:
    http.post("/catalog/register", json={"name": "people", "schema": SCHEMA})
    assert_error(http.post("/catalog/register", json={"name": "people", "schema": SCHEMA[:1]}), 409)


def test_register_accepts_the_types_a_manifest_shows(http: httpx.Client) -> None:
    shown = [{"name": c["name"], "type": c["type"]} for c in ingest_workers(http).json()["manifest"]["schema"]]
    response = http.post("/catalog/register", json={"name": "workers", "schema": shown})
    assert response.status_code == 200 and response.json()["version"] == 1


def test_catalog_list_shows_every_dataset(http: httpx.Client) -> None:
    ingest_workers(http, "b")
    http.post("/catalog/register", json={"name": "a", "schema": SCHEMA})
    assert [d["name"] for d in http.get("/catalog/list").json()["datasets"]] == ["a", "b"]


def test_manifest_of_an_unknown_dataset_is_404(http: httpx.Client) -> None:
    assert_error(http.get("/catalog/manifest/nobody"), 404)


# -- storage -----------------------------------------------------------------------------------


def test_storage_put_then_get_echoes_the_bytes_and_list_shows_the_key(http: httpx.Client) -> None:
    data = bytes(range(256)) * 12_000 + b"\r\n--tail"
    put = http.put("/storage/put/raw/blob.bin", content=data)
    assert put.status_code == 200 and put.json()["size"] == len(data)
    got = http.get("/storage/get/raw/blob.bin")
    assert got.status_code == 200 and got.content == data
    listed = http.get("/storage/list", params={"prefix": "raw/"}).json()
    assert [(o["key"], o["size"]) for o in listed["objects"]] == [("raw/blob.bin", len(data))]


def test_storage_get_of_a_missing_key_is_404(http: httpx.Client) -> None:
    assert_error(http.get("/storage/get/raw/none.bin"), 404)


def test_storage_put_over_the_cap_by_content_length_is_413_and_stores_nothing(lake: Lake) -> None:
    with serving(lake, max_upload_bytes=1000) as running:
        body = assert_error(running.client.put("/storage/put/raw/big.bin", content=b"x" * 1001), 413)
        assert body["detail"] == {"max_bytes": 1000}
        assert running.client.put("/storage/put/raw/ok.bin", content=b"x" * 1000).status_code == 200
    with pytest.raises(NotFound):
        lake.stat_object("raw/big.bin")


def test_storage_chunked_put_over_the_cap_is_413_and_stores_nothing(lake: Lake) -> None:
    with serving(lake, max_upload_bytes=1000) as running:
        response = running.client.put("/storage/put/raw/big.bin", content=iter([b"x" * 400] * 3))
        assert "content-length" not in response.request.headers
        assert_error(response, 413)
    with pytest.raises(NotFound):
        lake.stat_object("raw/big.bin")
    assert lake.list_objects("raw/") == []


def test_storage_keys_are_checked_by_the_core(http: httpx.Client) -> None:
    for key in ["a/%2E%2E/b", "%2E%2E", "a/%2E/b", "_catalog/manifests/x", "back%5Cslash", "colon%3Akey"]:
        assert_error(http.put(f"/storage/put/{key}", content=b"x"), 400)
    assert_error(http.get("/storage/list", params={"prefix": "../"}), 400)


# -- errors ------------------------------------------------------------------------------------


def test_malformed_requests_get_json_errors_and_never_500(http: httpx.Client) -> None:
    csv_file = {"file": ("w.csv", workers_csv(3), "text/csv")}
    cases: list[tuple[httpx.Request, int]] = [
        (http.build_request("POST", "/v1/sql", content=b"{not json", headers={"Content-Type": "application/json"}), 400),
        (http.build_request("POST", "/v1/sql", json={"query": "SELECT 1"}), 400),
        (http.build_request("POST", "/v1/sql", json={"sql": 42}), 400),
        (http.build_request("POST", "/v1/sql", json={"sql": "SELECT 1", "max_rows": -1}), 400),
        (http.build_request("POST", "/v1/sql", json={"sql": "SELECT ?, ?", "params": [1]}), 400),
        (http.build_request("POST", "/v1/sql", json={"sql": "SELECT * FROM nobody"}), 400),
        (http.build_request("POST", "/v1/sql", json={"sql": "SELECT CASE WHEN range = 5000 THEN error('late') ELSE range END FROM range(10000)"}), 400),
        (http.build_request("POST", "/v1/sql", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}), 413),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, files={"other": ("w.csv", b"a\n1\n", "text/csv")}), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"--b\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=b"}), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"a\n1\n", headers={"Content-Type": "multipart/form-data"}), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"{}", headers={"Content-Type": "application/json"}), 415),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"a\n1\n"), 415),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"not arrow", headers={"Content-Type": ARROW_STREAM}), 400),
        (http.build_request("POST", "/v1/ingest", files=csv_file), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "bad name!"}, files=csv_file), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "w", "mode": "upsert"}, files=csv_file), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "nobody", "mode": "append"}, files=csv_file), 404),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"", headers={"Content-Type": "text/csv"}), 400),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"a,b\n1,2,3\n", headers={"Content-Type": "text/csv"}), 400),
        (http.build_request("POST", "/catalog/register", json={"name": "x", "schema": [{"name": "a", "type": "integer64"}]}), 400),
        (http.build_request("POST", "/catalog/register", json={"name": "x", "schema": [{"name": "", "type": "int64"}]}), 400),
        (http.build_request("POST", "/catalog/register", json={"name": "1x", "schema": []}), 400),
        (http.build_request("POST", "/catalog/register", json={"name": "x"}), 400),
        (http.build_request("GET", "/catalog/manifest/nobody"), 404),
        (http.build_request("GET", "/storage/get/a/%2E%2E/%2E%2E/etc/passwd"), 400),
        (http.build_request("GET", "/no/such/route"), 404),
        (http.build_request("DELETE", "/v1/sql"), 405),
        (http.build_request("GET", "/v1/ingest"), 405),
        (http.build_request("GET", "/catalog/manifest/nobody", headers={"X-Padding": "x" * 30_000, "If-None-Match": "y" * 20_000}), 404),
        (http.build_request("POST", "/v1/ingest", params={"name": "w"}, content=b"a", headers={"Content-Type": "text/" + "x" * 30_000}), 415),
    ]
    for request, status in cases:
        response = http.send(request)
        assert response.status_code != 500, (request.method, request.url, response.text)
        assert_error(response, status)
    assert http.get("/catalog/list").json() == {"datasets": []}


def test_headers_over_the_server_limit_are_refused_without_a_500(http: httpx.Client) -> None:
    # uvicorn refuses them before the app sees the request: a plain 400, or a reset when the
    # client is still sending as it closes the connection. Either way no 500, and it serves on.
    try:
        status = http.get("/health", headers={"X-Padding": "x" * 200_000}).status_code
    except httpx.TransportError:
        status = None
    assert status is None or 400 <= status < 500
    assert http.get("/health").status_code == 200


def test_openapi_document_lists_the_routes(http: httpx.Client) -> None:
    paths = http.get("/schema/openapi.json").json()["paths"]
    for route in ["/health", "/ready", "/v1/ingest", "/v1/sql", "/catalog/register", "/catalog/manifest/{name}", "/catalog/list", "/storage/put/{key}", "/storage/get/{key}", "/storage/list"]:
        assert route in paths, route


# -- server ------------------------------------------------------------------------------------


def test_stop_lets_a_request_in_flight_finish(lake: Lake) -> None:
    sending = threading.Event()
    answers: list[httpx.Response] = []

    def slow_body() -> Iterator[bytes]:
        yield b"a" * 100
        sending.set()
        time.sleep(1.0)
        yield b"b" * 100

    with serving(lake) as running:
        upload = threading.Thread(target=lambda: answers.append(running.client.put("/storage/put/slow.bin", content=slow_body())))
        upload.start()
        assert sending.wait(10)
        running.server.stop()
        upload.join(30)
        running.thread.join(30)
        assert not running.thread.is_alive()
    assert answers and answers[0].status_code == 200 and answers[0].json()["size"] == 200
    assert lake.stat_object("slow.bin").size == 200
