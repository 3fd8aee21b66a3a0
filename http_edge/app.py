"""The HTTP edge as a Litestar app: every route calls the one `Lake`; errors map in `errors.py`."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from http_edge.auth import audited, authentication, security_components
from http_edge.catalog import CatalogController
from http_edge.console import ConsoleController
from http_edge.errors import EXCEPTION_HANDLERS
from http_edge.health import HealthController
from http_edge.ingest import IngestController
from http_edge.metrics import MetricsController
from http_edge.sql import SqlController
from http_edge.storage import StorageController
from lakehouse.admission import Admission
from lakehouse.lake import Lake


HERE = Path(__file__).parent
VENDOR = "/static/vendor"


def create_app(lake: Lake) -> Litestar:
    """The app; the console at /, OpenAPI at /schema/openapi.json and its pages at /schema/swagger
    (assets served from `static/`, so they work offline). Upload routes accept up to
    `http.max_upload_bytes`."""

    gate = lake.admission("HTTP", lake.config.http.max_concurrent_queries)

    def provide_lake() -> Lake:
        return lake

    def provide_gate(lake: NamedDependency[Lake]) -> Admission:
        """The edge's cap on the lake's queries. Taking `lake` puts the two in batches of one:
        Litestar resolves a batch of several in a task group of its own, a sixth of the time
        this edge spends on a small query."""
        return gate

    components, security = security_components()
    return Litestar(
        route_handlers=[
            ConsoleController, HealthController, MetricsController, IngestController, SqlController, CatalogController, StorageController,
            create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False),
        ],
        dependencies={"lake": Provide(provide_lake, sync_to_thread=False), "query_gate": Provide(provide_gate, sync_to_thread=False)},
        middleware=[audited, authentication(lake.auth)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=lake.config.http.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="lakehouse HTTP edge", version="0.1.0", components=components, security=security,
            render_plugins=[
                SwaggerRenderPlugin(
                    js_url=f"{VENDOR}/swagger-ui-bundle.js", css_url=f"{VENDOR}/swagger-ui.css",
                    standalone_preset_js_url=f"{VENDOR}/swagger-ui-standalone-preset.js", path=["/swagger", "/"],
                    favicon="<link rel='icon' href='data:,'>",
                ),
            ],
        ),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        logging_config=None,  # the process's own logging set-up applies; errors.py logs failures
    )
