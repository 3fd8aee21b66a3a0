"""Plain Arrow Flight against a real server: DoPut, ListFlights, GetFlightInfo, DoGet, actions."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flight import thread_states
from flight.server import running
from lakehouse.config import Config
from lakehouse.errors import Unavailable
from lakehouse.lake import Lake
from tests.conftest import MINIO_SECRETS


@dataclasses.dataclass
class Served:
    lake: Lake
    uri: str

    def client(self) -> flight.FlightClient:
        return flight.connect(self.uri)

    def data_objects(self) -> list[str]:
        return [o.key for o in self.lake.store.list("datasets/")]


ServeFactory = Callable[..., Served]


@pytest.fixture
def serve(config: Config, tmp_path: Path) -> Iterator[ServeFactory]:
    """Start servers on free ports over lakes of `config`, with settings overridden."""
    with contextlib.ExitStack() as stack:

        def start(cache: str = "cache-flight", statement_timeout: float = 600.0, **ingest: int) -> Served:
            cfg = dataclasses.replace(
                config,
                flight=dataclasses.replace(config.flight, port=0),
                ingest=dataclasses.replace(config.ingest, **ingest),
                storage=dataclasses.replace(config.storage, cache_dir=str(tmp_path / cache)),
            )
            lake = Lake.open(cfg, MINIO_SECRETS)
            stack.callback(lake.close)
            server = stack.enter_context(running(lake, statement_timeout))
            return Served(lake, f"grpc://127.0.0.1:{server.port}")

        yield start


@pytest.fixture
def served(serve: ServeFactory) -> Served:
    return serve()


def workers(n: int, start: int = 0) -> pa.Table:
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table(
        {
            "id": ids,
            "name": pa.array([f"w{i}" for i in range(start, start + n)]),
            "rate": pa.compute.multiply(ids.cast(pa.float64()), 0.25),
            "active": pa.array([i % 3 == 0 for i in range(start, start + n)]),
        }
    )


def put(client: flight.FlightClient, descriptor: flight.FlightDescriptor, data: pa.Table, chunk: int = 1000) -> dict[str, object]:
    writer, reader = client.do_put(descriptor, data.schema)
    for batch in data.to_batches(max_chunksize=chunk):
        writer.write_batch(batch)
    writer.done_writing()
    result = reader.read()
    writer.close()
    assert result is not None
    return json.loads(result.to_pybytes())


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# -- DoPut / ListFlights / DoGet -------------------------------------------------------------


def test_doput_creates_a_dataset_that_listflights_shows(served: Served) -> None:
    client = served.client()
    result = put(client, flight.FlightDescriptor.for_path("workers"), workers(5000))
    assert result["name"] == "workers" and result["rows"] == 5000 and result["mode"] == "create_append"
    infos = list(client.list_flights())
    assert [i.descriptor.path for i in infos] == [[b"workers"]]
    assert infos[0].schema == workers(1).schema
    assert infos[0].total_records == 5000
    assert infos[0].total_bytes == sum(o["size"] for o in result["objects"])  # type: ignore[index, union-attr]


def test_doget_of_select_star_returns_the_same_table(served: Served) -> None:
    client = served.client()
    data = workers(20_000)
    put(client, flight.FlightDescriptor.for_path("workers"), data)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT * FROM workers ORDER BY id"))
    assert info.schema == data.schema and len(info.endpoints) == 1
    got = client.do_get(info.endpoints[0].ticket).read_all()
    assert got.schema == info.schema
    assert got.equals(data)


def test_get_schema_of_a_dataset_and_of_a_query(served: Served) -> None:
    client = served.client()
    put(client, flight.FlightDescriptor.for_path("workers"), workers(10))
    assert client.get_schema(flight.FlightDescriptor.for_path("workers")).schema == workers(1).schema
    query = flight.FlightDescriptor.for_command(b"SELECT id, upper(name) AS n FROM workers")
    assert client.get_schema(query).schema == pa.schema([("id", pa.int64()), ("n", pa.string())])


def test_a_ticket_may_be_plain_sql(served: Served) -> None:
    client = served.client()
    put(client, flight.FlightDescriptor.for_path("workers"), workers(100))
    got = client.do_get(flight.Ticket(b"SELECT count(*) AS n, sum(id) AS s FROM workers")).read_all()
    assert got.to_pylist() == [{"n": 100, "s": sum(range(100))}]


def test_multi_endpoint_flight_info_reassembles_the_dataset(serve: ServeFactory) -> None:
    served = serve(row_group_rows=10_000, max_object_bytes=64 * 1024)
    data = workers(100_000)
    result = put(served.client(), flight.FlightDescriptor.for_path("workers"), data, chunk=10_000)
    info = served.client().get_flight_info(flight.FlightDescriptor.for_path("workers"))
    assert len(result["objects"]) > 1 and len(info.endpoints) == len(result["objects"])  # type: ignore[arg-type]
    assert info.total_records == 100_000
    parts = []
    for endpoint in info.endpoints:
        part = served.client().do_get(endpoint.ticket).read_all()
        assert part.schema == info.schema
        parts.append(part)
    assert pa.concat_tables(parts).equals(data)


def test_small_objects_are_grouped_into_fewer_endpoints(served: Served) -> None:
    client = served.client()
    for i in range(5):
        put(client, flight.FlightDescriptor.for_path("workers", "create_append"), workers(10, 10 * i))
    info = client.get_flight_info(flight.FlightDescriptor.for_path("workers"))
    assert len(served.lake.manifest("workers").objects) == 5 and len(info.endpoints) == 1
    assert client.do_get(info.endpoints[0].ticket).read_all().equals(workers(50))


def test_tickets_are_served_by_any_server_sharing_the_bucket(serve: ServeFactory) -> None:
    first, second = serve(), serve(cache="cache-second")
    put(first.client(), flight.FlightDescriptor.for_path("workers"), workers(1000))
    by_path = first.client().get_flight_info(flight.FlightDescriptor.for_path("workers"))
    by_sql = first.client().get_flight_info(flight.FlightDescriptor.for_command(b"SELECT * FROM workers WHERE id < 10 ORDER BY id"))
    second.lake.refresh()
    assert second.client().do_get(by_path.endpoints[0].ticket).read_all().equals(workers(1000))
    assert second.client().do_get(by_sql.endpoints[0].ticket).read_all().equals(workers(10))


def test_doput_mode_in_the_path_picks_create_append_or_replace(served: Served) -> None:
    client = served.client()
    put(client, flight.FlightDescriptor.for_path("workers", "create"), workers(10))
    with pytest.raises(pa.ArrowInvalid, match="already exists"):
        put(client, flight.FlightDescriptor.for_path("workers", "create"), workers(10))
    put(client, flight.FlightDescriptor.for_path("workers", "append"), workers(5, 10))
    assert served.lake.manifest("workers").row_count == 15
    put(client, flight.FlightDescriptor.for_path("workers", "replace"), workers(3, 100))
    got = client.do_get(flight.Ticket(b"SELECT min(id) AS lo, count(*) AS n FROM workers")).read_all()
    assert got.to_pylist() == [{"lo": 100, "n": 3}]
    with pytest.raises(KeyError, match="not found"):
        put(client, flight.FlightDescriptor.for_path("other", "append"), workers(3))


def test_doget_streams_batch_by_batch(served: Served) -> None:
    started = time.monotonic()
    reader = served.client().do_get(flight.Ticket(b"SELECT range AS i, range * 2 AS j FROM range(300000000)"))
    first = reader.read_chunk().data
    assert first.num_rows > 0 and time.monotonic() - started < 5.0  # 300M rows would take far longer to materialise
    reader.cancel()


# -- broken uploads leave nothing -------------------------------------------------------------


def test_a_killed_client_mid_doput_leaves_no_dataset_and_no_objects(serve: ServeFactory) -> None:
    served = serve(row_group_rows=10_000, max_object_bytes=64 * 1024)
    client_code = textwrap.dedent(
        f"""
        import time
        import pyarrow as pa, pyarrow.flight as flight
        ids = pa.array(range(10_000), pa.int64())
        batch = pa.record_batch({{"id": ids, "name": pa.compute.cast(ids, pa.string())}})
        writer, _ = flight.connect({served.uri!r}).do_put(flight.FlightDescriptor.for_path("workers"), batch.schema)
        for _ in range(5):
            writer.write_batch(batch)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", client_code])
    try:
        assert wait_for(lambda: len(served.data_objects()) >= 2, 30), "the upload never got half way"
    finally:
        proc.kill()
        proc.wait()
    assert wait_for(lambda: not served.data_objects()), served.data_objects()
    served.lake.refresh()
    assert served.lake.datasets() == []


