"""What a query's shape allows: answering it from the catalog, splitting it by data object,
or looking rows up by an index.

Three shapes matter, all read off DuckDB's parse tree (`json_serialize_sql`):

* `SELECT count(*) FROM <dataset>`: the manifest holds the answer, so no object is read;
* a scan, filter or projection of one dataset (`SELECT <columns or row expressions> FROM
  <dataset> [WHERE ...]`): each row of the result depends on one row of the dataset, so the
  query over a subset of its objects gives exactly that subset's share of the result, and the
  shares of disjoint subsets concatenate to the whole answer. Aggregates, windows, joins,
  subqueries, DISTINCT, ORDER BY and LIMIT all see more than one row; they stay whole;
* a query of one dataset whose WHERE requires `column = value` (a constant or a `?`), alone
  or and-ed with other conditions: an index on that column finds its rows without a scan
  (`hot.py` builds one on a dataset held in memory that is looked up that way).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import duckdb

from lakehouse.sandbox import nodes

COUNT_COLUMN = "count_star()"
"""The name DuckDB gives an unaliased `count(*)`."""


@dataclass(frozen=True)
class CountAll:
    """`SELECT count(*) [AS column] FROM table`."""

    table: str
    column: str


@dataclass(frozen=True)
class Scan:
    """A row-by-row query of one dataset: splittable by object."""

    table: str


@functools.cache
def _aggregates() -> frozenset[str]:
    db = duckdb.connect(":memory:", config={"enable_external_access": False, "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        rows = db.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'").fetchall()
    finally:
        db.close()
    return frozenset(name.lower() for (name,) in rows) | {"count_star"}


@dataclass(frozen=True)
class Lookup:
    """The columns of `table` a query's WHERE requires to equal a value."""

    table: str
    columns: tuple[str, ...]


def shapes_of(serialized: str) -> tuple[CountAll | Scan | None, Lookup | None]:
    """The shape of a query (`json_serialize_sql` output of one statement) and its lookup;
    None for what it is not."""
    tree = json.loads(serialized)
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return None, None
    node = statements[0].get("node") or {}
    return _shape(node), _lookup(node)


def _shape(node: dict[str, Any]) -> CountAll | Scan | None:
    table = _single_table(node)
    if table is None:
        return None
    select = node.get("select_list") or []
    if len(select) == 1 and _is_count_star(select[0]) and node.get("where_clause") is None:
        return CountAll(table, str(select[0].get("alias") or COUNT_COLUMN))
    expressions = list(select) + ([node["where_clause"]] if node.get("where_clause") is not None else [])
    aggregates = _aggregates()
    for item in nodes(expressions):
        kind = item.get("class")
        if kind in ("WINDOW", "SUBQUERY") or (kind == "FUNCTION" and str(item.get("function_name", "")).lower() in aggregates):
            return None
    return Scan(table)


def _lookup(node: dict[str, Any]) -> Lookup | None:
    table = _base_table(node)
    if table is None or node.get("where_clause") is None:
        return None
    columns: list[str] = []
    conditions = [node["where_clause"]]
    while conditions:
        item = conditions.pop()
        if item.get("type") == "CONJUNCTION_AND":
            conditions.extend(item.get("children") or [])
        elif item.get("type") == "COMPARE_EQUAL":
            sides = [item.get("left") or {}, item.get("right") or {}]
            names = [side.get("column_names") for side in sides if side.get("class") == "COLUMN_REF"]
            if len(names) == 1 and any(side.get("class") in ("CONSTANT", "PARAMETER") for side in sides) and names[0]:
                columns.append(str(names[0][-1]))
    return Lookup(table, tuple(dict.fromkeys(columns))) if columns else None


def _single_table(node: dict[str, Any]) -> str | None:
    """The dataset a plain SELECT reads, when it reads exactly one table and nothing else
    (no CTEs, grouping, modifiers, sampling or time travel)."""
    if node.get("modifiers") or node.get("group_expressions") or node.get("group_sets") or node.get("having") is not None or node.get("qualify") is not None:
        return None
    if node.get("sample") is not None or node.get("aggregate_handling") != "STANDARD_HANDLING":
        return None
    return _base_table(node)


def _base_table(node: dict[str, Any]) -> str | None:
    """The dataset a SELECT reads from, when its FROM is that one table alone (no join, CTE,
    sampling or time travel)."""
    if node.get("type") != "SELECT_NODE" or (node.get("cte_map") or {}).get("map"):
        return None
    source = node.get("from_table") or {}
    if source.get("type") != "BASE_TABLE" or source.get("sample") is not None or source.get("at_clause"):
        return None
    if str(source.get("schema_name") or "").lower() not in ("", "main") or str(source.get("catalog_name") or "").lower() not in ("", "memory"):
        return None
    return str(source.get("table_name") or "") or None


def _is_count_star(item: dict[str, Any]) -> bool:
    return (
        item.get("class") == "FUNCTION" and item.get("function_name") == "count_star" and not item.get("distinct")
        and item.get("filter") is None and not item.get("arguments")
    )

