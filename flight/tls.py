"""TLS for the Flight server: `grpc+tls://` with the configured certificate and key, and, when
`tls.client_ca` is set, client certificates required and checked against that CA (mTLS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.flight as flight

from lakehouse.config import TlsConfig
from lakehouse.errors import ConfigError


def tls_options(tls: TlsConfig) -> dict[str, Any]:
    """Keyword arguments for `FlightServerBase.__init__`; none without TLS."""
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {"tls_certificates": [flight.CertKeyPair(_read(tls.cert, "tls.cert"), _read(tls.key, "tls.key"))]}
    if tls.client_ca:
        options.update(verify_client=True, root_certificates=_read(tls.client_ca, "tls.client_ca"))
    return options


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {key} {path}: {exc.strerror}", {"key": key}) from None
