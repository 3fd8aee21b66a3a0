"""`python -m bench`: the benchmarks of issue 6 in one command; prints one table.

Starts MinIO (with `--backend s3`, the default) and `lakehouse serve` on 127.0.0.1, ingests
workers_500k.csv, queries it, starts ROAPI on the same Parquet data, and compares every figure
with a baseline measured in the same run on the same machine (median of several runs).
See docs/BENCHMARKS.md for what each figure means.

    python -m bench [--quick] [--repeat N] [--scale] [--memory] [--backend s3|local] [--one-at-a-time]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Callable

from bench import ingest, memory, queries, scale
from bench.clients import Adbc, DuckDbLocal, FlightDoGet, HttpSql, SqlClient
from bench.harness import Environment, Lakehouse, OtherLoad, Timing, log, reset_peak_rss
from bench.peer import Roapi, single_parquet
from bench.report import Section, machine_facts, render
from bench.workers import DEFAULT_ROWS, ensure_workers_csv
from scripts.smoke import memory_mb

TABLE = "workers"


def query_sections(env: Environment, lh: Lakehouse, csv_path: Path, rows: int, timing: Timing) -> list[Section]:
    log(f"setup: ingest {csv_path.name} as {TABLE!r} and copy its objects for the baselines")
    ingest.http_ingest(lh, csv_path, TABLE, rows)
    paths = lh.local_copies(TABLE, env.scratch("objects"))
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        baseline = DuckDbLocal(paths, TABLE)
        stack.callback(baseline.close)
        peer: Roapi | None = None
        try:
            peer = Roapi(single_parquet(paths, env.scratch("roapi") / "workers.parquet"), TABLE, env.scratch("roapi") / "roapi.log")
            stack.callback(peer.close)
        except Exception as exc:
            notes.append(f"ROAPI did not start, no peer figures: {exc}")

        def client(c: SqlClient) -> SqlClient:
            stack.callback(c.close)
            return c

        small_ours = [client(Adbc(lh.flight)), client(FlightDoGet(lh.flight)), client(HttpSql(f"{lh.http}/v1/sql", "HTTP /v1/sql JSON"))]
        large_ours = [small_ours[0], small_ours[1], client(HttpSql(f"{lh.http}/v1/sql", "HTTP /v1/sql Arrow", arrow=True))]
        small_peer: list[SqlClient] = []
        large_peer: list[SqlClient] = []
        if peer is not None:
            http_json, http_arrow, adbc = (client(c) for c in peer.clients())
            small_peer, large_peer = [adbc, http_json], [adbc, http_arrow]
        held = lh.hold_in_memory(queries.FILTER.text(TABLE))
        warm = queries.run_warm(TABLE, baseline, small_ours, small_peer, timing.scaled(5))
        warm.notes.append(f"our server held {TABLE} in memory (query.hot_max_bytes) {held:.1f} s after its second query, before the timing; ROAPI loads its tables into memory at start")
        servers = [("our server", lh.pid)] + ([("ROAPI", peer.proc.pid)] if peer else [])
        idle = {name: memory_mb(pid, "VmRSS") for name, pid in servers}
        for _, pid in servers:
            reset_peak_rss(pid)  # the peak of this section alone, not of the ingest before it
        large = queries.run_large(TABLE, baseline, large_ours, large_peer, timing)
        large.notes.append(
            "RSS idle before the section -> peak during it: "
            + ", ".join(f"{name} {idle[name]:.0f} -> {memory_mb(pid):.0f} MB ({memory_mb(pid) / idle[name]:.2f}x)" for name, pid in servers)
            + "; goal for ours <= 1.5x"
        )
        large.notes += notes
        clustered = queries.run_clustered(TABLE, baseline, small_ours[:1], small_peer[:1], timing.scaled(5), lambda: _compact(lh))
    return [warm, large, clustered]


def _compact(lh: Lakehouse) -> str:
    """Compact the dataset sorted by worker_id through the HTTP edge, then wait until the server
    holds the new version in memory as it held the old (the figures after are of that steady
    state, not of the half second the copy takes); what it did."""
    import httpx

    old_bytes = lh.total_bytes(TABLE)
    _, held = lh.held()
    with httpx.Client(base_url=lh.http, timeout=600) as http:
        answer = http.post(f"/catalog/compact/{TABLE}", params={"order_by": "worker_id"})
        answer.raise_for_status()
        body = answer.json()
    waited = lh.hold_in_memory(queries.FILTER.text(TABLE), held_bytes=held - old_bytes + lh.total_bytes(TABLE))
    return f"{len(body['objects'])} objects, version {body['version']}, held in memory {waited:.1f} s after the commit"


def stage(sections: list[Section], name: str, run: Callable[[], list[Section]]) -> None:
    """Run one group of benchmarks; if it breaks, say so in the table and go on with the next."""
    other = OtherLoad()
    try:
        done = run()
        for section in done:
            section.notes.append(f"other processes used {other.share():.0%} of the CPUs meanwhile (noise if well above 0%)")
        sections += done
    except Exception as exc:
        log(f"{name}: {type(exc).__name__}: {exc}")
        sections.append(Section(f"{name}: FAILED", notes=[f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks: ratios to in-process baselines, side by side with ROAPI.")
    parser.add_argument("--quick", action="store_true", help="3 runs per figure and shorter time budgets")
    parser.add_argument("--repeat", type=int, help="timed runs per figure (default 7, --quick 3); small queries run 5x as many")
    parser.add_argument("--scale", action="store_true", help="also ingest and query 5M and 20M rows (slow; generates ~4.4 GB of CSV once)")
    parser.add_argument("--memory", action="store_true", help="also the ~1 GB memory benchmark (same as python -m bench.memory)")
    parser.add_argument("--backend", choices=["s3", "local"], default="s3", help="s3: a real MinIO started by the harness (default); local: a directory")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"rows of the workers CSV (default {DEFAULT_ROWS:,})")
    parser.add_argument("--one-at-a-time", action="store_true", help="time each path's runs in a row instead of taking turns with the others")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)
    timing = Timing(repeat, budget_s=30.0 if args.quick else 120.0, interleaved=not args.one_at_a_time)

    order = "each path's runs in a row" if args.one_at_a_time else "paths taking turns"
    facts = machine_facts() + [f"run: backend {args.backend}, {repeat} timed runs per figure (small queries {repeat * 5}), {order}, median; ratio = time / baseline time"]
    csv_path = ensure_workers_csv(args.rows)
    env = Environment(args.backend)
    sections: list[Section] = []
    try:
        lh = env.lakehouse("main")
        stage(sections, "ingest", lambda: [ingest.run(lh, csv_path, args.rows, timing, env.scratch("ingest"))])
        stage(sections, "queries", lambda: query_sections(env, lh, csv_path, args.rows, timing))
        lh.close()
        if args.scale:
            stage(sections, "scale", lambda: [scale.run(env, timing)])
        if args.memory:
            stage(sections, "memory", lambda: [memory.run(env)])
    finally:
        env.close()
    table = "\n".join(facts) + "\n" + render(sections)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
