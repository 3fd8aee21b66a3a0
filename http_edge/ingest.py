"""`POST /v1/ingest`: a CSV (a multipart form file or the raw body) or an Arrow IPC stream
becomes a dataset. The body flows through to the core as it arrives, never held whole."""

from __future__ import annotations

from typing import Annotated, Any, BinaryIO, Callable

import pyarrow as pa
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromQuery, HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_415_UNSUPPORTED_MEDIA_TYPE

from http_edge.auth import needs
from http_edge.errors import error_responses
from lakehouse.auth import WRITE
from http_edge.multipart import open_part
from http_edge.results import ARROW_STREAM, CSV
from http_edge.streams import run_with_body
from lakehouse.errors import InvalidInput
from lakehouse.ingest import IngestResult
from lakehouse.lake import Lake

MULTIPART = "multipart/form-data"
IDEMPOTENCY_HEADER = "Idempotency-Key"
FILE_FIELD = "file"
BODY_TYPES = [MULTIPART, CSV, ARROW_STREAM]


class IngestController(Controller):
    tags = ["ingest"]

    @post(
        ["/v1/ingest", "/ingest"],
        status_code=HTTP_200_OK,
        guards=[needs(WRITE, "ingest")],
        responses=error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        description=(
            f"The body is a multipart form with a CSV file part named '{FILE_FIELD}' (curl -F file=@data.csv), "
            f"a raw CSV ({CSV}) or an Arrow IPC stream ({ARROW_STREAM}). Answers the ingest result with the new manifest."
        ),
    )
    async def ingest(
        self,
        request: Request[Any, Any, Any],
        lake: NamedDependency[Lake],
        name: FromQuery[str],
        mode: Annotated[str, QueryParameter(description="create, append, replace or create_append")] = "create",
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name=IDEMPOTENCY_HEADER,
                description="A key of the client's choosing: a retry with the same key answers the first ingest's result instead of ingesting again.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        request.user.require_dataset(name)
        ingest = _ingest_for(request, lake, name, mode, idempotency_key)
        result = await run_with_body(request, ingest)
        return result.to_json()


def _ingest_for(request: Request[Any, Any, Any], lake: Lake, name: str, mode: str, key: str | None) -> Callable[[BinaryIO], IngestResult]:
    media_type, options = request.content_type
    if media_type == MULTIPART:
        return lambda body: lake.ingest_csv(name, open_part(body, options.get("boundary"), FILE_FIELD), mode, key)
    if media_type == CSV:
        return lambda body: lake.ingest_csv(name, body, mode, key)
    if media_type == ARROW_STREAM:
        return lambda body: _ingest_arrow(lake, name, body, mode, key)
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"cannot ingest a body of type {media_type[:100]!r}" if media_type else "the body needs a Content-Type",
        extra={"accepted": BODY_TYPES},
    )


def _ingest_arrow(lake: Lake, name: str, body: BinaryIO, mode: str, key: str | None) -> IngestResult:
    try:
        return lake.ingest_arrow(name, pa.ipc.open_stream(body), mode=mode, idempotency_key=key)
    except pa.ArrowException as exc:
        raise InvalidInput(f"the body is not a valid Arrow IPC stream: {exc}") from None
