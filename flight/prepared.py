"""Flight SQL prepared statements: the one piece of per-client state the server keeps.

A handle names a parsed statement and the parameters last bound to it. Clients close their
handles (ClosePreparedStatement), but a client that dies never does, so a handle unused for
`timeout` seconds is dropped; the timeout is announced to clients in GetSqlInfo
(FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT). Tickets need no such care: they carry their query
(see `tickets.py`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

import pyarrow as pa

from lakehouse.errors import NotFound, TooLarge
from lakehouse.statements import Statement

DEFAULT_TIMEOUT_SECONDS = 600.0
MAX_OPEN = 10_000
EXPIRY_INTERVAL_SECONDS = 1.0


@dataclass
class Prepared:
    statement: Statement
    params: pa.Table | None = None
    used: float = 0.0


class PreparedStatements:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._open: dict[bytes, Prepared] = {}
        self._lock = threading.Lock()
        self._next_expiry = 0.0

    def create(self, statement: Statement) -> bytes:
        handle = secrets.token_hex(16).encode()
        with self._lock:
            self._expire()
            if len(self._open) >= MAX_OPEN:
                raise TooLarge(f"too many open prepared statements ({MAX_OPEN}); close some")
            self._open[handle] = Prepared(statement, used=time.monotonic())
        return handle

    def get(self, handle: bytes) -> Prepared:
        with self._lock:
            self._expire()
            prepared = self._open.get(bytes(handle))
            if prepared is not None and prepared.used < time.monotonic() - self.timeout:
                del self._open[bytes(handle)]  # expired, not swept yet
                prepared = None
            if prepared is None:
                raise NotFound("unknown or expired prepared statement handle; prepare the statement again")
            prepared.used = time.monotonic()
            return prepared

    def bind(self, handle: bytes, params: pa.Table) -> None:
        self.get(handle).params = params

    def close(self, handle: bytes) -> None:
        with self._lock:
            self._open.pop(bytes(handle), None)

    def _expire(self) -> None:
        """Drop the handles unused for `timeout`: a pass over all of them, so at most once a
        second (or when full), not on every call of a client that keeps thousands open."""
        now = time.monotonic()
        if now < self._next_expiry and len(self._open) < MAX_OPEN:
            return
        self._next_expiry = now + EXPIRY_INTERVAL_SECONDS
        cutoff = now - self.timeout
        for handle in [h for h, p in self._open.items() if p.used < cutoff]:
            del self._open[handle]
