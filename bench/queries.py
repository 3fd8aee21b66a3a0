"""Query benchmarks over one dataset: warm latency of small queries, and a large result.

The baseline is DuckDB in this process over local copies of the dataset's own Parquet objects
(the keys come from the manifest). Our paths and the peer's run the same SQL; every answer's
row count must equal the baseline's, or the row is reported as failed instead of timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.clients import DuckDbLocal, SqlClient
from bench.harness import Contender, Timing, compare, log
from bench.report import Row, Section, Target


@dataclass(frozen=True)
class Query:
    label: str
    sql: str  # "{t}" stands for the table

    def text(self, table: str) -> str:
        return self.sql.format(t=table)


COUNT = Query("count(*)", "SELECT count(*) AS n FROM {t}")
GROUP_BY = Query("GROUP BY role, IL", "SELECT role, count(*) AS n FROM {t} WHERE state = 'IL' GROUP BY role ORDER BY role")
FILTER = Query("filter: 1 row", "SELECT * FROM {t} WHERE worker_id = 350001")
WARM = [COUNT, GROUP_BY, FILTER]
SELECT_ALL = Query("SELECT *", "SELECT * FROM {t}")

COUNT_ADBC_MAX_S = 0.0015
GROUP_BY_FIXED_S, GROUP_BY_FACTOR = 0.001, 1.2
THROUGHPUT_SHARE = 0.8


def _checked(client: SqlClient, sql: str, expected: int) -> None:
    got = client.run(sql)
    if got != expected:
        raise RuntimeError(f"{got} rows, the baseline has {expected}")


def _run(section: Section, query: Query, table: str, baseline: DuckDbLocal, ours: list[SqlClient], peers: list[SqlClient], timing: Timing, nbytes: int | None = None) -> tuple[float, list[tuple[SqlClient, Row]]]:
    """Time the baseline and every client on one query (interleaved); our clients with their
    rows, each held to beating the peer's same protocol."""
    sql = query.text(table)
    expected = baseline.run(sql)
    clients = ours + peers
    base, *rows = compare(
        section, query.label,
        Contender(baseline.via, lambda i: baseline.run(sql)),
        [Contender(c.via, lambda i, c=c: _checked(c, sql, expected)) for c in clients],
        timing, nbytes,
    )
    mine = list(zip(ours, rows[: len(ours)]))
    theirs = {c.kind: row for c, row in zip(peers, rows[len(ours) :])}
    for client, row in mine:
        peer = theirs.get(client.kind)
        if row.seconds is not None and peer is not None and peer.seconds is not None:
            row.targets.append(Target(f"< {peer.via}", row.seconds < peer.seconds))
    assert base.seconds is not None
    return base.seconds, mine


def run_warm(table: str, baseline: DuckDbLocal, ours: list[SqlClient], peers: list[SqlClient], timing: Timing) -> Section:
    section = Section("Warm query latency (one client, sequential, after one warm-up)")
    for query in WARM:
        log(f"query: {query.label}")
        base_s, mine = _run(section, query, table, baseline, ours, peers, timing)
        for client, row in mine:
            if client.kind != "adbc" or row.seconds is None:
                continue
            if query is COUNT:
                row.targets.insert(0, Target(f"<= {COUNT_ADBC_MAX_S * 1000:g} ms", row.seconds <= COUNT_ADBC_MAX_S))
            if query is GROUP_BY:
                limit = GROUP_BY_FIXED_S + GROUP_BY_FACTOR * base_s
                row.targets.insert(0, Target(f"<= 1 ms + 1.2x base ({limit * 1000:.1f} ms)", row.seconds <= limit))
    for q in WARM:
        section.notes.append(f"{q.label}: {q.text(table)}")
    return section


def run_large(table: str, baseline: DuckDbLocal, ours: list[SqlClient], peers: list[SqlClient], timing: Timing) -> Section:
    sql = SELECT_ALL.text(table)
    result = baseline.table(sql)
    section = Section(f"Large result to a pyarrow Table: {sql} ({result.num_rows:,} rows, {result.nbytes / 1e6:.0f} MB as Arrow)")
    log("query: SELECT *")
    base_s, mine = _run(section, SELECT_ALL, table, baseline, ours, peers, timing, result.nbytes)
    for client, row in mine:
        if client.kind == "adbc" and row.seconds is not None:
            row.targets.insert(0, Target(f">= {THROUGHPUT_SHARE:.0%} of base MB/s", base_s / row.seconds >= THROUGHPUT_SHARE))
    section.notes.append("MB/s: the result's size as Arrow in memory per second of the whole call (query, transfer, decode)")
    return section


def run_clustered(table: str, baseline: DuckDbLocal, ours: list[SqlClient], peers: list[SqlClient], timing: Timing, compact: Callable[[], str]) -> Section:
    """The 1-row filter before and after `compact --order-by worker_id`, beside the peer.

    Sorted objects in 16,384-row groups let DuckDB skip every row group but one by its min/max
    statistics; arrival order in 131,072-row groups makes it decode a whole group."""
    section = Section("1-row filter before and after compaction ordered by worker_id")
    log("query: filter before compaction")
    before = Query("filter: before compact", FILTER.sql)
    _run(section, before, table, baseline, ours, peers, timing)
    section.notes.append(f"compaction: {compact()}")
    log("query: filter after compaction")
    after = Query("filter: after compact --order-by worker_id", FILTER.sql)
    _run(section, after, table, baseline, ours, peers, timing)
    section.notes.append(f"filter: {FILTER.text(table)}; the base is in-process DuckDB over the objects as first ingested")
    return section
