"""The lake: the one object both edges hold, wiring storage, catalog, ingest and query.

Edges call these methods and translate the results and the core's errors to their protocol;
every rule (names, modes, size bounds, key validation, the SQL sandbox) is enforced here or
below, never in an edge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import pyarrow as pa

from lakehouse.admission import Admission
from lakehouse.cache import ObjectCache
from lakehouse.catalog import MANIFEST_PREFIX, Catalog, Manifest, validate_name
from lakehouse.config import Config
from lakehouse.csv_format import read_csv_batches
from lakehouse.errors import InvalidInput, LakehouseError
from lakehouse.ingest import IngestResult, check_mode, write_batches
from lakehouse.query import BATCH_ROWS, QueryEngine, QueryResult
from lakehouse.secrets import FileSecretsProvider, SecretsProvider
from lakehouse.storage import ObjectInfo, ObjectStore, open_store, validate_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    storage: bool
    datasets: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.storage else "unavailable", "storage": self.storage, "datasets": self.datasets, "detail": self.detail}


class Lake:
    def __init__(self, config: Config, store: ObjectStore) -> None:
        self.config = config
        self.store = store
        self.catalog = Catalog(store)
        self.cache = ObjectCache(store, config.storage.cache_dir)
        self.query_engine = QueryEngine(self.catalog, self.cache, config.query)

    @classmethod
    def open(cls, config: Config, secrets: SecretsProvider | None = None) -> "Lake":
        provider = secrets or FileSecretsProvider(config.secrets.path)
        return cls(config, open_store(config.storage, provider))

    def stop_queries(self) -> None:
        """Interrupt every running query and refuse new ones: the first step of shutdown, so
        that responses still streaming end and the servers can stop."""
        self.query_engine.watchdog.stop_all()

    def close(self) -> None:
        self.query_engine.close()
        self.store.close()

    # -- ingest ----------------------------------------------------------------------------

    def ingest_arrow(self, name: str, reader: pa.RecordBatchReader | Iterator[pa.RecordBatch], schema: pa.Schema | None = None, mode: str = "create") -> IngestResult:
        """Write an Arrow stream as dataset `name` (modes: create, append, replace, create_append)."""
        schema = schema if schema is not None else reader.schema  # type: ignore[union-attr]
        return write_batches(self.catalog, self.cache, self.config.ingest, name, schema, reader, mode)

    def ingest_csv(self, name: str, source: BinaryIO, mode: str = "create") -> IngestResult:
        """Stream CSV bytes into dataset `name`, inferring types from the first rows."""
        check_mode(self.catalog, name, mode, None)  # before a byte of the body is read
        schema, batches, notes = read_csv_batches(source, self.config.ingest.sample_rows, self.config.http.max_upload_bytes)
        result = write_batches(self.catalog, self.cache, self.config.ingest, name, schema, batches, mode, schema_is_final=False)
        result.notes = {"string_fallback": notes.string_fallback, "widened": notes.widened}
        if notes.string_fallback:
            log.info("ingest %s: columns kept as string: %s", name, ", ".join(notes.string_fallback))
        return result

    # -- catalog ---------------------------------------------------------------------------

    def register(self, name: str, schema: pa.Schema) -> Manifest:
        return self.catalog.register(validate_name(name), schema)

    def manifest(self, name: str) -> Manifest:
        return self.catalog.get(name)

    def datasets(self) -> list[Manifest]:
        return self.catalog.list()

    def drop(self, name: str) -> Manifest:
        return self.catalog.drop(name)

    def refresh(self) -> int:
        """Re-read the catalog from storage now (another writer's commits); returns the dataset count."""
        self.query_engine.sync_views(force=True)
        return len(self.catalog.list())

    def gc(self, grace_seconds: float | None = None) -> list[str]:
        grace = self.config.catalog.gc_grace_seconds if grace_seconds is None else grace_seconds
        return self.catalog.gc(grace)

    # -- query -----------------------------------------------------------------------------

    def query(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        gate: Admission | None = None,
        client_gone: Callable[[], bool] | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> QueryResult:
        """Run a read-only query; `gate` is the calling edge's cap on concurrent queries and
        `client_gone` tells the watchdog when the client has left (see `QueryEngine.execute`)."""
        return self.query_engine.execute(sql, params, batch_rows, gate, client_gone)

    def admission(self, edge: str, limit: int) -> Admission:
        """A cap of `limit` concurrent queries for one edge."""
        return Admission(edge, limit)

    def query_schema(self, sql: str, params: Sequence[Any] | None = None) -> pa.Schema:
        return self.query_engine.schema(sql, params)

    # -- raw objects -----------------------------------------------------------------------

    def put_object(self, key: str, source: BinaryIO, length: int = -1) -> ObjectInfo:
        """Store a user object; the catalog's own prefix is off limits so manifests stay consistent."""
        validate_key(key)
        if key.startswith(MANIFEST_PREFIX.split("/")[0] + "/"):
            raise InvalidInput(f"invalid object key {key!r}: keys under _catalog/ are reserved")
        return self.store.put(key, source, length)

    def open_object(self, key: str) -> BinaryIO:
        return self.store.open(validate_key(key))

    def stat_object(self, key: str) -> ObjectInfo:
        return self.store.stat(validate_key(key))

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        if ".." in prefix.split("/") or prefix.startswith("/"):
            raise InvalidInput(f"invalid prefix {prefix!r}")
        return list(self.store.list(prefix))

    def health(self) -> Health:
        try:
            next(iter(self.store.list(MANIFEST_PREFIX)), None)
        except LakehouseError as exc:
            return Health(False, len(self.catalog.list()), exc.message)
        return Health(True, len(self.catalog.list()), "ok")
