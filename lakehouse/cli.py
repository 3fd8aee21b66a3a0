"""The `lakehouse` command: `serve` starts the servers, `gc` and `datasets` maintain the lake."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from typing import Sequence

from lakehouse.config import load_config
from lakehouse.errors import LakehouseError
from lakehouse.lake import Lake

log = logging.getLogger("lakehouse")

SHUTDOWN_SECONDS = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse", description="A small lakehouse served over Arrow Flight and HTTP.")
    parser.add_argument("--config", help="path of lakehouse.toml (default: $LAKEHOUSE_CONFIG or ./lakehouse.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the Flight server and the HTTP edge")
    serve.add_argument("--only", choices=["flight", "http"], help="start only one of the two servers")
    gc = sub.add_parser("gc", help="delete data objects no manifest references")
    gc.add_argument("--grace-seconds", type=float, default=None)
    sub.add_parser("datasets", help="list the catalogued datasets as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        lake = Lake.open(config)
    except LakehouseError as exc:
        print(f"lakehouse: {exc.message}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            return _serve(lake, args.only)
        if args.command == "gc":
            print(json.dumps({"deleted": lake.gc(args.grace_seconds)}))
        else:
            print(json.dumps([m.to_json() for m in lake.datasets()], indent=2))
        return 0
    except LakehouseError as exc:
        print(f"lakehouse: {exc.message}", file=sys.stderr)
        return 1
    finally:
        lake.close()


def _serve(lake: Lake, only: str | None) -> int:
    """Run the chosen servers until SIGINT or SIGTERM, then stop them gracefully."""
    stop = threading.Event()
    stoppers = []
    threads = []
    if only in (None, "flight"):
        from flight.server import serve_flight

        server = serve_flight(lake)
        stoppers.append(server.shutdown)
        # `wait`, not `serve`: `serve` installs Flight's own SIGINT/SIGTERM handlers, which would
        # replace ours and wait for running calls instead of interrupting their queries first.
        threads.append(threading.Thread(target=server.wait, name="flight", daemon=True))
        log.info("Flight server on grpc://%s:%d", lake.config.flight.host, server.port)
    if only in (None, "http"):
        from http_edge.server import serve_http

        http = serve_http(lake)
        stoppers.append(http.stop)
        threads.append(threading.Thread(target=http.run, name="http", daemon=True))
        log.info("HTTP edge on http://%s:%d", lake.config.http.host, lake.config.http.port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for t in threads:
        t.start()
    while not stop.is_set() and all(t.is_alive() for t in threads):
        stop.wait(0.5)
    log.info("shutting down")
    lake.stop_queries()
    # Flight's shutdown waits for calls in flight (an idle upload can hold one open), so each
    # server stops in a thread of its own and the process does not wait past the deadline.
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    stopping = [threading.Thread(target=s, name="stop", daemon=True) for s in stoppers]
    for t in stopping:
        t.start()
    for t in stopping + threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in stopping + threads):
        log.warning("calls still open after %d s; leaving them", SHUTDOWN_SECONDS)
    return 0
