"""The dataset catalog: manifests in object storage, an index in memory.

Each commit writes a new, numbered manifest object
`_catalog/manifests/<lower-cased name>/<version>.parquet` with create-if-absent, so of two
writers (two threads or two processes sharing a bucket) that race for the same version
exactly one wins; the loser re-reads the latest manifest and re-checks its rule (schema
match, name taken, idempotency key already committed) before trying the next version. The
latest version of a name is its state; a dataset's data objects become visible only through
the manifest that lists them, so a crash before the commit leaves objects that no manifest
references, which `gc` removes once the writer's lease has expired (see `leases.py`).
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import io
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.errors import Busy, Conflict, InvalidInput, LakehouseError, NotFound
from lakehouse.evolution import merge
from lakehouse.leases import Leases, lease_of
from lakehouse.storage import ObjectStore

log = logging.getLogger(__name__)

MANIFEST_PREFIX = "_catalog/manifests/"
HEAD_KEY = "_catalog/head"
"""Rewritten after every commit, so other servers learn of it from one small request (`changed`)."""
DATASET_PREFIX = "datasets/"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MODES = ("create", "append", "replace", "create_append")
_SCHEMA_KEY = b"lakehouse.schema"
_COMMIT_ATTEMPTS = 20
IDEMPOTENCY_WINDOW = 1000
MAX_IDEMPOTENCY_KEY = 200
VERSION_CACHE_SIZE = 256


@dataclass(frozen=True)
class DataObject:
    """One immutable Parquet object of a dataset."""

    key: str
    size: int
    row_count: int


@dataclass(frozen=True)
class KeyedCommit:
    """A commit made with a client's idempotency key: enough to answer a retry of it."""

    key: str
    version: int
    rows: int


@dataclass(frozen=True)
class Manifest:
    dataset_id: str
    name: str
    schema_fingerprint: str
    objects: tuple[DataObject, ...]
    created_at: datetime
    updated_at: datetime
    row_count: int
    version: int
    schema: pa.Schema = field(compare=False)
    deleted: bool = False
    keyed: tuple[KeyedCommit, ...] = ()
    """The latest `IDEMPOTENCY_WINDOW` commits made with an idempotency key, oldest first."""
    evolved: bool = False
    """The schema evolved since the objects were first written: objects may have older
    schemas (fewer columns, narrower types), read by column name through this one."""
    operation: str = ""
    """What made this version: create, append, evolve, replace, compact, drop ("" in
    manifests written before it was recorded: `Lake.versions` works it out)."""
    sort_key: str | None = None
    """The column compaction orders rows by, kept for the next compactions."""
    committed_by: str | None = None
    """The user whose request made this version (see `committing`); None when unknown."""

    def commit_of(self, key: str) -> KeyedCommit | None:
        """The commit made with idempotency key `key`, if it is among the recent ones."""
        return next((c for c in reversed(self.keyed) if c.key == key), None)

    @property
    def etag(self) -> str:
        """Changes with every commit of the dataset, and between a dropped and a re-created one."""
        return f"{self.dataset_id[:8]}-{self.version}"

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    def to_json(self) -> dict[str, object]:
        return {
            "dataset_id": self.dataset_id,
            "name": self.name,
            "schema_fingerprint": self.schema_fingerprint,
            "objects": [{"key": o.key, "size": o.size, "row_count": o.row_count} for o in self.objects],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "row_count": self.row_count,
            "version": self.version,
            "etag": self.etag,
            "total_bytes": self.total_bytes,
            "schema": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in self.schema],
        }


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"invalid dataset name {name!r}: must match [A-Za-z_][A-Za-z0-9_]{{0,127}}")
    return name


def schema_fingerprint(schema: pa.Schema) -> str:
    """Names and types, in order; nullability and metadata are left out because CSV and Arrow
    clients describe the same columns with different nullability."""
    canon = json.dumps([[f.name, str(f.type)] for f in schema])
    return hashlib.sha256(canon.encode()).hexdigest()[:32]


