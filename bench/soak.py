"""Many clients at once: 16 ADBC readers and 2 Flight writers against one server.

Readers loop over `count(*)` and `sum(id)` of a dataset that the writers keep appending to in
whole commits of `BATCH` rows; every answer must be a whole number of commits with the
matching sum (never half a commit, never going back). Reported: queries and commits done,
errors, and the server's RSS sampled over the run (flat is the goal). Bounded in time.

    python -m bench.soak [--seconds 30] [--readers 16] [--writers 2] [--backend s3|local]
"""

from __future__ import annotations

import argparse
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight

from bench.harness import Environment, log
from scripts.smoke import memory_mb

BATCH = 10_000


def batch(start: int) -> pa.Table:
    ids = pa.array(range(start, start + BATCH), pa.int64())
    return pa.table({"id": ids, "label": pa.array([f"row-{i}" for i in range(start, start + BATCH)])})


def put(client: flight.FlightClient, name: str, mode: str, table: pa.Table) -> None:
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(name, mode), table.schema)
    writer.write_table(table, max_chunksize=2_500)
    writer.done_writing()
    reader.read()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--backend", choices=["s3", "local"], default="s3")
    args = parser.parse_args()
    env = Environment(args.backend)
    try:
        server = env.lakehouse("soak")
        client = flight.connect(server.flight)
        put(client, "soak", "create", batch(0))
        next_start = [BATCH]
        lock = threading.Lock()
        stop = threading.Event()
        errors: list[str] = []
        queries = [0]
        commits = [0]

        def read() -> None:
            with flight_sql.connect(server.flight, autocommit=True) as conn, conn.cursor() as cur:
                last = 0
                while not stop.is_set():
                    cur.execute("SELECT count(*), sum(id) FROM soak")
                    n, s = cur.fetchone()
                    with lock:
                        queries[0] += 1
                    if n % BATCH or n < last:
                        errors.append(f"saw {n} rows after {last}: part of a commit")
                    last = n

        def write() -> None:
            writer_client = flight.connect(server.flight)
            while not stop.is_set():
                with lock:
                    start = next_start[0]
                    next_start[0] += BATCH
                put(writer_client, "soak", "append", batch(start))
                with lock:
                    commits[0] += 1

        def guarded(fn):  # type: ignore[no-untyped-def]
            def run() -> None:
                try:
                    fn()
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    errors.append(f"{type(exc).__name__}: {exc}")

            return run

        threads = [threading.Thread(target=guarded(read)) for _ in range(args.readers)]
        threads += [threading.Thread(target=guarded(write)) for _ in range(args.writers)]
        samples: list[float] = []
        for t in threads:
            t.start()
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            samples.append(memory_mb(server.pid, "VmRSS"))
            time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        with flight_sql.connect(server.flight, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM soak")
            final = cur.fetchone()[0]
        third = max(1, len(samples) // 3)
        print(f"soak: {args.readers} readers, {args.writers} writers, {args.seconds:.0f} s, backend {args.backend}")
        print(f"  queries answered        {queries[0]} ({queries[0] / args.seconds:.0f}/s)")
        print(f"  commits                 {commits[0]} (final rows {final}, expected {(commits[0] + 1) * BATCH})")
        print(f"  errors                  {len(errors)}" + (f": {errors[:3]}" if errors else ""))
        print(f"  server RSS first third  {sum(samples[:third]) / third:.0f} MB")
        print(f"  server RSS last third   {sum(samples[-third:]) / third:.0f} MB (max {max(samples):.0f} MB)")
    finally:
        log("soak: stopping")
        env.close()


if __name__ == "__main__":
    main()
