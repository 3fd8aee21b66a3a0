"""kill -9 in the middle of everything: CSV ingests over HTTP, DoPut streams and an append loop
whose client retries each append with its idempotency key until it is acknowledged. After
20 kills and restarts on MinIO: no partial dataset, every acknowledged ingest whole, every
append present exactly once, and gc leaves no object that no manifest references."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from scripts import minio as minio_script
from tests.processes import server_process
from tests.test_http import workers_csv

pytestmark = pytest.mark.slow

KILLS = 20
APPEND_ROWS = 500


def append_batch(k: int) -> pa.Table:
    return pa.table({"batch": pa.array([k] * APPEND_ROWS, pa.int64()), "id": pa.array(range(k * APPEND_ROWS, (k + 1) * APPEND_ROWS), pa.int64())})


class Load:
    """Three clients hammering one server address; each records what was acknowledged."""

    def __init__(self, http: str, grpc: str) -> None:
        self.http, self.grpc = http, grpc
        self.stop = threading.Event()
        self.csv_acked: dict[str, int] = {}
        self.put_acked: dict[str, int] = {}
        self.appends_acked: list[int] = []
        self.retries = 0
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._csv, self._put, self._append)]

    def _csv(self) -> None:
        i = 0
        while not self.stop.is_set():
            name = f"csv_{i}"
            i += 1
            try:
                r = httpx.post(f"{self.http}/v1/ingest", params={"name": name}, content=workers_csv(20_000), headers={"Content-Type": "text/csv"}, timeout=30)
                if r.status_code == 200:
                    self.csv_acked[name] = r.json()["rows"]
            except httpx.HTTPError:
                time.sleep(0.1)

    def _put(self) -> None:
        i = 0
        data = pa.table({"v": pa.array(range(40_000), pa.int64())})
        while not self.stop.is_set():
            name = f"put_{i}"
            i += 1
            try:
                client = flight.connect(self.grpc)
                writer, reader = client.do_put(flight.FlightDescriptor.for_path(name, "create"), data.schema)
                for batch in data.to_batches(max_chunksize=4_000):
                    writer.write_batch(batch)
                writer.done_writing()
                answer = json.loads(reader.read().to_pybytes())
                writer.close()
                self.put_acked[name] = answer["rows"]
            except (flight.FlightError, pa.ArrowException, OSError, AttributeError):
                time.sleep(0.1)

    def _append(self) -> None:
        k = 0
        while not self.stop.is_set():
            batch = append_batch(k)
            options = flight.FlightCallOptions(headers=[(b"idempotency-key", f"append-{k}".encode())], timeout=30)
            while True:  # the same append, with the same key, until it is acknowledged
                try:
                    client = flight.connect(self.grpc)
                    writer, reader = client.do_put(flight.FlightDescriptor.for_path("ledger", "create_append"), batch.schema, options=options)
                    writer.write_table(batch)
                    writer.done_writing()
                    answer = json.loads(reader.read().to_pybytes())
                    writer.close()
                    assert answer["rows"] == APPEND_ROWS
                    break
                except (flight.FlightError, pa.ArrowException, OSError, AttributeError):
                    self.retries += 1
                    time.sleep(0.1)
            self.appends_acked.append(k)
            k += 1


def test_twenty_kills_lose_and_duplicate_nothing(minio: minio_script.MinioServer, tmp_path: Path) -> None:
    uri = f"s3://{minio.bucket}/kill-{tmp_path.name}"
    settings = dict(ingest_row_group_rows="4000", ingest_max_object_bytes="1", catalog_gc_grace_seconds="0", catalog_lease_seconds="2")
    rng = random.Random(9)
    with server_process(tmp_path, uri, minio, **settings) as server:
        load = Load(server.http, server.flight)
        for t in load.threads:
            t.start()
        started = time.monotonic()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.4, 1.2))
            server.kill()
            server.start()
        load.stop.set()
        for t in load.threads:
            t.join(60)
        assert time.monotonic() - started < 240

        with httpx.Client(base_url=server.http, timeout=60) as http:

            def sql(query: str) -> list[dict[str, object]]:
                r = http.post("/v1/sql", json={"sql": query})
                assert r.status_code == 200, r.text
                return r.json()  # type: ignore[no-any-return]

            datasets = {d["name"]: d for d in http.get("/catalog/list").json()["datasets"]}
            for name, manifest in datasets.items():  # no partial dataset: each is whole as committed
                assert sql(f'SELECT count(*) AS n FROM "{name}"') == [{"n": manifest["row_count"]}], name
            for name, rows in {**load.csv_acked, **load.put_acked}.items():
                assert datasets[name]["row_count"] == rows, f"acknowledged {name} lost rows"
            for name, manifest in datasets.items():
                if name.startswith("csv_"):
                    assert manifest["row_count"] == 20_000
                elif name.startswith("put_"):
                    assert manifest["row_count"] == 40_000

            assert load.appends_acked, "the append loop made no progress"
            per_batch = sql("SELECT batch, count(*) AS n, count(DISTINCT id) AS d FROM ledger GROUP BY batch ORDER BY batch")
            assert [r["batch"] for r in per_batch] == load.appends_acked, "every acknowledged append present, no other"
            assert all(r["n"] == APPEND_ROWS and r["d"] == APPEND_ROWS for r in per_batch), "no append twice"

            time.sleep(2.5)  # leases of the killed writers expire
            collected = json.loads(next(iter(flight.connect(server.flight).do_action(flight.Action("gc", b"")))).body.to_pybytes())["deleted"]
            referenced = {o["key"] for d in http.get("/catalog/list").json()["datasets"] for o in d["objects"]}
            stored = {o["key"] for o in http.get("/storage/list", params={"prefix": "datasets/"}).json()["objects"]}
            assert stored == referenced, "gc left orphans or deleted a referenced object"
        print(f"kills={KILLS} csv={len(load.csv_acked)} put={len(load.put_acked)} appends={len(load.appends_acked)} retries={load.retries} orphans collected={len(collected)}")
