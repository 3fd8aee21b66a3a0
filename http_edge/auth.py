"""Who each HTTP request comes from, and the guards that say what a route needs.

The middleware reads `Authorization` (Bearer or Basic) once per request through the core's
`Authenticator` and puts the identity on the request (`request.user`); a request without
valid credentials is answered 401 with `WWW-Authenticate` before any handler runs. Each route
names the permission it needs with `guards=[needs(READ)]` and friends (403 otherwise);
handlers that touch one dataset also call `request.user.require_dataset(name)`. `/health`,
`/metrics`, the OpenAPI pages and the console's page and assets stay open: they say nothing
about the data. The console's login cookie counts as a bearer token.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs

import anyio
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Guard, Message, Receive, Scope, Send

from lakehouse import metrics
from lakehouse.auth import Authenticator, Identity
from lakehouse.errors import Unauthenticated

audit = logging.getLogger("lakehouse.audit")

OPEN = "exclude_from_auth"  # the route option that marks a route as open
TOKEN_COOKIE = "lakehouse_token"
"""The web console's login: a bearer token, taken when a request has no `Authorization`."""


class _Authentication(AbstractAuthenticationMiddleware):
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        super().__init__(app, exclude=["^/schema", "^/static/"], exclude_from_auth_key=OPEN)
        self.authenticator = authenticator

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if header is None and (cookie := connection.cookies.get(TOKEN_COOKIE)):
            header = f"Bearer {cookie}"
        if header and header.lstrip().lower().startswith("basic") and self.authenticator.enabled:
            # Checking a password hash is slow by design: not on the event loop.
            login = await anyio.to_thread.run_sync(self.authenticator.identify, header)
        else:
            login = self.authenticator.identify(header)
        return AuthenticationResult(user=login.identity, auth=None)


def authentication(authenticator: Authenticator) -> DefineMiddleware:
    return DefineMiddleware(_Authentication, authenticator=authenticator)


def audited(app: ASGIApp) -> ASGIApp:
    """An audit line per request (logger `lakehouse.audit`): user, method, path, dataset, status,
    client address; and the request's count and duration in the metrics, by route template."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 500
        started = time.monotonic()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            user = scope.get("user")
            name = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name", [""])[0]
            client = scope.get("client")
            audit.info(
                "user=%s http=%s %s dataset=%s status=%d client=%s",
                user.user if isinstance(user, Identity) else "?", scope["method"], scope["path"], name or "-", status, client[0] if client else "-",
            )
            route = f"{scope['method']} {scope.get('path_template') or 'unmatched'}"
            metrics.request("http", route, str(status), time.monotonic() - started)

    return middleware


def needs(permission: str, what: str) -> Guard:
    """A route guard: the caller's role must grant `permission` (`what` names the operation)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        identity = connection.scope.get("user")
        if not isinstance(identity, Identity):
            raise Unauthenticated("authentication required")
        identity.require(permission, what)

    return guard


def security_components() -> tuple[Components, list[dict[str, list[str]]]]:
    """The OpenAPI description of the two schemes every guarded route accepts."""
    components = Components(
        security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT", description="A token from `lakehouse token create` or a Flight login"),
            "basic": SecurityScheme(type="http", scheme="basic", description="A user's name and password"),
        }
    )
    return components, [{"bearer": []}, {"basic": []}]
