"""A cap on the queries one edge runs at once.

Without it a flood of slow queries takes every worker thread and every core, and then health
checks and other users' small queries time out too. Beyond the cap a query is refused at once
with `Busy` (HTTP 503 with `Retry-After`, Flight UNAVAILABLE) rather than queued, so a client
learns immediately that it should come back later and no thread is spent waiting.
"""

from __future__ import annotations

import threading

from lakehouse.errors import Busy

RETRY_AFTER_SECONDS = 1.0


class Admission:
    def __init__(self, edge: str, limit: int) -> None:
        self.edge = edge
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None

    def acquire(self) -> None:
        """Take a slot, or raise `Busy` when all are taken."""
        if self._slots is not None and not self._slots.acquire(blocking=False):
            raise Busy(
                f"too many queries running on the {self.edge} edge (limit {self.limit}); try again shortly",
                {"limit": self.limit},
                retry_after=RETRY_AFTER_SECONDS,
            )

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()
