"""The `lakehouse` command: serve the lake, load files into it, query it, look after it.

`serve` starts the servers; `ingest`, `sql`, `drop`, `datasets` and `gc` work on the lake the
configuration names (or, with `--server`, on a running server over Flight); `users` and
`token` manage who may connect. Built on click, with rich for tables and progress. Common
options (`--config`) are accepted before or after the command. Errors are one line on stderr
and exit 1 (2 for usage and configuration).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeVar

import click
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from lakehouse.auth import Authenticator, exposure_refusal
from lakehouse.config import Config, load_config
from lakehouse.errors import ConfigError, InvalidInput, LakehouseError
from lakehouse.formats.compression import ReadOnlyStream
from lakehouse.users import ROLES, UserStore, generate_password

log = logging.getLogger("lakehouse")

SHUTDOWN_SECONDS = 3
TABLE_ROWS = 1000
"""Rows `sql` prints as a table; more are counted, not shown (use --format csv or --output)."""

F = TypeVar("F", bound=Callable[..., Any])
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _config_option(f: F) -> F:
    """`--config` on the group and on every command, so it may come before or after the command."""

    def remember(ctx: click.Context, _: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            ctx.ensure_object(dict)["config"] = value
        return value

    return click.option("--config", "config_path", metavar="PATH", expose_value=False, is_eager=True, callback=remember,
                        help="lakehouse.toml to read (default: $LAKEHOUSE_CONFIG or ./lakehouse.toml)")(f)


def _config(ctx: click.Context) -> Config:
    return load_config(ctx.ensure_object(dict).get("config"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_config_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A small lakehouse served over Arrow Flight and HTTP."""
    ctx.ensure_object(dict)


