"""Server middleware: the call headers the lake reads, and what responses say of its state.

A client may send `idempotency-key: <key>` with an ingest (a plain DoPut, or a Flight SQL
bulk ingest: ADBC sends it with the statement option
`adbc.flight.sql.rpc.call_header.idempotency-key`); `idempotency_key(context)` hands it to
the handler. While storage is unreachable, queries are answered from the last catalog read (see
`QueryEngine.sync_views`); each call made meanwhile carries the header
`lakehouse-catalog-stale: <seconds>`, so a client can tell a possibly old answer from a
fresh one, as HTTP responses do with `X-Lakehouse-Catalog-Stale`.
"""

from __future__ import annotations

import pyarrow.flight as flight

from lakehouse.lake import Lake

STALE_HEADER = "lakehouse-catalog-stale"
IDEMPOTENCY_HEADER = "idempotency-key"
_CALL = "call"


class _Call(flight.ServerMiddleware):
    def __init__(self, lake: Lake, idempotency_key: str | None) -> None:
        self._lake = lake
        self.idempotency_key = idempotency_key

    def sending_headers(self) -> dict[str, str]:
        stale = self._lake.catalog_stale_seconds
        return {} if stale is None else {STALE_HEADER: f"{stale:.1f}"}


class CallFactory(flight.ServerMiddlewareFactory):
    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> flight.ServerMiddleware:
        keys = headers.get(IDEMPOTENCY_HEADER) or []
        return _Call(self._lake, keys[0] if keys else None)


def middleware(lake: Lake) -> dict[str, flight.ServerMiddlewareFactory]:
    return {_CALL: CallFactory(lake)}


def idempotency_key(context: flight.ServerCallContext) -> str | None:
    call = context.get_middleware(_CALL)
    return call.idempotency_key if isinstance(call, _Call) else None
