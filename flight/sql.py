"""Flight SQL: the commands the ADBC driver (and so pandas and polars) sends, mapped onto the lake.

| client call                     | wire                                                        |
|---------------------------------|-------------------------------------------------------------|
| `cursor.execute(sql[, params])` | CreatePreparedStatement, [DoPut(CommandPreparedStatementQuery) with the parameters], GetFlightInfo(CommandPreparedStatementQuery), DoGet, ClosePreparedStatement |
| `cursor.executemany`            | CreatePreparedStatement, DoPut(CommandPreparedStatementUpdate) with the rows |
| `cursor.executescript`          | DoPut(CommandStatementUpdate)                               |
| `adbc_ingest`                   | DoPut(CommandStatementIngest)                               |
| `adbc_get_objects` ...          | GetFlightInfo(CommandGetCatalogs / GetDbSchemas / GetTables / GetTableTypes / GetSqlInfo), DoGet |

Metadata tickets are the command itself and query tickets wrap a `tickets.py` ticket in
`TicketStatementQuery`, so DoGet needs no server state either way.
"""

from __future__ import annotations

import functools
from typing import Iterator

import pyarrow as pa
import pyarrow.flight as flight

from flight import metadata, queries, tickets
from flight import sql_codec as codec
from flight import sql_schemas as schemas
from flight.errors import Unsupported
from flight.datasets import EVOLVE_OPTION
from flight.middleware import caller, evolve_requested, idempotency_key
from flight.prepared import PreparedStatements
from flight.uploads import incoming_batches, read_params
from lakehouse import statements
from lakehouse.admission import Admission
from lakehouse.auth import READ, WRITE, Identity
from lakehouse.errors import InvalidInput, NotFound
from lakehouse.lake import Lake

_OPTIONS = codec.TableDefinitionOptions
_NOT_EXIST = codec.TableNotExistOption
_EXISTS = codec.TableExistsOption
# (if the table does not exist, if it exists) -> ingest mode
_INGEST_MODES = {
    (_NOT_EXIST.CREATE, _EXISTS.FAIL): "create",
    (_NOT_EXIST.FAIL, _EXISTS.APPEND): "append",
    (_NOT_EXIST.CREATE, _EXISTS.APPEND): "create_append",
    (_NOT_EXIST.CREATE, _EXISTS.REPLACE): "replace",
    (_NOT_EXIST.FAIL, _EXISTS.REPLACE): "replace",
}
_METADATA = (
    codec.CommandGetCatalogs, codec.CommandGetDbSchemas, codec.CommandGetTables, codec.CommandGetTableTypes,
    codec.CommandGetSqlInfo, codec.CommandGetPrimaryKeys, codec.CommandGetExportedKeys,
    codec.CommandGetImportedKeys, codec.CommandGetCrossReference, codec.CommandGetXdbcTypeInfo,
)
ACTIONS = {
    codec.ACTION_CREATE_PREPARED_STATEMENT: "Flight SQL: prepare a statement.",
    codec.ACTION_CLOSE_PREPARED_STATEMENT: "Flight SQL: close a prepared statement.",
    codec.ACTION_CANCEL_QUERY: "Flight SQL (older clients): stop the running query of a FlightInfo.",
}