def first_difference(expected: pa.Schema, got: pa.Schema) -> str:
    """A sentence naming the first column where two schemas differ."""
    for i in range(max(len(expected), len(got))):
        if i >= len(expected):
            return f"unexpected extra column {got[i].name!r} ({got[i].type})"
        if i >= len(got):
            return f"missing column {expected[i].name!r} ({expected[i].type})"
        a, b = expected[i], got[i]
        if a.name != b.name:
            return f"column {i + 1} is named {b.name!r}, expected {a.name!r}"
        if a.type != b.type:
            return f"column {a.name!r} has type {b.type}, expected {a.type}"
    return "schemas are equal"


_MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("dataset_id", pa.string(), False),
        pa.field("name", pa.string(), False),
        pa.field("schema_fingerprint", pa.string(), False),
        pa.field(
            "objects",
            pa.list_(pa.struct([pa.field("key", pa.string(), False), pa.field("size", pa.int64(), False), pa.field("row_count", pa.int64(), False)])),
            False,
        ),
        pa.field("created_at", pa.timestamp("us", "UTC"), False),
        pa.field("updated_at", pa.timestamp("us", "UTC"), False),
        pa.field("row_count", pa.int64(), False),
        pa.field("version", pa.int64(), False),
        pa.field("deleted", pa.bool_(), False),
        pa.field(
            "keyed",
            pa.list_(pa.struct([pa.field("key", pa.string(), False), pa.field("version", pa.int64(), False), pa.field("rows", pa.int64(), False)])),
            False,
        ),
        pa.field("evolved", pa.bool_(), False),
        pa.field("operation", pa.string(), False),
        pa.field("sort_key", pa.string(), True),
        pa.field("committed_by", pa.string(), True),
    ]
)


_COMMITTER: contextvars.ContextVar[str | None] = contextvars.ContextVar("committer", default=None)


@contextlib.contextmanager
def committing(user: str | None) -> Iterator[None]:
    """Commits made inside record `user` as who made them: the edges know the caller, the
    catalog's writes happen several calls below them. None keeps what an outer call set."""
    if user is None:
        yield
        return
    token = _COMMITTER.set(user)
    try:
        yield
    finally:
        _COMMITTER.reset(token)


