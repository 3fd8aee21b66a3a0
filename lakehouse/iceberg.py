"""Every committed version of a dataset, published as an Apache Iceberg table version.

Other engines (Spark, Trino, pyiceberg, DuckDB's iceberg reader...) cannot read a dataset by
listing `datasets/<name>/`: that folder also holds objects of running ingests and of replaced
versions. So each catalog commit is also written as Iceberg metadata that points at exactly
the manifest's Parquet objects, with no copy:

    _iceberg/<lower-cased name>/metadata/v<N>.metadata.json   lake version N = metadata version N
    _iceberg/<lower-cased name>/metadata/version-hint.text     N of the newest (Hadoop catalogs)
    _iceberg/<lower-cased name>/metadata/*.avro                manifests and manifest lists

The metadata file is written create-if-absent, like a catalog commit, so two servers that
publish the same version write one file. An append is an Iceberg fast append (a manifest of
the new objects added to the previous ones), anything else an overwrite, a drop removes the
version hint. The objects carry no Parquet field ids, so the table's default name mapping
maps columns by name. A dataset whose types or changes Iceberg cannot hold exactly (unsigned
64-bit, nanosecond timestamps, long to double...) is not published from that version on, and
`v<N>.unavailable.json` says why: never a narrowed copy.
"""

from __future__ import annotations

import io
import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream
from pyiceberg.io.pyarrow import compute_statistics_plan, data_file_statistics_from_parquet_metadata, parquet_path_to_id_mapping
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat, ManifestEntry, ManifestEntryStatus, ManifestFile, write_manifest, write_manifest_list
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.schema import Schema
from pyiceberg.serializers import FromByteStream
from pyiceberg.table import TableProperties
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.name_mapping import create_mapping_from_schema
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import (
    AddSchemaUpdate, AddSnapshotUpdate, RemoveSnapshotsUpdate, SetCurrentSchemaUpdate, SetPropertiesUpdate, SetSnapshotRefUpdate, update_table_metadata,
)
from pyiceberg.types import (
    BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IcebergType, IntegerType, LongType, NestedField, StringType,
    TimestampType, TimestamptzType, TimeType,
)

from lakehouse.cache import ObjectCache
from lakehouse.catalog import MANIFEST_PREFIX, Catalog, Manifest, decode_manifest
from lakehouse.errors import Conflict, LakehouseError, NotFound
from lakehouse.storage import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

__all__ = ["ICEBERG_PREFIX", "Iceberg", "Publication"]

ICEBERG_PREFIX = "_iceberg/"
DATASET_ID = "lakehouse.dataset-id"
_AVRO = "deflate"
_WIDENINGS = {("int", "long"), ("float", "double")}


@dataclass(frozen=True)
class Publication:
    """What other engines can read of a dataset's current version."""

    metadata_location: str | None
    reason: str | None = None
    """Why there is no metadata for this version, when there is none."""

    def to_json(self) -> dict[str, Any]:
        return {"metadata_location": self.metadata_location, "available": self.metadata_location is not None, "reason": self.reason}


class _Unpublishable(Exception):
    pass


