"""The ways a benchmark sends SQL and gets a result back, each behind one `run(sql) -> rows`.

Every client fetches the whole result into the form a caller would use (a pyarrow Table, or
parsed JSON rows) and returns the row count, so the harness can check that all paths answered
the same thing before comparing their times.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol

import duckdb
import httpx
import pyarrow as pa
import pyarrow.flight as flight

ARROW_STREAM = "application/vnd.apache.arrow.stream"
TIMEOUT_S = 300.0


class SqlClient(Protocol):
    via: str
    kind: str  # the protocol, so a path of ours is compared with the peer's same path

    def run(self, sql: str) -> int: ...

    def close(self) -> None: ...


class Adbc:
    """Flight SQL through the ADBC driver: `cursor.execute` then `fetch_arrow_table`."""

    def __init__(self, uri: str, via: str = "ADBC (Flight SQL)") -> None:
        import adbc_driver_flightsql.dbapi as flight_sql

        self.via, self.kind = via, "adbc"
        with warnings.catch_warnings():  # "Cannot disable autocommit": the servers have no transactions
            warnings.simplefilter("ignore")
            self.conn = flight_sql.connect(uri)
        self.cursor = self.conn.cursor()

    def run(self, sql: str) -> int:
        self.cursor.execute(sql)
        return self.cursor.fetch_arrow_table().num_rows

    def close(self) -> None:
        self.cursor.close()
        self.conn.close()


class FlightDoGet:
    """Plain Arrow Flight: one `DoGet` with the SQL text as the ticket."""

    def __init__(self, uri: str, via: str = "Flight DoGet") -> None:
        self.via, self.kind = via, "doget"
        self.client = flight.connect(uri)
        self.options = flight.FlightCallOptions(timeout=TIMEOUT_S)

    def run(self, sql: str) -> int:
        return self.client.do_get(flight.Ticket(sql.encode()), self.options).read_all().num_rows

    def close(self) -> None:
        self.client.close()


class HttpSql:
    """SQL over HTTP on one kept-alive connection: JSON rows, or an Arrow IPC stream.

    `json_body` wraps the SQL as `{"sql": ...}` (ours); otherwise the body is the SQL text (ROAPI).
    """

    def __init__(self, url: str, via: str, arrow: bool = False, json_body: bool = True) -> None:
        self.url, self.via, self.arrow, self.json_body = url, via, arrow, json_body
        self.kind = "http-arrow" if arrow else "http-json"
        self.http = httpx.Client(timeout=TIMEOUT_S, headers={"Accept": ARROW_STREAM if arrow else "application/json"})

    def run(self, sql: str) -> int:
        resp = self.http.post(self.url, json={"sql": sql}) if self.json_body else self.http.post(self.url, content=sql.encode())
        resp.raise_for_status()
        if self.arrow:
            return pa.ipc.open_stream(resp.content).read_all().num_rows
        return len(resp.json())

    def close(self) -> None:
        self.http.close()


class DuckDbLocal:
    """The baseline: DuckDB in this process over local copies of the dataset's Parquet objects."""

    def __init__(self, paths: list[Path], table: str, via: str = "DuckDB in-process") -> None:
        self.via, self.kind = via, "in-process"
        self.db = duckdb.connect()
        files = ", ".join(f"'{p}'" for p in paths)
        self.db.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet([{files}])')

    def run(self, sql: str) -> int:
        return self.table(sql).num_rows

    def table(self, sql: str) -> pa.Table:
        return self.db.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.db.close()
