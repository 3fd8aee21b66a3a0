"""The `lakehouse` command as a user runs it: a real process, real files, a real lake, and a real
server for `--server`."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from tests.processes import server_env, server_process

ROOT = Path(__file__).resolve().parent.parent
CSV = b"id,city,temp\n1,Oslo,-3.5\n2,Lima,NA\n3,Pune,31\n"


def run(cwd: Path, env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lakehouse", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120)


def ok(cwd: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = run(cwd, env, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def env_for(work: Path, storage_uri: str, **settings: str) -> dict[str, str]:
    work.mkdir(parents=True, exist_ok=True)
    return server_env(work, storage_uri, **settings)


def local_env(tmp_path: Path) -> dict[str, str]:
    return env_for(tmp_path / "work", f"file://{tmp_path / 'lake'}")


def test_ingest_sql_and_drop_on_the_local_lake(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    (tmp_path / "weather.csv").write_bytes(CSV)
    (tmp_path / "more.csv.gz").write_bytes(gzip.compress(b"id,city,temp\n4,Rome,18\n"))
    done = run(tmp_path, env, "ingest", "weather.csv", "more.csv.gz", "--name", "weather")
    assert done.returncode == 0, done.stderr
    assert "creating a new lake at" in done.stderr and "weather.csv: 3 rows into weather" in done.stderr and "4 rows in all" in done.stderr
    table = ok(tmp_path, env, "sql", "SELECT * FROM weather ORDER BY id")
    assert "Oslo" in table and "NULL" in table and "4 rows" in table
    assert ok(tmp_path, env, "sql", "SELECT id, temp FROM weather ORDER BY id", "--format", "csv").splitlines() == ['"id","temp"', "1,-3.5", "2,", "3,31", "4,18"]
    lines = ok(tmp_path, env, "sql", "SELECT id, city FROM weather WHERE id < 3 ORDER BY id", "--format", "json").splitlines()
    assert [json.loads(line) for line in lines] == [{"id": 1, "city": "Oslo"}, {"id": 2, "city": "Lima"}]
    ok(tmp_path, env, "sql", "SELECT * FROM weather", "--format", "parquet", "--output", "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 4
    assert json.loads(ok(tmp_path, env, "datasets"))[0]["row_count"] == 4
    done = run(tmp_path, env, "drop", "weather")
    assert done.returncode == 0 and "dropped weather" in done.stderr
    gone = run(tmp_path, env, "sql", "SELECT * FROM weather")
    assert gone.returncode == 1 and gone.stderr.strip().startswith("lakehouse:") and "Traceback" not in gone.stderr


def test_reading_options_and_options_after_the_command(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    env.pop("LAKEHOUSE_CONFIG")
    (tmp_path / "conf.toml").write_text("")
    (tmp_path / "eu.txt").write_bytes("1;Zoë;2,5\n".encode("cp1252"))
    ok(tmp_path, env, "ingest", "eu.txt", "--name", "eu", "--header", "false", "--names", "id,who,amount", "--encoding", "cp1252", "--config", "conf.toml")
    out = ok(tmp_path, env, "--config", "conf.toml", "sql", "SELECT * FROM eu", "--format", "json")
    assert json.loads(out) == {"id": 1, "who": "Zoë", "amount": 2.5}


def test_read_commands_never_create_a_lake_where_they_run(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    for args in (["datasets"], ["sql", "SELECT 1"], ["drop", "x"], ["gc"]):
        done = run(tmp_path, env, *args)
        assert done.returncode == 1 and f"no lake at {tmp_path / 'lake'}" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lake").exists()


def test_errors_are_one_line(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    (tmp_path / "bad.csv").write_bytes(b"a,b\n1,2,3\n")
    done = run(tmp_path, env, "ingest", "bad.csv", "--name", "bad")
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith("lakehouse: CSV line 2"), done.stderr
    assert "Traceback" not in done.stderr


def test_serve_names_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_for(tmp_path / "work", f"file://{tmp_path / 'lake'}", flight_port=str(port))
        done = run(tmp_path, env, "serve")
    assert done.returncode == 2 and f"127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if "lakehouse:" in line]) == 1


def test_ingest_and_sql_to_a_running_server_with_a_token(tmp_path: Path) -> None:
    work = tmp_path / "server"
    work.mkdir()
    env = server_env(work, f"file://{tmp_path / 'lake'}")
    ok(tmp_path, env, "users", "add", "wes", "--role", "writer", stdin="wes-writer-pass\n")
    with server_process(work, f"file://{tmp_path / 'lake'}", auth_enabled="true") as server:
        token = ok(tmp_path, server.env, "token", "create", "--user", "wes").strip()
        data = tmp_path / "data.parquet"
        pq.write_table(pa.table({"id": list(range(1000)), "v": [i * 0.5 for i in range(1000)]}), data, row_group_size=100)
        client_env = env_for(tmp_path / "client", "file:///nonexistent-lake")
        refused = run(tmp_path, client_env, "ingest", str(data), "--name", "remote", "--server", server.flight)
        assert refused.returncode == 1 and "credentials" in refused.stderr
        done = run(tmp_path, client_env, "ingest", str(data), "--name", "remote", "--server", server.flight, "--token", token)
        assert done.returncode == 0 and "1,000 rows into remote" in done.stderr, done.stderr
        answer = httpx.post(f"{server.http}/v1/sql", json={"sql": "SELECT count(*) AS n, sum(v) AS s FROM remote"}, headers={"Authorization": f"Bearer {token}"})
        assert answer.json() == [{"n": 1000, "s": 249750.0}]
        out = ok(tmp_path, dict(client_env, LAKEHOUSE_TOKEN=token), "sql", "SELECT max(id) AS m FROM remote", "--server", server.flight, "--format", "json")
        assert json.loads(out) == {"m": 999}
