"""Query: DuckDB over views of the catalogued Parquet objects, inside a sandbox.

One in-memory DuckDB database holds a view per dataset; each request gets its own cursor.
A view is rebuilt only when its manifest's etag changed: this process's own commits show up
at once (the catalog index is updated by the commit), other writers' commits after at most
`query.view_ttl_seconds`, when the catalog is re-read from storage.

The sandbox is DuckDB's own configuration, locked after start-up: no external access except
the directories that hold data objects, no extension installs or loads, no setting changes.
On top of it only read statements (SELECT, EXPLAIN and their forms such as DESCRIBE or
SUMMARIZE) are accepted, judged by DuckDB's parser, so users cannot COPY into the data
directory or replace the lake's views, and each must read only the datasets' views
(`sandbox.py`), never a file by path or a setting.

Every query runs under the watchdog (`running.py`): it is stopped at
`query.timeout_seconds`, when its client goes away, and at shutdown.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import duckdb
import pyarrow as pa
from duckdb import _seam

from lakehouse import hot, metrics
from lakehouse.admission import Admission
from lakehouse.auth import Identity
from lakehouse.cache import SCHEME, ObjectCache, ObjectFiles
from lakehouse.catalog import Catalog, Manifest
from lakehouse.config import QueryConfig
from lakehouse.errors import InvalidInput, LakehouseError, NotFound, Unavailable
from lakehouse.running import RunningQuery, Watchdog
from lakehouse.sandbox import INFORMATION_SCHEMA, catalog_reads, check_tree, time_travels
from lakehouse.shapes import CountAll, Lookup, Scan, shapes_of
from lakehouse.statements import CATALOG_NAME, SCHEMA_NAME

log = logging.getLogger(__name__)

BATCH_ROWS = 16_384
"""Rows per result batch. DuckDB fills a batch whatever its byte size, so rows of 20 KB make a
122,880-row batch 2.4 GB; 16,384 rows scan as fast (measured over 500k narrow rows: 64 ms
against 84 ms) and bound a batch at 16k rows."""
SCHEMA_CACHE_SIZE = 1024
STALE_RETRY_SECONDS = 1.0
_READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\([^)]*\)\s*)?", re.IGNORECASE)


_AT = re.compile(r"\bAT\s*\(", re.IGNORECASE)  # cheap test before a query is parsed for AT clauses
_CATALOG_READ = re.compile(r"information_schema", re.IGNORECASE)  # the same for reads of information_schema


def quote_name(identifier: str) -> str:
    """An identifier as SQL text, whatever characters it holds."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """A string as an SQL literal."""
    return "'" + text.replace("'", "''") + "'"


class QueryEngine:
    def __init__(self, catalog: Catalog, cache: ObjectCache, config: QueryConfig) -> None:
        self.catalog = catalog
        self.cache = cache
        self.config = config
        self._db = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        tmp = cache.root.parent / "duckdb-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        # Objects not in the cache are read through `lake://` (see cache.py).
        self._db.register_filesystem(ObjectFiles(cache))
        allowed = [str(cache.root) + "/", str(tmp) + "/", SCHEME]
        local_root = getattr(catalog.store, "root", None)
        if isinstance(local_root, Path):
            allowed.append(str(local_root) + "/")
        # GLOBAL: each request's cursor is a session of its own, which a plain SET would not reach,
        # and timestamps would come back as Etc/UTC while the catalog says UTC.
        self._db.execute("SET GLOBAL TimeZone='UTC'")
        self._db.execute(f"SET temp_directory={sql_literal(str(tmp))}")
        # Objects never change under a key: their footers can be kept between queries.
        self._db.execute("SET parquet_metadata_cache=true")
        if config.threads:
            self._db.execute(f"SET threads={int(config.threads)}")
        self._db.execute(f"SET allowed_directories=[{', '.join(sql_literal(a) for a in allowed)}]")
        self._db.execute("SET enable_external_access=false")
        self._db.execute(f"ATTACH ':memory:' AS {hot.DATABASE}")  # before the lock: see hot.py
        self._db.execute("SET lock_configuration=true")
        self.hot = hot.HotTables(self, config.hot_max_bytes)
        self._views: dict[str, str] = {}
        self._generation = 0  # bumped whenever a view changes; keys the schema cache
        self._schemas: dict[tuple[str, tuple[type, ...], tuple[str, ...]], tuple[int, pa.Schema]] = {}
        self._verdicts: dict[tuple[str, int, tuple[str, ...]], Verdict] = {}
        self.watchdog = Watchdog(config.timeout_seconds)
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._stale_since: float | None = None
        self._refreshing: threading.Thread | None = None

    # -- views -----------------------------------------------------------------------------

    def sync_views(self, force: bool = False) -> None:
        """Bring the catalog up to date (`refresh`) and the views in line with it."""
        self.refresh(force)
        self._build_views()

    def refresh(self, force: bool = False) -> None:
        """Re-read the catalog when `query.view_ttl_seconds` passed; cheap otherwise.

        When storage cannot be reached, queries go on over the last catalog read (`stale_since`
        says since when) instead of failing: the objects they read may be cached. While it lasts,
        the catalog is re-read in the background, so no query waits for storage again; the
        first success ends it. `force` (an explicit refresh) raises instead.
        """
        if self._stale_since is not None and not force:
            self._refresh_in_background()
        elif force or time.monotonic() - self._checked >= self.config.view_ttl_seconds:
            try:
                self._reload()
            except Unavailable as exc:
                if force:
                    raise
                log.warning("storage unavailable, answering from the last catalog read: %s", exc.message)
                self._stale_since = time.monotonic()

    @property
    def stale_seconds(self) -> float | None:
        """How long queries have been answered from a catalog storage could not refresh, or None."""
        since = self._stale_since
        return None if since is None else time.monotonic() - since

    def _reload(self) -> None:
        self.catalog.reload()
        self._checked = time.monotonic()
        if self._stale_since is not None:
            log.info("storage reachable again; catalog refreshed")
        self._stale_since = None

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing is not None and self._refreshing.is_alive():
                return
            self._refreshing = threading.Thread(target=self._retry_reload, name="catalog-refresh", daemon=True)
            self._refreshing.start()

    def _retry_reload(self) -> None:
        time.sleep(STALE_RETRY_SECONDS)
        try:
            self._reload()
        except Unavailable:
            pass
        except Exception:
            log.exception("catalog refresh failed")

    def _build_views(self) -> None:
        manifests = {m.name: m for m in self.catalog.list()}
        if all(self._views.get(n) == m.etag for n, m in manifests.items()) and len(manifests) == len(self._views):
            return
        changed = [n for n in self._views if manifests.get(n) is None or manifests[n].etag != self._views[n]]
        with self._lock:
            self._generation += 1
            for name, m in manifests.items():
                if self._views.get(name) != m.etag:
                    try:
                        self._db.execute(self._view_sql(m))
                    except Unavailable as exc:
                        # An object could not be fetched now: keep the view as it was and try
                        # again at the next query, rather than losing the dataset until it changes.
                        log.warning("cannot build the view of dataset %s (%s) now: %s", name, m.etag, exc.message)
                        continue
                    except (duckdb.Error, NotFound) as exc:
                        # One unreadable dataset must not take every other query down with it;
                        # it stays unqueryable until its manifest changes.
                        log.error("cannot build the view of dataset %s (%s): %s", name, m.etag, exc)
                        self._db.execute(f"DROP VIEW IF EXISTS {quote_name(name)}")
                    self._views[name] = m.etag
            for name in [n for n in self._views if n not in manifests]:
                self._db.execute(f"DROP VIEW IF EXISTS {quote_name(name)}")
                del self._views[name]
        for name in changed:  # their views read the new version now; a copy of the old one goes
            self.hot.forget(name)

    def adopt_copy(self, m: Manifest, select: str) -> bool:
        """Point the view of `m`'s dataset at an in-memory copy of it (`hot.py`), if the view
        still reads that version."""
        with self._lock:
            if self._views.get(m.name) != m.etag:
                return False
            self._db.execute(f"CREATE OR REPLACE VIEW {quote_name(m.name)} AS {select}")
            self._generation += 1
            return True

    def release_copy(self, m: Manifest) -> None:
        """Point the view of `m`'s dataset back at its objects, before its copy is dropped."""
        with self._lock:
            if self._views.get(m.name) == m.etag:
                self._db.execute(self._view_sql(m))
                self._generation += 1

    def _view_sql(self, m: Manifest, temporary: bool = False, name: str | None = None) -> str:
        return f"CREATE OR REPLACE {'TEMP ' if temporary else ''}VIEW {quote_name(name or m.name)} AS {self.source_sql(m)}"

    def source_sql(self, m: Manifest) -> str:
        """A SELECT of every row of the version `m`."""
        if m.objects and m.evolved:
            # Objects written before the schema evolved lack new columns or have narrower
            # types: read by name, then cast to the dataset's schema.
            paths = ", ".join(sql_literal(self.cache.reference(o.key, o.size)) for o in m.objects)
            columns = ", ".join(_evolved_column(f) for f in m.schema)
            source = f"SELECT {columns} FROM read_parquet([{paths}], union_by_name = true)"
        elif m.objects:
            paths = ", ".join(sql_literal(self.cache.reference(o.key, o.size)) for o in m.objects)
            source = f"SELECT * FROM read_parquet([{paths}])"
        else:
            columns = ", ".join(f"CAST(NULL AS {duckdb_type_name(f.type)}) AS {quote_name(f.name)}" for f in m.schema) or "NULL AS empty"
            source = f"SELECT {columns} WHERE false"
        return source

    # -- statements ------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one request (the shared one serialises view changes)."""
        with self._lock:
            return self._db.cursor()

    def check(self, sql: str, cursor: duckdb.DuckDBPyConnection, who: Identity | None = None) -> frozenset[str]:
        """Accept exactly one read statement, as DuckDB's parser sees it, that reads only the
        datasets' views (`sandbox.py`), and of those only the ones `who` may use; the datasets
        it reads. Verdicts are kept until a view changes."""
        return self._verdict(sql, cursor, who).read

    def shape(self, sql: str, who: Identity | None = None) -> CountAll | Scan | None:
        """What the query's shape allows (`shapes.py`): an answer from the catalog, a split by object."""
        return self._verdict_for(sql, who).shape

    def _verdict_for(self, sql: str, who: Identity | None) -> Verdict:
        """The query's verdict: kept, or checked now on a cursor of its own."""
        known = self._verdicts.get(self._verdict_key(sql, who))
        if known is not None:
            return known
        self.refresh()
        cursor = self.cursor()
        try:
            return self._verdict(sql, cursor, who)
        finally:
            cursor.close()

    def _verdict(self, sql: str, cursor: duckdb.DuckDBPyConnection, who: Identity | None) -> Verdict:
        key = self._verdict_key(sql, who)
        known = self._verdicts.get(key)
        if known is not None:
            return known
        try:
            statements = cursor.extract_statements(sql)
        except duckdb.Error as exc:
            raise InvalidInput(f"SQL error: {exc}") from None
        if len(statements) != 1:
            raise InvalidInput(f"expected exactly one SQL statement, got {len(statements)}")
        kind = statements[0].type
        if kind not in _READ_STATEMENTS:
            raise InvalidInput(f"only read queries are allowed here; {kind.name} statements are refused")
        select = statements[0].query
        if kind == duckdb.StatementType.EXPLAIN:
            # EXPLAIN ANALYZE runs the statement it explains, so that one must be a read too.
            select = _EXPLAIN_PREFIX.sub("", select, count=1)
            try:
                inner = [s.type for s in cursor.extract_statements(select)]
            except duckdb.Error:
                inner = []
            if inner != [duckdb.StatementType.SELECT]:
                raise InvalidInput("only read queries are allowed here; EXPLAIN is accepted for read queries only")
        try:
            tree = cursor.execute("SELECT json_serialize_sql(?)", [select]).fetchall()
        except duckdb.Error as exc:
            raise InvalidInput(f"SQL error: {exc}") from None
        views = {m.name.lower(): m.name for m in self.catalog.list() if who is None or who.may_use(m.name)}
        serialized = tree[0][0] if tree else "{}"
        read = frozenset(views[name] for name in check_tree(serialized, views.values()) if name in views)
        shape, lookup = shapes_of(serialized) if kind == duckdb.StatementType.SELECT else (None, None)
        if lookup is not None and views.get(lookup.table.lower()) not in read:
            lookup = None
        elif lookup is not None:
            lookup = Lookup(views[lookup.table.lower()], lookup.columns)
        verdict = Verdict(read, shape, lookup)
        if len(self._verdicts) >= SCHEMA_CACHE_SIZE:
            self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict

    def _verdict_key(self, sql: str, who: Identity | None) -> tuple[str, int, tuple[str, ...]]:
        return (sql, self._generation, who.datasets if who is not None else ())

    def _runnable(self, sql: str, cursor: duckdb.DuckDBPyConnection, who: Identity | None, pinned: Sequence[Manifest], run: bool = True) -> str:
        """The text to run on `cursor` for `sql`, once the query passed the check: its pinned
        versions (older versions of datasets to read instead of the current ones) and `AT`
        clauses set up as temporary views of the cursor, which hide the shared views. Only a
        query that will `run` (not one asked for its schema) counts as a use of what it reads
        (`hot.py`)."""
        self.sync_views()
        verdict = self._verdict(sql, cursor, who)
        if run and not pinned:
            self.hot.used([m for m in (self.catalog.resolve(n) for n in verdict.read) if m is not None], verdict.lookup)
        for m in pinned:
            self._temporary_view(cursor, m, m.name)
        return self._rewritten(sql, cursor)

    def _temporary_view(self, cursor: duckdb.DuckDBPyConnection, m: Manifest, name: str) -> None:
        """Version `m` as a view of this cursor alone, named `name`."""
        if not all(self.cache.exists(o.key) for o in m.objects):
            raise NotFound(f"version {m.version} of dataset {m.name!r} is no longer readable: gc collected its objects")
        cursor.execute(self._view_sql(m, temporary=True, name=name))

    def _rewritten(self, sql: str, cursor: duckdb.DuckDBPyConnection) -> str:
        """`sql` as it runs: each `name AT (VERSION => n)` (or `TIMESTAMP => t`) reads a
        temporary view of that version, named `name@n` and aliased back to what the query calls
        it, and each read of `information_schema` is narrowed to the datasets' database and
        schema (`sandbox.catalog_reads`)."""
        travel_at, read_catalog = _AT.search(sql), _CATALOG_READ.search(sql)
        if not travel_at and not read_catalog:
            return sql
        tree = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
        serialized = tree[0][0] if tree else "{}"
        spans: list[tuple[int, int, str]] = []
        for travel in time_travels(serialized) if travel_at else []:
            m = self.catalog.at(travel.table, travel.version, travel.as_of)
            view = f"{m.name}@{m.version}"
            self._temporary_view(cursor, m, view)
            spans.append((travel.start, travel.length, f"{quote_name(view)} AS {quote_name(travel.alias or travel.table)}"))
        for read in catalog_reads(serialized) if read_catalog else []:
            database, schema = INFORMATION_SCHEMA[read.view]
            narrowed = f"SELECT * FROM information_schema.{read.view} WHERE {database} = '{CATALOG_NAME}' AND {schema} = '{SCHEMA_NAME}'"
            spans.append((read.start, read.length, f"({narrowed}) AS {quote_name(read.alias or read.view)}"))
        text = sql.encode()
        for start, length, replacement in sorted(spans, reverse=True):
            text = text[:start] + replacement.encode() + text[start + length :]
        return text.decode()

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        batch_rows: int = BATCH_ROWS,
        gate: Admission | None = None,
        client_gone: Callable[[], bool] | None = None,
        who: Identity | None = None,
        tag: str | None = None,
        pinned: Sequence[Manifest] = (),
    ) -> "QueryResult":
        """Run a read-only query and stream its result as Arrow record batches (`pinned`: older
        versions of datasets to read, see `_runnable`).

        The query holds a slot of `gate` (the edge's cap) until its reader is exhausted or
        closed, and is stopped by the watchdog at `query.timeout_seconds` or once
        `client_gone()` says its client left. The query is bound and started here, so one
        that fails at once raises here rather than in the middle of a response.
        """
        answer = None if params or pinned else self._from_catalog(sql, who)
        if answer is not None:  # no cursor, no slot, nothing to stop: the manifest answered
            schema, batches = answer
            metrics.query(who.user if who is not None else None, sql, "ok", batches[0].num_rows, 0.0)
            return QueryResult(schema, iter(batches))
        if gate is not None:
            gate.acquire()
        cursor = self.cursor()
        try:
            running = self.watchdog.start(sql, cursor, client_gone, tag, who.user if who is not None else None)
        except BaseException:
            cursor.close()
            if gate is not None:
                gate.release()
            raise
        batches = self._stream(sql, params, batch_rows, cursor, running, gate, who, pinned)
        schema = next(batches)
        assert isinstance(schema, pa.Schema)
        return QueryResult(self._kept_schema(sql, params, who, schema), batches)  # type: ignore[arg-type]

    def _kept_schema(self, sql: str, params: Sequence[Any] | None, who: Identity | None, schema: pa.Schema) -> pa.Schema:
        """`schema`, or the equal object `schema()` handed out for the query: an edge may keep
        what it derives from a schema by the schema's identity (Flight SQL's column metadata),
        and a run's schema is a new object each time."""
        known = self._known_schema(self._schema_key(sql, params, who))
        return known if known is not None and known.equals(schema, check_metadata=True) else schema

    def _known_schema(self, key: tuple[str, tuple[type, ...], tuple[str, ...]]) -> pa.Schema | None:
        """The schema bound for `key` since the views last changed, if any."""
        hit = self._schemas.get(key)
        return hit[1] if hit is not None and hit[0] == self._generation else None

    def _stream(
        self,
        sql: str,
        params: Sequence[Any] | None,
        batch_rows: int,
        cursor: duckdb.DuckDBPyConnection,
        running: RunningQuery,
        gate: Admission | None,
        who: Identity | None,
        pinned: Sequence[Manifest],
    ) -> Iterator[pa.Schema | pa.RecordBatch]:
        """The schema, then the batches; whatever ends it releases the cursor, the watchdog's
        entry and the edge's slot (a generator's `finally` also runs when it is dropped)."""
        outcome, rows = "closed", 0  # unless it ends or fails: the reader stopped early
        try:
            try:
                text = self._runnable(sql, cursor, who, pinned)
                if running.reason:
                    raise running.failure()
                # Straight to the engine: a relation would parse and bind the text once more
                # before running it (about 0.2 ms of a 1 ms query); errors come from here all the same.
                reader = _seam.submit(cursor, text, list(params) if params else None, "stream", batch_rows).arrow_reader()
            except duckdb.Error as exc:
                raise (running.failure() if running.reason else _user_error(exc)) from None
            yield reader.schema
            with reader:
                while True:
                    if running.reason:
                        raise running.failure()
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        outcome = "ok"
                        return
                    except (duckdb.Error, pa.ArrowException, OSError) as exc:  # how DuckDB reports errors met while running
                        raise (running.failure() if running.reason else _user_error(exc)) from None
                    rows += batch.num_rows
                    yield batch
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            metrics.query(running.owner, sql, outcome, rows, time.monotonic() - running.started)
            self.watchdog.finish(running)
            cursor.close()
            if gate is not None:
                gate.release()

    def _from_catalog(self, sql: str, who: Identity | None) -> tuple[pa.Schema, tuple[pa.RecordBatch, ...]] | None:
        """The answer of a query the manifests answer (`count(*)` of a dataset), reading no
        object; None for any other query, or when the dataset changed under the verdict."""
        self.refresh()
        shape = self.shape(sql, who)
        if not isinstance(shape, CountAll):
            return None
        m = self.catalog.resolve(shape.table)
        if m is None:
            return None
        return _count_answer(shape.column, m.row_count)

    def schema(self, sql: str, params: Sequence[Any] | None = None, who: Identity | None = None) -> pa.Schema:
        """The Arrow schema a query's result will have, without running it.

        Flight SQL asks for it twice per statement (prepare, then GetFlightInfo) and a client
        re-executing a statement asks again each time; binding costs about as much as a small
        query, so schemas are kept until any view changes.
        """
        answer = None if params else self._from_catalog(sql, who)
        if answer is not None:
            return answer[0]
        self.sync_views()
        key = self._schema_key(sql, params, who)
        generation = self._generation
        known = self._known_schema(key)
        if known is not None:
            return known
        cursor = self.cursor()
        try:
            # Bound, not run: a run of zero rows costs a scan's set-up too (1.9 ms against 0.4 ms
            # for a GROUP BY over Parquet), and gives the same schema.
            signature = _seam.bind(cursor, self._runnable(sql, cursor, who, (), run=False), values=list(params) if params else None)
            schema = _seam.arrow_schema(cursor, list(signature.names), list(signature.types))
        except duckdb.Error as exc:
            raise _user_error(exc) from None
        finally:
            cursor.close()
        if len(self._schemas) >= SCHEMA_CACHE_SIZE:
            self._schemas.clear()
        self._schemas[key] = (generation, schema)
        return schema

    @staticmethod
    def _schema_key(sql: str, params: Sequence[Any] | None, who: Identity | None) -> tuple[str, tuple[type, ...], tuple[str, ...]]:
        return (sql, tuple(type(p) for p in params or ()), who.datasets if who is not None else ())

    def sources(self, sql: str, who: Identity | None = None) -> frozenset[str]:
        """The datasets a read query reads (a dictionary look-up once the query was checked)."""
        return self._verdict_for(sql, who).read

    def describe(self, sql: str, who: Identity | None = None) -> tuple[pa.Schema | None, pa.Schema]:
        """The result schema of a query with `?` placeholders, without values, and the types
        DuckDB infers for its placeholders (what Flight SQL clients ask a prepared statement for).

        DuckDB's Python API offers no public way to describe placeholders, so this uses its
        binder's own entry point (`duckdb._seam.bind`, pinned with the package). A placeholder
        whose type the query does not decide (`SELECT ?`) is described as a string, which every
        client can send; a result with such a column is not known before the values are.
        """
        self.sync_views()
        cursor = self.cursor()
        try:
            self.check(sql, cursor, who)
            signature = _seam.bind(cursor, self._rewritten(sql, cursor))
            names = [name for name, _ in signature.parameters]
            types = [_decided(t) for _, t in signature.parameters]
            parameters = _seam.arrow_schema(cursor, names, types) if names else pa.schema([])
            decided = all(str(t) != "UNKNOWN" for t in signature.types)
            result = _seam.arrow_schema(cursor, list(signature.names), list(signature.types)) if decided else None
            return result, parameters
        except duckdb.Error as exc:
            raise _user_error(exc) from None
        finally:
            cursor.close()

    def ping(self) -> None:
        """A trivial query on the engine, outside any cap (readiness)."""
        cursor = self.cursor()
        try:
            cursor.execute("SELECT 1").fetchall()
        except duckdb.Error as exc:
            raise _user_error(exc) from None
        finally:
            cursor.close()

    def close(self, grace_seconds: float = 2.0) -> None:
        """Stop running queries, give them `grace_seconds` to unwind, then close DuckDB."""
        self.hot.close()
        self.watchdog.stop_all()
        if not self.watchdog.wait_idle(grace_seconds):
            log.warning("%d queries still running at shutdown; closing anyway", self.watchdog.running)
        self.watchdog.close()
        try:
            self._db.close()
        except duckdb.Error as exc:
            log.warning("closing the query engine: %s", exc)


