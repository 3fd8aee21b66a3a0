"""Leases: what keeps `gc` away from the objects of ingests that are still running.

An ingest uploads its objects before the commit that references them, so until then they
look exactly like the leftovers of a crashed writer. Age alone cannot tell them apart (an
ingest may run for hours, and a request must not be able to lower the grace). So before its
first upload an ingest takes a lease: an object `_catalog/leases/<id>.json` in the bucket,
seen by every server sharing it, and every data object it writes is named
`datasets/<name>/<id>-<n>.parquet`. The lease is renewed (rewritten) every
`lease_seconds / 4` by a thread of the process that holds it and deleted after the commit or
the abort; `gc` leaves alone every object whose lease was renewed within `lease_seconds`. A
writer killed with `kill -9` stops renewing, so its objects become collectable once its
lease has expired and the grace has passed.

Freshness is judged by the store's modification time against this server's clock, so clocks
must agree to well within `lease_seconds` (the default minute leaves ample room).
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from lakehouse.errors import LakehouseError
from lakehouse.storage import ObjectStore

log = logging.getLogger(__name__)

LEASE_PREFIX = "_catalog/leases/"


def lease_of(key: str) -> str | None:
    """The lease id in a data object's key (`datasets/<name>/<id>-<n>.parquet`), if it has one."""
    stem = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return stem if len(stem) == 32 and all(c in "0123456789abcdef" for c in stem) else None


class Leases:
    def __init__(self, store: ObjectStore, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def take(self, dataset: str) -> str:
        """Write a new lease for an ingest into `dataset` and keep it renewed; returns its id."""
        lease = uuid.uuid4().hex
        self._write(lease, dataset)
        with self._lock:
            self._held[lease] = dataset
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
                self._thread.start()
        return lease

    def release(self, lease: str) -> None:
        """Stop renewing and delete the lease (after the commit, or after the abort's deletes)."""
        with self._lock:
            self._held.pop(lease, None)
        try:
            self.store.delete(_key(lease))
        except LakehouseError as exc:  # it expires on its own
            log.warning("could not delete lease %s: %s", lease, exc.message)

    def survey(self) -> tuple[set[str], list[str]]:
        """One listing of the bucket's leases: the ids renewed within `lease_seconds` (by any
        server), and the keys of those whose writers are gone for ten lease periods (their
        objects are gc's by then, so `gc` deletes these too)."""
        now = datetime.now(timezone.utc)
        live_after, dead_before = now - timedelta(seconds=self.lease_seconds), now - timedelta(seconds=10 * self.lease_seconds)
        leases = [info for info in self.store.list(LEASE_PREFIX) if info.key.endswith(".json")]
        live = {info.key[len(LEASE_PREFIX) : -5] for info in leases if info.last_modified > live_after}
        return live, [info.key for info in leases if info.last_modified <= dead_before]

    def _write(self, lease: str, dataset: str) -> None:
        body = json.dumps({"dataset": dataset, "host": socket.gethostname(), "pid": os.getpid(), "renewed_at": datetime.now(timezone.utc).isoformat()})
        data = body.encode()
        self.store.put(_key(lease), io.BytesIO(data), len(data))

    def _renew(self) -> None:
        while True:
            time.sleep(self.lease_seconds / 4)
            with self._lock:
                held = list(self._held.items())
                if not held:
                    self._thread = None
                    return
            for lease, dataset in held:
                try:
                    self._write(lease, dataset)
                except LakehouseError as exc:
                    log.warning("could not renew lease %s: %s", lease, exc.message)


def _key(lease: str) -> str:
    return f"{LEASE_PREFIX}{lease}.json"
