"""Datasets as plain Flight paths: `for_path("<name>")` to list, describe, read and write.

A dataset's FlightInfo has one endpoint per group of its Parquet objects (an object as big
as `ingest.max_object_bytes` is a group of its own, smaller ones are grouped up to that
size), so a client can fetch the groups in parallel; with several servers on the bucket each
endpoint lists the server that owns its objects, then a fallback (`lakehouse/cluster.py`).
The tickets name the objects of the manifest version described, and objects are immutable,
so a fetch reads exactly that version even if the dataset changes meanwhile (until `gc`
removes objects that no manifest references any more).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq

from flight import tickets
from flight.batches import bounded_batches
from flight.errors import stream_errors
from lakehouse.cache import ObjectFile
from lakehouse.catalog import Manifest
from lakehouse.errors import InvalidInput, NotFound
from lakehouse.ingest import IngestResult
from lakehouse.lake import Lake

BATCH_ROWS = 65_536


def dataset_info(lake: Lake, manifest: Manifest) -> flight.FlightInfo:
    endpoints = [
        flight.FlightEndpoint(tickets.encode(tickets.ObjectsTicket(manifest.name, tuple(o.key for o in share.objects))), list(share.locations))
        for share in lake.shares(manifest)
    ]
    descriptor = flight.FlightDescriptor.for_path(manifest.name)
    return flight.FlightInfo(manifest.schema, descriptor, endpoints, manifest.row_count, manifest.total_bytes)


EVOLVE_OPTION = "evolve"


def read_target(descriptor: flight.FlightDescriptor) -> tuple[str, int | None, datetime | None]:
    """The dataset, and the version to read, of `for_path("<name>"[, "version=N" | "as_of=<ISO time>"])`."""
    parts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in descriptor.path]
    if len(parts) == 1:
        return parts[0], None, None
    option, _, value = parts[1].partition("=") if len(parts) == 2 else ("", "", "")
    try:
        if option == "version" and value.isdigit():
            return parts[0], int(value), None
        if option == "as_of" and value:
            return parts[0], None, datetime.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidInput('read a dataset as for_path("<dataset>"), for_path("<dataset>", "version=N") or for_path("<dataset>", "as_of=<ISO 8601 time>")')


def path_target(descriptor: flight.FlightDescriptor) -> tuple[str, str | None, bool]:
    """The dataset name, the optional ingest mode and whether to evolve the schema, of
    `for_path("<name>"[, "<mode>"[, "evolve"]])`."""
    parts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in descriptor.path]
    if len(parts) not in (1, 2, 3) or (len(parts) == 3 and parts[2].lower() not in (EVOLVE_OPTION, f"{EVOLVE_OPTION}=true")):
        raise InvalidInput('expected a path of one to three parts: for_path("<dataset>"[, "<mode>"[, "evolve"]])')
    return parts[0], parts[1] if len(parts) >= 2 else None, len(parts) == 3


def objects_stream(lake: Lake, ticket: tickets.ObjectsTicket) -> flight.FlightDataStream:
    """Stream the ticket's Parquet objects in order, `BATCH_ROWS` rows at a time."""
    first = _open(lake, ticket.keys[0])
    schema = pq.ParquetFile(first).schema_arrow

    def batches() -> Iterator[pa.RecordBatch]:
        for i, key in enumerate(ticket.keys):
            with first if i == 0 else _open(lake, key) as fh:
                yield from pq.ParquetFile(fh).iter_batches(BATCH_ROWS)

    return flight.GeneratorStream(schema, stream_errors(bounded_batches(batches())))


def _open(lake: Lake, key: str) -> ObjectFile:
    try:
        return lake.cache.open(key)
    except NotFound:
        raise NotFound(f"object {key!r} no longer exists; ask for a fresh FlightInfo") from None


def put_result(result: IngestResult) -> pa.Buffer:
    """The DoPut answer: the ingest result as JSON."""
    return pa.py_buffer(json.dumps(result.to_json()).encode())
