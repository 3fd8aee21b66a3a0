"""The lake: the one object both edges hold, wiring storage, catalog, ingest and query.

Edges call these methods and translate the results and the core's errors to their protocol;
every rule (names, modes, size bounds, key validation, the SQL sandbox) is enforced here or
below, never in an edge.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import pyarrow as pa

from lakehouse import metrics
from lakehouse.admission import Admission
from lakehouse.auth import ADMIN, Authenticator, Identity
from lakehouse.cache import ObjectCache
from lakehouse.catalog import DATASET_PREFIX, MANIFEST_PREFIX, Catalog, Manifest, committing, validate_name
from lakehouse.cluster import Cluster, Part, Share, place
from lakehouse.compaction import compact
from lakehouse.config import Config
from lakehouse.errors import InvalidInput, LakehouseError, NotFound
from lakehouse.formats import ReadContext, ReadOptions, format_for, read_upload
from lakehouse.iceberg import Iceberg
from lakehouse.ingest import IngestResult, check_mode, write_batches
from lakehouse.query import BATCH_ROWS, QueryEngine, QueryResult
from lakehouse.secrets import FileSecretsProvider, SecretsProvider
from lakehouse.shapes import Scan
from lakehouse.storage import ObjectInfo, ObjectStore, open_store, validate_key
from lakehouse.users import UserStore

log = logging.getLogger(__name__)


READY_WAIT_SECONDS = 0.8
"""How long a readiness check waits for storage: a load balancer's probe must get an answer,
and a storage call that has not answered by then counts as storage being unavailable."""
PROBE_KEY = "_catalog/probe"
RESERVED_PREFIXES = (MANIFEST_PREFIX.split("/")[0], DATASET_PREFIX.rstrip("/"))


@dataclass(frozen=True)
class Health:
    storage: bool
    engine: bool
    datasets: int
    detail: str
    queries_running: int
    catalog_stale_seconds: float | None
    peers: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.storage and self.engine

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "storage": self.storage,
            "query_engine": self.engine,
            "datasets": self.datasets,
            "detail": self.detail,
            "queries_running": self.queries_running,
            "catalog_stale_seconds": None if self.catalog_stale_seconds is None else round(self.catalog_stale_seconds, 1),
            "peers": list(self.peers),
        }


class _StorageProbe:
    """One storage round trip at a time, in a thread of its own, so a caller can stop waiting
    for it: a frozen store must not hang the readiness check for the store's whole timeout."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._result: tuple[bool, str] = (True, "ok")

    def check(self, wait_seconds: float) -> tuple[bool, str]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._probe, name="storage-probe", daemon=True)
                self._thread.start()
            thread = self._thread
        thread.join(wait_seconds)
        if thread.is_alive():
            return False, f"storage did not answer within {wait_seconds:g} s"
        return self._result

    def _probe(self) -> None:
        try:
            self._store.stat(PROBE_KEY)
            self._result = (True, "ok")
        except NotFound:
            self._result = (True, "ok")
        except LakehouseError as exc:
            self._result = (False, exc.message)


def _operation(before: Manifest | None, m: Manifest) -> str:
    if m.deleted:
        return "drop"
    if before is None or before.deleted or before.dataset_id != m.dataset_id:
        return "create"
    if m.objects[: len(before.objects)] == before.objects:
        return "evolve" if m.schema_fingerprint != before.schema_fingerprint else "append"
    return "replace"


def _recorded(name: str, mode: str, who: Identity | None, run: Callable[[], IngestResult]) -> IngestResult:
    """Run an ingest, counting it and logging its one event line whatever the outcome."""
    started = time.monotonic()
    user = who.user if who is not None else None
    try:
        with committing(user):
            result = run()
    except Exception as exc:
        metrics.ingest(user, name, mode, type(exc).__name__, 0, 0, time.monotonic() - started)
        raise
    outcome = "replayed" if result.notes.get("replayed") else "ok"
    metrics.ingest(user, name, mode, outcome, result.rows, result.bytes, time.monotonic() - started)
    return result


