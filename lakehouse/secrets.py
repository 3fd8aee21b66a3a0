"""Secrets: credentials kept apart from the configuration.

`lakehouse.toml` may be committed and shared; `secrets.toml` may not. A provider hands out
`Secret` values whose `repr` and `str` are masked, so a secret that ends up in a log line, an
error message or a traceback shows as `***`.
"""

from __future__ import annotations

import os
import tomllib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from lakehouse.errors import ConfigError


class Secret:
    """A string that never prints itself; call `reveal()` where the real value is needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class S3Credentials:
    access_key: Secret
    secret_key: Secret


class SecretsProvider(ABC):
    """Where credentials come from; the storage layer asks, never reads files itself."""

    @abstractmethod
    def s3_credentials(self) -> S3Credentials | None:
        """The S3 key pair, or None when none is configured (anonymous access)."""


class FileSecretsProvider(SecretsProvider):
    """Reads `secrets.toml` (`[s3] access_key, secret_key`), falling back to the AWS variables.

    A missing file is normal (the embedded default needs no secrets); a file that exists but
    cannot be read or parsed is an error at start, because silently running without the
    credentials someone wrote down would fail later and more confusingly.
    """

    def __init__(self, path: str | Path, environ: Mapping[str, str] | None = None) -> None:
        self._path = Path(path)
        self._data = self._load(self._path)
        self._env = os.environ if environ is None else environ

    @staticmethod
    def _load(path: Path) -> dict[str, dict[str, str]]:
        if not path.exists():
            return {}
        try:
            with path.open("rb") as fh:
                return tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError:
            # The parser's message may quote the offending line, which may hold a secret.
            raise ConfigError(f"secrets file {path} is not valid TOML") from None

    def s3_credentials(self) -> S3Credentials | None:
        s3 = self._data.get("s3", {})
        access = s3.get("access_key") or self._env.get("AWS_ACCESS_KEY_ID")
        secret = s3.get("secret_key") or self._env.get("AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            return None
        return S3Credentials(Secret(str(access)), Secret(str(secret)))

    def __repr__(self) -> str:
        return f"FileSecretsProvider(path={str(self._path)!r})"