class Iceberg:
    """Publishes catalog versions as Iceberg metadata next to the lake, through its store."""

    def __init__(self, store: ObjectStore, cache: ObjectCache, catalog: Catalog) -> None:
        self.store = store
        self.cache = cache
        self.catalog = catalog
        self.io = _StoreIO(store)
        self._known: dict[str, tuple[int, Publication]] = {}
        """The settled answer of `status` for each dataset's latest version seen (its metadata,
        or why it has none): it never changes, so it is read from storage once."""

    # -- where ------------------------------------------------------------------------------

    def _folder(self, name: str) -> str:
        return f"{ICEBERG_PREFIX}{name.lower()}"

    def _metadata_key(self, name: str, version: int) -> str:
        return f"{self._folder(name)}/metadata/v{version}.metadata.json"

    def _unavailable_key(self, name: str, version: int) -> str:
        return f"{self._folder(name)}/metadata/v{version}.unavailable.json"

    def _hint_key(self, name: str) -> str:
        return f"{self._folder(name)}/metadata/version-hint.text"

    # -- reading ----------------------------------------------------------------------------

    def status(self, manifest: Manifest) -> Publication:
        """The metadata of `manifest`'s version, or why there is none."""
        if manifest.deleted:
            return Publication(None, "the dataset was dropped")
        version, known = self._known.get(manifest.name.lower(), (0, None))
        if known is not None and version == manifest.version:
            return known
        key = self._metadata_key(manifest.name, manifest.version)
        try:
            self.store.stat(key)
            return self._settle(manifest, Publication(self.store.uri_of(key)))
        except NotFound:
            pass
        try:
            reason = json.loads(self.store.read_bytes(self._unavailable_key(manifest.name, manifest.version)))["reason"]
        except NotFound:
            return Publication(None, "not published yet")
        return self._settle(manifest, Publication(None, reason))

    def _settle(self, manifest: Manifest, publication: Publication) -> Publication:
        self._known[manifest.name.lower()] = (manifest.version, publication)
        return publication

    def _read(self, name: str, version: int) -> TableMetadata | None:
        try:
            data = self.store.read_bytes(self._metadata_key(name, version))
        except NotFound:
            return None
        return FromByteStream.table_metadata(io.BytesIO(data))

    # -- publishing -------------------------------------------------------------------------

    def publish(self, manifest: Manifest, previous: Manifest | None) -> Publication:
        """Write the metadata of `manifest`'s version (`previous` is the version before it, if
        any); idempotent, and safe against another server publishing the same version.

        When the version before has no metadata yet but continues a published history
        (another server committed it and is still publishing it, or stopped first), it is
        published first, so the table's history stays whole."""
        name, version = manifest.name, manifest.version
        if manifest.deleted:
            self.store.delete(self._hint_key(name))
            return Publication(None, "the dataset was dropped")
        key = self._metadata_key(name, version)
        if previous is None or previous.version != version - 1:
            previous = self.catalog.read_version(name, version - 1) if version > 1 else None
        base = None
        if previous is not None and not previous.deleted and previous.dataset_id == manifest.dataset_id:
            base = self._read(name, previous.version)
            if base is None and self._owed(previous):
                try:
                    self.publish(previous, None)
                except LakehouseError as exc:  # its objects are gone, say: a new history then
                    log.info("cannot publish %s version %d first: %s", name, previous.version, exc.message)
                base = self._read(name, previous.version)
            if base is None:
                appends = manifest.objects[: len(previous.objects)] == previous.objects
                if appends and self._refused(name, previous.version):
                    return self._refuse(manifest, "an earlier version could not be published, and this one adds to it")
                previous = None  # committed before this lake published Iceberg, or an overwrite: a new history
        try:
            metadata = self._build(manifest, base, previous if base is not None else None)
        except _Unpublishable as exc:
            return self._refuse(manifest, str(exc))
        body = metadata.model_dump_json(exclude_none=True).encode()
        try:
            self.store.put_if_absent(key, body)
        except Conflict:
            pass  # another server published this version first: the same content
        self.store.put(self._hint_key(name), io.BytesIO(str(version).encode()))
        return self._settle(manifest, Publication(self.store.uri_of(key)))

    def _owed(self, m: Manifest) -> bool:
        """Whether version `m` continues a published history: the version before it has
        metadata, and `m` was not refused. A dataset committed before this lake published
        Iceberg owes nothing: its history starts where publication started."""
        if self._refused(m.name, m.version):
            return False
        before = self.catalog.read_version(m.name, m.version - 1) if m.version > 1 else None
        if before is None or before.deleted or before.dataset_id != m.dataset_id:
            return False
        return self._read(m.name, before.version) is not None

    def _refused(self, name: str, version: int) -> bool:
        try:
            self.store.stat(self._unavailable_key(name, version))
            return True
        except NotFound:
            return False

    def _refuse(self, manifest: Manifest, reason: str) -> Publication:
        log.warning("dataset %s version %d is not published as Iceberg: %s", manifest.name, manifest.version, reason)
        try:
            self.store.put_if_absent(self._unavailable_key(manifest.name, manifest.version), json.dumps({"reason": reason}).encode())
        except Conflict:
            pass
        self.store.delete(self._hint_key(manifest.name))
        return self._settle(manifest, Publication(None, reason))

    def expire(self, collected: list[str], cutoff: datetime) -> None:
        """Before `gc` deletes the objects `collected`: the snapshots that point at any of them
        are expired from each table's current metadata, the older metadata files holding them
        and the manifests only they used are deleted, and so is every file of a table whose
        dataset was dropped. Files newer than `cutoff` are left alone (a publication under way).

        The current metadata file is rewritten in place for this: it keeps its version number,
        the lake version it publishes, with fewer snapshots.
        """
        doomed = {self.store.uri_of(key) for key in collected}
        tables: dict[str, list[ObjectInfo]] = {}
        for info in self.store.list(ICEBERG_PREFIX):
            tables.setdefault(info.key[len(ICEBERG_PREFIX) :].split("/", 1)[0], []).append(info)
        for folder, files in tables.items():
            live = self.catalog.resolve(folder)
            if live is None:
                for info in files:
                    if info.last_modified <= cutoff:
                        self.store.delete(info.key)
                continue
            if doomed:
                self._expire_table(files, doomed, cutoff)

    def _expire_table(self, files: list[ObjectInfo], doomed: set[str], cutoff: datetime) -> None:
        versions = sorted((int(_version_of(i.key)), i.key) for i in files if _version_of(i.key) is not None)
        if not versions:
            return
        current_key = versions[-1][1]
        current = FromByteStream.table_metadata(io.BytesIO(self.store.read_bytes(current_key)))
        expired = [
            s.snapshot_id for s in current.snapshots
            if s.snapshot_id != current.current_snapshot_id and any(f in doomed for f in self._files_of(s))
        ]
        if not expired:
            return
        kept = update_table_metadata(current, (RemoveSnapshotsUpdate(snapshot_ids=expired),))
        self.store.put(current_key, io.BytesIO(kept.model_dump_json(exclude_none=True).encode()))
        gone = set(expired)
        for _, key in versions[:-1]:
            older = FromByteStream.table_metadata(io.BytesIO(self.store.read_bytes(key)))
            if any(s.snapshot_id in gone for s in older.snapshots):
                self.store.delete(key)
        reachable = {self.store.key_of(s.manifest_list) for s in kept.snapshots}
        for snapshot in kept.snapshots:
            reachable.update(self.store.key_of(m.manifest_path) for m in snapshot.manifests(self.io))
        for info in files:
            if info.key.endswith(".avro") and info.key not in reachable and info.last_modified <= cutoff:
                self.store.delete(info.key)

    def _files_of(self, snapshot: Snapshot) -> set[str]:
        return {e.data_file.file_path for m in snapshot.manifests(self.io) for e in m.fetch_manifest_entry(self.io, discard_deleted=True)}

    def catch_up(self) -> int:
        """Publish, in order, the committed versions after a dataset's last published one (a
        server stopped between a commit and its publication); a dataset never published (one
        older than this code) starts its Iceberg history at its latest version. Returns how
        many versions were published; one dataset's failure does not stop the others'."""
        done = set()
        for info in self.store.list(ICEBERG_PREFIX):
            stem = info.key.rsplit("/", 1)[-1]
            for suffix in (".metadata.json", ".unavailable.json"):
                if stem.startswith("v") and stem.endswith(suffix) and stem[1 : -len(suffix)].isdigit():
                    done.add((info.key[len(ICEBERG_PREFIX) :].split("/", 1)[0], int(stem[1 : -len(suffix)])))
        versions: dict[str, list[tuple[int, str]]] = {}
        for info in self.store.list(MANIFEST_PREFIX):
            folder, _, file = info.key[len(MANIFEST_PREFIX) :].partition("/")
            if file.endswith(".parquet") and file[:-8].isdigit():
                versions.setdefault(folder.lower(), []).append((int(file[:-8]), info.key))
        published = 0
        for folder, found in versions.items():
            found.sort()
            last = max((i for i, (v, _) in enumerate(found) if (folder, v) in done), default=None)
            start = len(found) - 1 if last is None else last + 1
            try:
                previous = decode_manifest(self.store.read_bytes(found[start - 1][1])) if last is not None else None
                for _, key in found[start:]:
                    manifest = decode_manifest(self.store.read_bytes(key))
                    self.publish(manifest, previous)
                    published += 1
                    previous = manifest
            except LakehouseError as exc:
                log.warning("cannot publish dataset %s as Iceberg now: %s", folder, exc.message)
        return published

    # -- building ---------------------------------------------------------------------------

    def _build(self, m: Manifest, base: TableMetadata | None, previous: Manifest | None) -> TableMetadata:
        appended = previous is not None and m.objects[: len(previous.objects)] == previous.objects
        schema = _schema(m.schema, base.schema() if base is not None else None, overwrite=not appended)
        if base is None:
            location = self.store.uri_of(self._folder(m.name))
            metadata = new_table_metadata(schema, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER, location, {DATASET_ID: m.dataset_id})
            metadata = update_table_metadata(metadata, (SetPropertiesUpdate(updates=_mapping(metadata.schema())),))
            if not m.objects:
                return metadata
        else:
            metadata = base
            if not schema.as_struct() == base.schema().as_struct():
                metadata = update_table_metadata(
                    metadata, (AddSchemaUpdate(schema_=schema), SetCurrentSchemaUpdate(schema_id=-1), SetPropertiesUpdate(updates=_mapping(schema)))
                )
        added = m.objects[len(previous.objects) :] if appended and previous is not None else m.objects
        snapshot_id = random.getrandbits(63)
        sequence = metadata.next_sequence_number()
        kept: list[ManifestFile] = []
        parent = metadata.current_snapshot()
        if appended and parent is not None:
            kept = list(parent.manifests(self.io))
        manifests = kept + ([self._manifest(metadata, snapshot_id, [o.key for o in added])] if added else [])
        folder = self._folder(m.name)
        manifest_list = self.store.uri_of(f"{folder}/metadata/snap-{snapshot_id}-{uuid.uuid4()}.avro")
        with write_manifest_list(2, self.io.new_output(manifest_list), snapshot_id, parent.snapshot_id if parent else None, sequence, _AVRO) as writer:
            writer.add_manifests(manifests)
        summary = Summary(
            operation=Operation.APPEND if appended or parent is None else Operation.REPLACE if m.operation == "compact" else Operation.OVERWRITE,
            **{"added-data-files": str(len(added)), "added-records": str(sum(o.row_count for o in added)), "total-records": str(m.row_count),
               "total-data-files": str(len(m.objects)), "lakehouse.version": str(m.version)},
        )
        snapshot = Snapshot(
            snapshot_id=snapshot_id, parent_snapshot_id=parent.snapshot_id if parent else None, sequence_number=sequence,
            timestamp_ms=int(m.updated_at.timestamp() * 1000), manifest_list=manifest_list, summary=summary,
            schema_id=metadata.current_schema_id,
        )
        return update_table_metadata(
            metadata, (AddSnapshotUpdate(snapshot=snapshot), SetSnapshotRefUpdate(ref_name="main", type=SnapshotRefType.BRANCH, snapshot_id=snapshot_id))
        )

    def _manifest(self, metadata: TableMetadata, snapshot_id: int, keys: list[str]) -> ManifestFile:
        schema = metadata.schema()
        location = self.store.uri_of(f"{self.store.key_of(metadata.location)}/metadata/{uuid.uuid4()}-m0.avro")
        with write_manifest(2, UNPARTITIONED_PARTITION_SPEC, schema, self.io.new_output(location), snapshot_id, _AVRO) as writer:
            for key in keys:
                writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=self._data_file(metadata, key)))
        return writer.to_manifest_file()

    def _data_file(self, metadata: TableMetadata, key: str) -> DataFile:
        """An object as an Iceberg data file, with column statistics from its Parquet footer."""
        with self.cache.open(key) as fh:
            footer = pq.read_metadata(fh)
        schema = metadata.schema()
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=footer,
            stats_columns=compute_statistics_plan(schema, metadata.properties),
            parquet_column_mapping=parquet_path_to_id_mapping(schema),
        )
        return DataFile.from_args(
            content=DataFileContent.DATA, file_path=self.store.uri_of(key), file_format=FileFormat.PARQUET,
            partition=statistics.partition(metadata.spec(), schema), file_size_in_bytes=self.store.stat(key).size,
            sort_order_id=None, spec_id=metadata.default_spec_id, equality_ids=None, key_metadata=None,
            **statistics.to_serialized_dict(),
        )


