"""Build, start and stop a real MinIO server for tests, the smoke script and local use.

MinIO's community edition ships as source only, so a pinned revision is built once with
`go install` into `.cache/minio/<version>/` and reused from there (seconds on the next run).
The server binds 127.0.0.1 only, keeps its data in a directory of its own and gets a bucket.

    python -m scripts.minio build
    python -m scripts.minio start --data .cache/minio-data --port 9000 --bucket lakehouse
    python -m scripts.minio stop --data .cache/minio-data
"""

from __future__ import annotations

import argparse
import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = "github.com/minio/minio"
# The go proxy serves MinIO's release tags as pseudo-versions; this is the newest community revision.
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
CACHE = ROOT / ".cache" / "minio" / VERSION
ACCESS_KEY = "lakehouse"
SECRET_KEY = "lakehouse-secret-key"


BUILD_NOTE = "first run only; usually 3 to 5 minutes on two idle cores, up to 15 on a loaded machine"
PROGRESS_SECONDS = 20


def build() -> Path:
    """Return the cached MinIO binary, building it with `go install` first if needed.

    The Go module and build caches of the build are temporary (together about 3 GB): only the
    binary is kept. While it builds, a line every `PROGRESS_SECONDS` shows it progressing.
    """
    binary = CACHE / "minio"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = CACHE / "staging"
    work = Path(tempfile.mkdtemp(prefix="minio-build-", dir=CACHE))
    env = dict(
        os.environ, GOBIN=str(staging), CGO_ENABLED="0", GOFLAGS="-trimpath -modcacherw",
        GOMODCACHE=str(work / "mod"), GOCACHE=str(work / "build"),
    )
    print(f"building MinIO {VERSION} with go install ({BUILD_NOTE})...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(["go", "install", f"{MODULE}@{VERSION}"], env=env, cwd=CACHE)
        while proc.poll() is None:
            try:
                proc.wait(timeout=PROGRESS_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"  still building MinIO: {_minutes(time.monotonic() - started)} so far, {_size_mb(work):,.0f} MB of modules and objects", file=sys.stderr, flush=True)
        if proc.returncode != 0:
            raise RuntimeError(f"building MinIO failed (go install exited with {proc.returncode})")
        (staging / "minio").rename(binary)
        staging.rmdir()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"built MinIO in {_minutes(time.monotonic() - started)}: {binary}", file=sys.stderr, flush=True)
    return binary


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total / 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MinioServer:
    """A running server; `endpoint` is what `storage.endpoint` should say."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    bucket: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"MinIO exited with code {self.process.returncode}; see {self.data_dir}.log")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"MinIO on port {self.port} not ready after {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.data_dir.with_suffix(".pid").unlink(missing_ok=True)

    def restart(self) -> None:
        """Start again on the same port and data (used to test recovery after an outage)."""
        self.stop()
        self.process = _spawn(build(), self.data_dir, self.port)
        self.wait_ready()


def _spawn(binary: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, MINIO_ROOT_USER=ACCESS_KEY, MINIO_ROOT_PASSWORD=SECRET_KEY, MINIO_BROWSER="off", MINIO_UPDATE="off")
    log = open(data_dir.with_suffix(".log"), "ab")
    proc = subprocess.Popen(
        [str(binary), "server", str(data_dir), "--address", f"127.0.0.1:{port}", "--quiet"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    data_dir.with_suffix(".pid").write_text(str(proc.pid))
    return proc


def start(data_dir: Path, port: int | None = None, bucket: str = "lakehouse") -> MinioServer:
    """Start MinIO on 127.0.0.1, wait until it answers, and create `bucket`."""
    binary = build()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    server = MinioServer(_spawn(binary, data_dir, port), data_dir, port, bucket)
    server.wait_ready()
    from minio import Minio

    client = Minio(f"127.0.0.1:{port}", access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    return server


def stop(data_dir: Path) -> None:
    pid_file = data_dir.with_suffix(".pid")
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
        pid_file.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.minio")
    parser.add_argument("command", choices=["build", "start", "stop"])
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "minio-data")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--bucket", default="lakehouse")
    args = parser.parse_args()
    if args.command == "build":
        print(build())
    elif args.command == "start":
        server = start(args.data, args.port, args.bucket)
        print(f"MinIO on {server.endpoint} (pid {server.process.pid}), bucket {args.bucket}, user {ACCESS_KEY}")
    else:
        stop(args.data)


if __name__ == "__main__":
    main()
