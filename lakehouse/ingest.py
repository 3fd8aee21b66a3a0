"""Ingest: a stream of Arrow record batches becomes Parquet objects and one catalog commit.

Batches are regrouped into row groups of `ingest.row_group_rows` rows (large enough for
DuckDB to scan in parallel, whatever batch size the client sent) and written to a local spool
file; past `ingest.max_object_bytes` the object is uploaded and a new one begun. Memory is
bounded by one row group. Nothing is visible until the catalog commit at the end; on any
failure every object written so far is deleted, so a bad or broken stream leaves nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.cache import ObjectCache
from lakehouse.catalog import MAX_IDEMPOTENCY_KEY, MODES, Catalog, DataObject, KeyedCommit, Manifest, Replayed, new_object_key, validate_name
from lakehouse.config import IngestConfig
from lakehouse.errors import Conflict, InvalidInput, NotFound
from lakehouse.evolution import AppendPlan, fit, storage_schema

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    name: str
    dataset_id: str
    mode: str
    rows: int
    objects: list[DataObject]
    bytes: int
    schema: pa.Schema
    seconds: float
    manifest: Manifest
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset_id": self.dataset_id,
            "mode": self.mode,
            "rows": self.rows,
            "objects": [{"key": o.key, "size": o.size, "row_count": o.row_count} for o in self.objects],
            "bytes": self.bytes,
            "schema": [{"name": f.name, "type": str(f.type)} for f in self.schema],
            "seconds": round(self.seconds, 4),
            "notes": self.notes,
            "manifest": self.manifest.to_json(),
        }


@dataclass
class _Written:
    obj: DataObject
    schema: pa.Schema


class _ObjectWriter:
    """Writes row groups into a sequence of Parquet objects, uploading each as it fills."""

    def __init__(self, name: str, catalog: Catalog, cache: ObjectCache, config: IngestConfig) -> None:
        self.name = name
        self.store = catalog.store
        self.cache = cache
        self.config = config
        self.written: list[_Written] = []
        self.leases = catalog.leases
        self.lease: str | None = None
        self._writer: pq.ParquetWriter | None = None
        self._spool: Path | None = None
        self._schema: pa.Schema | None = None
        self._rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._seen: pa.Schema | None = None
        self._target = pa.schema([])

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.schema is not self._seen:
            self._seen, self._target = batch.schema, storage_schema(batch.schema)
        if not batch.schema.equals(self._target, check_metadata=True):
            batch = batch.cast(self._target)
        if self._schema is not None and not batch.schema.equals(self._schema):
            self._flush(final=True)
            self._finish_object()
        self._schema = batch.schema
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.config.row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending_rows:
            return
        assert self._schema is not None
        table = pa.Table.from_batches(self._pending, self._schema)
        group = self.config.row_group_rows
        cut = self._pending_rows if final else (self._pending_rows // group) * group
        self._write(table.slice(0, cut))
        rest = table.slice(cut)
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._spool = self.cache.spool_file()
            self._writer = pq.ParquetWriter(str(self._spool), table.schema, compression="zstd", write_statistics=True)
            self._rows = 0
        self._writer.write_table(table, row_group_size=self.config.row_group_rows)
        self._rows += table.num_rows
        if self._spool is not None and self._spool.stat().st_size >= self.config.max_object_bytes:
            self._finish_object()

    def _finish_object(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        spool, self._spool = self._spool, None
        assert spool is not None and self._schema is not None
        self.written.append(self._upload(spool, self._rows, self._schema))

    def _upload(self, spool: Path, rows: int, schema: pa.Schema) -> _Written:
        if self.lease is None:  # before the first object exists, so gc never sees it unprotected
            self.lease = self.leases.take(self.name)
        key = new_object_key(self.name, self.lease)
        try:
            info = self.store.put_file(key, str(spool))
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        self.cache.adopt(key, spool)
        return _Written(DataObject(key, info.size, rows), schema)

    def close(self) -> pa.Schema | None:
        """Write what is pending and return the schema of the last batch (the widest)."""
        self._flush(final=True)
        self._finish_object()
        return self._schema

    def unify(self, schema: pa.Schema) -> None:
        """Rewrite objects written before a column was widened, so every object has `schema`."""
        for i, w in enumerate(self.written):
            if w.schema.equals(schema):
                continue
            spool = self.cache.spool_file()
            with self.cache.open(w.obj.key) as written, pq.ParquetWriter(str(spool), schema, compression="zstd", write_statistics=True) as out:
                source = pq.ParquetFile(written)
                for g in range(source.num_row_groups):
                    out.write_table(fit(source.read_row_group(g), schema), row_group_size=self.config.row_group_rows)
            self._discard(w)
            self.written[i] = self._upload(spool, w.obj.row_count, schema)

    def _discard(self, w: _Written) -> None:
        self.store.delete(w.obj.key)
        if self.store.local_path(w.obj.key) is None:
            self.cache.evict(w.obj.key)

    def release(self) -> None:
        """Give up the lease: after the commit (the manifest protects the objects now) or the abort."""
        if self.lease is not None:
            self.leases.release(self.lease)
            self.lease = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)
        for w in self.written:
            try:
                self._discard(w)
            except Exception:  # gc collects what cannot be deleted now
                log.warning("could not delete %s after a failed ingest; gc will", w.obj.key)
        self.written.clear()


def _stop(batches: Iterable[pa.RecordBatch]) -> None:
    close = getattr(batches, "close", None)
    if close is not None:  # a source with threads of its own (the CSV reader) stops now
        close()


def check_mode(catalog: Catalog, name: str, mode: str, idempotency_key: str | None = None) -> IngestResult | None:
    """Refuse a doomed ingest before any byte is written (the commit checks again, atomically).

    Returns the earlier result when `idempotency_key` was already committed: the ingest is a
    retry, and its body need not be read at all.
    """
    validate_name(name)
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    existing = catalog.resolve(name)
    if existing is not None and existing.name != name:
        raise Conflict(f"dataset {name!r} clashes with existing dataset {existing.name!r}: names are case-insensitive in SQL")
    if idempotency_key is not None:
        if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY or not idempotency_key.isprintable():
            raise InvalidInput(f"an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
        done = existing.commit_of(idempotency_key) if existing is not None else None
        if done is not None and existing is not None:
            return _replayed(name, mode, done, existing)
    if mode == "create" and existing is not None:
        raise Conflict(f"dataset {name!r} already exists")
    if mode == "append" and existing is None:
        raise NotFound(f"dataset {name!r} not found: cannot append")
    return None


def append_plan(catalog: Catalog, name: str, mode: str, evolve: bool) -> AppendPlan | None:
    """How an append's batches meet the dataset (None when nothing is appended to)."""
    existing = catalog.resolve(name)
    if mode not in ("append", "create_append") or existing is None:
        if evolve and mode not in ("append", "create_append"):
            raise InvalidInput(f"evolve applies to appends, not to mode {mode!r}")
        return None
    return AppendPlan(existing.schema, evolve)


