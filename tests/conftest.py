"""Shared fixtures: a real MinIO server for the session, and lakes on both backends.

Every test that touches storage runs twice, on the local directory and on MinIO. Each test
gets its own empty prefix (or directory), so tests never see each other's datasets.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from lakehouse.config import Config, StorageConfig, load_config
from lakehouse.secrets import S3Credentials, Secret, SecretsProvider
from lakehouse.storage import ObjectStore, open_store
from scripts import minio as minio_script


class StaticSecrets(SecretsProvider):
    def __init__(self, access: str, secret: str) -> None:
        self._creds = S3Credentials(Secret(access), Secret(secret))

    def s3_credentials(self) -> S3Credentials:
        return self._creds


MINIO_SECRETS = StaticSecrets(minio_script.ACCESS_KEY, minio_script.SECRET_KEY)


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[minio_script.MinioServer]:
    server = minio_script.start(tmp_path_factory.mktemp("minio") / "data")
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """A configuration for this test on the chosen backend, with a private prefix or directory."""
    base = load_config(environ={})
    if backend == "local":
        storage = StorageConfig(uri=f"file://{tmp_path / 'data'}", cache_dir=str(tmp_path / "cache"))
    else:
        server = request.getfixturevalue("minio")
        storage = StorageConfig(uri=f"s3://{server.bucket}/{uuid.uuid4().hex}", endpoint=server.endpoint, cache_dir=str(tmp_path / "cache"), timeout_seconds=2.0)
    # No grace: only what the catalog knows (manifests, leases) keeps gc from an object.
    catalog = dataclasses.replace(base.catalog, gc_grace_seconds=0.0)
    return dataclasses.replace(base, storage=storage, query=dataclasses.replace(base.query, view_ttl_seconds=0.0), catalog=catalog)


@pytest.fixture
def store(config: Config) -> Iterator[ObjectStore]:
    s = open_store(config.storage, MINIO_SECRETS)
    yield s
    s.close()


@pytest.fixture
def lake(config: Config) -> Iterator["Lake"]:
    from lakehouse.lake import Lake

    lk = Lake.open(config, MINIO_SECRETS)
    yield lk
    lk.close()
