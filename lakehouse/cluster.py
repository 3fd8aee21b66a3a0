"""Servers sharing one bucket: each sees the others' commits within a second, knows which
of them are alive, and splits big reads among them.

Nothing is configured but the bucket. Through it:

* **Commits.** Every commit rewrites the small head object `_catalog/head` (`Catalog`); each
  server asks for its etag twice a second (a HEAD request) and re-reads the catalog when it
  changed, instead of waiting for `query.view_ttl_seconds`.
* **Peers.** Every Flight server rewrites its record `_cluster/peers/<id>.json` (its
  `flight.advertise_uri`) each second and lists the others'. A record whose content stopped
  changing for `EXPIRE_SECONDS` (by this server's clock, so clocks need not agree) belongs
  to a server that died; a server that stops cleanly deletes its own.
* **Placement.** A read is split into shares of data objects, each served by the peer that
  owns its objects: rendezvous hashing of object keys, so an object is always read by the same
  server while the membership holds and each server's cache stays warm; loads are capped at
  `LOAD_SLACK` times an even share, so every peer gets work. Each share names a second peer
  as fallback. Which server redeems a share does not matter for the answer: tickets carry all
  they need.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

from lakehouse.catalog import DataObject
from lakehouse.errors import LakehouseError, NotFound
from lakehouse.storage import ObjectStore

log = logging.getLogger(__name__)

PEERS_PREFIX = "_cluster/peers/"
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 1.0
EXPIRE_SECONDS = 4.0
FORGET_SECONDS = 300.0
"""A dead peer's record is deleted by whoever sees it this long after it stopped."""
LOAD_SLACK = 1.25


@dataclass(frozen=True)
class Share:
    """Objects to read together, and where: the owner first, then the fallback (no locations:
    the server that was asked)."""

    objects: tuple[DataObject, ...]
    locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Part:
    """One share of a split query, as its ticket names it: these objects of that version."""

    dataset: str
    version: int
    keys: tuple[str, ...]


def groups(objects: Sequence[DataObject], target_bytes: int) -> list[list[DataObject]]:
    """Consecutive objects gathered up to `target_bytes` a group (a bigger object alone)."""
    found: list[list[DataObject]] = []
    size = target_bytes
    for obj in objects:
        if size >= target_bytes:
            found.append([])
            size = 0
        found[-1].append(obj)
        size += obj.size
    return found


def _score(uri: str, key: str) -> bytes:
    return hashlib.blake2b(f"{uri}\n{key}".encode(), digest_size=8).digest()


def place(objects: Sequence[DataObject], peers: Sequence[str], group_bytes: int) -> list[Share]:
    """Split `objects` among `peers` (URIs): each object to the highest-ranked peer for its key
    with room under the load cap, then each peer's objects in groups of up to `group_bytes`,
    in the dataset's order. With fewer than two peers, plain groups with no locations."""
    if len(peers) < 2 or len(objects) < 2:
        return [Share(tuple(g)) for g in groups(objects, group_bytes)]
    ring = sorted(peers)
    total = sum(max(o.size, 1) for o in objects)
    cap = LOAD_SLACK * total / len(ring)
    load = dict.fromkeys(ring, 0)
    owner: dict[str, str] = {}
    for obj in sorted(objects, key=lambda o: _score("", o.key)):
        ranked = sorted(ring, key=lambda uri: _score(uri, obj.key), reverse=True)
        chosen = next((uri for uri in ranked if load[uri] + max(obj.size, 1) <= cap), min(ring, key=lambda uri: load[uri]))
        owner[obj.key] = chosen
        load[chosen] += max(obj.size, 1)
    shares = []
    for i, uri in enumerate(ring):
        mine = [o for o in objects if owner[o.key] == uri]
        fallback = ring[(i + 1) % len(ring)]
        shares.extend(Share(tuple(g), (uri, fallback)) for g in groups(mine, group_bytes))
    return shares


