"""Server middleware: who each Flight call comes from, the headers the lake reads, and what
responses say of its state.

Authentication happens here, once per call, through the core's `Authenticator`: a call with
`authorization: Basic …` (the Handshake of the ADBC and JDBC drivers, pyarrow's
`authenticate_basic_token`) is checked and answered with `authorization: Bearer <token>` in
the response headers; every later call carries that bearer token (or a token made with
`lakehouse token create`, JDBC's `token=`, ADBC's `adbc.flight.sql.authorization_header`).
Missing or bad credentials reject the call with UNAUTHENTICATED before any handler runs;
handlers ask `caller(context)` for the identity and check its permissions. Each call ends
with an audit line (logger `lakehouse.audit`): user, method, outcome.

A client may also send `idempotency-key: <key>` with an ingest (a plain DoPut, or a Flight
SQL bulk ingest: ADBC sends it with the statement option
`adbc.flight.sql.rpc.call_header.idempotency-key`). While storage is unreachable, each call
made meanwhile carries `lakehouse-catalog-stale: <seconds>`, so a client can tell a possibly
old answer from a fresh one, as HTTP responses do with `X-Lakehouse-Catalog-Stale`.
"""

from __future__ import annotations

import logging
import time

import pyarrow.flight as flight

from flight import thread_states
from lakehouse import metrics
from lakehouse.auth import ANONYMOUS, Identity
from lakehouse.errors import Unauthenticated
from lakehouse.lake import Lake

audit = logging.getLogger("lakehouse.audit")

STALE_HEADER = "lakehouse-catalog-stale"
IDEMPOTENCY_HEADER = "idempotency-key"
EVOLVE_HEADER = "lakehouse-evolve"
_CALL = "call"


class _Call(flight.ServerMiddleware):
    def __init__(self, lake: Lake, method: str, identity: Identity, token: str | None, headers: dict[str, list[str]]) -> None:
        self._lake = lake
        self._method = method
        self.identity = identity
        self._token = token
        self.idempotency_key = _first(headers, IDEMPOTENCY_HEADER)
        self._started = time.monotonic()
        self.evolve = (_first(headers, EVOLVE_HEADER) or "").strip().lower() == "true"

    def call_completed(self, exception: BaseException | None) -> None:
        outcome = "ok" if exception is None else type(exception).__name__
        audit.info("user=%s flight=%s outcome=%s", self.identity.user, self._method, outcome)
        metrics.request("flight", self._method, outcome, time.monotonic() - self._started)

    def sending_headers(self) -> dict[str, str]:
        headers = {}
        if self._token is not None:
            headers["authorization"] = f"Bearer {self._token}"
        stale = self._lake.catalog_stale_seconds
        if stale is not None:
            headers[STALE_HEADER] = f"{stale:.1f}"
        return headers


class CallFactory(flight.ServerMiddlewareFactory):
    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> flight.ServerMiddleware:
        thread_states.keep()  # the first Python of every call, on whichever gRPC thread runs it
        authorization = _first(headers, "authorization")
        method = str(info.method).rsplit(".", 1)[-1]
        try:
            login = self._lake.auth.identify(authorization)
        except Unauthenticated as exc:
            audit.info("user=? flight=%s outcome=unauthenticated", method)
            raise flight.FlightUnauthenticatedError(exc.message) from None
        return _Call(self._lake, method, login.identity, self._lake.auth.token_for(login), headers)


class HandshakeAccepted(flight.ServerAuthHandler):
    """The Handshake itself succeeds for any caller the middleware let through: the bearer
    token travels in the `authorization` response header, as Flight SQL clients expect, not
    in the Handshake's own payload."""

    def authenticate(self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""


def middleware(lake: Lake) -> dict[str, flight.ServerMiddlewareFactory]:
    return {_CALL: CallFactory(lake)}


def caller(context: flight.ServerCallContext) -> Identity:
    call = context.get_middleware(_CALL)
    return call.identity if isinstance(call, _Call) else ANONYMOUS


def idempotency_key(context: flight.ServerCallContext) -> str | None:
    call = context.get_middleware(_CALL)
    return call.idempotency_key if isinstance(call, _Call) else None


def evolve_requested(context: flight.ServerCallContext) -> bool:
    """Whether the call asked an append to evolve the dataset's schema (`lakehouse-evolve: true`)."""
    call = context.get_middleware(_CALL)
    return call.evolve if isinstance(call, _Call) else False


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name) or []
    return values[0] if values else None
