"""Object storage: one small interface, a backend per URI scheme.

The catalog, ingest and query code talk only to `ObjectStore`; whether bytes land in a local
directory (`file://`, the embedded default) or in an S3 bucket (`s3://`, MinIO in production)
is decided once, by `open_store`.
"""

from __future__ import annotations

import os
import posixpath
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator

from lakehouse.config import StorageConfig
from lakehouse.errors import InvalidInput
from lakehouse.secrets import SecretsProvider

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime


class ObjectStore(ABC):
    """Keys are relative POSIX paths such as `datasets/x/part-0.parquet`."""

    uri: str

    @abstractmethod
    def put(self, key: str, source: BinaryIO, length: int = -1) -> ObjectInfo:
        """Store the bytes read from `source` under `key`, streaming; replaces any object there.

        `length` is the byte count when known (-1: read until EOF). Raises `Unavailable`.
        """

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        """Create `key` only if no object exists there, atomically. Raises `Conflict` if one does.

        This is the primitive catalog commits rely on: of two writers racing for one key,
        exactly one wins.
        """

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object's bytes; the caller closes it. Raises `NotFound`."""

    @abstractmethod
    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to `length` bytes of the object from `offset` (fewer at its end). Raises `NotFound`."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, etag and time of one object. Raises `NotFound`."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (recursively), in key order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; deleting an absent key is not an error (deletes are retried by gc)."""

    def put_file(self, key: str, path: str) -> ObjectInfo:
        """Store a local file's bytes under `key`; the file is left where it is."""
        with open(path, "rb") as fh:
            return self.put(key, fh, os.path.getsize(path))

    def local_path(self, key: str) -> str | None:
        """A local file path with the object's bytes, when the backend has one (no copy needed)."""
        return None

    def uri_of(self, key: str) -> str:
        """The absolute address of `key` other engines use (`file:///...`, `s3://bucket/...`)."""
        return f"{self.uri.rstrip('/')}/{key}"

    def key_of(self, uri: str) -> str:
        """The key of an address `uri_of` gave; `InvalidInput` for one outside this store."""
        base = self.uri.rstrip("/") + "/"
        if not uri.startswith(base):
            raise InvalidInput(f"{uri!r} is not in this lake's storage ({self.uri})")
        return uri[len(base) :]

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def close(self) -> None:
        """Release connections; the default backend holds none."""


_SEGMENT = re.compile(r"^[A-Za-z0-9._=+\-@ ]+$")
MAX_KEY_BYTES = 1024  # S3's own limit
MAX_SEGMENT_BYTES = 255  # a file name on the local backend
MAX_DEPTH = 32


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store's root or confuse a backend.

    Both backends share this rule so a key that works on a laptop works on MinIO too.
    """
    if not key or key.startswith("/") or "\\" in key or key.endswith("/"):
        raise InvalidInput(f"invalid object key {key[:100]!r}: must be a relative path like 'dir/file.ext'")
    parts = key.split("/")
    if len(key.encode()) > MAX_KEY_BYTES or len(parts) > MAX_DEPTH or any(len(p.encode()) > MAX_SEGMENT_BYTES for p in parts):
        raise InvalidInput(
            f"invalid object key {key[:100]!r}: at most {MAX_KEY_BYTES} bytes, {MAX_DEPTH} segments and {MAX_SEGMENT_BYTES} bytes a segment",
            {"max_bytes": MAX_KEY_BYTES, "max_depth": MAX_DEPTH, "max_segment_bytes": MAX_SEGMENT_BYTES},
        )
    if any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise InvalidInput(f"invalid object key {key[:100]!r}: segments may use letters, digits and ._=+-@ only, no '..'")
    if posixpath.normpath(key) != key:
        raise InvalidInput(f"invalid object key {key[:100]!r}")
    return key


def open_store(config: StorageConfig, secrets: SecretsProvider) -> ObjectStore:
    """Pick the backend from the URI scheme."""
    if config.uri.startswith("file://"):
        from lakehouse.storage.local import LocalStore

        return LocalStore(config.uri[len("file://") :])
    from lakehouse.storage.s3 import S3Store

    return S3Store(config, secrets)
