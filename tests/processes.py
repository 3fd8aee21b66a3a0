"""`lakehouse serve` as a child process, for the tests that need a whole server: signals,
kill -9, memory of the process, several servers on one bucket."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from scripts import minio as minio_script
from scripts.smoke import Server, memory_mb


class ServerProcess(Server):
    """A started server that tests can also kill, measure and ask about its queries."""

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def rss_mb(self) -> float:
        return memory_mb(self.pid, "VmRSS")

    def running_queries(self) -> int:
        return int(httpx.get(f"{self.http}/ready", timeout=5).json().get("queries_running", -1))


def server_env(work: Path, storage_uri: str, minio: minio_script.MinioServer | None = None, **settings: str) -> dict[str, str]:
    """The environment of a server on `storage_uri`, with `settings` as LAKEHOUSE_* overrides
    (`query_timeout_seconds="1"` sets LAKEHOUSE_QUERY_TIMEOUT_SECONDS)."""
    env = dict(
        os.environ,
        LAKEHOUSE_STORAGE_URI=storage_uri,
        LAKEHOUSE_STORAGE_CACHE_DIR=str(work / "cache"),
        LAKEHOUSE_SECRETS_PATH=str(work / "secrets.toml"),
        LAKEHOUSE_CONFIG=str(work / "lakehouse.toml"),
    )
    (work / "lakehouse.toml").write_text("")
    if minio is not None:
        env.update(LAKEHOUSE_STORAGE_ENDPOINT=minio.endpoint, AWS_ACCESS_KEY_ID=minio_script.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=minio_script.SECRET_KEY)
    env.update({f"LAKEHOUSE_{key.upper()}": value for key, value in settings.items()})
    return env


@contextmanager
def server_process(work: Path, storage_uri: str, minio: minio_script.MinioServer | None = None, **settings: str) -> Iterator[ServerProcess]:
    """A started server on free ports; killed at the end if the test left it running."""
    work.mkdir(parents=True, exist_ok=True)
    http_port, flight_port = minio_script.free_port(), minio_script.free_port()
    env = server_env(work, storage_uri, minio, http_port=str(http_port), flight_port=str(flight_port), **settings)
    server = ServerProcess(env, http_port, flight_port, work / f"server-{http_port}.log")
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(30)