def main(argv: list[str] | None = None) -> int:
    handler = logging.StreamHandler()
    handler.setFormatter(_FullTracebacks("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # `serve` logs at INFO
    # The lines show none of these, and a server writes two per query: not gathering them is
    # the logging HOWTO's own advice, about a third of each line's cost.
    logging._srcfile = None  # type: ignore[attr-defined]  # the source file and line of the call
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    try:
        cli.main(args=argv, prog_name="lakehouse", standalone_mode=False)
        return 0
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.Abort:
        _err.print("lakehouse: aborted")
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ConfigError as exc:
        _err.print(f"lakehouse: {exc.message}", markup=False)
        return 2
    except LakehouseError as exc:
        _err.print(f"lakehouse: {exc.message}", markup=False)
        return 1


class _FullTracebacks(logging.Formatter):
    """Log lines with whole tracebacks whatever `sys.tracebacklimit` says."""

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802 (logging's name)
        return "".join(traceback.format_exception(ei[0], ei[1], ei[2], limit=1000)).rstrip("\n")


# -- the lake on this machine -------------------------------------------------------------------


@contextlib.contextmanager
def _lake(config: Config, create: bool) -> Iterator[Any]:
    """The lake the configuration names, closed when the command is done. A local lake that does not exist yet is created only
    by a command that writes (and it says where); others refuse, naming the place looked at,
    rather than leave empty directories wherever they were run."""
    from lakehouse.lake import Lake

    uri = config.storage.uri
    if uri.startswith("file://"):
        root = Path(uri[len("file://") :]).expanduser().resolve()
        if not root.exists():
            if not create:
                raise InvalidInput(f"no lake at {root} (run from the project directory, or name one with --config or LAKEHOUSE_STORAGE_URI)")
            _err.print(f"creating a new lake at {root}", markup=False)
    lake = Lake.open(config)
    try:
        yield lake
    finally:
        lake.close()


# -- serve ----------------------------------------------------------------------------------------


@cli.command()
@_config_option
@click.option("--only", type=click.Choice(["flight", "http"]), help="start only one of the two servers")
@click.option("--insecure", is_flag=True, help="serve a non-loopback address without auth or TLS anyway")
@click.pass_context
def serve(ctx: click.Context, only: str | None, insecure: bool) -> None:
    """Start the Flight server and the HTTP edge (Ctrl-C stops them cleanly)."""
    logging.getLogger().setLevel(logging.INFO)
    config = _config(ctx)
    refusal = exposure_refusal(config, insecure)
    if refusal is not None:
        raise ConfigError(refusal)
    ports = [("Flight", config.flight.host, config.flight.port)] if only != "http" else []
    ports += [("HTTP", config.http.host, config.http.port)] if only != "flight" else []
    for what, host, port in ports:
        _check_port(what, host, port)
    with _lake(config, create=True) as lake:
        _serve(lake, only)


def _check_port(what: str, host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot serve {what} on {host}:{port}: {exc.strerror or exc} (is another server running? change [{what.lower()}] port)") from None


def _serve(lake: Any, only: str | None) -> None:
    """Run the chosen servers until SIGINT or SIGTERM, then stop them gracefully."""
    # pyarrow sends a handler's Python traceback (with server file paths) to the client with
    # every error it cannot map to a Flight error class (INVALID_ARGUMENT, NOT_FOUND...),
    # formatted by `traceback`, which honours this limit; the server's own log lines keep
    # their tracebacks through `_FullTracebacks`.
    sys.tracebacklimit = 0
    lake.publish_missing()
    if not lake.config.auth.enabled:
        log.warning("auth is off: every client that reaches these ports may read, write and administer the lake ([auth] enabled = true)")
    stop = threading.Event()
    stoppers = []
    threads = []
    if only in (None, "flight"):
        from flight.server import serve_flight

        server = serve_flight(lake)
        lake.join(server.advertised)
        stoppers.append(server.shutdown)
        # `wait`, not `serve`: `serve` installs Flight's own SIGINT/SIGTERM handlers, which would
        # replace ours and wait for running calls instead of interrupting their queries first.
        threads.append(threading.Thread(target=server.wait, name="flight", daemon=True))
        log.info("Flight server on %s", server.advertised)
    else:
        lake.join(None)  # no Flight to share reads through; still follow the other servers' commits
    if only in (None, "http"):
        from http_edge.server import serve_http

        http = serve_http(lake)
        stoppers.append(http.stop)
        threads.append(threading.Thread(target=http.run, name="http", daemon=True))
        log.info("HTTP edge on http://%s:%d (web console at /)", lake.config.http.host, lake.config.http.port)
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


# -- ingest ---------------------------------------------------------------------------------------

_READ_OPTIONS = ("null_values", "delimiter", "quote", "escape", "header", "names", "types", "date_format", "decimal", "encoding")


def _read_options(f: F) -> F:
    for name in reversed(_READ_OPTIONS):
        f = click.option(f"--{name.replace('_', '-')}", name, default=None, help=f"as the HTTP ingest's {name}= (docs/formats.md)")(f)
    return f


def _remote_options(f: F) -> F:
    f = click.option("--token", envvar="LAKEHOUSE_TOKEN", help="bearer token for --server (or $LAKEHOUSE_TOKEN)")(f)
    return click.option("--server", metavar="URI", help="a running server's Flight address (grpc://host:8815) instead of the local lake")(f)


@cli.command()
@_config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="the dataset")
@click.option("--mode", type=click.Choice(["create", "append", "replace", "create_append"]), default="create", show_default=True,
              help="for the first file; the others are appended")
@click.option("--evolve", is_flag=True, help="an append may add, leave out and promote columns")
@_read_options
@_remote_options
@click.pass_context
def ingest(ctx: click.Context, files: tuple[Path, ...], name: str, mode: str, evolve: bool, server: str | None, token: str | None, **read: str | None) -> None:
    """Load files (CSV, TSV, Parquet, NDJSON, Arrow; gzip, zstd or bz2) into dataset NAME."""
    from lakehouse.formats import ReadOptions

    options = ReadOptions.parse(read)
    config = _config(ctx)
    if server is None:
        with _lake(config, create=True) as lake:
            for i, path in enumerate(files):
                with _progress(path) as (fh, done):
                    result = lake.ingest(name, fh, filename=path.name, options=options, mode=mode if i == 0 else "append", evolve=evolve)
                    done(result.rows)
                _err.print(f"{path.name}: {result.rows:,} rows into {name} (version {result.manifest.version}, {result.manifest.row_count:,} rows in all)", markup=False)
        return
    _ingest_remote(config, files, name, mode, evolve, options, server, token)


def _ingest_remote(config: Config, files: tuple[Path, ...], name: str, mode: str, evolve: bool, options: Any, server: str, token: str | None) -> None:
    import tempfile

    from lakehouse.client import Remote
    from lakehouse.formats import ReadContext, format_for, read_upload

    remote = Remote(server, token)
    try:
        with tempfile.TemporaryDirectory(prefix="lakehouse-ingest-") as spool:
            counter = iter(range(1 << 30))
            context = ReadContext(sample_rows=config.ingest.sample_rows, spool=lambda: Path(spool) / f"{next(counter)}.part")
            for i, path in enumerate(files):
                with _progress(path) as (fh, done):
                    parsed = read_upload(fh, format_for(None, path.name), options, context)
                    rows = [0]

                    def counted(batches: Iterator[pa.RecordBatch] = parsed.batches) -> Iterator[pa.RecordBatch]:
                        for batch in batches:
                            rows[0] += batch.num_rows
                            done(rows[0])
                            yield batch

                    answer = remote.put(name, mode if i == 0 else "append", evolve, parsed.schema, counted())
                _err.print(f"{path.name}: {answer.get('rows', rows[0]):,} rows into {name} on {server}", markup=False)
    finally:
        remote.close()


class _Counting(ReadOnlyStream):
    """A file whose reads move a progress bar."""

    def __init__(self, fh: BinaryIO, advance: Callable[[int], None]) -> None:
        self._fh = fh
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._advance(len(data))
        return data


class _progress:
    """A file opened for reading with a progress bar of its bytes, rows and rate (on a terminal)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TextColumn("{task.fields[rows]:,} rows"),
            TimeRemainingColumn(), console=_err, transient=True, disable=not _err.is_terminal,
        )

    def __enter__(self) -> tuple[BinaryIO, Callable[[int], None]]:
        self._fh = self._path.open("rb")
        self._bar.start()
        task = self._bar.add_task(self._path.name, total=self._path.stat().st_size, rows=0)
        counting = _Counting(self._fh, lambda n: self._bar.advance(task, n))
        return counting, lambda rows: self._bar.update(task, rows=rows)  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()
        self._fh.close()


# -- sql ------------------------------------------------------------------------------------------


@cli.command()
@_config_option
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="write the result to this file (needed for parquet)")
@_remote_options
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str, output: Path | None, server: str | None, token: str | None) -> None:
    """Run one read-only SQL QUERY and print or write its result."""
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    config = _config(ctx)
    if server is not None:
        from lakehouse.client import Remote

        remote = Remote(server, token)
        try:
            _write_result(remote.query(query), fmt, output)
        finally:
            remote.close()
        return
    with _lake(config, create=False) as lake:
        with lake.query(query) as result:
            _write_result(pa.RecordBatchReader.from_batches(result.schema, result), fmt, output)


def _write_result(reader: pa.RecordBatchReader, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        _print_table(reader, output)
        return
    sink = output.open("wb") if output is not None else sys.stdout.buffer
    try:
        if fmt == "csv":
            with pacsv.CSVWriter(sink, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
        elif fmt == "json":
            for batch in reader:
                for row in batch.to_pylist():
                    sink.write(json.dumps(row, default=str).encode() + b"\n")
        else:
            with pq.ParquetWriter(sink, reader.schema, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(batch)
    finally:
        if output is not None:
            sink.close()
        else:
            sink.flush()


def _print_table(reader: pa.RecordBatchReader, output: Path | None) -> None:
    table = Table(*reader.schema.names, show_lines=False)
    shown = total = 0
    for batch in reader:
        total += batch.num_rows
        for row in batch.slice(0, max(0, TABLE_ROWS - shown)).to_pylist():
            table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
            shown += 1
    console = Console(file=output.open("w") if output is not None else None, highlight=False)
    console.print(table)
    note = f"{total:,} rows" + (f", the first {shown:,} shown (--format csv for all)" if shown < total else "")
    console.print(note, style="dim")
    if output is not None:
        console.file.close()


# -- the catalog ----------------------------------------------------------------------------------


@cli.command()
@_config_option
@click.argument("name")
@click.pass_context
def drop(ctx: click.Context, name: str) -> None:
    """Drop dataset NAME (its objects go at the next gc)."""
    with _lake(_config(ctx), create=False) as lake:
        dropped = lake.drop(name)
        _err.print(f"dropped {dropped.name} ({dropped.row_count:,} rows, version {dropped.version})", markup=False)


@cli.command()
@_config_option
@click.argument("name")
@click.option("--order-by", metavar="COLUMN", help="sort the rows by this column (kept for later compactions)")
@click.pass_context
def compact(ctx: click.Context, name: str, order_by: str | None) -> None:
    """Rewrite dataset NAME's objects into few large ones, as a new version with the same rows."""
    with _lake(_config(ctx), create=False) as lake:
        before = lake.manifest(name)
        after = lake.compact(name, order_by)
        _err.print(f"{name}: {len(before.objects)} objects -> {len(after.objects)} (version {after.version})", markup=False)
        click.echo(json.dumps(lake.versions(name)[-1]))


@cli.command()
@_config_option
@click.argument("name")
@click.pass_context
def versions(ctx: click.Context, name: str) -> None:
    """Dataset NAME's committed versions as JSON: version, time, operation, rows, objects."""
    with _lake(_config(ctx), create=False) as lake:
        click.echo(json.dumps(lake.versions(name), indent=2))


@cli.command()
@_config_option
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """List the catalogued datasets as JSON."""
    with _lake(_config(ctx), create=False) as lake:
        click.echo(json.dumps([m.to_json() for m in lake.datasets()], indent=2))


@cli.command()
@_config_option
@click.option("--grace-seconds", type=float, default=None, help="keep objects younger than this (never less than catalog.gc_grace_seconds)")
@click.pass_context
def gc(ctx: click.Context, grace_seconds: float | None) -> None:
    """Delete data objects no manifest references."""
    with _lake(_config(ctx), create=False) as lake:
        click.echo(json.dumps({"deleted": lake.gc(grace_seconds)}))


# -- users and tokens: the secrets file only, no storage needed ----------------------------------


@cli.group()
@_config_option
def users() -> None:
    """Manage the users in the secrets file."""


@users.command("add")
@_config_option
@click.argument("name")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--datasets", "patterns", default="", help="comma-separated dataset-name patterns the user is limited to (default: all)")
@click.option("--generate", is_flag=True, help="generate a password and print it once")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, patterns: str, generate: bool) -> None:
    """Add (or replace) user NAME; the password comes from stdin, a prompt, or --generate."""
    config = _config(ctx)
    password = generate_password() if generate else _read_password()
    user = UserStore(config.secrets.path).add(name, role, password, tuple(p.strip() for p in patterns.split(",") if p.strip()))
    if generate:
        click.echo(password)
    _err.print(f"user {user.name} ({user.role}) saved in {config.secrets.path}", markup=False)


@users.command("remove")
@_config_option
@click.argument("name")
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove user NAME."""
    UserStore(_config(ctx).secrets.path).remove(name)
    _err.print(f"removed user {name}", markup=False)


@users.command("list")
@_config_option
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """The users, their roles and dataset patterns, as JSON."""
    click.echo(json.dumps([u.to_json() for u in UserStore(_config(ctx).secrets.path).users()], indent=2))


@cli.group()
@_config_option
def token() -> None:
    """Bearer tokens."""


@token.command("create")
@_config_option
@click.option("--user", required=True)
@click.option("--ttl", default=None, help="lifetime such as 30d, 12h, 15m or seconds (default: auth.token_ttl_seconds)")
@click.pass_context
def token_create(ctx: click.Context, user: str, ttl: str | None) -> None:
    """Print a signed bearer token for a user."""
    config = _config(ctx)
    click.echo(Authenticator(config.auth, UserStore(config.secrets.path)).issue(user, parse_duration(ttl) if ttl else None))


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
