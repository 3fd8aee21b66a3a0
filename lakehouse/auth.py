"""Who is calling, and what they may do: decided here, once, for every edge.

An edge's middleware hands the `Authorization` header of a call to `Authenticator.identify`:
`Basic` credentials are checked against the users' Argon2 hashes (`users.py`) and answered
with a fresh bearer token, the way Flight SQL clients (ADBC, JDBC) expect from a handshake;
a `Bearer` token is a JWT (HS256, PyJWT) signed with the key in the secrets file, so every
server sharing that key accepts every other's tokens. Handlers then ask the `Identity` for a
permission: `read` (queries, catalog), `write` (ingest, SQL writes, drop) or `admin` (raw
storage, gc, maintenance); roles are `reader`, `writer`, `admin`, each holding the
permissions of the ones before it. A user may be narrowed to dataset-name patterns.

With `[auth] enabled = false` (the embedded default on 127.0.0.1) every caller is the
anonymous admin, and a client that sends credentials anyway is let in: a Basic login gets a
token back that any server of this kind accepts while auth stays off.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

import jwt

from lakehouse.config import AuthConfig, Config
from lakehouse.errors import Forbidden, Unauthenticated
from lakehouse.users import ROLES, UserStore, password_matches

log = logging.getLogger(__name__)

READ, WRITE, ADMIN = "read", "write", "admin"
_GRANTS = {"reader": {READ}, "writer": {READ, WRITE}, "admin": {READ, WRITE, ADMIN}}
ISSUER = "lakehouse"
OPEN_TOKEN = "lakehouse-auth-disabled"
"""The token a Basic login gets while auth is off: it carries nothing and grants nothing more."""
_BASIC_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Identity:
    user: str
    role: str
    datasets: tuple[str, ...] = ()

    def allows(self, permission: str) -> bool:
        return permission in _GRANTS.get(self.role, set())

    def require(self, permission: str, what: str) -> None:
        """Raise `Forbidden` unless the role grants `permission`; `what` names the operation."""
        if not self.allows(permission):
            raise Forbidden(f"user {self.user!r} ({self.role}) may not {what}: it needs the {permission} permission", {"role": self.role, "needs": permission})

    def may_use(self, dataset: str) -> bool:
        return not self.datasets or any(fnmatch.fnmatchcase(dataset.lower(), p.lower()) for p in self.datasets)

    def require_dataset(self, dataset: str) -> None:
        if not self.may_use(dataset):
            raise Forbidden(f"user {self.user!r} may not use dataset {dataset!r}", {"datasets": list(self.datasets)})


ANONYMOUS = Identity("anonymous", "admin")


def exposure_refusal(config: Config, insecure: bool = False) -> str | None:
    """Why serving this configuration would be unsafe, or None: a server reachable beyond this
    machine needs both auth and TLS, unless the operator says otherwise on purpose."""
    if insecure or config.auth.allow_insecure:
        return None
    exposed = [f"{name} on {host}" for name, host in (("Flight", config.flight.host), ("HTTP", config.http.host)) if not _loopback(host)]
    missing = [what for what, on in (("auth ([auth] enabled = true)", config.auth.enabled), ("TLS ([tls] cert and key)", config.tls.enabled)) if not on]
    if exposed and missing:
        return f"refusing to serve {', '.join(exposed)} without {' and '.join(missing)}; pass --insecure (or [auth] allow_insecure = true) to do it anyway"
    return None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class Login:
    """The outcome of reading one `Authorization` header: who, and whether it was a password
    login (which a Flight handshake answers with a token, see `Authenticator.token_for`)."""

    identity: Identity
    basic: bool = False


class _Remembered:
    """Credentials already verified, each until a moment: checking them again costs far more
    than a look-up (Argon2 by design, a JWT about 0.14 ms). Bounded: emptied when full."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: dict[str, tuple[float, Identity]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> Identity | None:
        with self._lock:
            hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > now else None

    def put(self, key: str, until: float, identity: Identity) -> None:
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (until, identity)


class Authenticator:
    def __init__(self, config: AuthConfig, users: UserStore) -> None:
        self.config = config
        self.users = users
        self._passwords = _Remembered()
        self._tokens = _Remembered()

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def identify(self, authorization: str | None) -> Login:
        """The caller of a request from its `Authorization` header; raises `Unauthenticated`."""
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        scheme = scheme.lower()
        if not self.enabled:
            return Login(ANONYMOUS, scheme == "basic")
        if scheme == "basic":
            return Login(self._basic(credentials.strip()), True)
        if scheme == "bearer":
            return Login(self._bearer(credentials.strip()))
        raise Unauthenticated("authentication required: send Authorization: Basic <user:password> or Bearer <token>")

    def token_for(self, login: Login) -> str | None:
        """The bearer token a password login is answered with (a Flight handshake), else None."""
        if not login.basic:
            return None
        return self.issue(login.identity.user) if self.enabled else OPEN_TOKEN

    def _basic(self, credentials: str) -> Identity:
        # A client sending Basic on every call (HTTP) pays Argon2 once a minute, not per request.
        digest = hashlib.sha256(credentials.encode()).hexdigest()
        now = time.monotonic()
        known = self._passwords.get(digest, now)
        if known is not None:
            return known
        try:
            # Go's Flight client (under the ADBC driver) leaves out base64's padding.
            padded = credentials + "=" * (-len(credentials) % 4)
            name, _, password = base64.b64decode(padded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        user = self.users.get(name)
        if user is None or not password_matches(user, password):
            raise Unauthenticated("wrong user name or password")
        identity = Identity(user.name, user.role, user.datasets)
        self._passwords.put(digest, now + _BASIC_CACHE_SECONDS, identity)
        return identity

    def _bearer(self, token: str) -> Identity:
        # A Flight SQL query makes four calls with the same token: it is verified once and
        # remembered until it expires.
        known = self._tokens.get(token, time.time())
        if known is not None:
            return known
        try:
            claims = jwt.decode(token, self._key(), algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub", "role"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired; log in again or create a new one") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token") from None
        if claims["role"] not in ROLES:
            raise Unauthenticated("invalid token")
        identity = Identity(str(claims["sub"]), str(claims["role"]), tuple(claims.get("datasets") or ()))
        self._tokens.put(token, float(claims["exp"]), identity)
        return identity

    def issue(self, user: str, ttl_seconds: float | None = None) -> str:
        """A signed bearer token for `user`, carrying the user's role and dataset patterns."""
        record = self.users.get(user)
        if record is None:
            raise Unauthenticated(f"unknown user {user!r}")
        now = int(time.time())
        ttl = self.config.token_ttl_seconds if ttl_seconds is None else ttl_seconds
        claims = {"iss": ISSUER, "sub": record.name, "role": record.role, "iat": now, "exp": now + int(ttl)}
        if record.datasets:
            claims["datasets"] = list(record.datasets)
        return jwt.encode(claims, self._key(), algorithm="HS256")

    def _key(self) -> bytes:
        key = self.users.signing_key()
        if key is None:
            raise Unauthenticated("no signing key yet: add a user with `lakehouse users add`")
        return key
