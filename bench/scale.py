"""Scale runs (`--scale`): HTTP ingest and the warm GROUP BY at 0.5M, 5M and 20M rows.

Each size gets a fresh server process, and the queries another one (over the same data and
read cache), so each peak RSS (VmHWM) belongs to that size and that phase alone. The ingest
is timed without a warm-up (a 20M-row run takes most of a minute) and repeated, each time as
a new dataset, while the time budget lasts: a single run is at the mercy of anything else the
machine does meanwhile. Cost should grow linearly with the rows (the per-row
cost stays put) and the server's memory should not grow with them. The CSV files are
generated once and cached (5M is about 0.9 GB, 20M about 3.5 GB); a size is skipped, with a
message, when the disk cannot hold it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.clients import Adbc
from bench.harness import Environment, Timing, log, measure, reset_peak_rss
from bench.ingest import http_ingest
from bench.queries import GROUP_BY
from bench.report import Section, Target
from bench.workers import default_cache_dir, ensure_workers_csv, fixture_name

SIZES = (500_000, 5_000_000, 20_000_000)
CSV_BYTES_PER_ROW = 176  # workers_500k.csv is 88 MB
# The CSV (unless cached) plus, for each ingest run, its Parquet twice (object store and read
# cache, under 20% of the CSV each), with room to spare.
PARQUET_TWICE, DISK_SPARE = 0.4, 2 << 30
FLAT_RSS = 1.25
LINEAR_COST = 1.25


@dataclass(frozen=True)
class Point:
    rows: int
    ingest_s: float
    ingest_runs: int
    ingest_peak_mb: float
    query_s: float
    query_peak_mb: float


def disk_shortfall(rows: int, runs: int, where: Path) -> int:
    """Bytes missing to run one size with up to `runs` ingests (0 when it fits)."""
    csv_bytes = rows * CSV_BYTES_PER_ROW
    cached = (default_cache_dir() / fixture_name(rows)).exists()
    need = (0 if cached else csv_bytes) + int(csv_bytes * PARQUET_TWICE * runs) + DISK_SPARE
    free = min(shutil.disk_usage(where).free, shutil.disk_usage(default_cache_dir()).free)
    return max(0, need - free)


def measure_size(env: Environment, rows: int, timing: Timing) -> Point:
    csv_path = ensure_workers_csv(rows)
    lh = env.lakehouse(f"scale-{rows}")
    try:
        reset_peak_rss(lh.pid)
        ingest = measure(lambda i: http_ingest(lh, csv_path, f"workers_{i}", rows), timing, warmup=0)
        ingest_peak = lh.peak_rss_mb()
        lh.restart()  # so the query's peak is its own, not what the ingest left allocated
        client = Adbc(lh.flight)
        try:
            query = measure(lambda i: client.run(GROUP_BY.text("workers_0")), timing)
        finally:
            client.close()
        return Point(rows, ingest.median_s, ingest.runs, ingest_peak, query.median_s, lh.peak_rss_mb())
    finally:
        lh.close()


def run(env: Environment, timing: Timing) -> Section:
    section = Section("Scale: HTTP ingest and warm GROUP BY via ADBC; fresh server per size")
    points: list[Point] = []
    for rows in SIZES:
        short = disk_shortfall(rows, timing.repeat, env.work)
        if short:
            section.notes.append(f"{rows:,} rows skipped: {short / 1e9:.1f} GB more free disk needed")
            continue
        log(f"scale: {rows:,} rows (generating the CSV first if needed)")
        try:
            points.append(measure_size(env, rows, timing))
        except Exception as exc:
            section.notes.append(f"{rows:,} rows FAILED: {type(exc).__name__}: {' '.join(str(exc).split())}"[:300])
    if not points:
        return section
    first = points[0]
    for p in points:
        grow = p.rows / first.rows
        label = f"{p.rows / 1e6:g}M rows (x{grow:g})"
        for what, seconds, base_s, peak, base_peak in (
            (f"ingest ({p.ingest_runs} runs)", p.ingest_s, first.ingest_s, p.ingest_peak_mb, first.ingest_peak_mb),
            ("GROUP BY", p.query_s, first.query_s, p.query_peak_mb, first.query_peak_mb),
        ):
            row = section.add(label, what, seconds, base_s, note=f"peak RSS {peak:.0f} MB (x{peak / base_peak:.2f}); per-row cost x{seconds / base_s / grow:.2f}")
            if p is not first:
                row.targets.append(Target(f"RSS <= {FLAT_RSS}x", peak <= FLAT_RSS * base_peak))
                if what.startswith("ingest"):
                    row.targets.append(Target(f"per-row cost <= {LINEAR_COST}x", seconds / base_s / grow <= LINEAR_COST))
    section.notes.append("ratio: time / the smallest size's time; linear growth means ratio = row factor (per-row cost x1.00)")
    return section
