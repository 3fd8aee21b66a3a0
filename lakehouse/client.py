"""A running server as the command line reaches it: Flight calls with an optional bearer token.

`lakehouse ingest --server` reads the files here (the same readers the server uses, so a
file is read the same way wherever it is loaded) and sends Arrow batches with a DoPut;
`lakehouse sql --server` runs the query with a GetFlightInfo on the SQL text and a DoGet.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.flight as flight

from lakehouse.errors import InvalidInput, LakehouseError, NotFound, Unauthenticated, Unavailable

__all__ = ["Remote"]


class Remote:
    """One server, at `uri` (grpc:// or grpc+tls://), called with `token` when given."""

    def __init__(self, uri: str, token: str | None = None) -> None:
        if not uri.startswith(("grpc://", "grpc+tcp://", "grpc+tls://")):
            raise InvalidInput(f"--server takes a Flight address such as grpc://127.0.0.1:8815, got {uri!r}")
        self.uri = uri
        self._client = flight.connect(uri)
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self._options = flight.FlightCallOptions(headers=headers)

    def close(self) -> None:
        self._client.close()

    def put(self, name: str, mode: str, evolve: bool, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> dict[str, Any]:
        """Send `batches` as an ingest into dataset `name`; the server's ingest result."""
        path = [name, mode] + (["evolve"] if evolve else [])
        with _errors(self.uri):
            writer, reader = self._client.do_put(flight.FlightDescriptor.for_path(*path), schema, self._options)
            try:
                for batch in batches:
                    writer.write_batch(batch)
                writer.done_writing()
                answer = reader.read()
            finally:
                writer.close()
        return json.loads(answer.to_pybytes()) if answer is not None else {}

    def query(self, sql: str) -> pa.RecordBatchReader:
        """The result of `sql`, streamed from the server's first endpoint."""
        with _errors(self.uri):
            info = self._client.get_flight_info(flight.FlightDescriptor.for_command(sql), self._options)
            return self._client.do_get(info.endpoints[0].ticket, self._options).to_reader()


class _errors:
    """Flight's errors as the core's, so the command line reports them the same way."""

    def __init__(self, uri: str) -> None:
        self._uri = uri

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, LakehouseError):
            return
        message = str(exc).split(". Detail:")[0].split(". gRPC client debug context:")[0]
        if isinstance(exc, flight.FlightUnauthenticatedError):
            raise Unauthenticated(f"{self._uri} refused the credentials (give --token): {message}") from None
        if isinstance(exc, flight.FlightUnavailableError):
            raise Unavailable(f"cannot reach {self._uri}: {message}") from None
        if isinstance(exc, (pa.ArrowKeyError,)) or "not found" in message:
            raise NotFound(message) from None
        if isinstance(exc, (flight.FlightError, pa.ArrowException)):
            raise InvalidInput(message) from None
