"""Hot datasets: a compressed copy of a dataset's current version in DuckDB's memory.

DuckDB over Parquet decompresses whole column chunks for every query: a 1-row filter of 500k
rows reads a row group of every column (12 ms). A DuckDB table answers it from its own
storage (zone maps, late reads) in 3 ms, a GROUP BY in 3.5 ms against 5, a `SELECT *` in 73
ms against 111; compressed by a CHECKPOINT, the copy takes about 1.3x the Parquet's bytes.
So a dataset queried twice at one version is copied into a table of the `_hot` database in
the background, and its view is switched to the copy once it is complete; until then, and for any
version too big, queries read the Parquet as before. The copies are kept within
`query.hot_max_bytes` (counted in Parquet bytes), the least recently queried dropped first.

A copy is of one manifest version: a commit switches the view back to the new version's
objects at once (`QueryEngine._build_views`) and drops the copy; the new version is copied
when it is queried twice. Time travel and split queries read the Parquet objects, never a copy.

A copy also learns its lookups: a column that queries twice required to equal a value
(`shapes.Lookup`, `WHERE id = 42`) gets an index, which finds the row without reading a row
group of every column (the 1-row filter: 1.5 ms, then 0.7 ms), unless its values each match
more rows than DuckDB reads through an index (a state, a role: the index would only take
memory). At most `MAX_INDEXES` per copy; they go with it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import duckdb

from lakehouse import metrics
from lakehouse.catalog import Manifest
from lakehouse.errors import LakehouseError
from lakehouse.shapes import Lookup

if TYPE_CHECKING:
    from lakehouse.query import QueryEngine

log = logging.getLogger(__name__)

DATABASE = "_hot"
"""An in-memory database of its own, attached to the engine's: its CHECKPOINT (which
compresses the copies) waits for no transaction of the queries' database."""
HEAT = 2
"""Queries of one version before it is copied: a dataset written and never read again, or
changed by every commit, is not copied in vain."""
HEAT_ENTRIES = 10_000
MAX_INDEXES = 4
"""Columns of one copy indexed at most (an index of 500k int64 values takes 5 MB)."""


@dataclass(frozen=True)
class _Copy:
    manifest: Manifest
    table: str

    @cached_property
    def columns(self) -> dict[str, str]:
        """The dataset's column names by their lower case (how a query may write them)."""
        return {n.lower(): n for n in self.manifest.schema.names}


@dataclass(frozen=True)
class _Index:
    copy: _Copy
    column: str


