"""The web console at `/`: a SQL editor with paged results, the datasets, an upload, a login.

Server-rendered HTML (Jinja templates in `templates/`) with htmx for the fragments that
change, both served from this edge (`static/`, nothing from a CDN). The console uses the same
core calls as the JSON API, and its upload posts to `/v1/ingest` itself. With auth on, a login
sets an HttpOnly, SameSite=Strict cookie holding a bearer token, which the authentication
middleware accepts like an `Authorization` header.
"""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER, HTTP_401_UNAUTHORIZED

from http_edge.auth import OPEN, TOKEN_COOKIE, needs
from lakehouse.admission import Admission
from lakehouse.auth import READ, Identity
from lakehouse.errors import Unauthenticated
from lakehouse.lake import Lake

PAGE_ROWS = 50


class LoginForm(msgspec.Struct):
    user: str
    password: str


class QueryForm(msgspec.Struct):
    sql: str
    page: int = 0


class ConsoleController(Controller):
    include_in_schema = False

    @get("/", opt={OPEN: True}, sync_to_thread=False)
    def page(self, request: Request[Any, Any, Any], lake: NamedDependency[Lake]) -> Template:
        who = _from_cookie(request, lake)
        return _page(lake, who)

    @post("/console/login", opt={OPEN: True}, status_code=HTTP_200_OK, sync_to_thread=True)
    def login(self, request: Request[Any, Any, Any], lake: NamedDependency[Lake], data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response[Any]:
        credentials = base64.b64encode(f"{data.user}:{data.password}".encode()).decode()
        try:
            login = lake.auth.identify(f"Basic {credentials}")
        except Unauthenticated:
            return _page(lake, None, error="wrong user name or password", status=HTTP_401_UNAUTHORIZED)
        redirect = Redirect("/", status_code=HTTP_303_SEE_OTHER)
        token = lake.auth.token_for(login)
        if lake.auth.enabled and token is not None:
            redirect.set_cookie(
                TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                max_age=int(lake.config.auth.token_ttl_seconds), path="/",
            )
        return redirect

    @post("/console/logout", opt={OPEN: True}, status_code=HTTP_303_SEE_OTHER, sync_to_thread=False)
    def logout(self) -> Redirect:
        redirect = Redirect("/", status_code=HTTP_303_SEE_OTHER)
        redirect.delete_cookie(TOKEN_COOKIE, path="/")
        return redirect

    @post("/console/sql", guards=[needs(READ, "run queries")], status_code=HTTP_200_OK)
    async def sql(
        self,
        request: Request[Any, Any, Any],
        lake: NamedDependency[Lake],
        query_gate: NamedDependency[Admission],
        data: Annotated[QueryForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        page = max(0, data.page)
        started = time.monotonic()
        columns, rows, more = await anyio.to_thread.run_sync(lambda: _page_of(lake, data.sql, page, query_gate, request.user))
        first = page * PAGE_ROWS + 1
        return Template(
            "results.html.j2",
            context={
                "columns": columns, "rows": rows, "more": more, "page": page, "first": first, "last": first + len(rows) - 1,
                "seconds": f"{time.monotonic() - started:.3f}",
            },
        )

    @get("/console/datasets", guards=[needs(READ, "read the catalog")], sync_to_thread=False)
    def datasets(self, request: Request[Any, Any, Any], lake: NamedDependency[Lake]) -> Template:
        shown = [m.to_json() for m in lake.datasets() if request.user.may_use(m.name)]
        return Template("datasets.html.j2", context={"datasets": shown})


def _page(lake: Lake, who: Identity | None, error: str | None = None, status: int = HTTP_200_OK) -> Template:
    return Template(
        "console.html.j2",
        context={"user": who.user if who is not None else None, "auth": lake.auth.enabled, "error": error, "sql": ""},
        status_code=status,
    )


def _from_cookie(request: Request[Any, Any, Any], lake: Lake) -> Identity | None:
    """Who the console's page is for: anyone when auth is off, else the cookie's token holder."""
    token = request.cookies.get(TOKEN_COOKIE)
    try:
        return lake.auth.identify(f"Bearer {token}" if token else None).identity
    except Unauthenticated:
        return None


def _page_of(lake: Lake, sql: str, page: int, gate: Admission, who: Identity) -> tuple[list[str], list[list[Any]], bool]:
    """Rows `page * PAGE_ROWS` to the next `PAGE_ROWS`, and whether more follow; nothing past
    them is read (the query stops when its reader is closed)."""
    skip, want = page * PAGE_ROWS, PAGE_ROWS + 1
    rows: list[list[Any]] = []
    with lake.query(sql, gate=gate, who=who) as result:
        columns = result.schema.names
        for batch in result:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            part = batch.slice(skip, want - len(rows))
            skip = 0
            rows.extend(list(row) for row in zip(*(column.to_pylist() for column in part.columns)))
            if len(rows) >= want:
                break
    return columns, rows[:PAGE_ROWS], len(rows) > PAGE_ROWS