class FlightSql:
    def __init__(self, lake: Lake, prepared: PreparedStatements, gate: Admission) -> None:
        self.lake = lake
        self.prepared = prepared
        self.gate = gate

    # -- GetFlightInfo / GetSchema ---------------------------------------------------------

    def info(self, cmd: codec.Command, descriptor: flight.FlightDescriptor, who: Identity) -> flight.FlightInfo:
        if isinstance(cmd, codec.CommandStatementQuery):
            _no_transaction(cmd.transaction_id)
            return queries.statement_info(self.lake, descriptor, statements.parse_one(cmd.query), who, wrap_ticket=_wrap)
        if isinstance(cmd, codec.CommandPreparedStatementQuery):
            p = self.prepared.get(cmd.prepared_statement_handle)
            return queries.statement_info(self.lake, descriptor, p.statement, who, p.params, wrap_ticket=_wrap)
        who.require(READ, "read metadata")
        if isinstance(cmd, _METADATA):
            table = self._metadata(cmd, who)
            return flight.FlightInfo(table.schema, descriptor, [flight.FlightEndpoint(descriptor.command, [])], table.num_rows, -1)
        raise _unsupported(cmd, "GetFlightInfo")

    def schema(self, cmd: codec.Command, who: Identity) -> pa.Schema:
        if isinstance(cmd, codec.CommandStatementQuery):
            return queries.statement_schema(self.lake, statements.parse_one(cmd.query), who)
        if isinstance(cmd, codec.CommandPreparedStatementQuery):
            p = self.prepared.get(cmd.prepared_statement_handle)
            return queries.statement_schema(self.lake, p.statement, who, p.params)
        if isinstance(cmd, _METADATA):
            return self._metadata(cmd, who).schema
        raise _unsupported(cmd, "GetSchema")

    def _metadata(self, cmd: codec.Command, who: Identity) -> pa.Table:
        if isinstance(cmd, codec.CommandGetCatalogs):
            return metadata.catalogs()
        if isinstance(cmd, codec.CommandGetDbSchemas):
            return metadata.db_schemas(cmd)
        if isinstance(cmd, codec.CommandGetTables):
            return metadata.tables(self.lake, cmd, who)
        if isinstance(cmd, codec.CommandGetTableTypes):
            return metadata.table_types()
        if isinstance(cmd, codec.CommandGetSqlInfo):
            return metadata.sql_info(cmd, self.prepared.timeout)
        if isinstance(cmd, codec.CommandGetXdbcTypeInfo):
            return metadata.xdbc_type_info(cmd)
        if isinstance(cmd, codec.CommandGetPrimaryKeys):
            return metadata.no_keys(schemas.PRIMARY_KEYS_SCHEMA)
        return metadata.no_keys(schemas.KEYS_SCHEMA)

    # -- DoGet -----------------------------------------------------------------------------

    def stream(self, cmd: codec.Command, context: flight.ServerCallContext) -> flight.FlightDataStream:
        if isinstance(cmd, codec.TicketStatementQuery):
            ticket = tickets.decode(cmd.statement_handle)
            if isinstance(ticket, tickets.CountTicket):
                return queries.count_stream(ticket)
            if not isinstance(ticket, tickets.QueryTicket):
                raise InvalidInput("invalid ticket: a TicketStatementQuery carries a query")
            return queries.query_stream(self.lake, ticket, self.gate, context)
        if isinstance(cmd, _METADATA):
            return flight.RecordBatchStream(self._metadata(cmd, caller(context)))
        raise _unsupported(cmd, "DoGet")

    # -- DoPut -----------------------------------------------------------------------------

    def put(self, cmd: codec.Command, reader: flight.MetadataRecordBatchReader, writer: flight.FlightMetadataWriter, context: flight.ServerCallContext, who: Identity) -> None:
        if isinstance(cmd, codec.CommandPreparedStatementQuery):
            who.require(READ, "bind parameters")
            self.prepared.bind(cmd.prepared_statement_handle, read_params(reader))
            return
        if isinstance(cmd, codec.CommandStatementUpdate):
            _no_transaction(cmd.transaction_id)
            count = self._update(statements.parse(cmd.query), who)
        elif isinstance(cmd, codec.CommandPreparedStatementUpdate):
            p = self.prepared.get(cmd.prepared_statement_handle)
            count = self._update([p.statement], who, read_params(reader))
        elif isinstance(cmd, codec.CommandStatementIngest):
            who.require(WRITE, "ingest")
            who.require_dataset(cmd.table)
            count = self._ingest(cmd, reader, context)
        else:
            raise _unsupported(cmd, "DoPut")
        writer.write(pa.py_buffer(codec.encode_message(codec.DoPutUpdateResult(count))))

    def _update(self, batch: list[statements.Statement], who: Identity, params: pa.Table | None = None) -> int:
        queries_given = [s.sql for s in batch if s.is_query]
        if queries_given:
            raise InvalidInput(f"an update cannot run a query ({queries_given[0][:60]!r}); send queries with GetFlightInfo (cursor.execute)")
        for statement in batch:  # all refused before any runs
            queries.require(who, statement)
        if params is not None and params.num_columns == 0:
            params = None
        return sum(statements.execute(self.lake, s, params, who) for s in batch)

    def _ingest(self, cmd: codec.CommandStatementIngest, reader: flight.MetadataRecordBatchReader, context: flight.ServerCallContext) -> int:
        _no_transaction(cmd.transaction_id)
        if cmd.temporary:
            raise Unsupported("temporary tables are not supported: every dataset is stored in the lake")
        if cmd.catalog not in (None, "", statements.CATALOG_NAME):
            raise NotFound(f"unknown catalog {cmd.catalog!r}: datasets live in catalog {statements.CATALOG_NAME!r}")
        if cmd.schema not in (None, "", statements.SCHEMA_NAME):
            raise NotFound(f"unknown schema {cmd.schema!r}: datasets live in schema {statements.SCHEMA_NAME!r}")
        options = cmd.table_definition_options or _OPTIONS()
        mode = _INGEST_MODES.get((options.if_not_exist, options.if_exists))
        if mode is None:
            raise InvalidInput(f"unsupported table definition options: if_not_exist={options.if_not_exist!r}, if_exists={options.if_exists!r}")
        if options.if_not_exist == _NOT_EXIST.FAIL:
            self.lake.manifest(cmd.table)  # NotFound before any byte is written
        key = idempotency_key(context)
        evolve = evolve_requested(context) or (cmd.options or {}).get(EVOLVE_OPTION, "").lower() == "true"
        who = caller(context)
        return self.lake.ingest_arrow(cmd.table, incoming_batches(reader, context), schema=reader.schema, mode=mode, idempotency_key=key, evolve=evolve, who=who).rows

    # -- DoAction --------------------------------------------------------------------------

    def action(self, action_type: str, body: bytes, who: Identity) -> Iterator[bytes]:
        cmd = codec.decode_command(body)
        if action_type == codec.ACTION_CREATE_PREPARED_STATEMENT and isinstance(cmd, codec.ActionCreatePreparedStatementRequest):
            _no_transaction(cmd.transaction_id)
            yield codec.encode_any(self._prepare(cmd.query, who))
        elif action_type == codec.ACTION_CLOSE_PREPARED_STATEMENT and isinstance(cmd, codec.ActionClosePreparedStatementRequest):
            self.prepared.close(cmd.prepared_statement_handle)
        elif action_type == codec.ACTION_CANCEL_QUERY and isinstance(cmd, codec.ActionCancelQueryRequest):
            yield codec.encode_any(codec.ActionCancelQueryResult(queries.cancel(self.lake, cmd.info, who)))
        else:
            raise InvalidInput(f"action {action_type!r} does not take a {type(cmd).__name__}")

    def _prepare(self, sql: str, who: Identity) -> codec.ActionCreatePreparedStatementResult:
        """Bind now, so bad SQL is reported at prepare time, and describe the statement: its
        result schema and its parameters' types (JDBC's `PreparedStatement` needs the latter
        to accept any value)."""
        statement = statements.parse_one(sql)
        dataset_schema = b""
        result: pa.Schema | None
        if statement.is_query and statement.parameter_count:
            result, parameters = self.lake.describe(statement.sql, who)
        elif statement.is_query:
            result, parameters = self.lake.query_schema(statement.sql, who=who), pa.schema([])
        else:
            result, parameters = None, statements.parameter_schema(self.lake, statement, who)
        if result is not None:
            dataset_schema = schemas.ipc_schema_bytes(queries.result_schema(self.lake, statement.sql, result, who))
        parameter_schema = schemas.ipc_schema_bytes(parameters) if len(parameters) else b""
        handle = self.prepared.create(statement)
        return codec.ActionCreatePreparedStatementResult(handle, dataset_schema, parameter_schema)


@functools.lru_cache(maxsize=1024)
def _wrap(ticket: bytes) -> bytes:
    """A query ticket as Flight SQL's `TicketStatementQuery` (the same query, the same bytes)."""
    return codec.encode_any(codec.TicketStatementQuery(ticket))


def _no_transaction(transaction_id: bytes | None) -> None:
    if transaction_id:
        raise Unsupported("transactions are not supported: every statement commits on its own")


def _unsupported(cmd: codec.Command, rpc: str) -> Unsupported:
    name = cmd.type_name if isinstance(cmd, codec.Unsupported) else type(cmd).__name__
    return Unsupported(f"{name} is not supported by {rpc} on this server")