def _version_of(key: str) -> str | None:
    stem = key.rsplit("/", 1)[-1]
    number = stem[1 : -len(".metadata.json")]
    return number if stem.startswith("v") and stem.endswith(".metadata.json") and number.isdigit() else None


def _mapping(schema: Schema) -> dict[str, str]:
    return {TableProperties.DEFAULT_NAME_MAPPING: create_mapping_from_schema(schema).model_dump_json()}


def _schema(arrow: pa.Schema, before: Schema | None, overwrite: bool) -> Schema:
    """The Iceberg schema of `arrow`, keeping the field ids of `before` by column name.

    A column whose type changed keeps its id where Iceberg allows the change (int to long,
    float to double); otherwise an overwrite gives it a new id (no file of the old type is
    read again), and an append cannot be published.
    """
    known = {f.name: f for f in before.fields} if before is not None else {}
    next_id = (before.highest_field_id if before is not None else 0) + 1
    fields = []
    for f in arrow:
        kind = _iceberg_type(f)
        old = known.get(f.name)
        if old is not None and (old.field_type == kind or (str(old.field_type), str(kind)) in _WIDENINGS):
            field_id = old.field_id
        elif old is not None and not overwrite:
            raise _Unpublishable(f"column {f.name!r} changed from {old.field_type} to {kind}, which an Iceberg schema cannot express")
        else:
            field_id, next_id = next_id, next_id + 1
        fields.append(NestedField(field_id=field_id, name=f.name, field_type=kind, required=False))
    return Schema(*fields, schema_id=(before.schema_id + 1) if before is not None else 0)


