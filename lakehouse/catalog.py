"""The dataset catalog: manifests in object storage, an index in memory.

Each commit writes a new, numbered manifest object
`_catalog/manifests/<name>/<version>.parquet` with create-if-absent, so of two writers (two
threads or two processes sharing a bucket) that race for the same version exactly one wins;
the loser re-reads the latest manifest and re-checks its rule (schema match, name taken)
before trying the next version. The latest version of a name is its state; a dataset's data
objects become visible only through the manifest that lists them, so a crash before the
commit leaves objects that no manifest references, which `gc` removes after a grace period.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.errors import Conflict, InvalidInput, NotFound
from lakehouse.storage import ObjectStore

MANIFEST_PREFIX = "_catalog/manifests/"
DATASET_PREFIX = "datasets/"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MODES = ("create", "append", "replace", "create_append")
_SCHEMA_KEY = b"lakehouse.schema"
_COMMIT_ATTEMPTS = 20


@dataclass(frozen=True)
class DataObject:
    """One immutable Parquet object of a dataset."""

    key: str
    size: int
    row_count: int


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
    ]
)


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
    )


def _version_key(name: str, version: int) -> str:
    return f"{MANIFEST_PREFIX}{name}/{version:010d}.parquet"


class Catalog:
    """The one writer of catalog commits, and the in-memory index of every dataset's latest manifest."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._latest: dict[str, Manifest] = {}
        self.reload()

    # -- reading ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read every dataset's latest manifest from storage (other writers' commits)."""
        versions: dict[str, int] = {}
        for info in self.store.list(MANIFEST_PREFIX):
            name, _, file = info.key[len(MANIFEST_PREFIX) :].partition("/")
            if file.endswith(".parquet") and file[:-8].isdigit():
                versions[name] = max(versions.get(name, 0), int(file[:-8]))
        fresh: dict[str, Manifest] = {}
        for name, version in versions.items():
            known = self._latest.get(name)
            fresh[name] = known if known and known.version == version else self._read(name, version)
        with self._lock:
            self._latest = fresh

    def _read(self, name: str, version: int) -> Manifest:
        return decode_manifest(self.store.read_bytes(_version_key(name, version)))

    def _reload_name(self, name: str) -> Manifest | None:
        latest = 0
        for info in self.store.list(f"{MANIFEST_PREFIX}{name}/"):
            stem = info.key.rsplit("/", 1)[1][:-8]
            if stem.isdigit():
                latest = max(latest, int(stem))
        manifest = self._read(name, latest) if latest else None
        with self._lock:
            if manifest is None:
                self._latest.pop(name, None)
            else:
                self._latest[name] = manifest
        return manifest

    def get(self, name: str) -> Manifest:
        m = self._latest.get(name)
        if m is None or m.deleted:
            raise NotFound(f"dataset {name!r} not found")
        return m

    def find(self, name: str) -> Manifest | None:
        m = self._latest.get(name)
        return None if m is None or m.deleted else m

    def list(self) -> list[Manifest]:
        return sorted((m for m in self._latest.values() if not m.deleted), key=lambda m: m.name)

    # -- writing ---------------------------------------------------------------------------

    def register(self, name: str, schema: pa.Schema) -> Manifest:
        """Create an empty dataset, or return the existing one if its schema has the same fingerprint."""
        return self.commit(name, schema, (), "register")

    def commit(self, name: str, schema: pa.Schema, objects: Iterable[DataObject], mode: str) -> Manifest:
        """Make `objects` part of dataset `name` according to `mode`, atomically.

        Modes: `create` (the name must be free), `append` (the dataset must exist with the same
        schema), `replace` (the objects become the whole dataset), `create_append`, and
        `register` (create empty, or return the existing dataset of the same schema).
        """
        validate_name(name)
        if any(not f.name for f in schema):
            # DuckDB cannot name a view column "": the view would break every later query.
            raise InvalidInput(f"dataset {name!r}: every column needs a non-empty name")
        if mode not in MODES + ("register",):
            raise InvalidInput(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        objects = tuple(objects)
        fingerprint = schema_fingerprint(schema)
        with self._lock:
            current = self._latest.get(name)
            if current is None or current.deleted:
                self._refuse_case_clash(name)
            for _ in range(_COMMIT_ATTEMPTS):
                live = current if current and not current.deleted else None
                manifest = self._next(name, schema, fingerprint, objects, mode, live, current.version if current else 0)
                if manifest is live:
                    return manifest
                try:
                    self.store.put_if_absent(_version_key(name, manifest.version), encode_manifest(manifest))
                except Conflict:
                    current = self._reload_name(name)
                    continue
                self._latest[name] = manifest
                return manifest
        raise Conflict(f"dataset {name!r} is being changed by other writers; try again")

    def _refuse_case_clash(self, name: str) -> None:
        """SQL folds identifiers' case, so `Sales` and `sales` would be one view: refuse the second."""
        for other in self._latest.values():
            if not other.deleted and other.name != name and other.name.lower() == name.lower():
                raise Conflict(f"dataset {name!r} clashes with existing dataset {other.name!r}: names are case-insensitive in SQL")

    def _next(
        self,
        name: str,
        schema: pa.Schema,
        fingerprint: str,
        objects: tuple[DataObject, ...],
        mode: str,
        live: Manifest | None,
        version: int,
    ) -> Manifest:
        """The manifest a commit would write, or `live` itself when nothing needs writing."""
        now = datetime.now(timezone.utc)
        if live is None:
            if mode == "append":
                raise NotFound(f"dataset {name!r} not found: cannot append")
            return Manifest(uuid.uuid4().hex, name, fingerprint, objects, now, now, sum(o.row_count for o in objects), version + 1, schema)
        if mode == "create":
            raise Conflict(f"dataset {name!r} already exists")
        if mode == "register":
            if live.schema_fingerprint != fingerprint:
                raise Conflict(f"dataset {name!r} already exists with a different schema: {first_difference(live.schema, schema)}")
            return live
        if mode == "replace":
            return replace(live, schema_fingerprint=fingerprint, schema=schema, objects=objects, updated_at=now, row_count=sum(o.row_count for o in objects), version=version + 1)
        if live.schema_fingerprint != fingerprint:
            raise InvalidInput(f"cannot append to {name!r}: {first_difference(live.schema, schema)}")
        merged = live.objects + objects
        return replace(live, objects=merged, updated_at=now, row_count=live.row_count + sum(o.row_count for o in objects), version=version + 1)

    def drop(self, name: str) -> Manifest:
        """Remove a dataset from the catalog; its objects are collected by the next `gc`."""
        with self._lock:
            current = self.get(name)
            for _ in range(_COMMIT_ATTEMPTS):
                tomb = replace(current, objects=(), row_count=0, deleted=True, version=current.version + 1, updated_at=datetime.now(timezone.utc))
                try:
                    self.store.put_if_absent(_version_key(name, tomb.version), encode_manifest(tomb))
                except Conflict:
                    reloaded = self._reload_name(name)
                    if reloaded is None or reloaded.deleted:
                        raise NotFound(f"dataset {name!r} not found") from None
                    current = reloaded
                    continue
                self._latest[name] = tomb
                return current
        raise Conflict(f"dataset {name!r} is being changed by other writers; try again")

    def gc(self, grace_seconds: float) -> list[str]:
        """Delete objects under `datasets/` that no current manifest references and that are
        older than the grace period (so an ingest still writing its objects is left alone)."""
        self.reload()
        with self._lock:
            referenced = {o.key for m in self._latest.values() for o in m.objects}
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=grace_seconds)
        removed = []
        for info in self.store.list(DATASET_PREFIX):
            if info.key not in referenced and info.last_modified <= cutoff:
                self.store.delete(info.key)
                removed.append(info.key)
        return removed


def new_object_key(name: str) -> str:
    """A fresh, never-reused key for a data object of dataset `name`."""
    return f"{DATASET_PREFIX}{name}/{uuid.uuid4().hex}.parquet"
