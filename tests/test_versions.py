"""A dataset's history: every committed version listed with its operation, and any version's
manifest, through the library, HTTP, Flight and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight

from lakehouse.lake import Lake
from scripts import minio as minio_script
from tests.processes import server_env
from tests.test_flight import Served, put, serve, served  # noqa: F401  (fixtures)
from tests.test_http import serving


def history(lake: Lake) -> None:
    lake.ingest_arrow("h", pa.table({"id": pa.array([1, 2], pa.int64())}).to_reader())
    lake.ingest_arrow("h", pa.table({"id": pa.array([3], pa.int64())}).to_reader(), mode="append")
    lake.ingest_arrow("h", pa.table({"id": pa.array([4], pa.int64()), "x": ["a"]}).to_reader(), mode="append", evolve=True)
    lake.ingest_arrow("h", pa.table({"id": pa.array([9], pa.int64())}).to_reader(), mode="replace")
    lake.drop("h")
    lake.ingest_arrow("h", pa.table({"id": pa.array([5], pa.int64())}).to_reader())


def test_versions_list_each_commit_with_its_operation(lake: Lake) -> None:
    history(lake)
    got = lake.versions("h")
    assert [(v["version"], v["operation"], v["row_count"], v["objects"]) for v in got] == [
        (1, "create", 2, 1), (2, "append", 3, 2), (3, "evolve", 4, 3), (4, "replace", 1, 1), (5, "drop", 0, 0), (6, "create", 1, 1),
    ]
    assert got[0]["committed_at"] <= got[-1]["committed_at"]
    assert lake.manifest_at("h", 2).row_count == 3


def test_versions_over_http_flight_and_the_command_line(served: Served, tmp_path: Path) -> None:
    history(served.lake)
    with serving(served.lake) as running:
        listed = running.client.get("/catalog/versions/h").json()
        assert [v["operation"] for v in listed] == ["create", "append", "evolve", "replace", "drop", "create"]
        assert running.client.get("/catalog/manifest/h", params={"version": 2}).json()["row_count"] == 3
        assert running.client.get("/catalog/manifest/h", params={"version": 99}).status_code == 404
        assert running.client.get("/catalog/versions/nobody").status_code == 404
    answer = json.loads(next(iter(served.client().do_action(flight.Action("versions", b"h")))).body.to_pybytes())
    assert answer == listed
    env = server_env(tmp_path, served.lake.config.storage.uri)
    env["LAKEHOUSE_STORAGE_CACHE_DIR"] = str(tmp_path / "cli-cache")
    if served.lake.config.storage.uri.startswith("s3://"):
        env.update(LAKEHOUSE_STORAGE_ENDPOINT=served.lake.config.storage.endpoint, AWS_ACCESS_KEY_ID=minio_script.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=minio_script.SECRET_KEY)
    done = subprocess.run([sys.executable, "-m", "lakehouse", "versions", "h"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert [(v["version"], v["operation"], v["row_count"], v["objects"]) for v in printed] == [(v["version"], v["operation"], v["row_count"], v["objects"]) for v in listed]
