"""Liveness (`/health`: the process answers) and readiness (`/ready`: it can serve requests)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from http_edge.errors import error_responses
from lakehouse.errors import LakehouseError, Unavailable
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


class HealthController(Controller):
    tags = ["health"]

    @get("/health")
    async def health(self) -> Liveness:
        return Liveness("ok", SERVICE)

    @get("/ready", sync_to_thread=True, responses=error_responses(503), description="Storage, catalog and query engine state; 503 when one is not usable.")
    def ready(self, lake: NamedDependency[Lake]) -> Readiness:
        health = lake.health()
        try:
            lake.query_engine.ping()
            engine = True
        except LakehouseError:
            engine = False
        report = Readiness("ok" if health.storage and engine else "unavailable", health.storage, health.datasets, engine, health.detail)
        if report.status != "ok":
            raise Unavailable(f"not ready: {health.detail if not health.storage else 'query engine failed'}", msgspec.to_builtins(report))
        return report
