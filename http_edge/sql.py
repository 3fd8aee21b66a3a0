"""`POST /v1/sql`: run one read-only query; the result in the format the Accept header asks for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import JSONBody
from litestar.response import Response, Stream
from litestar.status_codes import HTTP_200_OK, HTTP_406_NOT_ACCEPTABLE

from http_edge.auth import needs
from http_edge.errors import error_responses
from lakehouse.auth import READ
from http_edge.results import ENCODERS, JSON, Rows, first_rows
from http_edge.streams import DisconnectWatch, iterate_in_thread
from lakehouse.admission import Admission
from lakehouse.errors import InvalidInput
from lakehouse.lake import Lake

SQL_BODY_BYTES = 1024 * 1024
TRUNCATED_HEADER = "X-Lakehouse-Truncated"
STALE_HEADER = "X-Lakehouse-Catalog-Stale"
BATCH_ROWS = 2048
"""Rows per batch of an HTTP result: JSON and CSV encode row by row anyway, and small batches
keep a result of wide rows (20 KB each) at a few tens of MB per batch in flight."""


class SqlRequest(msgspec.Struct, forbid_unknown_fields=True):
    sql: str
    max_rows: Annotated[int, msgspec.Meta(ge=0, description="at most this many rows; above the server's http.max_rows is a 400")] | None = None
    params: list[Any] | None = None
    version: Annotated[int, msgspec.Meta(ge=1, description="read the one dataset the query names as of this committed version")] | None = None
    as_of: Annotated[datetime, msgspec.Meta(description="read the one dataset the query names as it was at this time (ISO 8601)")] | None = None


class SqlController(Controller):
    tags = ["sql"]

    @post(
        ["/v1/sql", "/sql"],
        status_code=HTTP_200_OK,
        request_max_body_size=SQL_BODY_BYTES,
        guards=[needs(READ, "run queries")],
        responses=error_responses(400, 401, 403, 406, 413, 503, 504),
        response_headers=[
            ResponseHeader(
                name=TRUNCATED_HEADER,
                description="true when rows past max_rows were left out; unknown when the result was too large to tell before streaming",
                documentation_only=True,
            ),
            ResponseHeader(
                name=STALE_HEADER,
                description="present while storage is unreachable: seconds the answer's catalog has not been refreshed",
                documentation_only=True,
                required=False,
            ),
        ],
        description=(
            "Rows as a JSON array of objects (default), or NDJSON, CSV or an Arrow IPC stream by Accept. "
            f"At most max_rows rows; {TRUNCATED_HEADER} says whether more were left out, and a cut body ends with a marker: "
            'a last {"$truncated": {...}} object in JSON and NDJSON, a "# truncated" line in CSV, an empty batch with '
            "lakehouse.truncated metadata in Arrow."
        ),
    )
    async def sql(self, data: JSONBody[SqlRequest], request: Request[Any, Any, Any], lake: NamedDependency[Lake], query_gate: NamedDependency[Admission]) -> Response[bytes] | Stream:
        media_type = request.accept.best_match(list(ENCODERS)) if "accept" in request.headers else JSON
        if media_type is None:
            raise HTTPException(status_code=HTTP_406_NOT_ACCEPTABLE, detail=f"cannot answer with {request.headers['accept']!r}", extra={"available": list(ENCODERS)})
        ceiling = lake.config.http.max_rows
        if data.max_rows is not None and data.max_rows > ceiling:
            raise InvalidInput(f"max_rows {data.max_rows} is above this server's limit of {ceiling} rows (http.max_rows)", {"max_rows": ceiling})
        limit = ceiling if data.max_rows is None else data.max_rows
        watch = DisconnectWatch(request)
        try:
            # An async handler running the query in a thread itself: Litestar wraps a
            # sync_to_thread handler once per path, so with the alias path it would be wrapped twice.
            def run() -> tuple[Rows, bytes | None]:
                result = lake.query(
                    data.sql, data.params, gate=query_gate, client_gone=watch.gone, batch_rows=BATCH_ROWS, who=request.user,
                    version=data.version, as_of=data.as_of,
                )
                rows = first_rows(result, limit)
                # A result read whole is encoded here, in one step off the event loop.
                return rows, None if rows.truncated is None else b"".join(ENCODERS[media_type](rows))

            rows, whole = await anyio.to_thread.run_sync(run)
        except BaseException:
            watch.close()
            raise
        headers = {TRUNCATED_HEADER: "unknown" if rows.truncated is None else str(rows.truncated).lower()}
        stale = lake.catalog_stale_seconds
        if stale is not None:
            headers[STALE_HEADER] = f"{stale:.1f}"
        if whole is not None:
            watch.close()
            return Response(whole, media_type=media_type, headers=headers)
        return Stream(iterate_in_thread(ENCODERS[media_type](rows), on_close=watch.close), media_type=media_type, headers=headers)

