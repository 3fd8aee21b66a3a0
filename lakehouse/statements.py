"""SQL statements that change the lake: which are accepted, and what each becomes.

DuckDB runs only read statements (see `query.py`). A write sent as SQL is never run by
DuckDB: it is mapped onto the lake's own operations, so it lands in the catalog like any
ingest, or it is refused with a message naming the statement.

| statement                                                      | becomes                       |
|----------------------------------------------------------------|-------------------------------|
| `INSERT INTO t [(cols) | BY NAME] <query>`                     | append of the query's rows    |
| `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t AS <query>`       | create (replace) from a query |
| `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (col type, ...)`  | create (replace), empty       |
| `DROP TABLE [IF EXISTS] t`                                     | drop                          |
| `DELETE FROM t` without WHERE, `TRUNCATE [TABLE] t`            | replace with no rows          |

`<query>` (including `VALUES ...`) runs through `Lake.query`, inside the sandbox, and its
rows stream into `Lake.ingest_arrow`; they are cast to the target's column types by position
(or by the column list / BY NAME), as SQL does. Everything else that is not a read — UPDATE,
DELETE with a WHERE clause, ALTER, CREATE VIEW, COPY, ATTACH, SET, transactions — is refused:
datasets are append-only and every statement commits on its own.

DuckDB's parser splits and classifies the statements; the target table and the query part
are then read from the statement's tokens (quotes and comments respected), since DuckDB
offers no parse tree for writes.
"""

from __future__ import annotations

import atexit
import enum
import functools
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import duckdb
import pyarrow as pa

from lakehouse.catalog import committing
from lakehouse.errors import InvalidInput, NotFound, TooLarge

if TYPE_CHECKING:
    from lakehouse.auth import Identity
    from lakehouse.lake import Lake

MAX_SQL_BYTES = 1024 * 1024
"""The longest SQL text taken over Flight, as the HTTP edge's body limit does for /v1/sql."""
CATALOG_NAME = "memory"
SCHEMA_NAME = "main"
"""Where DuckDB puts the datasets' views: `t`, `main.t` and `memory.main.t` are one dataset."""

_SANDBOX = {"enable_external_access": False, "autoinstall_known_extensions": False, "autoload_known_extensions": False}
_parser = duckdb.connect(":memory:", config=_SANDBOX)
_parser_lock = threading.Lock()
atexit.register(_parser.close)


class Kind(enum.Enum):
    QUERY = "query"
    INSERT = "insert"
    CREATE_TABLE_AS = "create table as"
    CREATE_TABLE = "create table"
    DROP_TABLE = "drop table"
    TRUNCATE = "truncate"


@dataclass(frozen=True)
class Statement:
    """One SQL statement as the lake sees it."""

    sql: str
    kind: Kind
    parameter_count: int = 0
    table: str | None = None  # the target, as written
    source: str | None = None  # the query feeding INSERT / CREATE TABLE AS
    columns: tuple[str, ...] | None = None  # INSERT's column list
    by_name: bool = False  # INSERT ... BY NAME
    or_replace: bool = False
    if_not_exists: bool = False
    if_exists: bool = False
    definition: str | None = None  # "(col type, ...)" of CREATE TABLE

    @property
    def is_query(self) -> bool:
        return self.kind is Kind.QUERY


REMEMBERED_STATEMENTS = 1024
REMEMBERED_SQL_CHARS = 4096


def parse(sql: str) -> list[Statement]:
    """Split `sql` into statements and classify each; raises `InvalidInput` for SQL that is
    malformed or that the lake refuses, `TooLarge` past `MAX_SQL_BYTES`.

    A statement's classification depends on its text alone, and clients send the same few
    queries over and over (each ADBC `execute` prepares, then describes, the same text): short
    texts are remembered, so the one parser, shared under a lock, is not on their path."""
    return list(_parse_kept(sql) if len(sql) <= REMEMBERED_SQL_CHARS else _parse(sql))


@functools.lru_cache(maxsize=REMEMBERED_STATEMENTS)
def _parse_kept(sql: str) -> tuple[Statement, ...]:
    return _parse(sql)


def _parse(sql: str) -> tuple[Statement, ...]:
    if len(sql) > MAX_SQL_BYTES or len(sql.encode()) > MAX_SQL_BYTES:
        raise TooLarge(f"SQL text over {MAX_SQL_BYTES} bytes; load data with bulk ingest (adbc_ingest) instead", {"max_bytes": MAX_SQL_BYTES})
    with _parser_lock:
        try:
            parsed = _parser.extract_statements(sql)
        except duckdb.Error as exc:
            raise InvalidInput(f"SQL error: {exc}") from None
    if not parsed:
        raise InvalidInput("no SQL statement given")
    return tuple(_classify(p) for p in parsed)


def parse_one(sql: str) -> Statement:
    statements = parse(sql)
    if len(statements) != 1:
        raise InvalidInput(f"expected exactly one SQL statement, got {len(statements)}")
    return statements[0]


def execute(lake: "Lake", statement: Statement, params: pa.Table | None = None, who: "Identity | None" = None) -> int:
    """Run a write statement; returns the number of rows it added or removed (0 for DDL).

    `params` holds one row of `?` values per execution (columns in placeholder order); all
    rows go into one commit, recorded as `who`'s.
    """
    with committing(who.user if who is not None else None):
        return _execute(lake, statement, params, who)


def _execute(lake: "Lake", statement: Statement, params: pa.Table | None, who: "Identity | None") -> int:
    if statement.parameter_count and params is not None and params.num_rows == 0 and params.num_columns == statement.parameter_count:
        return 0  # an empty batch of parameter rows: nothing to do, as in any database
    rows = bound_rows(statement, params)
    if statement.kind is Kind.INSERT:
        return _insert(lake, statement, rows, params, who)
    if statement.kind is Kind.CREATE_TABLE_AS:
        return _create_as(lake, statement, rows, who)
    if statement.kind is Kind.CREATE_TABLE:
        return _create_empty(lake, statement)
    if statement.kind is Kind.DROP_TABLE:
        return _drop(lake, statement)
    if statement.kind is Kind.TRUNCATE:
        return _truncate(lake, statement)
    raise InvalidInput("a query is not a write statement; run it with Lake.query")


# -- classification -----------------------------------------------------------------------


def _classify(parsed: Any) -> Statement:
    sql = parsed.query.strip().rstrip(";").strip()
    names = list(parsed.named_parameters)
    if any(not n.isdigit() for n in names):
        raise InvalidInput("named parameters ($name) are not supported; use ? or $1, $2, ... placeholders")
    count = max((int(n) for n in names), default=0)
    kind = parsed.type
    if kind in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        return Statement(sql, Kind.QUERY, count)
    tokens = _tokens(sql)
    if kind == duckdb.StatementType.INSERT:
        return _parse_insert(sql, tokens, count)
    if kind == duckdb.StatementType.CREATE:
        return _parse_create(sql, tokens, count)
    if kind == duckdb.StatementType.DROP:
        return _parse_drop(sql, tokens, count)
    if kind == duckdb.StatementType.DELETE:
        return _parse_delete(sql, tokens, count)
    if kind == duckdb.StatementType.TRANSACTION:
        raise InvalidInput("transactions are not supported: every statement commits on its own")
    raise InvalidInput(f"{kind.name} statements are not supported; the lake runs queries and INSERT, CREATE TABLE, DROP TABLE and DELETE/TRUNCATE of whole tables")


@dataclass(frozen=True)
class _Token:
    kind: str  # word, quoted, string, number, param, punct
    text: str  # words upper-cased; quoted identifiers unquoted
    start: int


_TOKEN_RE = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<quoted>"(?:[^"]|"")*")
      | (?P<string>[eE]?'(?:[^']|'')*')
      | (?P<param>\?|\$\d+)
      | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<punct>::|.)""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(sql: str) -> list[_Token]:
    out = []
    for m in _TOKEN_RE.finditer(sql):
        kind = m.lastgroup
        text = m.group()
        if kind in ("space", "comment"):
            continue
        if kind == "word":
            text = text.upper()
        elif kind == "quoted":
            text = text[1:-1].replace('""', '"')
        out.append(_Token(kind, text, m.start()))  # type: ignore[arg-type]
    return out


class _Cursor:
    """Reads a statement's tokens front to back."""

    def __init__(self, sql: str, tokens: list[_Token], what: str) -> None:
        self.sql = sql
        self.tokens = tokens
        self.pos = 0
        self.what = what

    def peek(self, offset: int = 0) -> _Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def accept(self, *words: str) -> bool:
        """Consume the keywords `words` if they come next."""
        for i, word in enumerate(words):
            t = self.peek(i)
            if t is None or t.kind != "word" or t.text != word:
                return False
        self.pos += len(words)
        return True

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise self.error(f"expected {' '.join(words)}")

    def punct(self, char: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "punct" and t.text == char:
            self.pos += 1
            return True
        return False

    def identifier(self) -> str:
        t = self.peek()
        if t is None or t.kind not in ("word", "quoted"):
            raise self.error("expected a name")
        self.pos += 1
        return t.text if t.kind == "quoted" else self.sql[t.start : t.start + len(t.text)]

    def table_name(self) -> str:
        """`t`, `main.t` or `<catalog>.main.t`: the lake has one catalog and one schema."""
        parts = [self.identifier()]
        while self.punct("."):
            parts.append(self.identifier())
        if len(parts) > 3:
            raise self.error("expected a table name")
        if len(parts) > 1 and parts[-2].lower() != SCHEMA_NAME:
            raise InvalidInput(f"unknown schema {parts[-2]!r}: datasets live in schema {SCHEMA_NAME!r}")
        if len(parts) > 2 and parts[0].lower() != CATALOG_NAME:
            raise InvalidInput(f"unknown catalog {parts[0]!r}: datasets live in catalog {CATALOG_NAME!r}")
        return parts[-1]

    def rest(self) -> str:
        t = self.peek()
        return "" if t is None else self.sql[t.start :].strip()

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def error(self, problem: str) -> InvalidInput:
        t = self.peek()
        near = "the end" if t is None else repr(self.sql[t.start : t.start + 20])
        return InvalidInput(f"cannot read this {self.what} statement: {problem} near {near}")


_QUERY_STARTS = {"SELECT", "WITH", "VALUES", "FROM", "TABLE", "SUMMARIZE", "DESCRIBE", "PIVOT", "UNPIVOT"}


def _parse_insert(sql: str, tokens: list[_Token], count: int) -> Statement:
    if tokens and tokens[0].kind == "word" and tokens[0].text == "WITH":
        raise InvalidInput("WITH before INSERT is not supported; put it in the query: INSERT INTO t WITH ... SELECT ...")
    c = _Cursor(sql, tokens, "INSERT")
    c.expect("INSERT")
    if c.accept("OR"):
        raise InvalidInput("INSERT OR REPLACE / OR IGNORE is not supported: datasets have no keys")
    c.expect("INTO")
    table = c.table_name()
    if c.accept("AS"):
        c.identifier()
    columns = None
    nxt, after = c.peek(), c.peek(1)
    if nxt is not None and nxt.kind == "punct" and nxt.text == "(" and not (after is not None and after.kind == "word" and after.text in _QUERY_STARTS):
        c.punct("(")
        names = [c.identifier()]
        while c.punct(","):
            names.append(c.identifier())
        if not c.punct(")"):
            raise c.error("expected ) after the column list")
        columns = tuple(names)
    by_name = c.accept("BY", "NAME")
    if not by_name:
        c.accept("BY", "POSITION")
    if c.accept("DEFAULT", "VALUES"):
        raise InvalidInput("INSERT ... DEFAULT VALUES is not supported: datasets have no column defaults")
    source = c.rest()
    if not source:
        raise c.error("expected a query or VALUES")
    _refuse_clauses(tokens[c.pos :])
    return Statement(sql, Kind.INSERT, count, table=table, source=source, columns=columns, by_name=by_name)


def _refuse_clauses(tokens: list[_Token]) -> None:
    """Refuse INSERT clauses that need keys or return rows, found outside parentheses."""
    depth = 0
    for i, t in enumerate(tokens):
        if t.kind == "punct" and t.text in "()":
            depth += 1 if t.text == "(" else -1
        elif depth == 0 and t.kind == "word":
            if t.text == "RETURNING":
                raise InvalidInput("INSERT ... RETURNING is not supported")
            if t.text == "ON" and i + 1 < len(tokens) and tokens[i + 1].text == "CONFLICT":
                raise InvalidInput("INSERT ... ON CONFLICT is not supported: datasets have no keys")


def _parse_create(sql: str, tokens: list[_Token], count: int) -> Statement:
    c = _Cursor(sql, tokens, "CREATE")
    c.expect("CREATE")
    or_replace = c.accept("OR", "REPLACE")
    if c.accept("TEMP") or c.accept("TEMPORARY"):
        raise InvalidInput("temporary tables are not supported: every dataset is stored in the lake")
    c.accept("PERSISTENT")
    if not c.accept("TABLE"):
        what = c.peek()
        raise InvalidInput(f"CREATE {what.text if what else ''} is not supported; the lake creates tables only (CREATE TABLE)")
    if_not_exists = c.accept("IF", "NOT", "EXISTS")
    table = c.table_name()
    if c.accept("AS"):
        source = c.rest()
        if not source:
            raise c.error("expected a query after AS")
        return Statement(sql, Kind.CREATE_TABLE_AS, count, table=table, source=source, or_replace=or_replace, if_not_exists=if_not_exists)
    t = c.peek()
    if t is None or t.kind != "punct" or t.text != "(":
        raise c.error("expected AS <query> or a column list")
    return Statement(sql, Kind.CREATE_TABLE, count, table=table, or_replace=or_replace, if_not_exists=if_not_exists, definition=c.rest())


def _parse_drop(sql: str, tokens: list[_Token], count: int) -> Statement:
    c = _Cursor(sql, tokens, "DROP")
    c.expect("DROP")
    if not c.accept("TABLE"):
        what = c.peek()
        raise InvalidInput(f"DROP {what.text if what else ''} is not supported; the lake drops tables only (DROP TABLE)")
    if_exists = c.accept("IF", "EXISTS")
    table = c.table_name()
    c.accept("CASCADE") or c.accept("RESTRICT")
    if not c.at_end():
        raise c.error("unexpected text")
    return Statement(sql, Kind.DROP_TABLE, count, table=table, if_exists=if_exists)


def _parse_delete(sql: str, tokens: list[_Token], count: int) -> Statement:
    c = _Cursor(sql, tokens, "DELETE")
    if c.accept("TRUNCATE"):
        c.accept("TABLE")
    else:
        c.expect("DELETE", "FROM")
    table = c.table_name()
    if not c.at_end():
        raise InvalidInput(
            "DELETE with a WHERE clause is not supported: datasets are append-only; keep the other rows with "
            "CREATE OR REPLACE TABLE t AS SELECT * FROM t WHERE NOT (...), or delete every row with DELETE FROM t"
        )
    return Statement(sql, Kind.TRUNCATE, count, table=table)


# -- execution ----------------------------------------------------------------------------


def bound_rows(statement: Statement, params: pa.Table | None) -> list[list[Any]]:
    """One list of `?` values per execution; empty for a statement without placeholders."""
    if statement.parameter_count == 0:
        return []
    if params is None or params.num_rows == 0:
        raise InvalidInput(f"the statement has {statement.parameter_count} parameter(s) but no values were bound")
    if params.num_columns != statement.parameter_count:
        raise InvalidInput(f"the statement has {statement.parameter_count} parameter(s) but {params.num_columns} values were bound")
    return parameter_rows(params)


def parameter_rows(params: pa.Table) -> list[list[Any]]:
    """The bound values, one list per row (the columns are the placeholders in order)."""
    columns = [params.column(i).to_pylist() for i in range(params.num_columns)]
    return [list(values) for values in zip(*columns)]


def _resolve(lake: "Lake", statement: Statement) -> str:
    """The dataset a name refers to: names match case-insensitively, as in DuckDB's views;
    a name that matches none is the name of a new dataset, as written."""
    name = statement.table
    assert name is not None
    existing = lake.catalog.resolve(name)
    return existing.name if existing is not None else name


def parameter_schema(lake: "Lake", statement: Statement, who: "Identity | None" = None) -> pa.Schema:
    """The types of a write's `?` placeholders, in order, as a prepared statement reports them
    (a query's come from `Lake.describe`): an `INSERT ... VALUES (?, ...)` takes the types of
    the columns the values go to; any other write's come from its source query."""
    if statement.parameter_count == 0:
        return pa.schema([])
    if statement.kind is Kind.INSERT and statement.source is not None and _PLAIN_VALUES.match(statement.source):
        target = lake.manifest(_resolve(lake, statement)).schema
        columns = list(statement.columns) if statement.columns is not None else target.names
        lower = {f.name.lower(): f for f in target}
        fields = [lower[c.lower()] if c.lower() in lower else pa.field(c, pa.string()) for c in columns]
        if len(fields) == statement.parameter_count:
            return pa.schema([f.with_name(str(i + 1)) for i, f in enumerate(fields)])
    if statement.source is not None:
        try:
            return lake.describe(statement.source, who)[1]
        except InvalidInput:
            pass
    return pa.schema([pa.field(str(i + 1), pa.string()) for i in range(statement.parameter_count)])


_PLAIN_VALUES = re.compile(r"^VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)$", re.IGNORECASE)


def _insert(lake: "Lake", statement: Statement, rows: list[list[Any]], params: pa.Table | None, who: "Identity | None") -> int:
    name = _resolve(lake, statement)
    target = lake.manifest(name).schema
    source = statement.source
    assert source is not None
    if rows and params is not None and _PLAIN_VALUES.match(source):
        # executemany of `VALUES (?, ?)`: the bound rows are the new rows, no query needed.
        batches: Iterator[pa.RecordBatch] = iter(params.to_batches())
    else:
        batches = iter(lake.query_each(source, rows, who=who))
    conformed = (_conform(b, target, statement, name) for b in batches)
    return lake.ingest_arrow(name, conformed, schema=target, mode="append", who=who).rows


def _conform(batch: pa.RecordBatch, target: pa.Schema, statement: Statement, name: str) -> pa.RecordBatch:
    """Cast a batch of new rows to the target's columns, matched as the INSERT says."""
    lower = {f.name.lower(): f.name for f in target}
    if statement.by_name:
        given = list(batch.schema.names)
    elif statement.columns is not None:
        given = list(statement.columns)
    else:
        given = list(target.names)
    if len(given) != batch.num_columns:
        raise InvalidInput(f"table {name!r} has {len(given)} columns but {batch.num_columns} values were supplied")
    by_target: dict[str, pa.Array] = {}
    for column, array in zip(given, batch.columns):
        field_name = lower.get(column.lower())
        if field_name is None:
            raise InvalidInput(f"table {name!r} has no column {column!r}")
        by_target[field_name] = array
    arrays = []
    for f in target:
        array = by_target.get(f.name)
        if array is None:
            array = pa.nulls(batch.num_rows, f.type)
        elif array.type != f.type:
            try:
                array = _cast(array, f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InvalidInput(f"column {f.name!r} of {name!r} is {f.type}; cannot store {array.type} values: {exc}") from None
        if not f.nullable and array.null_count:
            raise InvalidInput(f"column {f.name!r} of {name!r} does not accept NULL")
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _cast(array: pa.Array, to: pa.DataType) -> pa.Array:
    """`array` as type `to`, refusing lossy casts. A union (some clients bind every parameter
    as a dense union of the types they saw, flightsql-dbapi among them) has no Arrow cast: its
    values are taken one by one and must each fit `to`."""
    if pa.types.is_union(array.type):
        return pa.array(array.to_pylist(), type=to)
    return array.cast(to, safe=True)


def _create_as(lake: "Lake", statement: Statement, rows: list[list[Any]], who: "Identity | None") -> int:
    name = _resolve(lake, statement)
    assert statement.source is not None
    if statement.if_not_exists and lake.catalog.find(name) is not None:
        return 0
    result = lake.query_each(statement.source, rows, who=who)
    return lake.ingest_arrow(name, result, mode="replace" if statement.or_replace else "create", who=who).rows


def _create_empty(lake: "Lake", statement: Statement) -> int:
    name = _resolve(lake, statement)
    assert statement.definition is not None
    if statement.if_not_exists and lake.catalog.find(name) is not None:
        return 0
    schema = _definition_schema(statement.definition)
    lake.ingest_arrow(name, iter(()), schema=schema, mode="replace" if statement.or_replace else "create")
    return 0


def _definition_schema(definition: str) -> pa.Schema:
    """The Arrow schema of `CREATE TABLE t (<definition>)`, as DuckDB types it.

    The definition is run in a throw-away DuckDB without external access, and no row is
    ever read, so defaults and generated columns are never evaluated.
    """
    scratch = duckdb.connect(":memory:", config=_SANDBOX)
    try:
        scratch.execute("SET TimeZone='UTC'")
        sql = f'CREATE TABLE "definition" {definition}'
        statements = scratch.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.CREATE:
            raise InvalidInput("cannot read the column definitions of this CREATE TABLE statement")
        scratch.execute(sql)
        return scratch.sql('SELECT * FROM "definition"').to_arrow_table().schema
    except duckdb.Error as exc:
        raise InvalidInput(f"SQL error: {exc}") from None
    finally:
        scratch.close()


def _drop(lake: "Lake", statement: Statement) -> int:
    try:
        lake.drop(_resolve(lake, statement))
    except NotFound:
        if not statement.if_exists:
            raise
    return 0


def _truncate(lake: "Lake", statement: Statement) -> int:
    name = _resolve(lake, statement)
    manifest = lake.manifest(name)
    lake.ingest_arrow(name, iter(()), schema=manifest.schema, mode="replace")
    return manifest.row_count
