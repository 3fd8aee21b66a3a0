"""`POST /v1/ingest`: a file (a multipart form part or the raw body) becomes a dataset.

The body flows through to the core as it arrives, never held whole; the core picks the
reader by media type or file name (`lakehouse.formats`) and reads the options given here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO, Callable

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromQuery, HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from http_edge.auth import needs
from http_edge.errors import error_responses
from http_edge.multipart import open_part
from http_edge.streams import run_with_body
from lakehouse.auth import WRITE
from lakehouse.errors import UnsupportedMedia
from lakehouse.formats import MEDIA_TYPES, ReadOptions
from lakehouse.ingest import IngestResult
from lakehouse.lake import Lake

MULTIPART = "multipart/form-data"
IDEMPOTENCY_HEADER = "Idempotency-Key"
FILE_FIELD = "file"
BODY_TYPES = [MULTIPART, *MEDIA_TYPES]


@dataclass
class _IngestOperation(Operation):
    """The route reads its body as a stream, so Litestar cannot see its shape: say it here, so
    the API pages offer a file upload."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        form = Schema(type=OpenAPIType.OBJECT, properties={FILE_FIELD: binary}, required=[FILE_FIELD])
        content = {MULTIPART: OpenAPIMediaType(schema=form), **{m: OpenAPIMediaType(schema=binary) for m in MEDIA_TYPES}}
        self.request_body = RequestBody(content=content, required=True, description="the file, as a form part or the whole body")


def _text(description: str) -> Any:
    return QueryParameter(description=description)


class IngestController(Controller):
    tags = ["ingest"]

    @post(
        ["/v1/ingest", "/ingest"],
        status_code=HTTP_200_OK,
        guards=[needs(WRITE, "ingest")],
        responses=error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        operation_class=_IngestOperation,
        description=(
            f"The body is a multipart form with a file part named '{FILE_FIELD}' (curl -F file=@data.csv), or the raw file: "
            "CSV (text/csv), Parquet (application/vnd.apache.parquet), NDJSON (application/x-ndjson) or an Arrow IPC stream "
            "(application/vnd.apache.arrow.stream). gzip, zstd and bz2 bodies are inflated (found by their first bytes or "
            "Content-Encoding). Answers the ingest result with the new manifest."
        ),
    )
    async def ingest(
        self,
        request: Request[Any, Any, Any],
        lake: NamedDependency[Lake],
        name: FromQuery[str],
        mode: Annotated[str, QueryParameter(description="create, append, replace or create_append")] = "create",
        evolve: Annotated[bool, QueryParameter(description="on an append: add new columns, accept missing ones, promote types")] = False,
        null_values: Annotated[str | None, _text("comma-separated null markers, in every column; empty: none (default: NA, N/A, NULL, NaN... in typed columns)")] = None,
        delimiter: Annotated[str | None, _text("one character, \\t for a tab (default: sniffed among , tab ; |)")] = None,
        quote: Annotated[str | None, _text('the quote character (default "); empty: no quoting')] = None,
        escape: Annotated[str | None, _text("the escape character inside quotes (default: none, quotes are doubled)")] = None,
        header: Annotated[bool | None, QueryParameter(description="false: the first row is data (give names=)")] = None,
        names: Annotated[str | None, _text("comma-separated column names")] = None,
        types: Annotated[str | None, _text('a JSON object of column to type, e.g. {"id": "BIGINT", "day": "DATE"}')] = None,
        date_format: Annotated[str | None, _text("a strptime format for dates and times, e.g. %d/%m/%Y")] = None,
        decimal: Annotated[str | None, _text("the decimal separator, . or , (default: , in a ;-delimited file)")] = None,
        encoding: Annotated[str | None, _text("the text encoding: latin-1, cp1252, utf-16... (default UTF-8)")] = None,
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name=IDEMPOTENCY_HEADER,
                description="A key of the client's choosing: a retry with the same key answers the first ingest's result instead of ingesting again.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        request.user.require_dataset(name)
        options = ReadOptions.parse(
            {
                "null_values": null_values, "delimiter": delimiter, "quote": quote, "escape": escape,
                "header": None if header is None else str(header), "names": names, "types": types,
                "date_format": date_format, "decimal": decimal, "encoding": encoding,
            }
        )
        ingest = _ingest_for(request, lake, name, mode, idempotency_key, options, evolve)
        result = await run_with_body(request, ingest)
        return result.to_json()


def _ingest_for(
    request: Request[Any, Any, Any], lake: Lake, name: str, mode: str, key: str | None, options: ReadOptions, evolve: bool
) -> Callable[[BinaryIO], IngestResult]:
    media_type, params = request.content_type
    encoding = request.headers.get("content-encoding")
    if media_type == MULTIPART:

        def from_form(body: BinaryIO) -> IngestResult:
            part = open_part(body, params.get("boundary"), FILE_FIELD)
            return lake.ingest(name, part.stream, part.content_type, part.filename, options, mode, key, evolve, who=request.user)

        return from_form
    if not media_type:
        raise UnsupportedMedia("the body needs a Content-Type (application/octet-stream to have the format recognised)", {"accepted": BODY_TYPES})
    return lambda body: lake.ingest(name, body, media_type, None, options, mode, key, evolve, encoding, request.user)
