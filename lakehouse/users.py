"""Users and the token signing key, kept in the secrets file beside the S3 credentials.

    [auth]
    signing_key = "<random, base64>"

    [users.alice]
    role = "writer"
    password_hash = "$argon2id$..."
    datasets = ["sales_*"]        # optional: the dataset-name patterns the user may touch

Passwords are stored only as Argon2id hashes (argon2-cffi: slow and salted by design), never
in `lakehouse.toml`. The file is rewritten whole (through a temporary file and a rename,
readable by its owner only); the `lakehouse users` commands are its only writers. Servers
read it at start and again when it changes, so a user added on the command line can log in
without a restart.
"""

from __future__ import annotations

import base64
import copy
import os
import secrets as random
import tempfile
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import tomli_w

from lakehouse.errors import ConfigError, InvalidInput, NotFound

ROLES = ("reader", "writer", "admin")
_hasher = argon2.PasswordHasher()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str
    datasets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "datasets": list(self.datasets)}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def generate_password() -> str:
    return random.token_urlsafe(18)


class UserStore:
    """The `[users]` and `[auth]` tables of one secrets file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._data: dict[str, Any] = {}

    def _read(self) -> dict[str, Any]:
        """The file's contents, re-read only when its modification time or size changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    with self.path.open("rb") as fh:
                        self._data = tomllib.load(fh)
                except OSError as exc:
                    raise ConfigError(f"cannot read secrets file {self.path}: {exc.strerror}") from None
                except tomllib.TOMLDecodeError:
                    raise ConfigError(f"secrets file {self.path} is not valid TOML") from None
                self._stamp = stamp
            return self._data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets-")
        try:
            with os.fdopen(fd, "wb") as fh:
                tomli_w.dump(data, fh)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def users(self) -> list[User]:
        table = self._read().get("users", {})
        return sorted((_user(name, entry) for name, entry in table.items()), key=lambda u: u.name)

    def get(self, name: str) -> User | None:
        entry = self._read().get("users", {}).get(name)
        return None if entry is None else _user(name, entry)

    def add(self, name: str, role: str, password: str, datasets: tuple[str, ...] = ()) -> User:
        """Create or replace a user; the signing key is created with the first user."""
        if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise InvalidInput(f"invalid user name {name!r}: letters, digits and _-. only")
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise InvalidInput("a password has at least 8 characters")
        data = copy.deepcopy(self._read())
        data.setdefault("auth", {}).setdefault("signing_key", base64.b64encode(random.token_bytes(32)).decode())
        entry: dict[str, Any] = {"role": role, "password_hash": hash_password(password)}
        if datasets:
            entry["datasets"] = list(datasets)
        data.setdefault("users", {})[name] = entry
        self._write(data)
        return _user(name, entry)

    def remove(self, name: str) -> None:
        data = copy.deepcopy(self._read())
        if name not in data.get("users", {}):
            raise NotFound(f"user {name!r} not found")
        del data["users"][name]
        self._write(data)

    def signing_key(self) -> bytes | None:
        key = self._read().get("auth", {}).get("signing_key")
        return base64.b64decode(key) if key else None


def _user(name: str, entry: dict[str, Any]) -> User:
    role = entry.get("role")
    if role not in ROLES or not isinstance(entry.get("password_hash"), str):
        raise ConfigError(f"user {name!r} in the secrets file needs a role ({', '.join(ROLES)}) and a password_hash")
    return User(name, role, entry["password_hash"], tuple(entry.get("datasets") or ()))
