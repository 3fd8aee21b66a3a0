"""Ingest benchmarks: data in, until a `count(*)` through the same protocol sees all of it.

* CSV: `POST /v1/ingest` (multipart, streamed from the file) vs the baseline, an in-process
  `pyarrow.csv.read_csv` + `pyarrow.parquet.write_table` of the same file.
* Arrow: Flight `DoPut` and ADBC `adbc_ingest` of the same table vs the baseline, an
  in-process `write_table` of that table.

Baselines write what the server writes: zstd, row groups of `ingest.row_group_rows`.
Every timed run ingests under a new dataset name (mode create).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.flight as flight
import pyarrow.parquet as pq

from bench.harness import Contender, Lakehouse, Timing, compare, log
from bench.report import Section, Target
from bench.workers import pyarrow_csv_options
from lakehouse.config import IngestConfig

ROW_GROUP_ROWS = IngestConfig().row_group_rows
INGEST_TARGET = 1.5
TIMEOUT_S = 3600.0


def read_csv(path: Path) -> pa.Table:
    read, parse, convert = pyarrow_csv_options()
    return pacsv.read_csv(path, read, parse, convert)


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def _expect(count: int, rows: int, what: str) -> None:
    if count != rows:
        raise RuntimeError(f"{what}: count(*) = {count} after ingest, expected {rows}")


def http_ingest(lh: Lakehouse, csv_path: Path, name: str, rows: int) -> None:
    """Upload the CSV as a multipart form (streamed from disk) and wait until it is queryable."""
    with httpx.Client(base_url=lh.http, timeout=TIMEOUT_S) as http, csv_path.open("rb") as fh:
        resp = http.post("/v1/ingest", params={"name": name}, files={"file": (csv_path.name, fh, "text/csv")})
        if resp.status_code != 200:
            raise RuntimeError(f"POST /v1/ingest answered {resp.status_code}: {resp.text[:300]}")
        answer = http.post("/v1/sql", json={"sql": f"SELECT count(*) AS n FROM {name}"})
        answer.raise_for_status()
        _expect(answer.json()[0]["n"], rows, "HTTP")


def flight_put(lh: Lakehouse, table: pa.Table, name: str) -> None:
    client = flight.connect(lh.flight)
    try:
        options = flight.FlightCallOptions(timeout=TIMEOUT_S)
        writer, metadata = client.do_put(flight.FlightDescriptor.for_path(name), table.schema, options)
        writer.write_table(table)
        writer.done_writing()
        metadata.read()
        writer.close()
        count = client.do_get(flight.Ticket(f"SELECT count(*) AS n FROM {name}".encode()), options).read_all()
        _expect(count["n"][0].as_py(), table.num_rows, "DoPut")
    finally:
        client.close()


def adbc_ingest(lh: Lakehouse, table: pa.Table, name: str) -> None:
    import adbc_driver_flightsql.dbapi as flight_sql

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = flight_sql.connect(lh.flight)
    with conn, conn.cursor() as cur:
        cur.adbc_ingest(name, table, mode="create")
        cur.execute(f"SELECT count(*) AS n FROM {name}")
        _expect(cur.fetchone()[0], table.num_rows, "adbc_ingest")


def run(lh: Lakehouse, csv_path: Path, rows: int, timing: Timing, scratch: Path) -> Section:
    size = csv_path.stat().st_size
    section = Section(f"Ingest until queryable: {csv_path.name} ({rows:,} rows, {size / 1e6:.0f} MB CSV)")
    target = scratch / "baseline.parquet"
    log("ingest: CSV")
    csv_rows = compare(
        section, "CSV -> Parquet",
        Contender("pyarrow in-process", lambda i: write_parquet(read_csv(csv_path), target)),
        [Contender("HTTP POST /v1/ingest", lambda i: http_ingest(lh, csv_path, f"ingest_http_{i}", rows))],
        timing, size,
    )
    table = read_csv(csv_path)
    log("ingest: Arrow")
    arrow_rows = compare(
        section, "Arrow -> Parquet",
        Contender("pyarrow in-process", lambda i: write_parquet(table, target)),
        [
            Contender("Flight DoPut", lambda i: flight_put(lh, table, f"ingest_doput_{i}")),
            Contender("ADBC adbc_ingest", lambda i: adbc_ingest(lh, table, f"ingest_adbc_{i}")),
        ],
        timing, table.nbytes,
    )
    target.unlink(missing_ok=True)
    for row in csv_rows[1:] + arrow_rows[1:]:
        if row.ratio is not None:
            row.targets.append(Target(f"<= {INGEST_TARGET}x base", row.ratio <= INGEST_TARGET))
    section.notes.append("MB/s: input bytes (the CSV file, or the Arrow table in memory) per second")
    return section
