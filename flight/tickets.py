"""Tickets: everything a DoGet needs, carried by the ticket itself.

A ticket holds no server-side state, so any server sharing the bucket can serve it, at any
time, and an abandoned ticket costs nothing. Its bytes are either

* a JSON object (UTF-8), one of
  - `{"v": 1, "sql": "<query>"}`, optionally with `"params"`: the base64 of an Arrow IPC
    stream whose rows are `?` values (the query runs once per row, results concatenated),
    or with `"part": {"dataset": "<name>", "version": N, "objects": [...]}`: the query over
    only those objects of that version (one share of a query split among servers);
  - `{"v": 1, "dataset": "<name>", "objects": ["datasets/<name>/<id>.parquet", ...]}`:
    those Parquet objects of the dataset, read in order;
  - `{"v": 1, "count": <rows>}`: the one-row result of a write that already ran;
* or any other UTF-8 text, taken as a SQL query.

Flight SQL tickets wrap the JSON form in `TicketStatementQuery.statement_handle`, or are the
metadata command itself (see `flight/sql.py`). `docs/flight.md` documents the format.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass

import pyarrow as pa

from flight import sql_codec as codec
from lakehouse.catalog import DATASET_PREFIX, validate_name
from lakehouse.cluster import Part
from lakehouse.errors import InvalidInput
from lakehouse.storage import validate_key

VERSION = 1


@dataclass(frozen=True)
class QueryTicket:
    sql: str
    params: pa.Table | None = None
    part: Part | None = None


@dataclass(frozen=True)
class ObjectsTicket:
    dataset: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class CountTicket:
    rows: int


Ticket = QueryTicket | ObjectsTicket | CountTicket


def encode(ticket: Ticket) -> bytes:
    if isinstance(ticket, QueryTicket) and ticket.params is not None:
        return _encode(ticket)  # a table of values: neither hashable nor asked for twice
    return _encode_kept(ticket)


@functools.lru_cache(maxsize=1024)
def _encode_kept(ticket: Ticket) -> bytes:
    return _encode(ticket)


def _encode(ticket: Ticket) -> bytes:
    body: dict[str, object] = {"v": VERSION}
    if isinstance(ticket, QueryTicket):
        body["sql"] = ticket.sql
        if ticket.params is not None:
            body["params"] = base64.b64encode(_ipc(ticket.params)).decode()
        if ticket.part is not None:
            body["part"] = {"dataset": ticket.part.dataset, "version": ticket.part.version, "objects": list(ticket.part.keys)}
    elif isinstance(ticket, CountTicket):
        body["count"] = ticket.rows
    else:
        body["dataset"] = ticket.dataset
        body["objects"] = list(ticket.keys)
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes) -> Ticket:
    """Read a ticket; raises `InvalidInput` for one that is neither form. Small tickets, which
    clients redeem again and again, are read once (tickets are frozen, so they are shared)."""
    raw = bytes(data)
    return _decode_kept(raw) if len(raw) <= codec.KEPT_MAX_BYTES else _decode(raw)


@functools.lru_cache(maxsize=1024)
def _decode_kept(raw: bytes) -> Ticket:
    return _decode(raw)


def _decode(raw: bytes) -> Ticket:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("invalid ticket: neither a lakehouse ticket nor UTF-8 SQL") from None
    if not text.lstrip().startswith("{"):
        if not text.strip():
            raise InvalidInput("invalid ticket: empty")
        return QueryTicket(text)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"invalid ticket: not valid JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise InvalidInput(f"invalid ticket: expected a JSON object with \"v\": {VERSION}")
    if isinstance(body.get("count"), int) and not isinstance(body["count"], bool):
        return CountTicket(body["count"])
    if isinstance(body.get("sql"), str):
        params, part = body.get("params"), body.get("part")
        return QueryTicket(body["sql"], _params(params) if params is not None else None, _part(part) if part is not None else None)
    objects = _objects(body)
    if objects is None:
        raise InvalidInput('invalid ticket: expected "sql", or "dataset" and a non-empty "objects" list')
    return ObjectsTicket(*objects)


def _objects(body: dict[str, object]) -> tuple[str, tuple[str, ...]] | None:
    """The dataset and the object keys a ticket names, checked to be that dataset's objects."""
    dataset, keys = body.get("dataset"), body.get("objects")
    if not (isinstance(dataset, str) and isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
        return None
    validate_name(dataset)
    prefix = f"{DATASET_PREFIX}{dataset}/"
    for key in keys:
        if not key.startswith(prefix) or "/" in key[len(prefix) :]:
            raise InvalidInput(f"invalid ticket: object {key!r} is not a data object of {dataset!r}")
        validate_key(key)
    return dataset, tuple(keys)


def _part(body: object) -> Part:
    objects = _objects(body) if isinstance(body, dict) else None
    version = body.get("version") if isinstance(body, dict) else None
    if objects is None or not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInput('invalid ticket: "part" takes "dataset", "version" and a non-empty "objects" list')
    return Part(objects[0], version, objects[1])


def decode_any(data: bytes) -> Ticket:
    """A ticket as a client holds it: a Flight SQL `TicketStatementQuery` around a lakehouse
    ticket, or the ticket itself."""
    try:
        command = codec.decode_command(data)
    except codec.DecodeError:
        return decode(data)
    if isinstance(command, codec.TicketStatementQuery):
        return decode(command.statement_handle)
    raise InvalidInput("invalid ticket: not a query ticket")


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _params(text: object) -> pa.Table:
    try:
        return pa.ipc.open_stream(base64.b64decode(str(text), validate=True)).read_all()
    except (binascii.Error, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"invalid ticket: params are not a base64 Arrow IPC stream ({exc})") from None
