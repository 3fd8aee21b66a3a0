"""DuckDB's own `httpfs` reading the objects straight from S3: run by `bench.read_path` in a
virtual environment of its own (`.cache/httpfs-venv`), since the extension is packaged for
DuckDB 1.5.5 only while the lake pins DuckDB 2.0. Prints one JSON object: per query, the
cold and the warm (median) time in ms. Imports nothing of the lake.

    python bench/httpfs_probe.py '<json: endpoint, key, secret, urls, queries, repeat>'
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import duckdb
import duckdb_extension_httpfs


def connect(spec: dict) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect(config={"allow_unsigned_extensions": False, "autoinstall_known_extensions": False})
    extension = next(Path(duckdb_extension_httpfs.__file__).parent.rglob("httpfs.duckdb_extension"))
    db.execute(f"LOAD '{extension}'")
    host = spec["endpoint"].split("://", 1)[1]
    db.execute(
        f"CREATE SECRET (TYPE s3, KEY_ID '{spec['key']}', SECRET '{spec['secret']}', ENDPOINT '{host}', "
        "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
    )
    db.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({spec['urls']!r})")
    return db


def main() -> None:
    spec = json.loads(sys.argv[1])
    answers = {}
    for label, sql in spec["queries"].items():
        started = time.perf_counter()
        connect(spec).sql(sql).fetch_arrow_table()
        cold = (time.perf_counter() - started) * 1000
        db = connect(spec)
        db.sql(sql).fetch_arrow_table()
        samples = []
        for _ in range(spec["repeat"]):
            started = time.perf_counter()
            db.sql(sql).fetch_arrow_table()
            samples.append((time.perf_counter() - started) * 1000)
        answers[label] = [cold, statistics.median(samples)]
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
