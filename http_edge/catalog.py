"""Catalog routes: register a dataset by schema, read one manifest (with ETags), list them all."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pyarrow as pa
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

from http_edge.auth import needs
from http_edge.errors import error_responses
from lakehouse.auth import READ, WRITE
from lakehouse.formats.types import parse_type
from lakehouse.lake import Lake

REGISTER_BODY_BYTES = 1024 * 1024
TYPE_EXAMPLES = ["int64", "string", "float64", "bool", "date32", "timestamp[us]", "timestamp[us, tz=UTC]", "decimal128(12, 2)"]


class Column(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    type: Annotated[str, msgspec.Meta(examples=TYPE_EXAMPLES)]
    nullable: bool = True


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    schema: list[Column]


class DatasetList(msgspec.Struct):
    datasets: list[dict[str, Any]]


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, parse_type(c.type), c.nullable) for c in columns])


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}


class CatalogController(Controller):
    path = "/catalog"
    tags = ["catalog"]

    @post(
        "/register",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        request_max_body_size=REGISTER_BODY_BYTES,
        guards=[needs(WRITE, "register datasets")],
        responses=error_responses(400, 401, 403, 409, 413, 503),
        description="Create an empty dataset; idempotent for the same schema, 409 for another.",
    )
    def register(self, data: JSONBody[RegisterRequest], request: Request[Any, Any, Any], lake: NamedDependency[Lake]) -> dict[str, Any]:
        request.user.require_dataset(data.name)
        return lake.register(data.name, arrow_schema(data.schema), request.user).to_json()

    @get(
        "/manifest/{name:str}",
        sync_to_thread=True,  # may read storage (an older version, the Iceberg status)
        guards=[needs(READ, "read the catalog")],
        responses=error_responses(401, 403, 404),
        description="The dataset's latest manifest, or with ?version=N that version's; honours If-None-Match.",
    )
    def manifest(
        self,
        name: FromPath[str],
        request: Request[Any, Any, Any],
        lake: NamedDependency[Lake],
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        version: Annotated[int | None, QueryParameter(ge=1, description="a committed version instead of the latest")] = None,
    ) -> Response[dict[str, Any] | None]:
        request.user.require_dataset(name)
        manifest = lake.manifest(name) if version is None else lake.manifest_at(name, version)
        headers = {"ETag": f'"{manifest.etag}"'}
        if if_none_match is not None and ({manifest.etag, "*"} & _etags(if_none_match)):
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(lake.manifest_answer(manifest), headers=headers)

    @delete(
        "/{name:str}",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        guards=[needs(WRITE, "drop datasets")],
        responses=error_responses(401, 403, 404, 503),
        description="Drop the dataset: it leaves the catalog and SQL at once; gc collects its objects later. Answers its last manifest.",
    )
    def drop(self, name: FromPath[str], request: Request[Any, Any, Any], lake: NamedDependency[Lake]) -> dict[str, Any]:
        request.user.require_dataset(name)
        return {"dropped": lake.drop(name, request.user).to_json()}

    @post(
        "/compact/{name:str}",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        guards=[needs(WRITE, "compact datasets")],
        responses=error_responses(400, 401, 403, 404, 409, 503),
        description="Rewrite the dataset's objects into few large ones (sorted by order_by, kept for later compactions), as a new version.",
    )
    def compact(
        self, name: FromPath[str], request: Request[Any, Any, Any], lake: NamedDependency[Lake],
        order_by: Annotated[str | None, QueryParameter(description="a column to sort the rows by")] = None,
    ) -> dict[str, Any]:
        request.user.require_dataset(name)
        return lake.manifest_answer(lake.compact(name, order_by, request.user))

    @get(
        "/versions/{name:str}",
        sync_to_thread=True,
        guards=[needs(READ, "read the catalog")],
        responses=error_responses(401, 403, 404),
        description="The dataset's committed versions, oldest first: version, time, operation, rows, objects.",
    )
    def versions(self, name: FromPath[str], request: Request[Any, Any, Any], lake: NamedDependency[Lake]) -> list[dict[str, Any]]:
        request.user.require_dataset(name)
        return lake.versions(name)

    @get("/list", sync_to_thread=True, guards=[needs(READ, "read the catalog")], responses=error_responses(401, 403))
    def datasets(self, request: Request[Any, Any, Any], lake: NamedDependency[Lake]) -> DatasetList:
        return DatasetList([lake.manifest_answer(m) for m in lake.datasets() if request.user.may_use(m.name)])
