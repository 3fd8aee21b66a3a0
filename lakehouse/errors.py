"""The core's error hierarchy.

Every failure the core reports to a caller is one of these. Each edge (Flight, HTTP)
maps them to its protocol exactly once, so a rule such as "a name clash is a conflict"
lives here and nowhere else.
"""

from __future__ import annotations


class LakehouseError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(LakehouseError):
    """The caller sent something the core will not accept (bad name, bad CSV, bad SQL)."""


class NotFound(LakehouseError):
    """A dataset, object or statement that does not exist."""


class Conflict(LakehouseError):
    """The request clashes with current state (name taken with another schema, lost race)."""


class TooLarge(InvalidInput):
    """A body or object over a configured size bound."""


class UnsupportedMedia(InvalidInput):
    """A body in a format or encoding the lake does not read."""


class Unavailable(LakehouseError):
    """The request may succeed later: storage cannot be reached, the server is busy or stopping.

    `retry_after` (seconds) is what a client should wait before trying again, when known; the
    edges pass it on (HTTP `Retry-After`).
    """

    def __init__(self, message: str, detail: object | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class Busy(Unavailable):
    """Too many requests of a kind at once (queries over the cap, commits under contention)."""


class Cancelled(LakehouseError):
    """The client gave up on the request (went away, cancelled, passed its deadline)."""


class QueryTimeout(LakehouseError):
    """A query ran longer than `query.timeout_seconds` and was stopped."""


class Unauthenticated(LakehouseError):
    """No credentials, or credentials that do not check out (wrong password, bad or expired token)."""


class Forbidden(LakehouseError):
    """The caller is known but its role (or its dataset patterns) does not allow the operation."""


class ConfigError(LakehouseError):
    """The configuration or secrets cannot be loaded; raised at start, never later."""