def test_a_doput_cancelled_by_its_deadline_leaves_nothing(serve: ServeFactory) -> None:
    served = serve(row_group_rows=10_000, max_object_bytes=64 * 1024)
    data = workers(30_000)
    writer, _ = served.client().do_put(flight.FlightDescriptor.for_path("workers"), data.schema, options=flight.FlightCallOptions(timeout=3.0))
    for batch in data.to_batches(max_chunksize=10_000):
        writer.write_batch(batch)
    assert wait_for(lambda: len(served.data_objects()) >= 2, 2.5), "the upload never got half way"
    time.sleep(3.5)
    with pytest.raises(flight.FlightError):
        writer.close()
    assert wait_for(lambda: not served.data_objects()), served.data_objects()
    assert served.lake.datasets() == []


def test_a_batch_the_lake_cannot_store_half_way_leaves_nothing(serve: ServeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve(row_group_rows=10_000, max_object_bytes=64 * 1024)
    uploads = []
    upload = served.lake.store.put_file
    monkeypatch.setattr(served.lake.store, "put_file", lambda key, path: uploads.append(key) or upload(key, path))
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("noise", pa.int64())])
    noise = np.random.default_rng(0).integers(0, 2**62, 10_000)  # incompressible: one object per row group
    good = [pa.record_batch([pa.array(range(i, i + 10_000)), pa.array(noise)], schema=schema) for i in range(0, 30_000, 10_000)]
    bad = pa.record_batch([pa.array([1, None] * 5_000), pa.array(noise)], schema=schema)
    writer, reader = served.client().do_put(flight.FlightDescriptor.for_path("workers"), schema)
    with pytest.raises(pa.ArrowInvalid, match="non-nullable"):
        for batch in [*good, bad]:
            writer.write_batch(batch)
        writer.done_writing()
        reader.read()
        writer.close()
    assert len(uploads) >= 2, "the upload never got half way"
    assert served.data_objects() == []
    assert served.lake.datasets() == []


