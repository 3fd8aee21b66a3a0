"""Running queries: each has a deadline and can be stopped from outside its thread.

A DuckDB query blocks the thread that runs it, and neither an HTTP client that goes away nor
a Flight client that cancels is noticed by that thread. So every query is registered here
with its cursor, and one watchdog thread checks them every `POLL_SECONDS`: a query past
`query.timeout_seconds`, or whose client is gone (a callable the edge supplies), is
interrupted through `cursor.interrupt()`, which DuckDB honours between vectors, so the query
ends within a second. Shutdown stops them all the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import duckdb

from lakehouse import metrics
from lakehouse.errors import Cancelled, LakehouseError, QueryTimeout, Unavailable

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1

TIMEOUT = "timeout"
CLIENT_GONE = "client gone"
SHUTDOWN = "shutdown"


@dataclass(eq=False)
class RunningQuery:
    sql: str
    cursor: duckdb.DuckDBPyConnection
    deadline: float | None
    client_gone: Callable[[], bool] | None
    timeout_seconds: float
    tag: str | None = None
    owner: str | None = None
    reason: str | None = None
    started: float = field(default_factory=time.monotonic)

    def stop(self, reason: str) -> None:
        """Interrupt the query; the first reason given is the one reported.

        DuckDB forgets an interrupt that arrives before it starts executing (while the query
        is still being bound), so the watchdog calls this again at every poll until the
        query has ended.
        """
        if self.reason is None:
            self.reason = reason
        try:
            self.cursor.interrupt()
        except duckdb.Error:  # the cursor closed meanwhile: the query is over anyway
            pass

    def failure(self) -> LakehouseError:
        """The error a stopped query ends with."""
        if self.reason == TIMEOUT:
            return QueryTimeout(f"query stopped after {self.timeout_seconds:g} s (query.timeout_seconds)", {"timeout_seconds": self.timeout_seconds})
        if self.reason == SHUTDOWN:
            return Unavailable("query stopped: the server is shutting down", retry_after=1.0)
        return Cancelled("query cancelled: the client went away or cancelled it")


class Watchdog:
    """Knows every running query and stops those past their deadline or left by their client."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._running: set[RunningQuery] = set()
        self._lock = threading.Lock()
        self._refusing = False
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-watchdog", daemon=True)
        self._thread.start()

    def start(
        self, sql: str, cursor: duckdb.DuckDBPyConnection, client_gone: Callable[[], bool] | None = None, tag: str | None = None, owner: str | None = None
    ) -> RunningQuery:
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None
        query = RunningQuery(sql, cursor, deadline, client_gone, self.timeout_seconds, tag, owner)
        with self._lock:
            if self._refusing:
                raise Unavailable("the server is shutting down", retry_after=1.0)
            self._running.add(query)
        metrics.QUERIES_ACTIVE.inc()
        return query

    def finish(self, query: RunningQuery) -> None:
        """Forget a query; after this returns the watchdog never touches its cursor again."""
        with self._lock:
            if query in self._running:
                self._running.discard(query)
                metrics.QUERIES_ACTIVE.dec()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def cancel(self, tag: str, owner: str | None) -> int:
        """Stop the running queries started with `tag` (by `owner`, unless None: any owner);
        how many there were. This is how a client cancels a query it can only name by its
        ticket (Flight's CancelFlightInfo)."""
        with self._lock:
            chosen = [q for q in self._running if q.tag == tag and (owner is None or q.owner == owner)]
            for query in chosen:
                query.stop(CLIENT_GONE)
        return len(chosen)

    def stop_all(self, reason: str = SHUTDOWN) -> None:
        """Interrupt every running query and refuse new ones (shutdown). The watchdog goes on
        re-interrupting them until they have ended or `close` is called."""
        with self._lock:
            self._refusing = True
            for query in self._running:
                query.stop(reason)

    def wait_idle(self, seconds: float) -> bool:
        """Wait until no query runs, at most `seconds`; whether they all ended."""
        end = time.monotonic() + seconds
        while self.running and time.monotonic() < end:
            time.sleep(0.02)
        return not self.running

    def close(self) -> None:
        """End the watchdog's thread (after the queries were stopped)."""
        self._ended.set()

    def _watch(self) -> None:
        while not self._ended.wait(POLL_SECONDS):
            now = time.monotonic()
            with self._lock:
                for query in self._running:
                    if query.reason is not None:
                        query.stop(query.reason)
                    elif query.deadline is not None and now >= query.deadline:
                        query.stop(TIMEOUT)
                    elif query.client_gone is not None and _gone(query.client_gone):
                        query.stop(CLIENT_GONE)


def _gone(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:  # a check that fails means the call it watched is over
        log.debug("client check failed; treating the client as gone", exc_info=True)
        return True
