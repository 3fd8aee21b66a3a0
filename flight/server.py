"""The Arrow Flight server: plain Flight and Flight SQL over one `Lake`.

Each RPC looks at what it was given and hands it to the module for that concept:

* a path descriptor `for_path("<dataset>"[, "<mode>"])` is a dataset (`datasets.py`);
* a command descriptor holding a Flight SQL message is Flight SQL (`sql.py`); any other
  command is SQL text (`queries.py`);
* a ticket is a Flight SQL message, a lakehouse ticket or SQL text (`tickets.py`);
* an action is a maintenance action (`actions.py`) or a Flight SQL one.

Every handler maps the core's errors to Flight errors through `errors.flight_errors`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

import pyarrow.flight as flight

from flight import actions, datasets, queries, tickets
from flight import sql_codec as codec
from flight.errors import Unsupported, flight_errors
from flight.middleware import HandshakeAccepted, caller, evolve_requested, idempotency_key, middleware
from flight.tls import tls_options
from flight.prepared import DEFAULT_TIMEOUT_SECONDS, PreparedStatements
from flight.sql import ACTIONS as SQL_ACTIONS
from flight.sql import FlightSql
from flight.uploads import incoming_batches
from lakehouse import statements
from lakehouse.auth import READ, WRITE, Identity
from lakehouse.errors import InvalidInput
from lakehouse.lake import Lake

log = logging.getLogger(__name__)

_INGEST_DEFAULT_MODE = "create_append"


class LakeFlightServer(flight.FlightServerBase):
    def __init__(self, lake: Lake, location: str, statement_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(location, auth_handler=HandshakeAccepted(), middleware=middleware(lake), **tls_options(lake.config.tls))
        self.lake = lake
        self.gate = lake.admission("Flight", lake.config.flight.max_concurrent_queries)
        self.sql = FlightSql(lake, PreparedStatements(statement_timeout), self.gate)
        scheme = location.split("://", 1)[0]
        self.advertised = lake.config.flight.advertise_uri or f"{scheme}://{lake.config.flight.host}:{self.port}"
        """Where other servers and clients reach this one (`flight.advertise_uri`, else as bound)."""

    # -- reading ---------------------------------------------------------------------------

    @flight_errors
    def list_flights(self, context: flight.ServerCallContext, criteria: bytes) -> Iterator[flight.FlightInfo]:
        """One FlightInfo per dataset; non-empty `criteria` is a name prefix."""
        who = caller(context)
        who.require(READ, "list datasets")
        prefix = bytes(criteria or b"").decode("utf-8")
        infos = [datasets.dataset_info(self.lake, m) for m in self.lake.datasets() if m.name.startswith(prefix) and who.may_use(m.name)]
        return iter(infos)

    @flight_errors
    def get_flight_info(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        who = caller(context)
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            name, version, as_of = datasets.read_target(descriptor)
            _read_dataset(who, name)
            return datasets.dataset_info(self.lake, self.lake.manifest_then(name, version, as_of))
        cmd = _sql_command(descriptor.command)
        if cmd is not None:
            return self.sql.info(cmd, descriptor, who)
        return queries.statement_info(self.lake, descriptor, statements.parse_one(_sql_text(descriptor.command)), who)

    @flight_errors
    def get_schema(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor) -> flight.SchemaResult:
        who = caller(context)
        who.require(READ, "read schemas")
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            name, version, as_of = datasets.read_target(descriptor)
            _read_dataset(who, name)
            return flight.SchemaResult(self.lake.manifest_then(name, version, as_of).schema)
        cmd = _sql_command(descriptor.command)
        if cmd is not None:
            return flight.SchemaResult(self.sql.schema(cmd, who))
        return flight.SchemaResult(queries.statement_schema(self.lake, statements.parse_one(_sql_text(descriptor.command)), who))

    @flight_errors
    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.FlightDataStream:
        who = caller(context)
        who.require(READ, "read")
        cmd = _sql_command(ticket.ticket)
        if cmd is not None:
            return self.sql.stream(cmd, context)
        parsed = tickets.decode(ticket.ticket)
        if isinstance(parsed, tickets.ObjectsTicket):
            who.require_dataset(parsed.dataset)
            return datasets.objects_stream(self.lake, parsed)
        if isinstance(parsed, tickets.CountTicket):
            return queries.count_stream(parsed)
        return queries.query_stream(self.lake, parsed, self.gate, context)

    # -- writing ---------------------------------------------------------------------------

    @flight_errors
    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        who = caller(context)
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            name, mode, evolve = datasets.path_target(descriptor)
            who.require(WRITE, "ingest")
            who.require_dataset(name)
            result = self.lake.ingest_arrow(
                name, incoming_batches(reader, context), schema=reader.schema, mode=mode or _INGEST_DEFAULT_MODE,
                idempotency_key=idempotency_key(context), evolve=evolve or evolve_requested(context), who=who,
            )
            log.info("DoPut %s (%s): %d rows in %d objects", name, result.mode, result.rows, len(result.objects))
            writer.write(datasets.put_result(result))
            return
        cmd = _sql_command(descriptor.command)
        if cmd is None:
            raise InvalidInput('DoPut takes for_path("<dataset>"[, "<mode>"]) or a Flight SQL command')
        self.sql.put(cmd, reader, writer, context, who)

    # -- actions ---------------------------------------------------------------------------

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        cancel = (codec.ACTION_CANCEL_FLIGHT_INFO, "Stop the running query of a FlightInfo (CancelFlightInfoRequest).")
        return [(name, doc) for name, (doc, _, _) in actions.ACTIONS.items()] + list(SQL_ACTIONS.items()) + [cancel]

    @flight_errors
    def do_action(self, context: flight.ServerCallContext, action: flight.Action) -> Iterator[bytes]:
        body = action.body.to_pybytes() if action.body is not None else b""
        who = caller(context)
        if action.type in actions.ACTIONS:
            return iter([actions.run(self.lake, action.type, body, who)])
        if action.type == codec.ACTION_CANCEL_FLIGHT_INFO:
            status = queries.cancel(self.lake, codec.decode_message(codec.CancelFlightInfoRequest, body).info, who)
            return iter([codec.encode_message(codec.CancelFlightInfoResult(status))])
        if action.type in SQL_ACTIONS:
            who.require(READ, "prepare statements")
            return iter(list(self.sql.action(action.type, body, who)))
        raise Unsupported(f"unknown action {action.type!r}; available: {', '.join(n for n, _ in self.list_actions(context))}")


def _read_dataset(who: Identity, name: str) -> None:
    who.require(READ, "read datasets")
    who.require_dataset(name)


def _sql_command(data: bytes) -> codec.Command | None:
    """The Flight SQL message in a command or ticket, or None when it holds something else."""
    try:
        return codec.decode_command(data)
    except codec.DecodeError:
        return None


def _sql_text(data: bytes) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("a command must be a Flight SQL message or UTF-8 SQL text") from None


def serve_flight(lake: Lake, statement_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> LakeFlightServer:
    """A started server on `grpc://{flight.host}:{flight.port}` (port 0 picks a free one);
    `.wait()` blocks until `.shutdown()`. Prepared statements unused for
    `statement_timeout` seconds are dropped."""
    scheme = "grpc+tls" if lake.config.tls.enabled else "grpc"
    return LakeFlightServer(lake, f"{scheme}://{lake.config.flight.host}:{lake.config.flight.port}", statement_timeout)


@contextmanager
def running(lake: Lake, statement_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Iterator[LakeFlightServer]:
    """`serve_flight(lake)` serving in a background thread for the duration of the block."""
    server = serve_flight(lake, statement_timeout)
    thread = threading.Thread(target=server.wait, name="flight", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=30)