class Cluster:
    """This server's view of the servers sharing its bucket (see the module's docstring).

    `advertise` is the Flight URI others should use for this server; None for a server that
    serves no Flight (it still follows commits)."""

    def __init__(self, store: ObjectStore, changed: Callable[[], bool], reload: Callable[[], None], advertise: str | None) -> None:
        self.store = store
        self.uri = advertise
        self.id = uuid.uuid4().hex[:16]
        self._changed = changed
        self._reload = reload
        self._stop = threading.Event()
        self._peers: dict[str, str] = {}  # id -> uri, of the peers alive now
        self._heard: dict[str, tuple[str, float]] = {}  # id -> (etag, when it last changed, monotonic)
        self._uris: dict[str, str] = {}
        self._beats = 0
        self._thread: threading.Thread | None = None

    @property
    def key(self) -> str:
        return f"{PEERS_PREFIX}{self.id}.json"

    def start(self) -> None:
        if self.uri is not None:
            try:
                self._beat()  # at once, so peers see this server before its first second is up
            except LakehouseError as exc:
                log.warning("cannot write this server's peer record now (retried every second): %s", exc.message)
        self._thread = threading.Thread(target=self._run, name="cluster", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.uri is not None:
            try:
                self.store.delete(self.key)
            except LakehouseError as exc:
                log.warning("cannot remove this server's peer record (it expires by itself): %s", exc.message)

    def peers(self) -> list[str]:
        """The Flight URIs of the servers alive now, this one included, sorted."""
        found = set(self._peers.values())
        if self.uri is not None:
            found.add(self.uri)
        return sorted(found)

    def _run(self) -> None:
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        while not self._stop.wait(POLL_SECONDS):
            try:
                if self._changed():
                    self._reload()
            except LakehouseError as exc:
                log.debug("cannot follow the catalog now: %s", exc.message)
            except Exception:
                log.exception("following the catalog failed")
            if self.uri is not None and time.monotonic() >= next_beat:
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
                try:
                    self._beat()
                except LakehouseError as exc:
                    log.warning("cannot reach storage for the peer heartbeat: %s", exc.message)
                except Exception:
                    log.exception("peer heartbeat failed")

    def _beat(self) -> None:
        """Write this server's record, then read who else is alive."""
        self._beats += 1
        record = json.dumps({"id": self.id, "uri": self.uri, "beat": self._beats, "at": datetime.now(timezone.utc).isoformat()}).encode()
        self.store.put(self.key, io.BytesIO(record), len(record))
        now = time.monotonic()
        alive: dict[str, str] = {}
        for info in self.store.list(PEERS_PREFIX):
            peer = info.key[len(PEERS_PREFIX) :].removesuffix(".json")
            if peer == self.id:
                continue
            heard = self._heard.get(peer)
            if heard is None:
                # First sight: trust the store's clock once, so a long-dead record is not revived.
                age = (datetime.now(timezone.utc) - info.last_modified).total_seconds()
                heard = (info.etag, now - max(0.0, age))
            elif heard[0] != info.etag:
                heard = (info.etag, now)
            self._heard[peer] = heard
            silent = now - heard[1]
            if silent <= EXPIRE_SECONDS:
                uri = self._uris.get(peer) or self._read_uri(info.key)
                if uri:
                    self._uris[peer] = uri
                    alive[peer] = uri
            elif silent > FORGET_SECONDS:
                self.store.delete(info.key)
                self._heard.pop(peer, None)
                self._uris.pop(peer, None)
        joined, left = set(alive) - set(self._peers), set(self._peers) - set(alive)
        for peer in joined:
            log.info("peer %s joined: %s", peer, alive[peer])
        for peer in left:
            log.info("peer %s left: %s", peer, self._peers[peer])
        self._peers = alive

    def _read_uri(self, key: str) -> str | None:
        try:
            body = json.loads(self.store.read_bytes(key))
        except (NotFound, ValueError):
            return None
        uri = body.get("uri") if isinstance(body, dict) else None
        return uri if isinstance(uri, str) and uri else None
