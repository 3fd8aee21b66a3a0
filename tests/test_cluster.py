"""Three servers on one bucket (real MinIO, real processes): commits seen everywhere within a
second or two, reads split among the servers and reassembled by ADBC and pyarrow clients
with a token from one of them, and a dead server's shares read through their fallback."""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

from lakehouse.catalog import DataObject
from lakehouse.cluster import place
from scripts import minio as minio_script
from tests.processes import ServerProcess, server_process
from tests.test_auth import PASSWORDS, add_users

OPTS = adbc_driver_flightsql.DatabaseOptions
ROWS_PER_OBJECT = 5_000
OBJECTS = 9


@pytest.fixture
def trio(tmp_path: Path, minio: minio_script.MinioServer) -> Iterator[list[ServerProcess]]:
    """Three servers with auth on, one bucket prefix and one secrets file, each its own cache."""
    works = [tmp_path / name for name in "abc"]
    add_users(works[0])
    for work in works[1:]:
        work.mkdir()
        (work / "secrets.toml").write_bytes((works[0] / "secrets.toml").read_bytes())
    uri = f"s3://{minio.bucket}/{uuid.uuid4().hex}"
    with ExitStack() as stack:
        servers = [stack.enter_context(server_process(work, uri, minio, auth_enabled="true")) for work in works]
        deadline = time.monotonic() + 15
        while not all(len(_ready(s)["peers"]) == 3 for s in servers):
            assert time.monotonic() < deadline, "the servers did not find each other through the bucket"
            time.sleep(0.2)
        yield servers


def _ready(server: ServerProcess) -> dict:
    return httpx.get(f"{server.http}/ready", auth=("rita", PASSWORDS["rita"]), timeout=5).json()


def _token(server: ServerProcess, user: str = "wes") -> str:
    client = flight.connect(server.flight)
    try:
        return client.authenticate_basic_token(user, PASSWORDS[user])[1].decode()
    finally:
        client.close()


def _ingest_objects(server: ServerProcess, token: str, name: str = "events") -> pa.Table:
    """OBJECTS appends, one data object each; the whole dataset."""
    client = flight.connect(server.flight)
    options = flight.FlightCallOptions(headers=[(b"authorization", token.encode())])
    parts = []
    for i in range(OBJECTS):
        start = i * ROWS_PER_OBJECT
        part = pa.table({"id": pa.array(range(start, start + ROWS_PER_OBJECT), pa.int64()), "kind": [f"k{n % 7}" for n in range(ROWS_PER_OBJECT)]})
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(name, "create_append"), part.schema, options)
        writer.write_table(part)
        writer.done_writing()
        reader.read()
        writer.close()
        parts.append(part)
    client.close()
    return pa.concat_tables(parts)


