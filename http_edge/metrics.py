"""`GET /metrics`: the process's metrics in the Prometheus text format, for a scraper.

Open like `/health`: counts and durations by route and outcome, no dataset names or SQL.
"""

from __future__ import annotations

from litestar import Controller, Response, get

from http_edge.auth import OPEN
from lakehouse import metrics


class MetricsController(Controller):
    tags = ["health"]

    @get("/metrics", opt={OPEN: True}, security=[{}], sync_to_thread=False, description="Prometheus text format.")
    def metrics(self) -> Response[bytes]:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
