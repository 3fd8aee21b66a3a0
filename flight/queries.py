"""SQL over Flight: a statement becomes a FlightInfo, a query ticket becomes a stream.

Writes (see `lakehouse/statements.py`) run when the FlightInfo is asked for, so they take
effect even if the client never fetches. Their FlightInfo is a well-formed result all the
same, as DuckDB gives one: the schema `count: int64`, the affected row count as
`total_records`, and one endpoint whose ticket carries that count, so a client that fetches
what a "query" returned (SQLAlchemy through flightsql-dbapi) gets one row instead of nothing. A query is only bound then (its schema, and
its errors, come back at once) and runs at DoGet, streaming DuckDB's batches as they come.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.flight as flight

from flight import columns, tickets
from flight import sql_codec as codec
from flight.batches import result_stream
from flight.middleware import caller
from lakehouse import statements
from lakehouse.admission import Admission
from lakehouse.auth import READ, WRITE, Identity
from lakehouse.cluster import Part
from lakehouse.errors import InvalidInput
from lakehouse.lake import Lake
from lakehouse.statements import Statement

COUNT_SCHEMA = pa.schema([pa.field("count", pa.int64(), nullable=False)])


def statement_info(
    lake: Lake,
    descriptor: flight.FlightDescriptor,
    statement: Statement,
    who: Identity,
    params: pa.Table | None = None,
    wrap_ticket: Callable[[bytes], bytes] = lambda t: t,
) -> flight.FlightInfo:
    """Run a write, or bind a query and hand out its ticket (`wrap_ticket` dresses it for Flight SQL)."""
    require(who, statement)
    if not statement.is_query:
        count = statements.execute(lake, statement, params, who)
        endpoint = flight.FlightEndpoint(wrap_ticket(tickets.encode(tickets.CountTicket(count))), [])
        return flight.FlightInfo(COUNT_SCHEMA, descriptor, [endpoint], count, -1)
    rows = statements.bound_rows(statement, params)
    schema = result_schema(lake, statement.sql, lake.query_schema(statement.sql, rows[0] if rows else None, who), who)
    split = None if rows else lake.split(statement.sql, who)
    if split is None:
        ticket = tickets.QueryTicket(statement.sql, params if rows else None)
        return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(wrap_ticket(tickets.encode(ticket)), [])], -1, -1)
    m, shares = split
    endpoints = [
        flight.FlightEndpoint(wrap_ticket(tickets.encode(tickets.QueryTicket(statement.sql, part=Part(m.name, m.version, tuple(o.key for o in s.objects))))), list(s.locations))
        for s in shares
    ]
    return flight.FlightInfo(schema, descriptor, endpoints, -1, -1)


def require(who: Identity, statement: Statement) -> None:
    """A query needs the read permission; a write the write permission and its dataset."""
    if statement.is_query:
        who.require(READ, "run queries")
        return
    who.require(WRITE, f"run {statement.kind.value.upper()}")
    if statement.table is not None:
        who.require_dataset(statement.table)


def statement_schema(lake: Lake, statement: Statement, who: Identity, params: pa.Table | None = None) -> pa.Schema:
    """What `statement_info` would report, without running a write."""
    if not statement.is_query:
        return COUNT_SCHEMA
    who.require(READ, "run queries")
    rows = statements.bound_rows(statement, params)
    return result_schema(lake, statement.sql, lake.query_schema(statement.sql, rows[0] if rows else None, who), who)


def result_schema(lake: Lake, sql: str, schema: pa.Schema, who: Identity) -> pa.Schema:
    """A query's result schema with the Flight SQL column metadata (see `columns.py`)."""
    read = lake.sources(sql, who)
    table = next(iter(read)) if len(read) == 1 else None
    return columns.annotate(schema, lake.manifest(table).schema if table is not None else None, table)


def cancel(lake: Lake, serialized_info: bytes, who: Identity) -> codec.CancelStatus:
    """Stop the running queries of a FlightInfo's tickets that the caller started (tickets
    carry their query, so the ticket is the query's name): Flight's CancelFlightInfo and
    Flight SQL's older CancelQuery action."""
    try:
        info = flight.FlightInfo.deserialize(serialized_info)
    except (pa.ArrowException, ValueError):
        raise InvalidInput("CancelFlightInfo: the body does not hold a FlightInfo") from None
    stopped = 0
    for endpoint in info.endpoints:
        ticket = tickets.decode_any(endpoint.ticket.ticket)
        if isinstance(ticket, tickets.QueryTicket):
            stopped += lake.cancel(tickets.encode(ticket).decode(), who)
    return codec.CancelStatus.CANCELLED if stopped else codec.CancelStatus.UNSPECIFIED


def count_stream(ticket: tickets.CountTicket) -> flight.FlightDataStream:
    """The one-row answer of a write that ran at GetFlightInfo."""
    return flight.RecordBatchStream(pa.table({"count": pa.array([ticket.rows], pa.int64())}, schema=COUNT_SCHEMA))


def query_stream(lake: Lake, ticket: tickets.QueryTicket, gate: Admission, context: flight.ServerCallContext) -> flight.FlightDataStream:
    """Stream a query's result straight from DuckDB, once per bound parameter row.

    Each run holds a slot of the Flight edge's cap and is stopped when the call is cancelled
    (the client cancelled, went away or passed its deadline)."""
    rows = statements.parameter_rows(ticket.params) if ticket.params is not None else []
    who = caller(context)
    result = lake.query_each(ticket.sql, rows, gate, context.is_cancelled, who, tag=tickets.encode(ticket).decode(), part=ticket.part)
    try:
        return result_stream(result_schema(lake, ticket.sql, result.schema, who), iter(result))
    except BaseException:
        result.close()
        raise
