"""Every error becomes `{"error": message, "detail": ...}` with its status, decided here once.

The core's errors map by kind; Litestar's own (validation, unknown route, wrong method, body
too large) keep their status; anything else is a bug and answers 500 without internals.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from lakehouse.errors import Cancelled, Conflict, Forbidden, InvalidInput, LakehouseError, NotFound, QueryTimeout, TooLarge, Unauthenticated, Unavailable, UnsupportedMedia

log = logging.getLogger(__name__)

CHALLENGE = 'Bearer realm="lakehouse", Basic realm="lakehouse"'

# Most specific first: TooLarge and UnsupportedMedia are InvalidInput.
STATUS_BY_ERROR: tuple[tuple[type[LakehouseError], int], ...] = (
    (TooLarge, 413),
    (UnsupportedMedia, 415),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (QueryTimeout, 504),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Cancelled, 499),  # nginx's "client closed request": logged, never seen by the client
)


class ErrorBody(msgspec.Struct):
    error: str
    detail: Any = None


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a route can answer, all in the one shape (Litestar would
    otherwise document its own default error body)."""
    return {status: ResponseSpec(ErrorBody, description=HTTPStatus(status).phrase, generate_examples=False) for status in statuses}


def _response(status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(message, detail), status_code=status, headers=headers, media_type="application/json")


def _lakehouse_error(request: Request[Any, Any, Any], exc: LakehouseError) -> Response[ErrorBody]:
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
    if status == 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    else:
        log.info("%s %s answered %d: %s", request.method, request.url.path, status, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    if isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": CHALLENGE}
    return _response(status, exc.message, exc.detail, headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if exc.status_code >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.detail, exc_info=exc)
    else:
        log.info("%s %s answered %d: %s", request.method, request.url.path, exc.status_code, exc.detail)
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.route_handler.resolve_request_max_body_size()
        return _response(exc.status_code, f"request body larger than the limit of {limit} bytes", {"max_bytes": limit})
    return _response(exc.status_code, exc.detail, exc.extra, exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _response(500, "internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LakehouseError: _lakehouse_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
