"""Liveness (`/health`: the process answers) and readiness (`/ready`: it can serve requests)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from http_edge.auth import OPEN, needs
from http_edge.errors import error_responses
from lakehouse.auth import READ
from lakehouse.errors import Unavailable
from lakehouse.lake import Lake

SERVICE = "lakehouse-http"


class Liveness(msgspec.Struct):
    status: str
    service: str


class Readiness(msgspec.Struct):
    status: str
    storage: bool
    catalog_datasets: int
    query_engine: bool
    detail: str
    queries_running: int
    catalog_stale_seconds: float | None
    peers: list[str]
    """The Flight URIs of the servers on this bucket alive now (this one included)."""


class HealthController(Controller):
    tags = ["health"]

    @get("/health", opt={OPEN: True}, security=[{}])
    async def health(self) -> Liveness:
        return Liveness("ok", SERVICE)

    @get(
        "/ready",
        sync_to_thread=True,
        guards=[needs(READ, "read the server's state")],
        responses=error_responses(401, 403, 503),
        description="Storage (answering within a second), catalog and query engine state, and the live peers on the bucket; 503 when one is not usable.",
    )
    def ready(self, lake: NamedDependency[Lake]) -> Readiness:
        health = lake.health()
        report = Readiness(
            "ok" if health.ok else "unavailable", health.storage, health.datasets, health.engine, health.detail, health.queries_running, health.catalog_stale_seconds,
            list(health.peers),
        )
        if not health.ok:
            raise Unavailable(f"not ready: {health.detail}", msgspec.to_builtins(report))
        return report
