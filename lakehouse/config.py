"""Configuration: one source of truth, loaded once at start.

Values come from built-in defaults, then `lakehouse.toml` (path from `--config` or
`LAKEHOUSE_CONFIG`), then environment variables `LAKEHOUSE_<SECTION>_<KEY>`. Every key is
declared here with its type, so an unknown key or a wrong type fails at start with a
message naming the key instead of surfacing later as an odd runtime error.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lakehouse.errors import ConfigError

GIB = 1024**3


@dataclass(frozen=True)
class StorageConfig:
    """Where datasets live: `file://<dir>` (embedded default) or `s3://<bucket>[/<prefix>]`."""

    uri: str = "file://./data"
    endpoint: str = "http://127.0.0.1:9000"
    region: str = "us-east-1"
    timeout_seconds: float = 5.0
    cache_dir: str = "./.lakehouse-cache"
    cache_max_bytes: int = 10 * GIB
    """At most this many bytes of data objects are copied into `cache_dir`; the least
    recently used go first, and objects not cached are read by byte ranges."""


@dataclass(frozen=True)
class FlightConfig:
    host: str = "127.0.0.1"
    port: int = 8815
    max_concurrent_queries: int = 16
    advertise_uri: str = ""
    """The URI other servers and clients reach this one at (FlightInfo locations, the peer
    record in the bucket); empty: `grpc[+tls]://<host>:<port>` as bound."""


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 3100
    max_upload_bytes: int = 2 * GIB
    max_rows: int = 100_000
    max_concurrent_queries: int = 16


@dataclass(frozen=True)
class QueryConfig:
    view_ttl_seconds: float = 30.0
    threads: int = 0
    timeout_seconds: float = 300.0
    hot_max_bytes: int = GIB
    """Datasets queried twice are held in DuckDB's memory, compressed, up to this many bytes
    of Parquet in all (`hot.py`); 0: always read the Parquet objects."""


@dataclass(frozen=True)
class IngestConfig:
    sample_rows: int = 1000
    row_group_rows: int = 131_072
    max_object_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class CatalogConfig:
    gc_grace_seconds: float = 3600.0
    lease_seconds: float = 60.0
    retain_versions: int = 1
    """How many of a dataset's latest versions `gc` keeps readable (1: the current one only)."""
    retain_seconds: float = 0.0
    """Also keep every version that was current within this many seconds."""
    compact_after_objects: int = 0
    """Compact a dataset in the background once it has this many objects smaller than a
    quarter of `ingest.max_object_bytes` (0: only when asked)."""


@dataclass(frozen=True)
class AuthConfig:
    """Users, roles and tokens (see `lakehouse/auth.py`); users live in the secrets file."""

    enabled: bool = False
    token_ttl_seconds: float = 43_200.0
    allow_insecure: bool = False


@dataclass(frozen=True)
class TlsConfig:
    """Certificate and key (PEM files) for both servers; `client_ca` also demands client certificates."""

    cert: str = ""
    key: str = ""
    client_ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


@dataclass(frozen=True)
class SecretsConfig:
    path: str = "secrets.toml"


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    flight: FlightConfig = field(default_factory=FlightConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)


ENV_PREFIX = "LAKEHOUSE_"


NOT_SETTINGS = frozenset({"LAKEHOUSE_CONFIG", "LAKEHOUSE_TOKEN"})
"""Variables of ours that are not `<SECTION>_<KEY>` settings: the config file's path, and the
bearer token the command line sends to a server (`--server`)."""


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from defaults, the TOML file and the environment.

    An explicit `path` (or `LAKEHOUSE_CONFIG`) must exist; without either, `./lakehouse.toml`
    is read when present, so the sample config works from the repository root.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, dict[str, Any]] = {}
    chosen = path or env.get("LAKEHOUSE_CONFIG")
    if chosen:
        raw = _read_toml(Path(chosen))
    elif Path("lakehouse.toml").is_file():
        raw = _read_toml(Path("lakehouse.toml"))
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for section in raw:
        if section not in sections:
            raise ConfigError(f"unknown config section [{section}]", {"key": section})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"config key '{section}' must be a section", {"key": section})
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        section, key = _split_env(name[len(ENV_PREFIX) :].lower(), sections)
        raw.setdefault(section, {})[key] = value
    built = {name: _section(name, sections[name].default_factory(), raw.get(name, {})) for name in sections}  # type: ignore[misc]
    return Config(**built)


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _split_env(rest: str, sections: Mapping[str, dataclasses.Field[Any]]) -> tuple[str, str]:
    for section in sections:
        if rest.startswith(section + "_"):
            return section, rest[len(section) + 1 :]
    raise ConfigError(f"unknown config section in environment variable {ENV_PREFIX}{rest.upper()}", {"key": rest})


def _section(name: str, defaults: Any, values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(defaults)}
    updates: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key {name}.{key}", {"key": f"{name}.{key}"})
        updates[key] = _coerce(f"{name}.{key}", type(getattr(defaults, key)), value)
    result = dataclasses.replace(defaults, **updates)
    _validate(name, result)
    return result


def _coerce(key: str, kind: type, value: Any) -> Any:
    """Turn a TOML value or an environment string into the declared type, or say which key is wrong."""
    try:
        if isinstance(value, str) and kind is not str:
            if kind is bool:
                if value.lower() not in {"true", "false", "1", "0"}:
                    raise ValueError(value)
                return value.lower() in {"true", "1"}
            return kind(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
    except ValueError:
        pass
    raise ConfigError(f"config key {key} must be of type {kind.__name__}, got {value!r}", {"key": key})


def _validate(name: str, section: Any) -> None:
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.name == "port" and not 0 <= value <= 65535:
            raise ConfigError(f"config key {name}.port must be between 0 and 65535, got {value}", {"key": f"{name}.port"})
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"config key {name}.{f.name} must not be negative, got {value}", {"key": f"{name}.{f.name}"})
    if name == "catalog" and section.retain_versions < 1:
        raise ConfigError("config key catalog.retain_versions must be at least 1 (the current version)", {"key": "catalog.retain_versions"})
    if name == "tls" and bool(section.cert) != bool(section.key):
        raise ConfigError("config keys tls.cert and tls.key go together: give both or neither", {"key": "tls.cert"})
    if name == "tls" and section.client_ca and not section.cert:
        raise ConfigError("config key tls.client_ca needs tls.cert and tls.key", {"key": "tls.client_ca"})
    if name == "storage" and not section.uri.startswith(("file://", "s3://")):
        raise ConfigError(f"config key storage.uri must start with file:// or s3://, got {section.uri!r}", {"key": "storage.uri"})