def encode_manifest(m: Manifest) -> bytes:
    row = {
        "dataset_id": [m.dataset_id],
        "name": [m.name],
        "schema_fingerprint": [m.schema_fingerprint],
        "objects": [[{"key": o.key, "size": o.size, "row_count": o.row_count} for o in m.objects]],
        "created_at": [m.created_at],
        "updated_at": [m.updated_at],
        "row_count": [m.row_count],
        "version": [m.version],
        "deleted": [m.deleted],
        "keyed": [[{"key": c.key, "version": c.version, "rows": c.rows} for c in m.keyed]],
        "evolved": [m.evolved],
        "operation": [m.operation],
        "sort_key": [m.sort_key],
        "committed_by": [m.committed_by],
    }
    schema_blob = base64.b64encode(m.schema.serialize().to_pybytes())
    table = pa.table(row, schema=_MANIFEST_SCHEMA.with_metadata({_SCHEMA_KEY: schema_blob}))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def decode_manifest(data: bytes) -> Manifest:
    table = pq.read_table(io.BytesIO(data))
    row = table.to_pylist()[0]
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(table.schema.metadata[_SCHEMA_KEY])))
    return Manifest(
        dataset_id=row["dataset_id"],
        name=row["name"],
        schema_fingerprint=row["schema_fingerprint"],
        objects=tuple(DataObject(o["key"], o["size"], o["row_count"]) for o in row["objects"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        row_count=row["row_count"],
        version=row["version"],
        schema=schema,
        deleted=row["deleted"],
        keyed=tuple(KeyedCommit(c["key"], c["version"], c["rows"]) for c in row.get("keyed") or ()),
        evolved=bool(row.get("evolved")),
        operation=row.get("operation") or "",
        sort_key=row.get("sort_key"),
        committed_by=row.get("committed_by"),
    )


def _version_key(name: str, version: int) -> str:
    """Versions live under the lower-cased name: SQL folds identifiers' case, so `Sales` and
    `sales` are one dataset, and sharing one sequence of versions makes the bucket's
    create-if-absent decide between two servers creating them at once."""
    return f"{MANIFEST_PREFIX}{name.lower()}/{version:010d}.parquet"


class Replayed(Exception):
    """Raised by `Catalog.commit` when its idempotency key was already committed: the caller
    answers the earlier commit (`commit`, in `manifest`) and discards what it wrote."""

    def __init__(self, commit: KeyedCommit, manifest: Manifest) -> None:
        super().__init__(f"idempotency key {commit.key!r} was committed as version {commit.version}")
        self.commit = commit
        self.manifest = manifest


class Catalog:
    """The one writer of catalog commits, and the in-memory index of every dataset's latest
    manifest, keyed by the lower-cased name."""

    def __init__(self, store: ObjectStore, lease_seconds: float = 60.0) -> None:
        self.store = store
        self.leases = Leases(store, lease_seconds)
        self._lock = threading.RLock()
        self._latest: dict[str, Manifest] = {}
        self._head = ""  # the head object's etag when this process last read or wrote it
        self._versions: dict[tuple[str, int], Manifest] = {}  # committed versions are immutable
        self.on_commit: list[Callable[[Manifest, Manifest | None], None]] = []
        """Called after each commit this process makes, with the new version and the one
        before it (None for a new dataset); what they raise is theirs (see `_committed`)."""
        self.reload()

    # -- reading ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read every dataset's latest manifest from storage (other writers' commits)."""
        self.changed()  # first: a commit after this look changes the head again
        latest: dict[str, tuple[int, str]] = {}  # folded name -> (version, key)
        for info in self.store.list(MANIFEST_PREFIX):
            folder, _, file = info.key[len(MANIFEST_PREFIX) :].partition("/")
            if file.endswith(".parquet") and file[:-8].isdigit():
                # Folders written before names were folded keep their case; the version decides.
                version = int(file[:-8])
                if version > latest.get(folder.lower(), (0, ""))[0]:
                    latest[folder.lower()] = (version, info.key)
        fresh: dict[str, Manifest] = {}
        for folded, (version, key) in latest.items():
            known = self._latest.get(folded)
            fresh[folded] = known if known and known.version >= version else decode_manifest(self.store.read_bytes(key))
        with self._lock:
            # A commit made while the listing ran has a higher version than the listing saw: keep it.
            for folded, m in self._latest.items():
                if folded not in fresh or fresh[folded].version < m.version:
                    fresh[folded] = m
            self._latest = fresh

    def changed(self) -> bool:
        """Whether any server committed since this process last looked (a HEAD of the head
        object); call `reload` when it says so."""
        try:
            etag = self.store.stat(HEAD_KEY).etag
        except NotFound:
            etag = ""
        if etag == self._head:
            return False
        self._head = etag
        return True

    def _announce(self, m: Manifest) -> None:
        """Rewrite the head object after a commit. A failure costs only speed: other servers
        then see the commit at their next full re-read (`query.view_ttl_seconds`)."""
        body = json.dumps({"dataset": m.name, "version": m.version, "nonce": uuid.uuid4().hex}).encode()
        try:
            # Its etag is not taken as seen: another server's head written just before would be
            # hidden by it, so this process re-reads the catalog after its own commits too.
            self.store.put(HEAD_KEY, io.BytesIO(body), len(body))
        except LakehouseError as exc:
            log.warning("cannot announce %s version %d to other servers now: %s", m.name, m.version, exc.message)

    def _reload_name(self, name: str) -> Manifest | None:
        latest = 0
        for info in self.store.list(f"{MANIFEST_PREFIX}{name.lower()}/"):
            stem = info.key.rsplit("/", 1)[1][:-8]
            if stem.isdigit():
                latest = max(latest, int(stem))
        manifest = decode_manifest(self.store.read_bytes(_version_key(name, latest))) if latest else None
        with self._lock:
            if manifest is None:
                self._latest.pop(name.lower(), None)
            else:
                self._latest[name.lower()] = manifest
        return manifest

    def history(self, name: str) -> list[Manifest]:
        """Every committed version of `name` still stored, oldest first (drops included)."""
        folder = f"{MANIFEST_PREFIX}{name.lower()}/"
        keys = sorted(i.key for i in self.store.list(folder) if i.key[len(folder) :].removesuffix(".parquet").isdigit())
        return [decode_manifest(self.store.read_bytes(key)) for key in keys]

    def at(self, name: str, version: int | None = None, as_of: datetime | None = None) -> Manifest:
        """The dataset's manifest at `version`, or the version current at `as_of`, or now.

        Raises `NotFound` for a version that was never committed or a time the dataset did
        not exist at."""
        if version is not None and as_of is not None:
            raise InvalidInput("give a version or an as_of time, not both")
        if version is None and as_of is None:
            return self.get(name)
        if version is not None:
            manifest = self.read_version(validate_name(name), version)
            if manifest is None or manifest.deleted or manifest.name.lower() != name.lower():
                raise NotFound(f"dataset {name!r} has no version {version}")
            return manifest
        assert as_of is not None
        moment = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=timezone.utc)
        then = [m for m in self.history(validate_name(name)) if m.updated_at <= moment]
        if not then or then[-1].deleted:
            raise NotFound(f"dataset {name!r} did not exist at {moment.isoformat()}")
        return then[-1]

    def read_version(self, name: str, version: int) -> Manifest | None:
        """Version `version` of dataset `name` as committed, from storage; None if absent."""
        known = self._versions.get((name.lower(), version))
        if known is not None:
            return known
        try:
            m = decode_manifest(self.store.read_bytes(_version_key(name, version)))
        except NotFound:
            return None
        if len(self._versions) >= VERSION_CACHE_SIZE:
            self._versions.clear()
        self._versions[(name.lower(), version)] = m
        return m

    def get(self, name: str) -> Manifest:
        m = self.find(name)
        if m is None:
            raise NotFound(f"dataset {name!r} not found")
        return m

    def find(self, name: str) -> Manifest | None:
        """The live dataset of exactly this name (the spelling it was created with)."""
        m = self._latest.get(name.lower())
        return None if m is None or m.deleted or m.name != name else m

    def resolve(self, name: str) -> Manifest | None:
        """The live dataset `name` refers to in SQL, where identifiers match whatever their case."""
        m = self._latest.get(name.lower())
        return None if m is None or m.deleted else m

    def list(self) -> list[Manifest]:
        return sorted((m for m in self._latest.values() if not m.deleted), key=lambda m: m.name)

    # -- writing ---------------------------------------------------------------------------

    def register(self, name: str, schema: pa.Schema) -> Manifest:
        """Create an empty dataset, or return the existing one if its schema has the same fingerprint."""
        return self.commit(name, schema, (), "register")

    def commit(
        self,
        name: str,
        schema: pa.Schema,
        objects: Iterable[DataObject],
        mode: str,
        idempotency_key: str | None = None,
        evolve: bool = False,
        replaces: frozenset[str] = frozenset(),
        sort_key: str | None = None,
    ) -> Manifest:
        """Make `objects` part of dataset `name` according to `mode`, atomically.

        Modes: `create` (the name must be free), `append` (the dataset must exist with the same
        schema), `replace` (the objects become the whole dataset), `create_append`, and
        `register` (create empty, or return the existing dataset of the same schema). With
        `evolve`, an append of another schema evolves the dataset's (`evolution.merge`).
        `compact` puts `objects` in place of the objects `replaces`, keeping whatever was
        appended meanwhile (see `_compacted`).

        The objects must exist: one deleted meanwhile (by `gc`, after its writer's lease was
        lost) fails the commit instead of publishing a dataset that cannot be read. With an
        `idempotency_key` that the dataset's recent commits already hold, nothing is written
        and `Replayed` is raised; the check is part of the atomic commit, so of two retries
        racing on two servers exactly one commits.
        """
        validate_name(name)
        if any(not f.name for f in schema):
            # DuckDB cannot name a view column "": the view would break every later query.
            raise InvalidInput(f"dataset {name!r}: every column needs a non-empty name")
        if mode not in MODES + ("register", "compact"):
            raise InvalidInput(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        objects = tuple(objects)
        fingerprint = schema_fingerprint(schema)
        self._verify(name, objects)
        with self._lock:
            current = self._latest.get(name.lower())
            for _ in range(_COMMIT_ATTEMPTS):
                live = current if current and not current.deleted else None
                if live is not None and live.name != name:
                    raise Conflict(f"dataset {name!r} clashes with existing dataset {live.name!r}: names are case-insensitive in SQL")
                if live is not None and idempotency_key is not None and (done := live.commit_of(idempotency_key)) is not None:
                    raise Replayed(done, live)
                manifest = self._next(name, schema, fingerprint, objects, mode, live, current.version if current else 0, evolve, replaces, sort_key)
                if manifest is live:
                    return manifest
                manifest = replace(manifest, committed_by=_COMMITTER.get())
                if idempotency_key is not None:
                    keyed = (manifest.keyed + (KeyedCommit(idempotency_key, manifest.version, sum(o.row_count for o in objects)),))[-IDEMPOTENCY_WINDOW:]
                    manifest = replace(manifest, keyed=keyed)
                try:
                    self.store.put_if_absent(_version_key(name, manifest.version), encode_manifest(manifest))
                except Conflict:
                    current = self._reload_name(name)
                    continue
                self._latest[name.lower()] = manifest
                self._announce(manifest)
                self._committed(manifest, current if current is not None and current.version == manifest.version - 1 else None)
                return manifest
        raise Busy(f"dataset {name!r} is being changed by other writers; try again", retry_after=1.0)

    def _verify(self, name: str, objects: tuple[DataObject, ...]) -> None:
        for obj in objects:
            try:
                self.store.stat(obj.key)
            except NotFound:
                raise Conflict(f"dataset {name!r}: object {obj.key} of this ingest no longer exists (collected while the ingest ran); nothing was committed, send it again") from None

    def _next(
        self,
        name: str,
        schema: pa.Schema,
        fingerprint: str,
        objects: tuple[DataObject, ...],
        mode: str,
        live: Manifest | None,
        version: int,
        evolve: bool = False,
        replaces: frozenset[str] = frozenset(),
        sort_key: str | None = None,
    ) -> Manifest:
        """The manifest a commit would write, or `live` itself when nothing needs writing."""
        now = datetime.now(timezone.utc)
        if live is None:
            if mode in ("append", "compact"):
                raise NotFound(f"dataset {name!r} not found: cannot {mode}")
            return Manifest(uuid.uuid4().hex, name, fingerprint, objects, now, now, sum(o.row_count for o in objects), version + 1, schema, operation="create")
        if mode == "create":
            raise Conflict(f"dataset {name!r} already exists")
        if mode == "register":
            if live.schema_fingerprint != fingerprint:
                raise Conflict(f"dataset {name!r} already exists with a different schema: {first_difference(live.schema, schema)}")
            return live
        if mode == "replace":
            return replace(
                live, schema_fingerprint=fingerprint, schema=schema, objects=objects, updated_at=now,
                row_count=sum(o.row_count for o in objects), version=version + 1, evolved=False, operation="replace",
            )
        if mode == "compact":
            return _compacted(live, objects, replaces, sort_key, now, version + 1)
        evolved = live.evolved
        if live.schema_fingerprint != fingerprint:
            if not evolve:
                raise InvalidInput(f"cannot append to {name!r}: {first_difference(live.schema, schema)}")
            schema = merge(live.schema, schema)
            fingerprint = schema_fingerprint(schema)
            evolved = evolved or fingerprint != live.schema_fingerprint
        merged = live.objects + objects
        return replace(
            live, objects=merged, updated_at=now, row_count=live.row_count + sum(o.row_count for o in objects), version=version + 1,
            schema=schema if evolved else live.schema, schema_fingerprint=fingerprint if evolved else live.schema_fingerprint, evolved=evolved,
            operation="evolve" if fingerprint != live.schema_fingerprint else "append",
        )

    def _committed(self, manifest: Manifest, previous: Manifest | None) -> None:
        """Tell the observers; the commit stands whatever they do (they log their failures)."""
        for observer in self.on_commit:
            observer(manifest, previous)

    def drop(self, name: str) -> Manifest:
        """Remove a dataset from the catalog; its objects are collected by the next `gc`."""
        with self._lock:
            current = self.get(name)
            for _ in range(_COMMIT_ATTEMPTS):
                tomb = replace(
                    current, objects=(), row_count=0, deleted=True, version=current.version + 1, updated_at=datetime.now(timezone.utc),
                    operation="drop", committed_by=_COMMITTER.get(),
                )
                try:
                    self.store.put_if_absent(_version_key(name, tomb.version), encode_manifest(tomb))
                except Conflict:
                    reloaded = self._reload_name(name)
                    if reloaded is None or reloaded.deleted or reloaded.name != name:
                        raise NotFound(f"dataset {name!r} not found") from None
                    current = reloaded
                    continue
                self._latest[name.lower()] = tomb
                self._announce(tomb)
                self._committed(tomb, current)
                return current
        raise Busy(f"dataset {name!r} is being changed by other writers; try again", retry_after=1.0)

    def retained(self, name: str, retain_versions: int = 1, retain_seconds: float = 0.0) -> list[Manifest]:
        """The versions of a live dataset that `gc` keeps readable, newest first: its latest
        `retain_versions`, and any that was still current `retain_seconds` ago."""
        latest = self.resolve(name)
        if latest is None:
            return []
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=retain_seconds)
        kept = [latest]
        successor = latest
        for version in range(latest.version - 1, 0, -1):
            if len(kept) >= retain_versions and (retain_seconds <= 0 or successor.updated_at < cutoff):
                break
            m = self.read_version(latest.name, version)
            if m is None or m.deleted or m.dataset_id != latest.dataset_id:
                break
            kept.append(m)
            successor = m
        return kept

    def gc(
        self,
        grace_seconds: float,
        before_delete: Callable[[list[str], datetime], None] | None = None,
        retain_versions: int = 1,
        retain_seconds: float = 0.0,
    ) -> list[str]:
        """Delete objects under `datasets/` that no retained version references (`retained`),
        that no live lease protects and that are older than the grace period. `before_delete`
        is told the keys and the cutoff time first (what else points at them lets go of them:
        Iceberg).

        The order of the reads matters: objects first, then leases, then manifests. An object
        listed in the first step was written under a lease taken before it; if that lease is
        gone by the second step, its ingest ended, and if it committed, its manifest was
        written before the lease was released, so the third step sees it.
        """
        objects = list(self.store.list(DATASET_PREFIX))
        live, expired = self.leases.survey()
        self.reload()
        with self._lock:
            latest = list(self._latest.values())
        referenced = {o.key for m in latest for o in m.objects}
        if retain_versions > 1 or retain_seconds > 0:
            for m in latest:
                referenced.update(o.key for kept in self.retained(m.name, retain_versions, retain_seconds) for o in kept.objects)
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=grace_seconds)
        doomed = [i.key for i in objects if i.key not in referenced and lease_of(i.key) not in live and i.last_modified <= cutoff]
        if before_delete is not None:
            before_delete(doomed, cutoff)
        removed = []
        for key in doomed:
            self.store.delete(key)
            removed.append(key)
        for key in expired:
            self.store.delete(key)
        return removed


def _compacted(live: Manifest, objects: tuple[DataObject, ...], replaces: frozenset[str], sort_key: str | None, now: datetime, version: int) -> Manifest:
    """`live` with `objects` in place of the objects in `replaces`. What was appended while the
    compaction ran stays, after them; if any replaced object left the dataset meanwhile (a
    replace, another compaction), the rewrite no longer matches and is refused."""
    keys = {o.key for o in live.objects}
    if not replaces <= keys:
        raise Conflict(f"dataset {live.name!r} changed while it was compacted (objects were replaced); nothing was committed, compact again")
    kept = tuple(o for o in live.objects if o.key not in replaces)
    merged = objects + kept
    return replace(
        live, objects=merged, updated_at=now, row_count=sum(o.row_count for o in merged), version=version, operation="compact",
        sort_key=sort_key if sort_key is not None else live.sort_key,
    )


def new_object_key(name: str, lease: str) -> str:
    """A fresh, never-reused key for a data object of dataset `name`, written under `lease`."""
    return f"{DATASET_PREFIX}{name}/{lease}-{uuid.uuid4().hex[:16]}.parquet"
