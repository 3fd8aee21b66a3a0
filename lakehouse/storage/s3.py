"""The S3 backend (MinIO or any S3-compatible endpoint), over the `minio` SDK.

Timeouts and retries are bounded so that a store that is down or frozen turns into
`Unavailable` within seconds instead of a hung request.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import BinaryIO, Iterator
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from lakehouse.config import StorageConfig
from lakehouse import metrics
from lakehouse.errors import Conflict, InvalidInput, LakehouseError, NotFound, Unavailable
from lakehouse.secrets import SecretsProvider
from lakehouse.storage import ObjectInfo, ObjectStore, validate_key

PART_SIZE = 16 * 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict"}


class S3Store(ObjectStore):
    def __init__(self, config: StorageConfig, secrets: SecretsProvider) -> None:
        parsed = urlparse(config.uri)
        self.bucket = parsed.netloc
        if not self.bucket:
            raise InvalidInput(f"storage.uri {config.uri!r} names no bucket")
        self.prefix = parsed.path.strip("/")
        self.uri = config.uri
        endpoint = urlparse(config.endpoint)
        creds = secrets.s3_credentials()
        timeout = config.timeout_seconds
        # A store that accepts connections but does not answer (frozen, overloaded) must cost a
        # caller at most about twice `timeout_seconds`, not minutes: one retry, and none after
        # a read timed out.
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=1, connect=1, read=0, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
            maxsize=16,
        )
        self._client = Minio(
            endpoint.netloc,
            access_key=creds.access_key.reveal() if creds else None,
            secret_key=creds.secret_key.reveal() if creds else None,
            secure=endpoint.scheme == "https",
            region=config.region,
            http_client=self._http,
        )

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Run one SDK call and translate its failures into the core's errors."""
        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise NotFound(f"object {what} not found") from None
            if exc.code in _CONFLICT:
                raise Conflict(f"object {what} already exists") from None
            metrics.storage_error(getattr(fn, "__name__", "call"))
            if exc.code == "NoSuchBucket":
                raise Unavailable(f"storage bucket {self.bucket} does not exist") from None
            raise Unavailable(f"storage error on {what}: {exc.code}: {exc.message}") from None
        except LakehouseError:
            raise
        except (HTTPError, OSError) as exc:
            metrics.storage_error(getattr(fn, "__name__", "call"))
            raise Unavailable(f"storage unavailable: cannot reach {self._client._base_url.host} ({type(exc).__name__})") from None

    def put(self, key: str, source: BinaryIO, length: int = -1) -> ObjectInfo:
        name = self._name(key)
        self._call(key, self._client.put_object, self.bucket, name, source, length, part_size=PART_SIZE)
        return self.stat(key)

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        # The SDK's public put_object cannot send request headers (it turns them into user
        # metadata), so the conditional single-part PUT goes through its request primitive.
        name = self._name(key)
        self._call(key, self._client._put_object, self.bucket, name, data, headers={"If-None-Match": "*"})
        return self.stat(key)

    def open(self, key: str) -> BinaryIO:
        response = self._call(key, self._client.get_object, self.bucket, self._name(key))
        return _ResponseReader(response)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._call(key, self._client.get_object, self.bucket, self._name(key), offset=offset, length=length)
        try:
            data = response.read()
        except (HTTPError, OSError):
            raise Unavailable("storage unavailable: connection lost while reading") from None
        finally:
            response.close()
            response.release_conn()
        metrics.range_read(len(data))
        return data

    def stat(self, key: str) -> ObjectInfo:
        st = self._call(key, self._client.stat_object, self.bucket, self._name(key))
        return ObjectInfo(key, st.size or 0, (st.etag or "").strip('"'), st.last_modified or datetime.now(timezone.utc))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        objects = self._call(prefix or "/", lambda: list(self._client.list_objects(self.bucket, prefix=full or None, recursive=True)))
        for obj in sorted(objects, key=lambda o: o.object_name):
            yield ObjectInfo(self._key(obj.object_name), obj.size or 0, (obj.etag or "").strip('"'), obj.last_modified or datetime.now(timezone.utc))

    def delete(self, key: str) -> None:
        self._call(key, self._client.remove_object, self.bucket, self._name(key))

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (used by set-up scripts and tests)."""
        if not self._call(self.bucket, self._client.bucket_exists, self.bucket):
            self._call(self.bucket, self._client.make_bucket, self.bucket)

    def close(self) -> None:
        self._http.clear()


class _ResponseReader(io.RawIOBase):
    """A file-like view of a streaming GET response that releases the connection on close."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        try:
            data = self._response.read(len(buffer))
        except (HTTPError, OSError):
            raise Unavailable("storage unavailable: connection lost while reading") from None
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._response.read()
        return self._response.read(size)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()
