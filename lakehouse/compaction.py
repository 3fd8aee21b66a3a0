"""Compaction: a dataset's objects rewritten into few large ones, optionally sorted, as a new
version with the same rows and schema.

A dataset fed by many small appends has one object per append, and every query opens every
object. DuckDB reads the version being compacted and writes it back (`COPY ... TO`), sorted by
the dataset's sort key when it has one, in objects of about `ingest.max_object_bytes`; a sort
spills to the cache's temporary directory, so memory stays bounded whatever the size. The new
objects are written under a lease (gc leaves them alone) and committed in place of exactly
the objects that were read: an append committed meanwhile stays, a replace meanwhile makes
the compaction fail instead of losing it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from lakehouse.cache import ObjectCache, ObjectFiles
from lakehouse.catalog import Catalog, DataObject, Manifest, new_object_key
from lakehouse.config import IngestConfig
from lakehouse.errors import InvalidInput
from lakehouse.query import QueryEngine, quote_name, sql_literal

__all__ = ["compact", "SORTED_ROW_GROUP_ROWS"]

SORTED_ROW_GROUP_ROWS = 16_384
"""Row groups of a sorted dataset: small enough that min/max statistics skip nearly all of a
point or range filter's groups (131,072-row groups made a 1-row filter decode a whole group)."""


def compact(catalog: Catalog, cache: ObjectCache, engine: QueryEngine, config: IngestConfig, name: str, order_by: str | None = None) -> Manifest:
    """Rewrite dataset `name`'s objects into objects of about `config.max_object_bytes`, sorted
    by `order_by` (kept as the dataset's sort key) or by the sort key it already has."""
    base = catalog.get(name)
    key = order_by if order_by is not None else base.sort_key
    if key is not None and key.lower() not in {f.name.lower() for f in base.schema}:
        raise InvalidInput(f"cannot order {name!r} by {key!r}: it has no such column")
    if not base.objects or (len(base.objects) == 1 and key == base.sort_key and order_by is None):
        return base  # nothing to gain
    lease = catalog.leases.take(name)
    work = Path(tempfile.mkdtemp(prefix="compact-", dir=cache.spool_dir))
    written: list[DataObject] = []
    try:
        for path in _rewrite(engine, base, key, work, config):
            rows = pq.read_metadata(path).num_rows
            object_key = new_object_key(name, lease)
            info = catalog.store.put_file(object_key, str(path))
            cache.adopt(object_key, path)
            written.append(DataObject(object_key, info.size, rows))
        if sum(o.row_count for o in written) != base.row_count:
            raise RuntimeError(f"compaction of {name!r} wrote {sum(o.row_count for o in written)} rows for {base.row_count}")
        return catalog.commit(name, base.schema, written, "compact", replaces=frozenset(o.key for o in base.objects), sort_key=key)
    except BaseException:
        for obj in written:
            catalog.store.delete(obj.key)
            cache.evict(obj.key)
        raise
    finally:
        catalog.leases.release(lease)
        shutil.rmtree(work, ignore_errors=True)


def _rewrite(engine: QueryEngine, m: Manifest, key: str | None, work: Path, config: IngestConfig) -> list[Path]:
    """The version's rows written by DuckDB as Parquet files in `work`, in order."""
    order = f" ORDER BY {quote_name(key)}" if key is not None else ""
    group = SORTED_ROW_GROUP_ROWS if key is not None else config.row_group_rows
    target = work / "out"
    with duckdb.connect() as db:
        db.register_filesystem(ObjectFiles(engine.cache))
        db.execute(f"SET temp_directory = {sql_literal(str(work / 'spill'))}")
        db.execute(
            f"COPY ({engine.source_sql(m)}{order}) TO {sql_literal(str(target))} "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {group}, FILE_SIZE_BYTES {config.max_object_bytes})"
        )
    return sorted(target.glob("*.parquet"), key=lambda p: (len(p.name), p.name))

