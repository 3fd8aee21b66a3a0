"""What a running lake counts, for Prometheus, and the one log line per query and per ingest.

The metrics are the process's (prometheus_client's default registry, with its process and
platform collectors): one server process serves one lake, and tests that open several lakes
in one process simply add up. Labels never carry dataset names or SQL, so their number stays
small whatever the lake holds; the per-event detail goes to the `lakehouse.events` log as
one JSON object per line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "exposition", "request", "query", "ingest", "cache_hit", "cache_miss", "cache_evicted", "cache_size", "hot_copies", "range_read", "storage_error", "QUERIES_ACTIVE"]

events = logging.getLogger("lakehouse.events")

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

REQUESTS = Counter("lakehouse_requests_total", "Requests answered, by edge, route or RPC, and status.", ["edge", "route", "status"])
REQUEST_SECONDS = Histogram("lakehouse_request_seconds", "Time to answer a request (HTTP: until the response ends).", ["edge", "route"], buckets=_SECONDS)
QUERIES = Counter("lakehouse_queries_total", "Queries run, by outcome (ok, closed early, or the error).", ["outcome"])
QUERY_SECONDS = Histogram("lakehouse_query_seconds", "Time from a query's start to the end of its result.", buckets=_SECONDS)
QUERY_ROWS = Counter("lakehouse_query_rows_total", "Rows sent by queries.")
QUERIES_ACTIVE = Gauge("lakehouse_queries_active", "Queries running now.")
INGESTS = Counter("lakehouse_ingests_total", "Ingests, by outcome.", ["outcome"])
INGEST_ROWS = Counter("lakehouse_ingested_rows_total", "Rows committed by ingests.")
INGEST_BYTES = Counter("lakehouse_ingested_bytes_total", "Parquet bytes committed by ingests.")
INGEST_SECONDS = Histogram("lakehouse_ingest_seconds", "Time an ingest took, until its commit.", buckets=_SECONDS)
CACHE_HITS = Counter("lakehouse_cache_hits_total", "Data objects found in the local cache.")
CACHE_MISSES = Counter("lakehouse_cache_misses_total", "Data objects downloaded into the local cache.")
CACHE_BYTES = Counter("lakehouse_cache_downloaded_bytes_total", "Bytes downloaded into the local cache.")
CACHE_EVICTIONS = Counter("lakehouse_cache_evictions_total", "Data objects evicted from the local cache to keep it within storage.cache_max_bytes.")
CACHE_SIZE = Gauge("lakehouse_cache_bytes", "Bytes of data objects in the local cache now.")
RANGE_READS = Counter("lakehouse_storage_range_reads_total", "Byte ranges of data objects read from storage without caching them.")
RANGE_BYTES = Counter("lakehouse_storage_range_read_bytes_total", "Bytes read from storage by range reads.")
HOT_DATASETS = Gauge("lakehouse_hot_datasets", "Dataset versions held in memory as compressed tables (query.hot_max_bytes).")
HOT_BYTES = Gauge("lakehouse_hot_bytes", "Parquet bytes of the dataset versions held in memory (what query.hot_max_bytes bounds).")
STORAGE_ERRORS = Counter("lakehouse_storage_errors_total", "Storage calls that failed (unreachable, refused).", ["operation"])


def exposition() -> bytes:
    """Every metric in the Prometheus text format."""
    return generate_latest()


def request(edge: str, route: str, status: str, seconds: float) -> None:
    REQUESTS.labels(edge, route, status).inc()
    REQUEST_SECONDS.labels(edge, route).observe(seconds)


def query(user: str | None, sql: str, outcome: str, rows: int, seconds: float) -> None:
    QUERIES.labels(outcome).inc()
    QUERY_SECONDS.observe(seconds)
    QUERY_ROWS.inc(rows)
    _event("query", user=user, sql=sql[:500], rows=rows, seconds=round(seconds, 4), outcome=outcome)


def ingest(user: str | None, dataset: str, mode: str, outcome: str, rows: int, nbytes: int, seconds: float) -> None:
    INGESTS.labels(outcome).inc()
    if outcome == "ok":
        INGEST_ROWS.inc(rows)
        INGEST_BYTES.inc(nbytes)
        INGEST_SECONDS.observe(seconds)
    _event("ingest", user=user, dataset=dataset, mode=mode, rows=rows, bytes=nbytes, seconds=round(seconds, 4), outcome=outcome)


def cache_hit() -> None:
    CACHE_HITS.inc()


def cache_miss(nbytes: int) -> None:
    CACHE_MISSES.inc()
    CACHE_BYTES.inc(nbytes)


def cache_evicted(count: int, cached_bytes: int) -> None:
    CACHE_EVICTIONS.inc(count)
    CACHE_SIZE.set(cached_bytes)


def cache_size(cached_bytes: int) -> None:
    CACHE_SIZE.set(cached_bytes)


def hot_copies(datasets: int, parquet_bytes: int) -> None:
    HOT_DATASETS.set(datasets)
    HOT_BYTES.set(parquet_bytes)


def range_read(nbytes: int) -> None:
    RANGE_READS.inc()
    RANGE_BYTES.inc(nbytes)


def storage_error(operation: str) -> None:
    STORAGE_ERRORS.labels(operation).inc()


def _event(kind: str, **fields: Any) -> None:
    events.info(json.dumps({"event": kind, **fields}, default=str))
