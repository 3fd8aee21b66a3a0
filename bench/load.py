"""Many clients at once: queries per second and latency percentiles under load, ours and
ROAPI's on the same data, in one run.

`--clients` processes (16 by default), each with its own ADBC connection, run the warm query
mix (count(*), the GROUP BY, the 1-row filter, in turn) for `--seconds` (30) against one
server, then against the other. Every answer's row count is checked; errors are counted, not
timed. Clients are processes, not threads, so the client side is not held back by one GIL.

    python -m bench.load [--clients 16] [--seconds 30] [--backend s3|local]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
import warnings

from bench import ingest
from bench.harness import Environment, log
from bench.peer import Roapi, single_parquet
from bench.queries import FILTER, WARM
from bench.workers import DEFAULT_ROWS, ensure_workers_csv

TABLE = "workers"


def _client(uri: str, seconds: float, offset: int, expected: list[int], out: "mp.Queue[tuple[list[float], int]]") -> None:
    """One client's loop: the mix in turn from `offset`, for `seconds`; its latencies and errors."""
    import adbc_driver_flightsql.dbapi as flight_sql

    latencies: list[float] = []
    errors = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = flight_sql.connect(uri)
    cursor = conn.cursor()
    mix = [q.text(TABLE) for q in WARM]
    deadline = time.monotonic() + seconds
    i = offset
    while time.monotonic() < deadline:
        k = i % len(mix)
        started = time.perf_counter()
        try:
            cursor.execute(mix[k])
            rows = cursor.fetch_arrow_table().num_rows
            if rows != expected[k]:
                raise RuntimeError(f"{rows} rows for {mix[k]!r}, expected {expected[k]}")
            latencies.append(time.perf_counter() - started)
        except Exception:
            errors += 1
        i += 1
    cursor.close()
    conn.close()
    out.put((latencies, errors))


def run_load(uri: str, clients: int, seconds: float, expected: list[int]) -> tuple[float, float, float, int]:
    """QPS, p50 and p99 in ms, and errors, of `clients` processes against `uri`."""
    ctx = mp.get_context("spawn")
    out: "mp.Queue[tuple[list[float], int]]" = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(uri, seconds, n, expected, out)) for n in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    latencies = sorted(x for r, _ in results for x in r)
    errors = sum(e for _, e in results)
    if not latencies:
        return 0.0, float("nan"), float("nan"), errors
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / seconds, statistics.median(latencies) * 1000, p99 * 1000, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", choices=["s3", "local"], default="s3")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    args = parser.parse_args(argv)
    csv_path = ensure_workers_csv(args.rows)
    env = Environment(args.backend)
    try:
        lh = env.lakehouse("load")
        ingest.http_ingest(lh, csv_path, TABLE, args.rows)
        lh.hold_in_memory(FILTER.text(TABLE))  # the steady state, as ROAPI's tables are from its start
        peer = Roapi(single_parquet(lh.local_copies(TABLE, env.scratch("objects")), env.scratch("roapi") / "workers.parquet"), TABLE, env.scratch("roapi") / "roapi.log")
        try:
            import adbc_driver_flightsql.dbapi as flight_sql

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with flight_sql.connect(lh.flight) as conn, conn.cursor() as cur:
                    expected = []
                    for q in WARM:
                        cur.execute(q.text(TABLE))
                        expected.append(cur.fetch_arrow_table().num_rows)
            print(f"{args.clients} ADBC clients for {args.seconds:g} s each, query mix: {', '.join(q.label for q in WARM)}")
            print(f"{'server':<10} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
            for name, uri in (("lakehouse", lh.flight), ("ROAPI", f"grpc://127.0.0.1:{peer.flight_port}")):
                log(f"load: {name}")
                qps, p50, p99, errors = run_load(uri, args.clients, args.seconds, expected)
                print(f"{name:<10} {qps:>8.1f} {p50:>8.2f} {p99:>8.2f} {errors:>7}")
        finally:
            peer.close()
            lh.close()
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
