"""The one place where the core's errors become Flight (gRPC) errors.

pyarrow turns an exception raised by a handler into a gRPC status by its class:
`ArrowInvalid` → INVALID_ARGUMENT, `ArrowKeyError` → NOT_FOUND,
`ArrowNotImplementedError` → UNIMPLEMENTED, `FlightUnavailableError` → UNAVAILABLE,
`FlightInternalError` → INTERNAL, `FlightTimedOutError` → DEADLINE_EXCEEDED,
`FlightCancelledError` → CANCELLED, `FlightUnauthenticatedError` → UNAUTHENTICATED,
`FlightUnauthorizedError` → PERMISSION_DENIED (checked by experiment with pyarrow 26 and the ADBC Flight
SQL driver, which raises `ProgrammingError` for the first two, `NotSupportedError` for
UNIMPLEMENTED and `OperationalError` for UNAVAILABLE). gRPC has ALREADY_EXISTS and ABORTED,
but no pyarrow exception reaches them, so a `Conflict` travels as INVALID_ARGUMENT; what a
client may retry (`Unavailable`: storage down, the server busy or stopping, commits under
contention) is UNAVAILABLE.

The flight layer raises the core's own errors for its protocol mistakes too (a bad ticket is
`InvalidInput`), so every handler is decorated with `@flight_errors`, and a generator feeding a
stream is wrapped in `stream_errors`.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable, Iterator, ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.flight as flight

from flight.sql_codec import DecodeError
from lakehouse.errors import Cancelled, Forbidden, LakehouseError, NotFound, QueryTimeout, Unauthenticated, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class _NotFoundError(pa.ArrowKeyError):
    """NOT_FOUND with the message as written (KeyError's str() would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Unsupported(LakehouseError):
    """A request this server understands but does not implement (transactions, Substrait)."""


def to_flight_error(exc: BaseException) -> BaseException:
    """The exception to raise from a Flight handler for `exc`."""
    if isinstance(exc, flight.FlightError):
        return exc
    if isinstance(exc, Unsupported):
        return pa.ArrowNotImplementedError(exc.message)
    if isinstance(exc, NotFound):
        return _NotFoundError(exc.message)
    if isinstance(exc, Unavailable):
        return flight.FlightUnavailableError(exc.message)
    if isinstance(exc, Unauthenticated):
        return flight.FlightUnauthenticatedError(exc.message)
    if isinstance(exc, Forbidden):
        return flight.FlightUnauthorizedError(exc.message)
    if isinstance(exc, QueryTimeout):
        return flight.FlightTimedOutError(exc.message)
    if isinstance(exc, Cancelled):
        return flight.FlightCancelledError(exc.message)
    if isinstance(exc, LakehouseError):  # InvalidInput, TooLarge, Conflict
        return pa.ArrowInvalid(exc.message)
    if isinstance(exc, DecodeError):
        return pa.ArrowInvalid(f"malformed Flight SQL message: {exc}")
    if isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError)):
        # Arrow refusing the data a client sent, e.g. nulls in a non-nullable column.
        return pa.ArrowInvalid(f"invalid data: {exc}")
    log.error("internal error in a Flight handler", exc_info=exc)
    return flight.FlightInternalError(f"internal error: {type(exc).__name__}: {exc}")


def flight_errors(handler: Callable[P, R]) -> Callable[P, R]:
    """Decorate a Flight handler so any exception leaving it becomes the matching Flight error.

    Raised from this one frame with the cause suppressed, so the traceback pyarrow appends to
    the client's message is two lines long instead of the server's whole call stack.
    """

    @functools.wraps(handler)
    def handle(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        except Exception as exc:
            raise to_flight_error(exc) from None

    return handle


def stream_errors(items: Iterator[T]) -> Iterator[T]:
    """`items`, with any exception raised while producing them mapped as `flight_errors` does
    (a DoGet generator runs after its handler has returned)."""
    try:
        yield from items
    except Exception as exc:
        raise to_flight_error(exc) from None
