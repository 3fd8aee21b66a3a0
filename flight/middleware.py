"""Server middleware: what every Flight call's response headers say about the server's state.

While storage is unreachable, queries are answered from the last catalog read (see
`QueryEngine.sync_views`); each call made meanwhile carries the header
`lakehouse-catalog-stale: <seconds>`, so a client can tell a possibly old answer from a
fresh one, as HTTP responses do with `X-Lakehouse-Catalog-Stale`.
"""

from __future__ import annotations

import pyarrow.flight as flight

from lakehouse.lake import Lake

STALE_HEADER = "lakehouse-catalog-stale"


class _StaleCatalog(flight.ServerMiddleware):
    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def sending_headers(self) -> dict[str, str]:
        stale = self._lake.catalog_stale_seconds
        return {} if stale is None else {STALE_HEADER: f"{stale:.1f}"}


class StaleCatalogFactory(flight.ServerMiddlewareFactory):
    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> flight.ServerMiddleware:
        return _StaleCatalog(self._lake)
