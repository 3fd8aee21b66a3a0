"""The `lakehouse` command: `serve` starts the servers, `gc` and `datasets` maintain the lake,
`users` and `token` manage who may connect."""

from __future__ import annotations

import argparse
import getpass
import os
import json
import logging
import signal
import sys
import threading
import time
import traceback
from typing import Sequence

from lakehouse.auth import Authenticator, exposure_refusal
from lakehouse.config import Config, load_config
from lakehouse.errors import InvalidInput, LakehouseError
from lakehouse.lake import Lake
from lakehouse.users import ROLES, UserStore, generate_password

log = logging.getLogger("lakehouse")

SHUTDOWN_SECONDS = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse", description="A small lakehouse served over Arrow Flight and HTTP.")
    parser.add_argument("--config", help="path of lakehouse.toml (default: $LAKEHOUSE_CONFIG or ./lakehouse.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the Flight server and the HTTP edge")
    serve.add_argument("--only", choices=["flight", "http"], help="start only one of the two servers")
    serve.add_argument("--insecure", action="store_true", help="serve a non-loopback address without auth or TLS anyway")
    gc = sub.add_parser("gc", help="delete data objects no manifest references")
    gc.add_argument("--grace-seconds", type=float, default=None)
    sub.add_parser("datasets", help="list the catalogued datasets as JSON")
    users = sub.add_parser("users", help="manage the users in the secrets file").add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="add (or replace) a user; the password comes from stdin, a prompt, or --generate")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--datasets", default="", help="comma-separated dataset-name patterns the user is limited to (default: all)")
    add.add_argument("--generate", action="store_true", help="generate a password and print it once")
    users.add_parser("remove", help="remove a user").add_argument("name")
    users.add_parser("list", help="the users, their roles and dataset patterns, as JSON")
    token = sub.add_parser("token", help="bearer tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="print a signed bearer token for a user")
    create.add_argument("--user", required=True)
    create.add_argument("--ttl", default=None, help="lifetime such as 30d, 12h, 15m or seconds (default: auth.token_ttl_seconds)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_FullTracebacks("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        config = load_config(args.config)
        if args.command in ("users", "token"):
            return _access(config, args)
        if args.command == "serve" and (refusal := exposure_refusal(config, args.insecure)) is not None:
            print(f"lakehouse: {refusal}", file=sys.stderr)
            return 2
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


class _FullTracebacks(logging.Formatter):
    """Log lines with whole tracebacks whatever `sys.tracebacklimit` says."""

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802 (logging's name)
        return "".join(traceback.format_exception(ei[0], ei[1], ei[2], limit=1000)).rstrip("\n")


def _access(config: Config, args: argparse.Namespace) -> int:
    """`users add|remove|list` and `token create`: the secrets file only, no storage needed."""
    store = UserStore(config.secrets.path)
    if args.command == "token":
        ttl = parse_duration(args.ttl) if args.ttl else None
        print(Authenticator(config.auth, store).issue(args.user, ttl))
        return 0
    if args.action == "list":
        print(json.dumps([u.to_json() for u in store.users()], indent=2))
    elif args.action == "remove":
        store.remove(args.name)
        print(f"removed user {args.name}", file=sys.stderr)
    else:
        password = generate_password() if args.generate else _read_password()
        patterns = tuple(p.strip() for p in args.datasets.split(",") if p.strip())
        user = store.add(args.name, args.role, password, patterns)
        if args.generate:
            print(password)
        print(f"user {user.name} ({user.role}) saved in {config.secrets.path}", file=sys.stderr)
    return 0


def _read_password() -> str:
    """The password from stdin when it is not a terminal (scripts), else typed twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("the two passwords differ")
    return first


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `15m`, `90s` or plain seconds."""
    units = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            return float(value[:-1]) * units[value[-1]]
        return float(value)
    except ValueError:
        raise InvalidInput(f"cannot read the duration {text!r}: use 30d, 12h, 15m or seconds") from None


def _serve(lake: Lake, only: str | None) -> int:
    """Run the chosen servers until SIGINT or SIGTERM, then stop them gracefully."""
    # pyarrow sends a handler's Python traceback (with server file paths) to the client with
    # every error it cannot map to a Flight error class (INVALID_ARGUMENT, NOT_FOUND...),
    # formatted by `traceback`, which honours this limit; the server's own log lines keep
    # their tracebacks through `_FullTracebacks`.
    sys.tracebacklimit = 0
    if not lake.config.auth.enabled:
        log.warning("auth is off: every client that reaches these ports may read, write and administer the lake ([auth] enabled = true)")
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
        # A client holding a call open (an upload that never ends) would keep the gRPC server,
        # and so the process, alive for ever. Its ingest never committed, so nothing
        # acknowledged is lost by leaving now; gc collects what it uploaded.
        log.warning("calls still open after %d s; leaving them", SHUTDOWN_SECONDS)
        lake.close()
        logging.shutdown()
        os._exit(0)
    return 0
