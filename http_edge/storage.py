"""Raw objects: streamed upload (bounded by `http.max_upload_bytes`), streamed download, listing.

Key rules (no `..`, no absolute paths, nothing under `_catalog/`) are the core's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import unquote

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from http_edge.auth import needs
from http_edge.errors import error_responses
from lakehouse.auth import ADMIN
from http_edge.streams import iterate_in_thread, run_with_body
from lakehouse.lake import Lake
from lakehouse.storage import CHUNK, ObjectInfo


PUT_ROUTE = "/storage/put/"
GET_ROUTE = "/storage/get/"


class StoredObject(msgspec.Struct):
    key: str
    size: int
    etag: str
    last_modified: str

    @classmethod
    def of(cls, info: ObjectInfo) -> "StoredObject":
        return cls(info.key, info.size, info.etag, info.last_modified.isoformat())


class ObjectList(msgspec.Struct):
    prefix: str
    objects: list[StoredObject]


def _key(request: Request[Any, Any, Any], route: str) -> str:
    """The key exactly as the client wrote it after the route's prefix. Litestar's path
    parameter has empty segments collapsed, so `//etc/x` (or `%2Fetc%2Fx`) would silently
    become the relative `etc/x`; the raw path keeps them for `validate_key` to refuse."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = unquote(raw.decode("latin-1"))
    return path.split(route, 1)[1] if route in path else ""


class StorageController(Controller):
    """Raw objects, for administrators: reading them bypasses every dataset rule."""

    path = "/storage"
    tags = ["storage"]
    guards = [needs(ADMIN, "use raw storage")]

    @put("/put/{key:path}", responses=error_responses(400, 413, 503), description="Store the body under key (replacing any object there); 413 past http.max_upload_bytes.")
    async def put_object(self, request: Request[Any, Any, Any], lake: NamedDependency[Lake], key: FromPath[str]) -> StoredObject:
        length = request.content_length if request.content_length is not None else -1
        info = await run_with_body(request, lambda body: lake.put_object(_key(request, PUT_ROUTE), body, length))
        return StoredObject.of(info)

    @get("/get/{key:path}", sync_to_thread=True, responses=error_responses(400, 404, 503))
    def get_object(self, request: Request[Any, Any, Any], lake: NamedDependency[Lake], key: FromPath[str]) -> Stream:
        info = lake.stat_object(_key(request, GET_ROUTE))
        return Stream(
            iterate_in_thread(_chunks(lake.open_object(info.key))),
            media_type="application/octet-stream",
            headers={"Content-Length": str(info.size), "ETag": f'"{info.etag}"'},
        )

    @get("/list", sync_to_thread=True, responses=error_responses(400, 503))
    def list_objects(self, lake: NamedDependency[Lake], prefix: FromQuery[str] = "") -> ObjectList:
        return ObjectList(prefix, [StoredObject.of(info) for info in lake.list_objects(prefix)])


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk
