"""What user SQL may read: the datasets' views and rows it computes itself, nothing else.

DuckDB's own sandbox (external access off, allowed directories, locked configuration; see
`query.py`) keeps queries out of the rest of the machine, but the views must read the data
and cache directories, so by itself it would also let a query read any file there by path:
manifests, other datasets' objects, dropped data still in the cache. And DuckDB's settings
and catalog functions disclose server paths. So each query's parse tree (DuckDB's
`json_serialize_sql`) is checked against an allowlist before it runs:

* a table reference names a dataset view or a CTE of the query (optionally as `main.t` or
  `memory.main.t`), or one of `information_schema.{tables, columns, schemata}` (which the
  engine narrows to the datasets', see `catalog_reads`); a name that
  would be a file (`FROM 'x.parquet'`), DuckDB's internal views and `sqlite_master` are not;
* table functions are limited to those that compute rows (`range`, `unnest`, ...), so no
  `read_parquet`, `read_blob`, `glob` or `duckdb_settings()`;
* functions that read settings or the environment (`current_setting`, `getenv`) are refused;
* `SHOW x` names a dataset; `SHOW TABLES` and `DESCRIBE`/`SUMMARIZE` of a checked query pass.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

import duckdb

from lakehouse.errors import InvalidInput

TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "repeat", "repeat_row", "generate_subscripts"})
DENIED_FUNCTIONS = frozenset({"current_setting", "getenv", "getvariable"})
DENIED_FUNCTION_PREFIXES = ("duckdb_", "pragma_")
INFORMATION_SCHEMA = {"tables": ("table_catalog", "table_schema"), "columns": ("table_catalog", "table_schema"), "schemata": ("catalog_name", "schema_name")}
"""The `information_schema` views a query may read, with the columns that name each row's
database and schema (a read is narrowed to the datasets' own, see `catalog_reads`)."""
SCHEMAS = frozenset({"", "main"})
CATALOGS = frozenset({"", "memory"})
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Vocabulary:
    """The SQL words and functions a query may use, for clients that list them (JDBC's
    `getSQLKeywords`, `getNumericFunctions`...)."""

    keywords: tuple[str, ...]
    numeric_functions: tuple[str, ...]
    string_functions: tuple[str, ...]
    datetime_functions: tuple[str, ...]
    system_functions: tuple[str, ...]


_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_SYSTEM_FUNCTIONS = ("current_catalog", "current_database", "current_schema", "current_user", "user", "version", "typeof", "coalesce", "ifnull", "nullif")


@functools.cache
def vocabulary() -> Vocabulary:
    """Read from DuckDB itself (its keywords and scalar functions), less what the sandbox refuses."""
    db = duckdb.connect(":memory:", config={"enable_external_access": False, "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        keywords = tuple(sorted(k.upper() for (k,) in db.execute("SELECT keyword_name FROM duckdb_keywords()").fetchall()))
        rows = db.execute(
            "SELECT DISTINCT function_name, return_type, categories FROM duckdb_functions() "
            "WHERE function_type = 'scalar' AND NOT starts_with(function_name, '__') AND function_name SIMILAR TO '[a-z_][a-z0-9_]*'"
        ).fetchall()
    finally:
        db.close()
    allowed = [(name, str(ret or ""), set(cats or ())) for name, ret, cats in rows if name not in DENIED_FUNCTIONS and not name.startswith(DENIED_FUNCTION_PREFIXES)]

    def pick(test: Callable[[str, set[str]], bool]) -> tuple[str, ...]:
        return tuple(sorted({name for name, ret, cats in allowed if test(ret, cats)}))

    return Vocabulary(
        keywords=keywords,
        numeric_functions=pick(lambda ret, cats: "numeric" in cats or (not cats and ret.startswith(_NUMERIC_TYPES))),
        string_functions=pick(lambda ret, cats: "string" in cats or (not cats and ret == "VARCHAR")),
        datetime_functions=pick(lambda ret, cats: bool(cats & {"date", "timestamp", "time"}) or (not cats and ret.startswith(("DATE", "TIME", "INTERVAL")))),
        system_functions=tuple(sorted(set(_SYSTEM_FUNCTIONS) & {name for name, _, _ in allowed})),
    )


def check_tree(serialized: str, views: Iterable[str]) -> frozenset[str]:
    """Refuse a query whose tree (`json_serialize_sql` output) reads anything but `views`;
    the views it reads (lower-cased; CTEs of the query are not views).

    Raises `InvalidInput` naming the first thing refused.
    """
    tree = json.loads(serialized)
    if tree.get("error"):
        raise InvalidInput(f"SQL error: {tree.get('error_message', 'cannot read this query')}")
    ctes = {c.lower() for c in _ctes(tree)}
    known = {v.lower() for v in views} | ctes
    read: set[str] = set()
    for node in nodes(tree):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            _check_table(node, known)
            name = str(node.get("table_name", "")).lower()
            if name not in ctes and str(node.get("schema_name") or "").lower() != "information_schema":
                read.add(name)
        elif kind == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in TABLE_FUNCTIONS:
                raise InvalidInput(f"refused by the query sandbox: table function {name}() is not available; query datasets by name")
        elif kind == "SHOW_REF" and node.get("show_type") == "SHOW":
            name = str(node.get("table_name", ""))
            if name.lower() not in known:
                raise InvalidInput(f"refused by the query sandbox: SHOW takes a dataset name, not {name!r}")
        if node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in DENIED_FUNCTIONS or name.startswith(DENIED_FUNCTION_PREFIXES):
                raise InvalidInput(f"refused by the query sandbox: function {name}() is not available")
    return frozenset(read)


@dataclass(frozen=True)
class TimeTravel:
    """A dataset read as of a version or a time: `FROM sales AT (VERSION => 3)`, or
    `AT (TIMESTAMP => '2026-01-31 10:00:00+00')`. `start` and `length` are the byte span of the
    table reference in the query text (alias and AT clause included)."""

    start: int
    length: int
    table: str
    alias: str
    version: int | None
    as_of: datetime | None


@dataclass(frozen=True)
class CatalogRead:
    """A read of one of the `INFORMATION_SCHEMA` views: `start` and `length` are the byte span
    of the reference in the query text (alias included)."""

    start: int
    length: int
    view: str
    alias: str


def catalog_reads(serialized: str) -> list[CatalogRead]:
    """The reads of `information_schema` in a checked query (`json_serialize_sql` output).
    DuckDB's views list every database the engine has attached, so a query would also see
    the in-memory copies of datasets (`hot.py`) and a cursor's temporary views; the engine
    narrows each read to the datasets' database and schema."""
    return [
        CatalogRead(int(node["query_location"]), int(node["query_location_length"]), str(node["table_name"]).lower(), str(node.get("alias") or ""))
        for node in nodes(json.loads(serialized))
        if node.get("type") == "BASE_TABLE" and str(node.get("schema_name") or "").lower() == "information_schema"
    ]


def time_travels(serialized: str) -> list[TimeTravel]:
    """The AT clauses of a query (`json_serialize_sql` output); their values must be constants."""
    tree = json.loads(serialized)
    found = []
    for node in nodes(tree):
        at = node.get("at_clause") if node.get("type") == "BASE_TABLE" else None
        if not at:
            continue
        literal = ((at.get("expr") or {}).get("literal") or {}) if (at.get("expr") or {}).get("class") == "CONSTANT" else {}
        text, unit = str(literal.get("text", "")), str(at.get("unit", "")).upper()
        version = as_of = None
        try:
            if unit == "VERSION" and text.isdigit():
                version = int(text)
            elif unit == "TIMESTAMP" and text:
                as_of = datetime.fromisoformat(text)
        except ValueError:
            pass
        if version is None and as_of is None:
            raise InvalidInput("AT takes (VERSION => <number>) or (TIMESTAMP => '<ISO 8601 time>') after a dataset name")
        found.append(TimeTravel(int(node["query_location"]), int(node["query_location_length"]), str(node["table_name"]), str(node.get("alias") or ""), version, as_of))
    return found


def _check_table(node: dict[str, Any], known: set[str]) -> None:
    name = str(node.get("table_name", ""))
    schema = str(node.get("schema_name") or "").lower()
    catalog = str(node.get("catalog_name") or "").lower()
    if schema == "information_schema" and catalog in CATALOGS and name.lower() in INFORMATION_SCHEMA:
        return
    if not _PLAIN.match(name):
        raise InvalidInput(f"refused by the query sandbox: {name!r} is not a dataset name; files cannot be read by path")
    if schema not in SCHEMAS or catalog not in CATALOGS or name.lower() not in known:
        shown = ".".join(p for p in (catalog, schema, name) if p)
        raise InvalidInput(f"SQL error: table {shown} does not exist")


def nodes(tree: Any) -> Iterable[dict[str, Any]]:
    """Every object node of a parse tree, in no particular order."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _ctes(tree: Any) -> Iterable[str]:
    for node in nodes(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                    yield entry["key"]