class Lake:
    def __init__(self, config: Config, store: ObjectStore) -> None:
        self.config = config
        self.store = store
        self.catalog = Catalog(store, config.catalog.lease_seconds)
        self.cache = ObjectCache(store, config.storage.cache_dir, config.storage.cache_max_bytes)
        self.query_engine = QueryEngine(self.catalog, self.cache, config.query)
        self._probe = _StorageProbe(store)
        self.auth = Authenticator(config.auth, UserStore(config.secrets.path))
        self.iceberg = Iceberg(store, self.cache, self.catalog)
        self.catalog.on_commit.append(self._publish)
        self.cluster: Cluster | None = None
        self._compacting: set[str] = set()
        self._compacting_lock = threading.Lock()
        if config.catalog.compact_after_objects:
            self.catalog.on_commit.append(self._maybe_compact)
        if store.local_path(PROBE_KEY) is None:  # objects are copied into the cache (S3), not read in place
            swept = self.cache.sweep({o.key for m in self.catalog.list() for o in m.objects})
            if swept:
                log.info("removed %d cached objects no dataset references", swept)

    @classmethod
    def open(cls, config: Config, secrets: SecretsProvider | None = None) -> "Lake":
        provider = secrets or FileSecretsProvider(config.secrets.path)
        return cls(config, open_store(config.storage, provider))

    def stop_queries(self) -> None:
        """Interrupt every running query and refuse new ones: the first step of shutdown, so
        that responses still streaming end and the servers can stop."""
        self.query_engine.watchdog.stop_all()

    def join(self, advertise: str | None) -> Cluster:
        """Start following the other servers on this bucket: their commits within a second,
        and (with `advertise`, this server's Flight URI) who is alive to share reads with."""
        self.cluster = Cluster(self.store, self.catalog.changed, self.catalog.reload, advertise)
        self.cluster.start()
        return self.cluster

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
        self.query_engine.close()
        self.store.close()

    # -- ingest ----------------------------------------------------------------------------

    def ingest_arrow(
        self,
        name: str,
        reader: pa.RecordBatchReader | Iterator[pa.RecordBatch] | QueryResult,
        schema: pa.Schema | None = None,
        mode: str = "create",
        idempotency_key: str | None = None,
        evolve: bool = False,
        who: Identity | None = None,
    ) -> IngestResult:
        """Write an Arrow stream as dataset `name` (modes: create, append, replace, create_append).

        A retry with the `idempotency_key` of a commit already made answers that commit and
        adds nothing (`notes.replayed`). `evolve` lets an append change the schema; `who` is
        who asked, for the log."""
        schema = schema if schema is not None else reader.schema  # type: ignore[union-attr]
        return _recorded(
            name, mode, who,
            lambda: write_batches(self.catalog, self.cache, self.config.ingest, name, schema, reader, mode, idempotency_key=idempotency_key, evolve=evolve),
        )

    def ingest(
        self,
        name: str,
        source: BinaryIO,
        media_type: str | None = None,
        filename: str | None = None,
        options: ReadOptions | None = None,
        mode: str = "create",
        idempotency_key: str | None = None,
        evolve: bool = False,
        content_encoding: str | None = None,
        who: Identity | None = None,
    ) -> IngestResult:
        """Stream a file of any format the lake reads (`formats`) into dataset `name`.

        The format comes from `filename`, else `media_type`, else the first bytes; compressed
        bodies are inflated. An append reads the file against the dataset's column types.
        """
        return _recorded(name, mode, who, lambda: self._ingest(name, source, media_type, filename, options, mode, idempotency_key, evolve, content_encoding))

    def _ingest(
        self,
        name: str,
        source: BinaryIO,
        media_type: str | None,
        filename: str | None,
        options: ReadOptions | None,
        mode: str,
        idempotency_key: str | None,
        evolve: bool,
        content_encoding: str | None,
    ) -> IngestResult:
        replay = check_mode(self.catalog, name, mode, idempotency_key)  # before a byte of the body is read
        if replay is not None:
            return replay
        fmt = format_for(media_type, filename)
        existing = self.catalog.resolve(name) if mode in ("append", "create_append") else None
        context = ReadContext(
            sample_rows=self.config.ingest.sample_rows,
            declared={f.name: f.type for f in existing.schema} if existing is not None else {},
            widen_declared=evolve,
            spool=self.cache.spool_file,
        )
        parsed = read_upload(source, fmt, options or ReadOptions(), context, content_encoding, self.config.http.max_upload_bytes)
        result = write_batches(
            self.catalog, self.cache, self.config.ingest, name, parsed.schema, parsed.batches, mode,
            notes=parsed.notes, idempotency_key=idempotency_key, evolve=evolve,
        )
        fallback = result.notes.get("string_fallback")
        if fallback:
            log.info("ingest %s: columns kept as string: %s", name, ", ".join(fallback))
        return result

    def ingest_csv(self, name: str, source: BinaryIO, mode: str = "create", idempotency_key: str | None = None, options: ReadOptions | None = None) -> IngestResult:
        """Stream CSV bytes into dataset `name`, inferring types from the first rows."""
        return self.ingest(name, source, "text/csv", options=options, mode=mode, idempotency_key=idempotency_key)

    # -- catalog ---------------------------------------------------------------------------

    def publish_missing(self) -> None:
        """What a server does as it starts: publish as Iceberg the versions a crash left
        unpublished. Not part of opening the lake: a command line call must not pay for it."""
        try:
            published = self.iceberg.catch_up()
            if published:
                log.info("published %d committed versions as Iceberg metadata", published)
        except LakehouseError as exc:
            log.warning("cannot publish Iceberg metadata now (%s); each commit publishes its own", exc.message)

    def _publish(self, manifest: Manifest, previous: Manifest | None) -> None:
        """After a commit: its Iceberg metadata. A failure here loses nothing: the commit
        stands, and the next start publishes what is missing (`Iceberg.catch_up`)."""
        try:
            self.iceberg.publish(manifest, previous)
        except Exception as exc:  # any failure: the commit is done and must be answered
            log.warning("cannot publish %s version %d as Iceberg now: %s", manifest.name, manifest.version, exc)

    def _maybe_compact(self, manifest: Manifest, previous: Manifest | None) -> None:
        """After a commit: compact the dataset in the background once it has
        `catalog.compact_after_objects` undersized objects, one compaction per dataset at a time."""
        small = self.config.ingest.max_object_bytes // 4
        if manifest.deleted or manifest.operation == "compact":
            return
        if sum(1 for o in manifest.objects if o.size < small) < self.config.catalog.compact_after_objects:
            return
        with self._compacting_lock:
            if manifest.name in self._compacting:
                return
            self._compacting.add(manifest.name)
        threading.Thread(target=self._compact_now, args=(manifest.name,), name=f"compact-{manifest.name}", daemon=True).start()

    def _compact_now(self, name: str) -> None:
        try:
            done = self.compact(name)
            log.info("compacted %s automatically: %d objects (version %d)", name, len(done.objects), done.version)
        except LakehouseError as exc:  # a replace or a drop meanwhile: the next commit tries again
            log.info("automatic compaction of %s stopped: %s", name, exc.message)
        except Exception:
            log.exception("automatic compaction of %s failed", name)
        finally:
            with self._compacting_lock:
                self._compacting.discard(name)

    def manifest_answer(self, manifest: Manifest) -> dict[str, Any]:
        """A dataset's manifest as the edges answer it, with where other engines read it."""
        return {**manifest.to_json(), "iceberg": self.iceberg.status(manifest).to_json()}

    def register(self, name: str, schema: pa.Schema, who: Identity | None = None) -> Manifest:
        with committing(who.user if who is not None else None):
            return self.catalog.register(validate_name(name), schema)

    def manifest(self, name: str) -> Manifest:
        return self.catalog.get(name)

    def datasets(self) -> list[Manifest]:
        return self.catalog.list()

    def compact(self, name: str, order_by: str | None = None, who: Identity | None = None) -> Manifest:
        """Rewrite the dataset's objects into few large ones (sorted by `order_by`, kept as
        its sort key, or by the key it has) as a new version with the same rows."""
        with committing(who.user if who is not None else None):
            return compact(self.catalog, self.cache, self.query_engine, self.config.ingest, name, order_by)

    def manifest_at(self, name: str, version: int) -> Manifest:
        """Version `version` of dataset `name` as it was committed; `NotFound` if there is none."""
        return self.catalog.at(name, version)

    def versions(self, name: str) -> list[dict[str, Any]]:
        """The dataset's versions, oldest first: number, time, operation, rows, objects.

        `retained` says whether `gc` keeps the version readable (`catalog.retain_versions`,
        `retain_seconds`); an expired one may already be gone. The operation is the one each commit recorded (create, append, evolve, replace,
        compact, drop); for versions written before commits recorded it, it is read off the
        version and the one before it.
        """
        history = self.catalog.history(validate_name(name))
        if not history:
            raise NotFound(f"dataset {name!r} not found")
        retention = self.config.catalog
        kept = {m.version for m in self.catalog.retained(name, retention.retain_versions, retention.retain_seconds)}
        answers = []
        for before, m in zip([None, *history], history):
            answers.append(
                {
                    "version": m.version, "operation": m.operation or _operation(before, m), "committed_at": m.updated_at.isoformat(),
                    "row_count": m.row_count, "objects": len(m.objects), "bytes": m.total_bytes, "dataset_id": m.dataset_id,
                    "retained": m.version in kept, "committed_by": m.committed_by,
                }
            )
        return answers

    def drop(self, name: str, who: Identity | None = None) -> Manifest:
        with committing(who.user if who is not None else None):
            return self.catalog.drop(name)

    def refresh(self) -> int:
        """Re-read the catalog from storage now (another writer's commits); returns the dataset count."""
        self.query_engine.sync_views(force=True)
        return len(self.catalog.list())

    def gc(self, grace_seconds: float | None = None) -> list[str]:
        """Delete data objects no manifest references and no running ingest holds (see
        `Catalog.gc`), also from the local cache. `catalog.gc_grace_seconds` is a floor: a
        request may ask for a longer grace, never a shorter one."""
        grace = max(self.config.catalog.gc_grace_seconds, grace_seconds or 0.0)
        retention = self.config.catalog
        removed = self.catalog.gc(grace, self.iceberg.expire, retention.retain_versions, retention.retain_seconds)
        for key in removed:
            self.cache.evict(key)
        return removed

    # -- query -----------------------------------------------------------------------------

    def query(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        gate: Admission | None = None,
        client_gone: Callable[[], bool] | None = None,
        batch_rows: int = BATCH_ROWS,
        who: Identity | None = None,
        tag: str | None = None,
        version: int | None = None,
        as_of: datetime | None = None,
        part: Part | None = None,
    ) -> QueryResult:
        """Run a read-only query; `gate` is the calling edge's cap on concurrent queries,
        `client_gone` tells the watchdog when the client has left (see `QueryEngine.execute`)
        `who` limits the datasets the query may read to the caller's, and `tag` names the
        query for `cancel`. With `version` (or `as_of`, a time: the version current then) the
        one dataset the query reads is read as it was at that version. With `part` (a share
        of a split query, see `split`) it reads only that share's objects."""
        if part is not None:
            pinned: tuple[Manifest, ...] = (self._part(part),)
        else:
            pinned = self._pinned(sql, who, version, as_of) if version is not None or as_of is not None else ()
        return self.query_engine.execute(sql, params, batch_rows, gate, client_gone, who, tag, pinned)

    def _pinned(self, sql: str, who: Identity | None, version: int | None, as_of: datetime | None) -> tuple[Manifest, ...]:
        names = sorted(self.sources(sql, who))
        if len(names) != 1:
            read = ", ".join(names) or "no dataset"
            raise InvalidInput(f"a version applies to a query that reads exactly one dataset; this one reads {read}")
        live = self.catalog.resolve(names[0])
        if live is None:
            raise NotFound(f"dataset {names[0]!r} not found")
        return (self.manifest_then(live.name, version, as_of),)

    def shares(self, manifest: Manifest) -> list[Share]:
        """How a read of the whole version is split: among the live peers when there are
        several (`cluster.place`), else in groups this server serves."""
        peers = self.cluster.peers() if self.cluster is not None else []
        return place(manifest.objects, peers, self.config.ingest.max_object_bytes)

    def split(self, sql: str, who: Identity | None = None) -> tuple[Manifest, list[Share]] | None:
        """The shares a query's result can be read in, from several servers at once: for a
        scan, filter or projection of one dataset (`shapes.Scan`) with objects to spread over
        live peers; None for any other query (it is answered whole)."""
        if self.cluster is None or len(self.cluster.peers()) < 2:
            return None
        shape = self.query_engine.shape(sql, who)
        if not isinstance(shape, Scan):
            return None
        m = self.catalog.resolve(shape.table)
        if m is None or len(m.objects) < 2:
            return None
        shares = self.shares(m)
        return (m, shares) if len(shares) > 1 else None

    def _part(self, part: Part) -> Manifest:
        """The version a share of a split query reads: its dataset's version, cut to its objects.

        The ticket may come from a server that committed the dataset a moment ago; this one
        re-reads the catalog rather than refuse a dataset it has not seen yet."""
        known = self.catalog.resolve(part.dataset)
        if known is None or known.version < part.version:
            self.query_engine.sync_views(force=True)
        m = self.catalog.at(part.dataset, part.version)
        keys = set(part.keys)
        objects = tuple(o for o in m.objects if o.key in keys)
        if len(objects) != len(keys):
            raise InvalidInput(f"invalid ticket: its objects are not all part of version {part.version} of {part.dataset!r}")
        return replace(m, objects=objects)

    def manifest_then(self, name: str, version: int | None = None, as_of: datetime | None = None) -> Manifest:
        """The dataset's manifest at `version`, or the version current at `as_of`, or now."""
        return self.catalog.at(name, version, as_of)

    def query_each(
        self,
        sql: str,
        rows: Sequence[Sequence[Any]],
        gate: Admission | None = None,
        client_gone: Callable[[], bool] | None = None,
        who: Identity | None = None,
        tag: str | None = None,
        part: Part | None = None,
    ) -> QueryResult:
        """A query run once per row of `?` values (once without rows), as one result: the first
        run's schema, then every run's batches; each run is a `query` of its own (`part`: a
        share of a split query, which has no values)."""
        first = self.query(sql, rows[0] if rows else None, gate, client_gone, who=who, tag=tag, part=part)

        def batches() -> Iterator[pa.RecordBatch]:
            with first:
                yield from first
            for row in rows[1:]:
                with self.query(sql, row, gate, client_gone, who=who, tag=tag) as result:
                    yield from result

        return QueryResult(first.schema, batches())

    def cancel(self, tag: str, who: Identity) -> int:
        """Stop the running queries tagged `tag` that `who` started (an admin: anyone's)."""
        return self.query_engine.watchdog.cancel(tag, None if who.allows(ADMIN) else who.user)

    def admission(self, edge: str, limit: int) -> Admission:
        """A cap of `limit` concurrent queries for one edge."""
        return Admission(edge, limit)

    def query_schema(self, sql: str, params: Sequence[Any] | None = None, who: Identity | None = None) -> pa.Schema:
        return self.query_engine.schema(sql, params, who)

    def sources(self, sql: str, who: Identity | None = None) -> frozenset[str]:
        """The datasets a read query reads."""
        return self.query_engine.sources(sql, who)

    def describe(self, sql: str, who: Identity | None = None) -> tuple[pa.Schema | None, pa.Schema]:
        """A query's result schema (None while its placeholders decide it) and its placeholders' types."""
        return self.query_engine.describe(sql, who)

    # -- raw objects -----------------------------------------------------------------------

    def put_object(self, key: str, source: BinaryIO, length: int = -1) -> ObjectInfo:
        """Store a user object. The lake's own keys are off limits: `datasets/` holds immutable
        objects that manifests reference, `_catalog/` the manifests and leases, and a first
        segment starting with `_` or `.` is kept for what the lake adds later (and for the
        local backend's temporary files), so no upload can shadow, replace or block them."""
        validate_key(key)
        first = key.split("/", 1)[0]
        if first in RESERVED_PREFIXES or first.startswith(("_", ".")):
            raise InvalidInput(
                f"invalid object key {key[:100]!r}: {first}/ is reserved for the lake's own objects",
                {"reserved": [p + "/" for p in RESERVED_PREFIXES] + ["_*/", ".*/"]},
            )
        return self.store.put(key, source, length)

    def open_object(self, key: str) -> BinaryIO:
        return self.store.open(validate_key(key))

    def stat_object(self, key: str) -> ObjectInfo:
        return self.store.stat(validate_key(key))

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        if ".." in prefix.split("/") or prefix.startswith("/"):
            raise InvalidInput(f"invalid prefix {prefix!r}")
        return list(self.store.list(prefix))

    def health(self, wait_seconds: float = READY_WAIT_SECONDS) -> Health:
        """Whether storage answers (within `wait_seconds`) and the query engine runs a query."""
        storage, detail = self._probe.check(wait_seconds)
        try:
            self.query_engine.ping()
            engine = True
        except LakehouseError as exc:
            engine, detail = False, f"query engine failed: {exc.message}" if storage else detail
        peers = tuple(self.cluster.peers()) if self.cluster is not None else ()
        return Health(storage, engine, len(self.catalog.list()), detail, self.query_engine.watchdog.running, self.query_engine.stale_seconds, peers)

    @property
    def catalog_stale_seconds(self) -> float | None:
        """Set while queries are answered from the last catalog read because storage is down."""
        return self.query_engine.stale_seconds
