"""Query: DuckDB over views of the catalogued Parquet objects, inside a sandbox.

One in-memory DuckDB database holds a view per dataset; each request gets its own cursor.
A view is rebuilt only when its manifest's etag changed: this process's own commits show up
at once (the catalog index is updated by the commit), other writers' commits after at most
`query.view_ttl_seconds`, when the catalog is re-read from storage.

The sandbox is DuckDB's own configuration, locked after start-up: no external access except
the directories that hold data objects, no extension installs or loads, no setting changes.
On top of it only read statements (SELECT, EXPLAIN and their forms such as DESCRIBE or
SUMMARIZE) are accepted, judged by DuckDB's parser, so users cannot COPY into the data
directory or replace the lake's views.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pyarrow as pa

from lakehouse.cache import ObjectCache
from lakehouse.catalog import Catalog, Manifest
from lakehouse.config import QueryConfig
from lakehouse.errors import InvalidInput, LakehouseError, NotFound

log = logging.getLogger(__name__)

BATCH_ROWS = 122_880
SCHEMA_CACHE_SIZE = 1024
_READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\([^)]*\)\s*)?", re.IGNORECASE)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class QueryEngine:
    def __init__(self, catalog: Catalog, cache: ObjectCache, config: QueryConfig) -> None:
        self.catalog = catalog
        self.cache = cache
        self.config = config
        self._db = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        tmp = cache.root.parent / "duckdb-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        allowed = [str(cache.root) + "/", str(tmp) + "/"]
        local_root = getattr(catalog.store, "root", None)
        if isinstance(local_root, Path):
            allowed.append(str(local_root) + "/")
        self._db.execute("SET TimeZone='UTC'")
        self._db.execute(f"SET temp_directory={_literal(str(tmp))}")
        if config.threads:
            self._db.execute(f"SET threads={int(config.threads)}")
        self._db.execute(f"SET allowed_directories=[{', '.join(_literal(a) for a in allowed)}]")
        self._db.execute("SET enable_external_access=false")
        self._db.execute("SET lock_configuration=true")
        self._views: dict[str, str] = {}
        self._generation = 0  # bumped whenever a view changes; keys the schema cache
        self._schemas: dict[tuple[str, tuple[type, ...]], tuple[int, pa.Schema]] = {}
        self._lock = threading.Lock()
        self._checked = time.monotonic()

    # -- views -----------------------------------------------------------------------------

    def sync_views(self, force: bool = False) -> None:
        """Bring the views in line with the catalog; cheap when nothing changed."""
        if force or time.monotonic() - self._checked >= self.config.view_ttl_seconds:
            self.catalog.reload()
            self._checked = time.monotonic()
        manifests = {m.name: m for m in self.catalog.list()}
        if all(self._views.get(n) == m.etag for n, m in manifests.items()) and len(manifests) == len(self._views):
            return
        with self._lock:
            self._generation += 1
            for name, m in manifests.items():
                if self._views.get(name) != m.etag:
                    try:
                        self._db.execute(self._view_sql(m))
                    except (duckdb.Error, NotFound) as exc:
                        # One unreadable dataset must not take every other query down with it;
                        # it stays unqueryable until its manifest changes.
                        log.error("cannot build the view of dataset %s (%s): %s", name, m.etag, exc)
                        self._db.execute(f"DROP VIEW IF EXISTS {_quote(name)}")
                    self._views[name] = m.etag
            for name in [n for n in self._views if n not in manifests]:
                self._db.execute(f"DROP VIEW IF EXISTS {_quote(name)}")
                del self._views[name]

    def _view_sql(self, m: Manifest) -> str:
        if m.objects:
            paths = ", ".join(_literal(self.cache.path(o.key)) for o in m.objects)
            source = f"SELECT * FROM read_parquet([{paths}])"
        else:
            columns = ", ".join(f"CAST(NULL AS {_duckdb_type(f.type)}) AS {_quote(f.name)}" for f in m.schema) or "NULL AS empty"
            source = f"SELECT {columns} WHERE false"
        return f"CREATE OR REPLACE VIEW {_quote(m.name)} AS {source}"

    # -- statements ------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one request (the shared one serialises view changes)."""
        with self._lock:
            return self._db.cursor()

    def check_read_only(self, sql: str, cursor: duckdb.DuckDBPyConnection | None = None) -> None:
        """Accept exactly one read statement, as DuckDB's parser sees it."""
        try:
            statements = (cursor or self.cursor()).extract_statements(sql)
        except duckdb.Error as exc:
            raise InvalidInput(f"SQL error: {exc}") from None
        if len(statements) != 1:
            raise InvalidInput(f"expected exactly one SQL statement, got {len(statements)}")
        kind = statements[0].type
        if kind not in _READ_STATEMENTS:
            raise InvalidInput(f"only read queries are allowed here; {kind.name} statements are refused")
        if kind == duckdb.StatementType.EXPLAIN:
            # EXPLAIN ANALYZE runs the statement it explains, so that one must be a read too.
            explained = _EXPLAIN_PREFIX.sub("", statements[0].query, count=1)
            try:
                inner = [s.type for s in (cursor or self.cursor()).extract_statements(explained)]
            except duckdb.Error:
                inner = []
            if inner != [duckdb.StatementType.SELECT]:
                raise InvalidInput("only read queries are allowed here; EXPLAIN is accepted for read queries only")

    def relation(self, sql: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Bind a read-only query on a fresh cursor; its schema is known before any row is read."""
        cursor = self.cursor()
        self.check_read_only(sql, cursor)
        self.sync_views()
        try:
            return cursor.sql(sql, params=list(params) if params else None)
        except duckdb.Error as exc:
            raise _user_error(exc) from None

    def execute(self, sql: str, params: Sequence[Any] | None = None, batch_rows: int = BATCH_ROWS) -> pa.RecordBatchReader:
        """Run a read-only query and stream its result as Arrow record batches."""
        rel = self.relation(sql, params)
        try:
            return rel.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise _user_error(exc) from None

    def schema(self, sql: str, params: Sequence[Any] | None = None) -> pa.Schema:
        """The Arrow schema a query's result will have, without running it.

        Flight SQL asks for it twice per statement (prepare, then GetFlightInfo) and a client
        re-executing a statement asks again each time; binding costs about as much as a small
        query, so schemas are kept until any view changes.
        """
        self.sync_views()
        key = (sql, tuple(type(p) for p in params or ()))
        generation = self._generation
        hit = self._schemas.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        rel = self.relation(sql, params)
        try:
            schema = rel.limit(0).to_arrow_table().schema
        except duckdb.Error as exc:
            raise _user_error(exc) from None
        if len(self._schemas) >= SCHEMA_CACHE_SIZE:
            self._schemas.clear()
        self._schemas[key] = (generation, schema)
        return schema

    def close(self) -> None:
        self._db.close()


def _user_error(exc: duckdb.Error) -> LakehouseError:
    if isinstance(exc, duckdb.PermissionException):
        return InvalidInput(f"refused by the query sandbox: {exc}")
    return InvalidInput(f"SQL error: {exc}")


def _duckdb_type(t: pa.DataType) -> str:
    """DuckDB's name for an Arrow type, for the typed columns of an empty dataset's view."""
    simple = {
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
        pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR", pa.binary(): "BLOB", pa.large_binary(): "BLOB", pa.date32(): "DATE",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    return "VARCHAR"
