"""Serving the app with uvicorn, stoppable from another thread (the CLI runs it in a thread)."""

from __future__ import annotations

import ssl

import uvicorn

from http_edge.app import create_app
from http_edge.protocol import BoundedHttpToolsProtocol
from lakehouse.lake import Lake

GRACEFUL_SECONDS = 2


class HttpServer:
    def __init__(self, lake: Lake) -> None:
        http = lake.config.http
        tls = lake.config.tls
        config = uvicorn.Config(
            create_app(lake),
            host=http.host,
            port=http.port,
            log_config=None,  # the process's own logging set-up applies
            access_log=False,  # the audit line of each request says as much, and who asked
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            http=BoundedHttpToolsProtocol,
            ssl_certfile=tls.cert or None,
            ssl_keyfile=tls.key or None,
            ssl_ca_certs=tls.client_ca or None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls.client_ca else ssl.CERT_NONE,
        )
        self._server = uvicorn.Server(config)

    def run(self) -> None:
        """Serve until `stop`; uvicorn installs signal handlers only on the main thread."""
        self._server.run()

    def stop(self) -> None:
        """Stop accepting connections; requests in flight get `GRACEFUL_SECONDS` to finish
        (running queries are interrupted first, see `Lake.stop_queries`) before `run` returns."""
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return self._server.started

    @property
    def port(self) -> int:
        """The bound port once started (so port 0 in the config picks a free one)."""
        return int(self._server.servers[0].sockets[0].getsockname()[1])


def serve_http(lake: Lake) -> HttpServer:
    return HttpServer(lake)