@dataclass(frozen=True)
class Verdict:
    """What checking a query found (`QueryEngine.check`): the datasets it reads, its shape
    (`shapes.py`) and the columns it looks rows up by."""

    read: frozenset[str]
    shape: CountAll | Scan | None
    lookup: Lookup | None


class QueryResult:
    """A running query's result: its schema, then its batches, read once.

    Closing it (or reading it to the end) ends the query and frees what it holds at once: its
    cursor, its watchdog entry and its slot of the edge's cap. An Arrow reader over a Python
    iterator would hold them until garbage collection, whatever `close()` was called.
    """

    def __init__(self, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        self.schema = schema
        self._batches = batches

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self._batches

    def read_all(self) -> pa.Table:
        try:
            return pa.Table.from_batches(list(self._batches), self.schema)
        finally:
            self.close()

    def close(self) -> None:
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "QueryResult":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def _count_answer(column: str, rows: int) -> tuple[pa.Schema, tuple[pa.RecordBatch, ...]]:
    """The one-row answer of a `count(*)`, its schema and its batch: the same objects for every
    query that asks it again (a table's `schema` is a new object at each access)."""
    table = pa.table({column: pa.array([rows], pa.int64())})
    return table.schema, tuple(table.to_batches())


def _decided(t: Any) -> Any:
    return "VARCHAR" if str(t) == "UNKNOWN" else t


def _user_error(exc: duckdb.Error) -> LakehouseError:
    if isinstance(exc, duckdb.PermissionException):
        return InvalidInput(f"refused by the query sandbox: {exc}")
    return InvalidInput(f"SQL error: {exc}")


def _evolved_column(f: pa.Field) -> str:
    """A column of an evolved dataset's view: cast to its type when evolution can change it."""
    if pa.types.is_nested(f.type) or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
        return quote_name(f.name)  # evolution never changes these
    return f"CAST({quote_name(f.name)} AS {duckdb_type_name(f.type)}) AS {quote_name(f.name)}"


def duckdb_type_name(t: pa.DataType) -> str:
    """DuckDB's name for an Arrow type: the typed columns of an empty dataset's view, and the
    type names SQL clients show."""
    simple = {
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
        pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR", pa.binary(): "BLOB", pa.large_binary(): "BLOB", pa.date32(): "DATE",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "ns": "TIMESTAMP_NS"}.get(t.unit, "TIMESTAMP")
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    return "VARCHAR"