def _replayed(name: str, mode: str, done: KeyedCommit, manifest: Manifest) -> IngestResult:
    """The answer to a retried ingest: the rows of the commit it repeats, nothing new written."""
    return IngestResult(
        name=name,
        dataset_id=manifest.dataset_id,
        mode=mode,
        rows=done.rows,
        objects=[],
        bytes=0,
        schema=manifest.schema,
        seconds=0.0,
        manifest=manifest,
        notes={"replayed": True, "version": done.version},
    )


def write_batches(
    catalog: Catalog,
    cache: ObjectCache,
    config: IngestConfig,
    name: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    mode: str = "create",
    notes: Callable[[], dict[str, Any]] | None = None,
    idempotency_key: str | None = None,
    evolve: bool = False,
) -> IngestResult:
    """Write `batches` as dataset `name` and commit it.

    An append is read against the dataset (`evolution.AppendPlan`): columns matched by name,
    cast where nothing is lost, refused otherwise unless `evolve`. A batch may be wider than
    `schema` (CSV and NDJSON widen a column as they go): the objects written before it are
    brought up to the final schema. With an `idempotency_key` already committed (a retry),
    the earlier result is returned and nothing is added.
    """
    started = time.perf_counter()
    try:
        replay = check_mode(catalog, name, mode, idempotency_key)
        plan = append_plan(catalog, name, mode, evolve)
        if plan is not None and replay is None:
            plan.check(storage_schema(schema))
    except BaseException:
        _stop(batches)
        raise
    if replay is not None:
        for _ in batches:  # read to the end, so the client's upload completes as usual
            pass
        return replay
    writer = _ObjectWriter(name, catalog, cache, config)
    rows = 0
    try:
        for batch in batches:
            if plan is not None:
                batch = plan.conform(batch, rows)
            rows += batch.num_rows
            writer.add(batch)
        final = writer.close() or (plan.target if plan is not None else storage_schema(schema))
        writer.unify(final)
        objects = [w.obj for w in writer.written]
        manifest = catalog.commit(name, final, objects, mode, idempotency_key, evolve=evolve)
    except Replayed as done:
        writer.abort()
        return _replayed(name, mode, done.commit, done.manifest)
    except BaseException:
        writer.abort()
        _stop(batches)
        raise
    finally:
        writer.release()
    return IngestResult(
        name=name,
        dataset_id=manifest.dataset_id,
        mode=mode,
        rows=sum(o.row_count for o in objects),
        objects=objects,
        bytes=sum(o.size for o in objects),
        schema=manifest.schema,
        seconds=time.perf_counter() - started,
        manifest=manifest,
        notes=notes() if notes is not None else {},
    )