class HotTables:
    def __init__(self, engine: "QueryEngine", max_bytes: int) -> None:
        self._engine = engine
        self.max_bytes = max_bytes
        self._copies: OrderedDict[str, _Copy] = OrderedDict()  # dataset -> copy, least recently used first
        self._heat: dict[str, int] = {}  # etag -> queries seen
        self._pending: set[str] = set()  # etags being copied
        self._guard = threading.Lock()
        self._lookups: dict[tuple[str, str], int] = {}  # (copy's table, column) -> queries that looked it up
        self._indexed: set[tuple[str, str]] = set()  # (copy's table, column) indexed, or tried
        self._work: queue.Queue[Manifest | _Index | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._serial = 0

    def used(self, manifests: list[Manifest], lookup: Lookup | None = None) -> None:
        """The datasets a query reads: copy a version queried `HEAT` times, keep copies fresh,
        and index a copy's column that `HEAT` queries looked rows up by (`lookup`)."""
        for m in manifests:
            with self._guard:
                job = self._job(m, lookup if lookup is not None and lookup.table == m.name else None)
                if job is not None and self._worker is None:
                    self._worker = threading.Thread(target=self._run, name="hot-copies", daemon=True)
                    self._worker.start()
            if job is not None:
                self._work.put(job)

    def _job(self, m: Manifest, lookup: Lookup | None) -> Manifest | _Index | None:
        """What a query of `m` calls for, if anything (under the guard)."""
        copy = self._copies.get(m.name)
        if copy is not None and copy.manifest.etag == m.etag:
            self._copies.move_to_end(m.name)
            return self._index_for(copy, lookup) if lookup is not None else None
        if not 0 < m.total_bytes <= self.max_bytes or m.etag in self._pending:
            return None
        if len(self._heat) >= HEAT_ENTRIES:
            self._heat.clear()  # versions queried once long ago; forgetting them costs a query
        heat = self._heat[m.etag] = self._heat.get(m.etag, 0) + 1
        if heat < HEAT:
            return None
        self._pending.add(m.etag)
        return m

    def _index_for(self, copy: _Copy, lookup: Lookup) -> _Index | None:
        for written in lookup.columns:
            column = copy.columns.get(written.lower())
            if column is None or (copy.table, column) in self._indexed:
                continue
            key = (copy.table, column)
            if len(self._lookups) >= HEAT_ENTRIES:
                self._lookups.clear()
            seen = self._lookups[key] = self._lookups.get(key, 0) + 1
            if seen >= HEAT and sum(1 for table, _ in self._indexed if table == copy.table) < MAX_INDEXES:
                self._indexed.add(key)  # tried once, built or not
                return _Index(copy, column)
        return None

    def forget(self, name: str) -> None:
        """The dataset changed or left: its view reads something else now; drop its copy.
        Called without the engine's lock, which dropping takes."""
        with self._guard:
            copy = self._copies.pop(name, None)
            self._report()
        if copy is not None:
            self._drop(copy.table)

    def close(self) -> None:
        self._work.put(None)

    def _run(self) -> None:
        while (m := self._work.get()) is not None:
            if isinstance(m, _Index):
                try:
                    self._index(m)
                except Exception:
                    log.exception("indexing %s.%s in memory failed", m.copy.manifest.name, m.column)
                continue
            try:
                self._copy(m)
            except (duckdb.Error, LakehouseError) as exc:
                log.info("cannot hold %s version %d in memory now: %s", m.name, m.version, exc)
            except Exception:
                log.exception("copying %s into memory failed", m.name)
            finally:
                with self._guard:
                    self._pending.discard(m.etag)
                    self._heat.pop(m.etag, None)

    def _copy(self, m: Manifest) -> None:
        from lakehouse.query import quote_name  # the engine's module imports this one

        self._serial += 1
        table = f"{DATABASE}.main.{quote_name(f'{m.name.lower()}_{m.version}_{self._serial}')}"
        cursor = self._engine.cursor()
        try:
            cursor.execute(f"CREATE TABLE {table} AS {self._engine.source_sql(m)}")
            cursor.execute(f"CHECKPOINT {DATABASE}")  # compresses the new table: about 1.3x its Parquet bytes instead of 7x
        finally:
            cursor.close()
        evicted = []
        with self._guard:  # so a `forget` of the dataset comes before or after, never between
            if not self._engine.adopt_copy(m, f"SELECT * FROM {table}"):
                evicted.append(_Copy(m, table))  # the dataset changed meanwhile
            else:
                previous = self._copies.pop(m.name, None)
                if previous is not None:
                    evicted.append(previous)
                self._copies[m.name] = _Copy(m, table)
                while sum(c.manifest.total_bytes for c in self._copies.values()) > self.max_bytes and len(self._copies) > 1:
                    _, oldest = self._copies.popitem(last=False)
                    self._engine.release_copy(oldest.manifest)
                    evicted.append(oldest)
            self._report()
        for copy in evicted:
            self._drop(copy.table)
        if not evicted or evicted[0].table != table:
            log.info("holding %s version %d in memory (%d bytes of Parquet)", m.name, m.version, m.total_bytes)

    def _index(self, job: _Index) -> None:
        from lakehouse.query import quote_name  # the engine's module imports this one

        with self._guard:
            if self._copies.get(job.copy.manifest.name) is not job.copy:
                return  # dropped or replaced meanwhile
            self._serial += 1
            name = quote_name(f"lookup_{self._serial}")
        cursor = self._engine.cursor()
        column = quote_name(job.column)
        try:
            # DuckDB reads through an index only when a value matches at most
            # max(index_scan_max_count, index_scan_percentage of the rows) rows; a column of few
            # distinct values (a state, a role) would hold an index never read.
            rows = job.copy.manifest.row_count
            distinct, most, share = cursor.execute(
                f"SELECT approx_count_distinct({column}), current_setting('index_scan_max_count'),"
                f" current_setting('index_scan_percentage') FROM {job.copy.table}"
            ).fetchone()
            if rows > max(distinct, 1) * max(int(most), float(share) * rows):
                log.info("not indexing %s.%s in memory: a value matches %d rows on average, too many to read through an index", job.copy.manifest.name, job.column, rows // max(distinct, 1))
                return
            cursor.execute(f"CREATE INDEX {name} ON {job.copy.table} ({column})")
            log.info("indexed %s.%s in memory (version %d)", job.copy.manifest.name, job.column, job.copy.manifest.version)
        except duckdb.Error as exc:  # a type an index cannot hold, or the copy just went
            log.info("cannot index %s.%s in memory: %s", job.copy.manifest.name, job.column, exc)
        finally:
            cursor.close()

    def _report(self) -> None:
        """The copies held, for the metrics (called under the guard, after each change)."""
        metrics.hot_copies(len(self._copies), sum(c.manifest.total_bytes for c in self._copies.values()))

    def _drop(self, table: str) -> None:
        with self._guard:
            self._indexed = {key for key in self._indexed if key[0] != table}
            self._lookups = {key: n for key, n in self._lookups.items() if key[0] != table}
        cursor = self._engine.cursor()
        try:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        except duckdb.Error as exc:
            log.warning("cannot drop the in-memory copy %s: %s", table, exc)
        finally:
            cursor.close()
