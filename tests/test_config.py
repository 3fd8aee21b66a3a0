"""Configuration and secrets: defaults, file, environment, and clear errors at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import load_config
from lakehouse.errors import ConfigError
from lakehouse.secrets import FileSecretsProvider


def write(tmp_path: Path, text: str, name: str = "lakehouse.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_bind_loopback_and_embedded_storage(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), environ={})
    assert cfg.storage.uri == "file://./data"
    assert (cfg.flight.host, cfg.flight.port) == ("127.0.0.1", 8815)
    assert (cfg.http.host, cfg.http.port, cfg.http.max_upload_bytes) == ("127.0.0.1", 3100, 2 * 1024**3)
    assert cfg.query.view_ttl_seconds == 30
    assert cfg.ingest.sample_rows == 1000


def test_sample_config_file_loads() -> None:
    cfg = load_config(Path(__file__).parent.parent / "lakehouse.toml", environ={})
    assert cfg.flight.port == 8815


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\nuri = "s3://bucket/pfx"\n[flight]\nport = 9999\n')
    cfg = load_config(path, environ={"LAKEHOUSE_FLIGHT_PORT": "8816", "LAKEHOUSE_HTTP_MAX_UPLOAD_BYTES": "10", "LAKEHOUSE_QUERY_VIEW_TTL_SECONDS": "1.5"})
    assert cfg.storage.uri == "s3://bucket/pfx"
    assert cfg.flight.port == 8816
    assert cfg.http.max_upload_bytes == 10
    assert cfg.query.view_ttl_seconds == 1.5


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 4000\n")
    assert load_config(environ={"LAKEHOUSE_CONFIG": str(path)}).http.port == 4000


@pytest.mark.parametrize(
    "text, env, needle",
    [
        ("[storage]\nbogus = 1\n", {}, "storage.bogus"),
        ("[nosuch]\nx = 1\n", {}, "nosuch"),
        ("[flight]\nport = 70000\n", {}, "flight.port"),
        ('[flight]\nport = "abc"\n', {}, "flight.port"),
        ("", {"LAKEHOUSE_FLIGHT_PORT": "eighty"}, "flight.port"),
        ("", {"LAKEHOUSE_STORAGE_NOPE": "1"}, "storage.nope"),
        ('[storage]\nuri = "ftp://x"\n', {}, "storage.uri"),
        ("[flight\nport=1", {}, "not valid TOML"),
    ],
)
def test_bad_config_fails_naming_the_problem(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ=env)
    assert needle in str(err.value)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml", environ={})


def test_secrets_file_and_environment_fallback(tmp_path: Path) -> None:
    path = write(tmp_path, '[s3]\naccess_key = "AK"\nsecret_key = "very-secret"\n', "secrets.toml")
    creds = FileSecretsProvider(path, environ={}).s3_credentials()
    assert creds is not None and creds.access_key.reveal() == "AK" and creds.secret_key.reveal() == "very-secret"
    assert "very-secret" not in repr(creds) and "very-secret" not in str(creds.secret_key)
    env = FileSecretsProvider(tmp_path / "none.toml", environ={"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"}).s3_credentials()
    assert env is not None and env.secret_key.reveal() == "B"
    assert FileSecretsProvider(tmp_path / "none.toml", environ={}).s3_credentials() is None


def test_unreadable_or_broken_secrets_file_fails_without_leaking(tmp_path: Path) -> None:
    broken = write(tmp_path, 'secret_key = "leaky-value\n', "secrets.toml")
    with pytest.raises(ConfigError) as err:
        FileSecretsProvider(broken, environ={})
    assert "leaky-value" not in str(err.value)
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot read secrets file"):
        FileSecretsProvider(directory, environ={})