# -- errors -----------------------------------------------------------------------------------


def test_unknown_dataset_is_not_found(served: Served) -> None:
    with pytest.raises(KeyError, match="dataset 'nope' not found"):
        served.client().get_flight_info(flight.FlightDescriptor.for_path("nope"))


def test_bad_sql_is_invalid_argument_with_the_message(served: Served) -> None:
    with pytest.raises(pa.ArrowInvalid, match="SQL error"):
        served.client().get_flight_info(flight.FlightDescriptor.for_command(b"SELEKT 1"))
    with pytest.raises(pa.ArrowInvalid, match="sandbox|only read queries|not supported"):
        served.client().do_get(flight.Ticket(b"COPY (SELECT 1) TO '/tmp/x.csv'"))


def test_storage_down_is_unavailable(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise Unavailable("object storage unreachable")

    monkeypatch.setattr(served.lake.store, "put_file", down)
    with pytest.raises(flight.FlightUnavailableError, match="object storage unreachable"):
        put(served.client(), flight.FlightDescriptor.for_path("workers"), workers(10))


# -- actions ----------------------------------------------------------------------------------


def action(served: Served, name: str, body: bytes = b"") -> object:
    results = list(served.client().do_action(flight.Action(name, body)))
    assert len(results) == 1
    return json.loads(results[0].body.to_pybytes())


def test_list_actions_names_the_maintenance_actions(served: Served) -> None:
    names = {a.type for a in served.client().list_actions()}
    assert {"health", "gc", "drop", "refresh"} <= names


def test_health_action_reports_storage_and_datasets(served: Served) -> None:
    put(served.client(), flight.FlightDescriptor.for_path("workers"), workers(10))
    health = action(served, "health")
    assert (health["status"], health["storage"], health["query_engine"], health["datasets"], health["detail"]) == ("ok", True, True, 1, "ok")


def test_drop_action_removes_the_dataset_and_gc_its_objects(served: Served) -> None:
    put(served.client(), flight.FlightDescriptor.for_path("workers"), workers(10))
    keys = served.data_objects()
    dropped = action(served, "drop", b"workers")
    assert dropped["dropped"]["name"] == "workers"  # type: ignore[index]
    assert list(served.client().list_flights()) == []
    assert action(served, "gc", b"0") == {"deleted": keys}
    assert served.data_objects() == []


def test_refresh_action_sees_another_servers_commit(serve: ServeFactory) -> None:
    first, second = serve(), serve(cache="cache-second")
    put(first.client(), flight.FlightDescriptor.for_path("workers"), workers(10))
    assert action(second, "refresh") == {"datasets": 1}
    assert [i.descriptor.path for i in second.client().list_flights()] == [[b"workers"]]


# -- Thread states ---------------------------------------------------------------------------


def _interpreter_thread_states() -> int:
    api = ctypes.pythonapi
    api.PyInterpreterState_Head.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    count, state = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Head())
    while state:
        count, state = count + 1, api.PyThreadState_Next(state)
    return count


@pytest.mark.parametrize("backend", ["local"])
def test_grpc_threads_keep_their_python_state_and_ended_threads_leave_none(served: Served) -> None:
    """A gRPC thread's Python thread state outlives a call (not made anew for each callback),
    and the states of the many threads gRPC starts and retires under concurrent calls are
    freed, not left in the interpreter."""
    put(served.client(), flight.FlightDescriptor.for_path("w"), workers(100))
    before = _interpreter_thread_states()

    def calls(n: int) -> None:
        with served.client() as client:
            for _ in range(n):
                assert client.do_get(flight.Ticket(b"SELECT count(*) AS n FROM w")).read_all().column("n").to_pylist() == [100]

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(calls, [100] * 16))
    assert 1 <= thread_states.kept() <= len(os.listdir("/proc/self/task"))
    assert _interpreter_thread_states() - before <= thread_states.kept() + 16
