"""What a query's shape allows: answering it from the catalog, or splitting it by data object.

Two shapes matter, both read off DuckDB's parse tree (`json_serialize_sql`):

* `SELECT count(*) FROM <dataset>`: the manifest holds the answer, so no object is read;
* a scan, filter or projection of one dataset (`SELECT <columns or row expressions> FROM
  <dataset> [WHERE ...]`): each row of the result depends on one row of the dataset, so the
  query over a subset of its objects gives exactly that subset's share of the result, and the
  shares of disjoint subsets concatenate to the whole answer. Aggregates, windows, joins,
  subqueries, DISTINCT, ORDER BY and LIMIT all see more than one row; they stay whole.
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


def shape_of(serialized: str) -> CountAll | Scan | None:
    """The shape of a query (`json_serialize_sql` output of one statement), or None for any
    other query."""
    tree = json.loads(serialized)
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return None
    node = statements[0].get("node") or {}
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


def _single_table(node: dict[str, Any]) -> str | None:
    """The dataset a plain SELECT reads, when it reads exactly one table and nothing else
    (no CTEs, grouping, modifiers, sampling or time travel)."""
    if node.get("type") != "SELECT_NODE" or node.get("modifiers") or (node.get("cte_map") or {}).get("map"):
        return None
    if node.get("group_expressions") or node.get("group_sets") or node.get("having") is not None or node.get("qualify") is not None:
        return None
    if node.get("sample") is not None or node.get("aggregate_handling") != "STANDARD_HANDLING":
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