def _seen(server: ServerProcess, token: str, rows: int) -> flight.FlightInfo:
    """The dataset's FlightInfo from `server` once it has seen every commit (within a second or two)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            info = flight.connect(server.flight).get_flight_info(flight.FlightDescriptor.for_path("events"), flight.FlightCallOptions(headers=[(b"authorization", token.encode())]))
            if info.total_records == rows:
                return info
        except pa.ArrowException:  # NOT_FOUND (a KeyError on the client): not seen yet
            pass
        assert time.monotonic() < deadline, f"{server.flight} did not see every commit"
        time.sleep(0.1)


def _partition(cur: flight_sql.Cursor, partition: bytes) -> pa.Table:
    cur.adbc_read_partition(partition)
    return cur.fetch_arrow_table()


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


def test_an_ingest_through_one_server_is_queryable_through_the_others_within_two_seconds(trio: list[ServerProcess]) -> None:
    a, b, c = trio
    # Each server read the empty catalog once already; its view TTL (30 s) cannot be what shows the commit.
    for server in (b, c):
        assert httpx.post(f"{server.http}/v1/sql", json={"sql": "SELECT 1 AS one"}, auth=("rita", PASSWORDS["rita"])).status_code == 200
    body = b"city,visits\nOslo,3\nLima,4\n"
    response = httpx.post(f"{a.http}/v1/ingest", params={"name": "visits"}, content=body, headers={"Content-Type": "text/csv"}, auth=("wes", PASSWORDS["wes"]))
    assert response.status_code == 200, response.text
    committed = time.monotonic()
    seen: dict[str, float] = {}
    while len(seen) < 2 and time.monotonic() - committed < 2.0:
        for server in (b, c):
            if server.http in seen:
                continue
            answer = httpx.post(f"{server.http}/v1/sql", json={"sql": "SELECT city, visits FROM visits ORDER BY city"}, auth=("rita", PASSWORDS["rita"]))
            if answer.status_code == 200 and answer.json() == [{"city": "Lima", "visits": 4}, {"city": "Oslo", "visits": 3}]:
                seen[server.http] = time.monotonic() - committed
        time.sleep(0.05)
    assert set(seen) == {b.http, c.http}, f"visible only on {sorted(seen)} after 2 s: {answer.text}"


def test_a_dataset_and_a_scan_are_spread_over_all_three_and_reassemble_exactly(trio: list[ServerProcess]) -> None:
    a, b, c = trio
    token = _token(a)
    expected = _ingest_objects(a, token)
    uris = {s.flight for s in trio}
    info = _seen(b, token, expected.num_rows)
    _seen(c, token, expected.num_rows)
    firsts = {str(e.locations[0].uri, "utf-8") if isinstance(e.locations[0].uri, bytes) else str(e.locations[0].uri) for e in info.endpoints}
    assert firsts == uris
    assert all(len(e.locations) == 2 and e.locations[0] != e.locations[1] for e in info.endpoints)
    # pyarrow: each endpoint from its first location, with the token a issued.
    pieces = []
    for endpoint in info.endpoints:
        client = flight.connect(endpoint.locations[0])
        pieces.append(client.do_get(endpoint.ticket, flight.FlightCallOptions(headers=[(b"authorization", token.encode())])).read_all())
        client.close()
    assert _sorted(pa.concat_tables(pieces)).equals(_sorted(expected))

    with flight_sql.connect(c.flight, db_kwargs={OPTS.AUTHORIZATION_HEADER.value: token}) as conn, conn.cursor() as cur:
        partitions, schema = cur.adbc_execute_partitions("SELECT * FROM events")
        assert len(partitions) >= 3
        tables = [_partition(cur, p) for p in partitions]
        assert _sorted(pa.concat_tables(tables)).equals(_sorted(expected))
        cur.execute("SELECT * FROM events")
        assert _sorted(cur.fetch_arrow_table()).equals(_sorted(expected))
        cur.execute("SELECT id FROM events WHERE kind = 'k3'")
        wanted = expected.filter(pc.equal(expected["kind"], "k3")).select(["id"])
        assert _sorted(cur.fetch_arrow_table()).equals(_sorted(wanted))
        cur.execute("SELECT count(*) AS n, max(id) AS top FROM events")  # an aggregate stays whole
        assert cur.fetchall() == [(expected.num_rows, expected.num_rows - 1)]


def test_shares_of_a_killed_server_are_read_through_their_fallback(trio: list[ServerProcess]) -> None:
    a, b, c = trio
    token = _token(a)
    expected = _ingest_objects(a, token)
    with flight_sql.connect(a.flight, db_kwargs={OPTS.AUTHORIZATION_HEADER.value: token}) as conn, conn.cursor() as cur:
        partitions, _ = cur.adbc_execute_partitions("SELECT * FROM events")
        c.kill()
        # The FlightInfo still names c first for its shares: the client falls back to the second location.
        tables = [_partition(cur, p) for p in partitions]
        assert _sorted(pa.concat_tables(tables)).equals(_sorted(expected))
        cur.execute("SELECT * FROM events")
        assert _sorted(cur.fetch_arrow_table()).equals(_sorted(expected))
    deadline = time.monotonic() + 10
    while len(_ready(a)["peers"]) != 2:
        assert time.monotonic() < deadline, "the dead server was never dropped from the peers"
        time.sleep(0.2)
    info = flight.connect(a.flight).get_flight_info(flight.FlightDescriptor.for_path("events"), flight.FlightCallOptions(headers=[(b"authorization", token.encode())]))
    assert {str(loc.uri, "utf-8") for e in info.endpoints for loc in e.locations} == {a.flight, b.flight}


def test_placement_is_stable_balanced_and_has_a_fallback() -> None:
    objects = [DataObject(f"datasets/t/{i:04d}.parquet", 1000, 10) for i in range(30)]
    peers = ["grpc://h1:1", "grpc://h2:1", "grpc://h3:1"]
    shares = place(objects, peers, 10**9)
    assert sorted(o.key for s in shares for o in s.objects) == sorted(o.key for o in objects)
    assert {s.locations[0] for s in shares} == set(peers)
    assert all(s.locations[0] != s.locations[1] for s in shares)
    assert max(len(s.objects) for s in shares) <= 1.25 * len(objects) / 3
    owner = {o.key: s.locations[0] for s in shares for o in s.objects}
    again = {o.key: s.locations[0] for s in place(list(reversed(objects)), list(reversed(peers)), 10**9) for o in s.objects}
    assert owner == again
    # One peer gone: most objects keep their owner, so caches stay warm.
    survivors = {o.key: s.locations[0] for s in place(objects, peers[:2], 10**9) for o in s.objects}
    kept = sum(1 for k, uri in owner.items() if uri != peers[2] and survivors[k] == uri)
    assert kept >= 0.6 * sum(1 for uri in owner.values() if uri != peers[2])
    assert all(not s.locations for s in place(objects, peers[:1], 10**9))


def test_a_share_is_redeemed_by_a_server_that_has_not_seen_its_dataset_yet(config) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from lakehouse.cluster import Part
    from lakehouse.lake import Lake
    from tests.conftest import MINIO_SECRETS

    slow = dataclasses.replace(config, query=dataclasses.replace(config.query, view_ttl_seconds=300.0))
    writer, reader = Lake.open(slow, MINIO_SECRETS), Lake.open(slow, MINIO_SECRETS)
    try:
        reader.query("SELECT 1").read_all()  # it read the catalog before the dataset existed
        for i in range(3):
            writer.ingest_arrow("fresh", pa.table({"x": pa.array([i * 10 + n for n in range(10)], pa.int64())}).to_reader(), mode="create_append")
        m = writer.manifest("fresh")
        share = Part(m.name, m.version, tuple(o.key for o in m.objects[1:]))
        assert sorted(reader.query("SELECT x FROM fresh WHERE x % 2 = 0", part=share).read_all()["x"].to_pylist()) == list(range(10, 30, 2))
    finally:
        writer.close()
        reader.close()