def _iceberg_type(f: pa.Field) -> IcebergType:
    """The Iceberg type holding every value of an Arrow column exactly, or `_Unpublishable`."""
    t = f.type
    if pa.types.is_boolean(t):
        return BooleanType()
    if pa.types.is_integer(t):
        if t.bit_width == 64 and not pa.types.is_signed_integer(t):
            raise _Unpublishable(f"column {f.name!r} is an unsigned 64-bit integer, which Iceberg has no type for")
        return LongType() if t.bit_width == 64 or (t.bit_width == 32 and not pa.types.is_signed_integer(t)) else IntegerType()
    if pa.types.is_float32(t):
        return FloatType()
    if pa.types.is_float64(t):
        return DoubleType()
    if pa.types.is_decimal(t) and t.precision <= 38:
        return DecimalType(t.precision, t.scale)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return StringType()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return BinaryType()
    if pa.types.is_date32(t):
        return DateType()
    if pa.types.is_timestamp(t) and t.unit == "us":
        return TimestamptzType() if t.tz else TimestampType()
    if pa.types.is_time64(t) and t.unit == "us":
        return TimeType()
    raise _Unpublishable(f"column {f.name!r} is {t}, which Iceberg (format 2) cannot hold exactly")


class _StoreIO(FileIO):
    """Iceberg's file I/O over the lake's own store, so metadata goes where the data is and
    through the same conditional writes and credentials."""

    def __init__(self, store: ObjectStore) -> None:
        super().__init__()
        self.store = store

    def new_input(self, location: str) -> InputFile:
        return _Input(self.store, location)

    def new_output(self, location: str) -> OutputFile:
        return _Output(self.store, location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        self.store.delete(self.store.key_of(location if isinstance(location, str) else location.location))


class _Input(InputFile):
    def __init__(self, store: ObjectStore, location: str) -> None:
        super().__init__(location)
        self._store = store

    def __len__(self) -> int:
        return self._store.stat(self._store.key_of(self.location)).size

    def exists(self) -> bool:
        try:
            len(self)
            return True
        except NotFound:
            return False

    def open(self, seekable: bool = True) -> InputStream:
        return io.BytesIO(self._store.read_bytes(self._store.key_of(self.location)))  # type: ignore[return-value]


class _Output(OutputFile):
    def __init__(self, store: ObjectStore, location: str) -> None:
        super().__init__(location)
        self._store = store

    def __len__(self) -> int:
        return self.to_input_file().__len__()

    def exists(self) -> bool:
        return self.to_input_file().exists()

    def to_input_file(self) -> InputFile:
        return _Input(self._store, self.location)

    def create(self, overwrite: bool = False) -> OutputStream:
        return _Upload(self._store, self._store.key_of(self.location))  # type: ignore[return-value]


class _Upload(io.BytesIO):
    """Bytes gathered in memory (manifests are small) and stored when closed."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        super().__init__()
        self._store = store
        self._key = key

    def close(self) -> None:
        if not self.closed:
            self._store.put(self._key, io.BytesIO(self.getvalue()))
        super().close()
