"""Who may connect: users made with `lakehouse users add`, tokens from `lakehouse token create`,
roles enforced on Flight, Flight SQL and HTTP, TLS and mTLS with a throwaway CA. Every test
runs real `lakehouse serve` processes and the real clients."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.processes import ServerProcess, server_env, server_process
from tests.test_http import workers_csv

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {"ada": "ada-admin-pass", "wes": "wes-writer-pass", "rita": "rita-reader-pass"}
ROLES = {"ada": "admin", "wes": "writer", "rita": "reader"}
OPTS = adbc_driver_flightsql.DatabaseOptions


def lakehouse(work: Path, *args: str, stdin: str = "") -> str:
    """Run the `lakehouse` command against the server's secrets file; its stdout."""
    env = server_env(work, "file:///unused")
    done = subprocess.run([sys.executable, "-m", "lakehouse", *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def add_users(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for name, password in PASSWORDS.items():
        lakehouse(work, "users", "add", name, "--role", ROLES[name], stdin=password + "\n")


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[ServerProcess]:
    work = tmp_path / "server"
    add_users(work)
    with server_process(work, f"file://{tmp_path / 'data'}", auth_enabled="true") as server:
        yield server


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()}


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and modification time: what 'nothing changed' means.
    Servers' heartbeats (`_cluster/`) are left out: they are rewritten every second whatever
    clients do."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "_cluster"
    }


def test_users_command_manages_the_secrets_file(tmp_path: Path) -> None:
    add_users(tmp_path)
    listed = lakehouse(tmp_path, "users", "list")
    assert '"rita"' in listed and "password" not in listed
    secrets = (tmp_path / "secrets.toml").read_text()
    assert "$argon2id$" in secrets and PASSWORDS["rita"] not in secrets
    assert oct((tmp_path / "secrets.toml").stat().st_mode & 0o777) == "0o600"
    lakehouse(tmp_path, "users", "remove", "rita")
    assert '"rita"' not in lakehouse(tmp_path, "users", "list")
    generated = lakehouse(tmp_path, "users", "add", "gen", "--role", "reader", "--generate").strip()
    assert len(generated) >= 16


def test_adbc_logs_in_with_a_password_and_with_a_token(secured: ServerProcess) -> None:
    with flight_sql.connect(secured.flight, db_kwargs={"username": "wes", "password": PASSWORDS["wes"]}) as conn, conn.cursor() as cur:
        cur.adbc_ingest("people", pa.table({"id": [1, 2, 3]}), mode="create")
        cur.execute("SELECT sum(id)::BIGINT FROM people")
        assert cur.fetchone() == (6,)
    token = lakehouse(secured.log.parent, "token", "create", "--user", "rita").strip()
    with flight_sql.connect(secured.flight, db_kwargs={OPTS.AUTHORIZATION_HEADER.value: f"Bearer {token}"}) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM people")
        assert cur.fetchone() == (3,)


def test_pyarrow_basic_token_handshake(secured: ServerProcess) -> None:
    client = flight.connect(secured.flight)
    header = client.authenticate_basic_token("rita", PASSWORDS["rita"])
    assert header[0] == b"authorization" and header[1].startswith(b"Bearer ")
    options = flight.FlightCallOptions(headers=[header])
    assert list(client.list_flights(options=options)) == []
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(client.list_flights())


def test_wrong_password_and_expired_token_are_refused(secured: ServerProcess) -> None:
    with pytest.raises(flight_sql.Error, match="(?i)unauthenticated|wrong user name or password"):
        with flight_sql.connect(secured.flight, db_kwargs={"username": "wes", "password": "not-it"}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    expired = lakehouse(secured.log.parent, "token", "create", "--user", "wes", "--ttl", "1s").strip()
    time.sleep(2)
    with pytest.raises(flight_sql.Error, match="expired"):
        with flight_sql.connect(secured.flight, db_kwargs={OPTS.AUTHORIZATION_HEADER.value: f"Bearer {expired}"}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    assert httpx.get(f"{secured.http}/catalog/list", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    assert httpx.get(f"{secured.http}/catalog/list", headers={"Authorization": "Bearer " + expired[:-4] + "abcd"}).status_code == 401


def test_a_reader_cannot_write_and_nothing_changes(secured: ServerProcess, tmp_path: Path) -> None:
    with flight_sql.connect(secured.flight, db_kwargs={"username": "wes", "password": PASSWORDS["wes"]}) as conn, conn.cursor() as cur:
        cur.adbc_ingest("kept", pa.table({"id": [1, 2]}), mode="create")
    before = files(tmp_path / "data")
    with flight_sql.connect(secured.flight, db_kwargs={"username": "rita", "password": PASSWORDS["rita"]}) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM kept")
            assert cur.fetchone() == (2,)
        for attempt in (
            lambda cur: cur.adbc_ingest("kept", pa.table({"id": [3]}), mode="append"),
            lambda cur: cur.execute("INSERT INTO kept VALUES (3)"),
            lambda cur: cur.execute("DROP TABLE kept"),
            lambda cur: cur.execute("CREATE TABLE other AS SELECT 1 AS x"),
        ):
            with conn.cursor() as cur, pytest.raises(flight_sql.Error, match="(?i)permission|may not"):
                attempt(cur)
    client = flight.connect(secured.flight)
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("rita", PASSWORDS["rita"])])
    with pytest.raises(flight.FlightUnauthorizedError, match="admin permission"):
        list(client.do_action(flight.Action("gc", b""), options=options))
    with pytest.raises(flight.FlightUnauthorizedError):
        list(client.do_action(flight.Action("drop", b"kept"), options=options))
    http = httpx.Client(base_url=secured.http, timeout=30)
    assert http.post("/v1/ingest", params={"name": "kept", "mode": "append"}, content=workers_csv(3), headers={**basic("rita"), "Content-Type": "text/csv"}).status_code == 403
    assert http.put("/storage/put/raw/x", content=b"x", headers=basic("wes")).status_code == 403
    assert files(tmp_path / "data") == before


def test_a_user_narrowed_to_dataset_patterns_sees_and_touches_only_those(tmp_path: Path) -> None:
    work = tmp_path / "server"
    add_users(work)
    lakehouse(work, "users", "add", "sam", "--role", "writer", "--datasets", "sales_*", stdin="sam-writer-pass\n")
    with server_process(work, f"file://{tmp_path / 'data'}", auth_enabled="true") as server:
        with flight_sql.connect(server.flight, db_kwargs={"username": "wes", "password": PASSWORDS["wes"]}) as conn, conn.cursor() as cur:
            cur.adbc_ingest("sales_2024", pa.table({"id": [1, 2]}), mode="create")
            cur.adbc_ingest("secret", pa.table({"id": [3]}), mode="create")
        with flight_sql.connect(server.flight, db_kwargs={"username": "sam", "password": "sam-writer-pass"}) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM sales_2024")
                assert cur.fetchone() == (2,)
            with conn.cursor() as cur, pytest.raises(flight_sql.Error, match="secret does not exist"):
                cur.execute("SELECT * FROM secret")
            with conn.cursor() as cur, pytest.raises(flight_sql.Error, match="may not use dataset"):
                cur.adbc_ingest("secret", pa.table({"id": [4]}), mode="append")
        sam = {"Authorization": "Basic " + base64.b64encode(b"sam:sam-writer-pass").decode()}
        listed = httpx.get(f"{server.http}/catalog/list", headers=sam, timeout=30).json()["datasets"]
        assert [d["name"] for d in listed] == ["sales_2024"]
        assert httpx.get(f"{server.http}/catalog/manifest/secret", headers=sam, timeout=30).status_code == 403


def test_http_answers_401_403_and_lets_the_right_roles_in(secured: ServerProcess) -> None:
    http = httpx.Client(base_url=secured.http, timeout=30)
    assert http.get("/health").json() == {"status": "ok", "service": "lakehouse-http"}
    missing = http.post("/v1/sql", json={"sql": "SELECT 1"})
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"] and missing.json()["error"]
    assert http.post("/v1/sql", json={"sql": "SELECT 1"}, headers={"Authorization": "Basic " + base64.b64encode(b"rita:nope").decode()}).status_code == 401
    assert http.post("/v1/sql", json={"sql": "SELECT 1 AS one"}, headers=basic("rita")).json() == [{"one": 1}]
    token = lakehouse(secured.log.parent, "token", "create", "--user", "wes").strip()
    bearer = {"Authorization": f"Bearer {token}"}
    assert http.post("/v1/ingest", params={"name": "w"}, content=workers_csv(3), headers={**bearer, "Content-Type": "text/csv"}).status_code == 200
    assert http.get("/storage/list", headers=bearer).status_code == 403
    assert http.get("/storage/list", headers=basic("ada")).status_code == 200
    openapi = http.get("/schema/openapi.json").json()
    assert {"bearer", "basic"} <= set(openapi["components"]["securitySchemes"])


def test_a_token_from_one_server_works_on_another_with_the_same_key(tmp_path: Path) -> None:
    a_work, b_work = tmp_path / "a", tmp_path / "b"
    add_users(a_work)
    b_work.mkdir()
    (b_work / "secrets.toml").write_bytes((a_work / "secrets.toml").read_bytes())
    uri = f"file://{tmp_path / 'data'}"
    with server_process(a_work, uri, auth_enabled="true") as a, server_process(b_work, uri, auth_enabled="true") as b:
        client = flight.connect(a.flight)
        header = client.authenticate_basic_token("wes", PASSWORDS["wes"])
        token = header[1].decode()
        with flight_sql.connect(b.flight, db_kwargs={OPTS.AUTHORIZATION_HEADER.value: token}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 41 + 1")
            assert cur.fetchone() == (42,)
        assert httpx.post(f"{b.http}/v1/sql", json={"sql": "SELECT 1 AS one"}, headers={"Authorization": token}).status_code == 200


def test_with_auth_off_clients_that_send_credentials_are_let_in(tmp_path: Path) -> None:
    with server_process(tmp_path, f"file://{tmp_path / 'data'}") as server:
        with flight_sql.connect(server.flight, db_kwargs={"username": "anyone", "password": "anything"}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        client = flight.connect(server.flight)
        header = client.authenticate_basic_token("anyone", "anything")
        assert list(client.list_flights(options=flight.FlightCallOptions(headers=[header]))) == []
        assert httpx.post(f"{server.http}/v1/sql", json={"sql": "SELECT 1 AS one"}, headers={"Authorization": "Bearer whatever"}).status_code == 200


def test_errors_carry_no_traceback_or_server_path(secured: ServerProcess) -> None:
    with flight_sql.connect(secured.flight, db_kwargs={"username": "rita", "password": PASSWORDS["rita"]}) as conn, conn.cursor() as cur:
        with pytest.raises(flight_sql.Error) as failure:
            cur.execute("SELECT * FROM nope")
    text = str(failure.value)
    assert "does not exist" in text
    assert "Traceback" not in text and str(ROOT) not in text and ".py" not in text and "pg_" not in text


def test_a_non_loopback_bind_without_auth_and_tls_refuses_to_start(tmp_path: Path) -> None:
    env = server_env(tmp_path, f"file://{tmp_path / 'data'}", flight_host="0.0.0.0")
    done = subprocess.run([sys.executable, "-m", "lakehouse", "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "refusing to serve Flight on 0.0.0.0" in done.stderr and "--insecure" in done.stderr


# -- TLS -----------------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, ca: bool = False, server: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    ca_key = _key()
    ca = _cert("lakehouse test CA", ca_key, None, ca=True)
    paths: dict[str, Path] = {}
    for name, (cert, key) in {
        "ca": (ca, ca_key),
        "server": (_cert("127.0.0.1", server_key := _key(), (ca.subject, ca_key), server=True), server_key),
        "client": (_cert("a client", client_key := _key(), (ca.subject, ca_key)), client_key),
    }.items():
        paths[f"{name}.pem"] = tmp_path / f"{name}.pem"
        paths[f"{name}.pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{name}.key"] = tmp_path / f"{name}.key"
        paths[f"{name}.key"].write_bytes(_pem_key(key))
    return paths


def trusting(pki: dict[str, Path], with_client_cert: bool = False) -> ssl.SSLContext:
    """A client's TLS context that trusts the test CA (and presents the client certificate)."""
    context = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    if with_client_cert:
        context.load_cert_chain(str(pki["client.pem"]), str(pki["client.key"]))
    return context


def _tls_settings(pki: dict[str, Path], mtls: bool = False) -> dict[str, str]:
    settings = {"tls_cert": str(pki["server.pem"]), "tls_key": str(pki["server.key"])}
    if mtls:
        settings["tls_client_ca"] = str(pki["ca.pem"])
    return settings


def test_tls_on_both_servers(pki: dict[str, Path], tmp_path: Path) -> None:
    with tls_server(tmp_path, pki) as (flight_uri, https):
        root = pki["ca.pem"].read_text()
        with flight_sql.connect(flight_uri, db_kwargs={OPTS.TLS_ROOT_CERTS.value: root}) as conn, conn.cursor() as cur:
            cur.execute("SELECT 7")
            assert cur.fetchone() == (7,)
        assert httpx.get(f"{https}/health", verify=trusting(pki)).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{https}/health")  # the system's CAs do not know this one
        with pytest.raises(flight_sql.Error):
            with flight_sql.connect(flight_uri) as conn, conn.cursor() as cur:
                cur.execute("SELECT 7")


def test_mtls_refuses_clients_without_a_certificate(pki: dict[str, Path], tmp_path: Path) -> None:
    with tls_server(tmp_path, pki, mtls=True) as (flight_uri, https):
        assert httpx.get(f"{https}/health", verify=trusting(pki, with_client_cert=True)).status_code == 200
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(f"{https}/health", verify=trusting(pki))
        good = flight.connect(flight_uri, tls_root_certs=pki["ca.pem"].read_bytes(), cert_chain=pki["client.pem"].read_bytes(), private_key=pki["client.key"].read_bytes())
        assert list(good.list_flights()) == []
        bare = flight.connect(flight_uri, tls_root_certs=pki["ca.pem"].read_bytes())
        with pytest.raises(flight.FlightError):
            list(bare.list_flights(options=flight.FlightCallOptions(timeout=5)))


class tls_server:
    """A server process with TLS on both ports, started without the plain-HTTP readiness poll."""

    def __init__(self, tmp_path: Path, pki: dict[str, Path], mtls: bool = False) -> None:
        from scripts import minio as minio_script

        self.http_port, self.flight_port = minio_script.free_port(), minio_script.free_port()
        work = tmp_path / "tls-server"
        work.mkdir(exist_ok=True)
        self.env = server_env(work, f"file://{tmp_path / 'data'}", http_port=str(self.http_port), flight_port=str(self.flight_port), **_tls_settings(pki, mtls))
        self.log = work / "server.log"
        self.pki = pki
        self.mtls = mtls

    def __enter__(self) -> tuple[str, str]:
        self.proc = subprocess.Popen([sys.executable, "-m", "lakehouse", "serve"], env=self.env, cwd=ROOT, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        context = trusting(self.pki, with_client_cert=self.mtls)
        deadline = time.monotonic() + 60
        try:
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    if httpx.get(f"https://127.0.0.1:{self.http_port}/health", verify=context, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.2)
        except BaseException:
            self.__exit__()
            raise
        return f"grpc+tls://127.0.0.1:{self.flight_port}", f"https://127.0.0.1:{self.http_port}"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)



# -- the JDBC driver (DBeaver-type tools) ---------------------------------------------------------


@pytest.mark.slow
def test_the_jdbc_driver_connects_with_a_password_and_with_a_token(secured: ServerProcess) -> None:
    from scripts import jdbc

    port = secured.flight_port
    with flight_sql.connect(secured.flight, db_kwargs={"username": "wes", "password": PASSWORDS["wes"]}) as conn, conn.cursor() as cur:
        cur.adbc_ingest("jdbc_people", pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), mode="create")
    by_password = jdbc.run_query(f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false&user=rita&password={PASSWORDS['rita']}", "SELECT name FROM jdbc_people ORDER BY id")
    assert by_password.returncode == 0, by_password.stderr[-2000:]
    assert jdbc.rows(by_password) == [["a"], ["b"], ["c"]]
    token = lakehouse(secured.log.parent, "token", "create", "--user", "rita").strip()
    by_token = jdbc.run_query(f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false&token={token}", "SELECT count(*) FROM jdbc_people")
    assert by_token.returncode == 0, by_token.stderr[-2000:]
    assert jdbc.rows(by_token) == [["3"]]
    refused = jdbc.run_query(f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false&user=rita&password=wrong", "SELECT 1", timeout=60)
    assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr.upper()
