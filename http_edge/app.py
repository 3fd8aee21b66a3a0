"""The HTTP edge as a Litestar app: every route calls the one `Lake`; errors map in `errors.py`."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from http_edge.auth import audited, authentication, security_components
from http_edge.catalog import CatalogController
from http_edge.errors import EXCEPTION_HANDLERS
from http_edge.health import HealthController
from http_edge.ingest import IngestController
from http_edge.metrics import MetricsController
from http_edge.sql import SqlController
from http_edge.storage import StorageController
from lakehouse.admission import Admission
from lakehouse.lake import Lake


def create_app(lake: Lake) -> Litestar:
    """The app; OpenAPI at /schema/openapi.json. Upload routes accept up to `http.max_upload_bytes`."""

    gate = lake.admission("HTTP", lake.config.http.max_concurrent_queries)

    def provide_lake() -> Lake:
        return lake

    def provide_gate() -> Admission:
        return gate

    components, security = security_components()
    return Litestar(
        route_handlers=[HealthController, MetricsController, IngestController, SqlController, CatalogController, StorageController],
        dependencies={"lake": Provide(provide_lake, sync_to_thread=False), "query_gate": Provide(provide_gate, sync_to_thread=False)},
        middleware=[audited, authentication(lake.auth)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=lake.config.http.max_upload_bytes,
        openapi_config=OpenAPIConfig(title="lakehouse HTTP edge", version="0.1.0", components=components, security=security),
        logging_config=None,  # the process's own logging set-up applies; errors.py logs failures
    )
