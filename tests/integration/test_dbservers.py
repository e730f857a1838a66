"""Throwaway database servers: they must really check passwords, and clean up after themselves."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rotator.dbservers as dbservers
from rotator.dbservers import (
    CertificateAuthority,
    DatabaseServer,
    DatabaseServerError,
    mariadb_available,
    postgres_available,
    redis_available,
    start_mariadb,
    start_postgres,
    start_redis,
)
from rotator.dbservers.tls import client_context
from tests.integration.conftest import all_logins, require_engine

pytestmark = pytest.mark.integration

ENGINES: dict[str, tuple[Callable[[], bool], Callable[..., DatabaseServer]]] = {
    "postgres": (postgres_available, start_postgres),
    "mariadb": (mariadb_available, start_mariadb),
    "redis": (redis_available, start_redis),
}
SYSTEM_PORTS = {5432, 3306, 6379}  # the machine's trust-auth servers: never ours
HOSTILE_NAMES = ["x; DROP ROLE y", "O'Brien", 'a"b', "app-user"]
SRC_DIR = Path(dbservers.__file__).resolve().parents[2]  # src/rotator/dbservers/__init__.py


def _hostile_password() -> str:
    """A random password full of quoting characters."""
    return secrets.token_urlsafe(12) + "'\"; --\\ $1 %s"


def _accepts_tcp(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _login_key(server: DatabaseServer, username: str) -> str:
    return f"{username}@%" if server.engine == "mariadb" else username


def _create_a_login_as(server: DatabaseServer, user: str, password: str, new_user: str) -> None:
    """Create new_user while connected as user (not as the admin)."""
    secret = _hostile_password()
    if server.engine == "redis":
        client = server.connect(user, password)
        try:
            client.execute_command("ACL", "SETUSER", new_user, "on", f">{secret}", "+@all")
        finally:
            client.close()
        return
    with contextlib.closing(server.connect(user, password)) as conn, conn.cursor() as cur:
        if server.engine == "postgres":
            from psycopg2 import sql

            cur.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(new_user)),
                (secret,),
            )
        else:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (new_user, secret))


@pytest.fixture(params=list(ENGINES))
def server(request: pytest.FixtureRequest) -> DatabaseServer:
    """Each engine's session-wide server (tests/integration/conftest.py) in turn."""
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]


# --- every engine -------------------------------------------------------------------------


def test_a_new_server_listens_on_its_own_port_on_localhost(server: DatabaseServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.port not in SYSTEM_PORTS
    assert _accepts_tcp(server.port)
    assert server.running
    assert server.data_dir.is_dir()


def test_the_admin_logs_in_with_the_generated_password(server: DatabaseServer) -> None:
    assert server.can_login(server.admin_user, server.admin_password)


def test_the_server_refuses_a_wrong_password(server: DatabaseServer) -> None:
    assert not server.can_login(server.admin_user, server.admin_password + "x")


def test_the_server_refuses_an_empty_password(server: DatabaseServer) -> None:
    assert not server.can_login(server.admin_user, "")


def test_the_server_refuses_a_user_that_does_not_exist(server: DatabaseServer) -> None:
    assert not server.can_login("nobody-by-that-name", server.admin_password)


def test_the_admin_password_is_not_shown_in_the_repr(server: DatabaseServer) -> None:
    assert server.admin_password not in repr(server)


@pytest.mark.parametrize("username", HOSTILE_NAMES)
def test_a_login_with_a_hostile_name_logs_in_and_no_other_login_changes(
    server: DatabaseServer, username: str
) -> None:
    """A decoy login "y" must survive; only the new login may appear."""
    password = _hostile_password()
    server.drop_login("y")
    server.create_login("y", _hostile_password())
    before = all_logins(server)
    try:
        if server.engine == "redis" and " " in username:
            # Redis itself forbids spaces in ACL user names: the attempt must fail cleanly.
            with pytest.raises(Exception, match="can't contain spaces"):
                server.create_login(username, password)
            assert all_logins(server) == before
            return
        server.create_login(username, password)
        after = all_logins(server)
        assert after - before == {_login_key(server, username)}
        assert before <= after
        assert server.can_login(username, password)
        assert not server.can_login(username, password + "x")
    finally:
        server.drop_login(username)
        server.drop_login("y")
    assert all_logins(server) == before - {_login_key(server, "y")}


def test_a_dropped_login_can_no_longer_log_in_and_dropping_again_is_harmless(
    server: DatabaseServer,
) -> None:
    password = _hostile_password()
    server.create_login("short-lived", password)
    assert server.can_login("short-lived", password)
    server.drop_login("short-lived")
    assert not server.can_login("short-lived", password)
    server.drop_login("short-lived")


def test_creating_a_login_that_exists_raises(server: DatabaseServer) -> None:
    server.create_login("twice", _hostile_password())
    try:
        with pytest.raises(Exception):  # noqa: B017 - each driver raises its own type
            server.create_login("twice", _hostile_password())
    finally:
        server.drop_login("twice")


def test_a_superuser_login_can_create_otherall_logins(server: DatabaseServer) -> None:
    password = _hostile_password()
    server.create_login("rotation-admin", password, superuser=True)
    try:
        _create_a_login_as(server, "rotation-admin", password, "made-by-rotation-admin")
        assert _login_key(server, "made-by-rotation-admin") in all_logins(server)
    finally:
        server.drop_login("made-by-rotation-admin")
        server.drop_login("rotation-admin")


def test_an_ordinary_sql_login_cannot_create_otherall_logins(db_server: DatabaseServer) -> None:
    # SQL engines only: Redis gives every login +@all by design.
    password = _hostile_password()
    db_server.create_login("plain-user", password)
    try:
        with pytest.raises(Exception):  # noqa: B017 - each driver raises its own type
            _create_a_login_as(db_server, "plain-user", password, "should-not-exist")
        assert _login_key(db_server, "should-not-exist") not in all_logins(db_server)
    finally:
        db_server.drop_login("should-not-exist")
        db_server.drop_login("plain-user")


def test_passwords_never_reach_the_server_log(server: DatabaseServer) -> None:
    """Even a failing CREATE (duplicate user) must not echo the password into the log."""
    password = _hostile_password()
    server.create_login("logged-user", password)
    try:
        with pytest.raises(Exception):  # noqa: B017 - each driver raises its own type
            server.create_login("logged-user", password)
        server.can_login("logged-user", password + "wrong")
    finally:
        server.drop_login("logged-user")
    assert server.log_file is not None
    log_text = server.log_file.read_text(errors="replace")
    assert password not in log_text
    assert server.admin_password not in log_text


@pytest.mark.parametrize("engine", list(ENGINES))
def test_stop_removes_the_data_dir_and_the_port_stops_accepting(engine: str) -> None:
    require_engine(engine)
    started = ENGINES[engine][1]()
    port, data_dir, work_dir = started.port, started.data_dir, started.work_dir
    own_ca = started.ca_file  # no CA given: it made its own, inside its work dir
    assert _accepts_tcp(port)
    assert own_ca is not None and own_ca.is_relative_to(work_dir)

    started.stop()

    assert not data_dir.exists()
    assert not work_dir.exists()
    assert not _accepts_tcp(port)
    assert not started.running
    started.stop()  # idempotent
    with pytest.raises(Exception):  # noqa: B017 - a dead server is an error, not "refused"
        started.can_login(started.admin_user, started.admin_password)


# --- TLS: every server speaks it, with a certificate from the session's CA -------------------


def _admin_login(server: DatabaseServer, *, trusting: Path | None) -> None:
    """Log in as the admin with the engine's driver: plaintext (trusting=None), or over TLS
    verifying the certificate and host name against the CA file ``trusting``."""
    if server.engine == "postgres":
        import psycopg2

        libpq_tls: dict[str, Any] = {"sslmode": "disable"}
        if trusting is not None:
            libpq_tls = {"sslmode": "verify-full", "sslrootcert": str(trusting)}
        psycopg2.connect(
            host=server.host,
            port=server.port,
            user=server.admin_user,
            password=server.admin_password,
            dbname="postgres",
            connect_timeout=5,
            **libpq_tls,
        ).close()
    elif server.engine == "mariadb":
        import pymysql

        pymysql.connect(
            host=server.host,
            port=server.port,
            user=server.admin_user,
            password=server.admin_password,
            connect_timeout=5,
            **({"ssl_disabled": True} if trusting is None else {"ssl": client_context(trusting)}),
        ).close()
    else:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        tls: dict[str, Any] = {}
        if trusting is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(trusting), "ssl_check_hostname": True}
        client = redis.Redis(
            host=server.host,
            port=server.port,
            username=server.admin_user,
            password=server.admin_password,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
            **tls,
        )
        try:
            client.ping()
        finally:
            client.close()


def test_every_server_of_the_session_has_a_certificate_from_the_session_ca(
    postgres_server: DatabaseServer,
    mariadb_server: DatabaseServer,
    redis_server: DatabaseServer,
    test_ca: CertificateAuthority,
) -> None:
    assert test_ca.ca_file == test_ca.directory / "test-ca.pem"
    assert test_ca.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for each in (postgres_server, mariadb_server, redis_server):
        assert each.ca_file == test_ca.ca_file


def test_the_stack_settings_make_the_session_ca_the_default_bundle(
    test_ca_stack_settings: dict[str, dict[str, str]], test_ca: CertificateAuthority
) -> None:
    from rotator.template import load_template

    bundle_name = test_ca_stack_settings["parameter_overrides"]["CaBundle"]
    bundle_dir = Path(test_ca_stack_settings["function_environment"]["CA_BUNDLE_DIR"])
    assert bundle_dir / f"{bundle_name}.pem" == test_ca.ca_file
    assert "CaBundle" in load_template()["Parameters"]


def test_a_client_that_trusts_the_session_ca_logs_in_over_verified_tls(
    server: DatabaseServer, test_ca: CertificateAuthority
) -> None:
    _admin_login(server, trusting=test_ca.ca_file)


def test_a_plaintext_login_with_the_right_password_is_refused(server: DatabaseServer) -> None:
    with pytest.raises(Exception) as refused:
        _admin_login(server, trusting=None)
    if server.engine == "postgres":
        assert "no encryption" in str(refused.value)  # no pg_hba line admits plaintext
    elif server.engine == "mariadb":
        assert refused.value.args[0] == 1045  # require_secure_transport answers "access denied"
    else:
        assert type(refused.value).__name__ == "ConnectionError"  # its only port speaks TLS


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(
    server: DatabaseServer, tmp_path: Path
) -> None:
    stranger = CertificateAuthority(tmp_path)
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        _admin_login(server, trusting=stranger.ca_file)


def test_the_servers_own_helpers_speak_tls(server: DatabaseServer) -> None:
    if server.engine == "redis":
        client = server.admin_connection()
        try:
            assert client.connection_pool.connection_class.__name__ == "SSLConnection"
            assert client.config_get("port") == {"port": "0"}  # no plaintext port at all
            assert client.config_get("tls-port") == {"tls-port": str(server.port)}
        finally:
            client.close()
        return
    query = {
        "postgres": "SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        "mariadb": "SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS "
        "WHERE VARIABLE_NAME = 'SSL_VERSION'",
    }[server.engine]
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute(query)
        assert cur.fetchone() == (1,)


def test_the_servers_own_helpers_refuse_a_certificate_their_ca_did_not_issue(
    server: DatabaseServer, tmp_path: Path
) -> None:
    """A handle that trusts another CA must raise on connect, not report "password refused"."""
    misled = dataclasses.replace(server, ca=CertificateAuthority(tmp_path))
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        misled.can_login(server.admin_user, server.admin_password)


def test_a_postgres_client_refuses_a_host_name_the_certificate_does_not_name(
    postgres_server: DatabaseServer,
) -> None:
    import psycopg2

    def login(host_name: str) -> None:
        psycopg2.connect(
            host=host_name,
            hostaddr="127.0.0.1",  # the same server, under another name
            port=postgres_server.port,
            user="postgres",
            password=postgres_server.admin_password,
            sslmode="verify-full",
            sslrootcert=str(postgres_server.ca_file),
            connect_timeout=5,
        ).close()

    login("localhost")
    with pytest.raises(psycopg2.OperationalError, match="does not match host name"):
        login("db.example.com")


def test_server_certificates_name_the_loopback_address_and_localhost(tmp_path: Path) -> None:
    from cryptography import x509

    certificate = CertificateAuthority(tmp_path / "ca").issue_server_certificate(tmp_path / "tls")
    leaf = x509.load_pem_x509_certificate(certificate.cert_file.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert certificate.key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("engine", list(ENGINES))
def test_tls_false_starts_a_plaintext_server_for_the_transition(engine: str) -> None:
    require_engine(engine)
    with ENGINES[engine][1](tls=False) as plain:
        assert plain.ca_file is None
        _admin_login(plain, trusting=None)
        assert plain.can_login(plain.admin_user, plain.admin_password)


# --- PostgreSQL -----------------------------------------------------------------------------


def test_postgres_pg_hba_requires_scram_and_has_no_trust_lines(
    postgres_server: DatabaseServer,
) -> None:
    rules = [
        line.split()
        for line in (postgres_server.data_dir / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules
    assert all(rule[-1] == "scram-sha-256" for rule in rules)
    assert ["hostssl", "all", "all", "127.0.0.1/32", "scram-sha-256"] in rules
    assert {rule[0] for rule in rules} == {"local", "hostssl"}  # no plaintext "host" line


def test_postgres_stores_passwords_as_scram_hashes(postgres_server: DatabaseServer) -> None:
    postgres_server.create_login("hashed-user", _hostile_password())
    try:
        with contextlib.closing(postgres_server.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("SHOW password_encryption")
            assert cur.fetchone() == ("scram-sha-256",)
            cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'hashed-user'")
            row = cur.fetchone()
            assert row is not None and row[0].startswith("SCRAM-SHA-256$")
    finally:
        postgres_server.drop_login("hashed-user")


def test_postgres_has_an_app_database_the_new_login_can_use(
    postgres_server: DatabaseServer,
) -> None:
    password = _hostile_password()
    postgres_server.create_login("app-db-user", password)
    try:
        assert postgres_server.can_login("app-db-user", password, dbname="app")
    finally:
        postgres_server.drop_login("app-db-user")


def test_postgres_listens_only_on_localhost(postgres_server: DatabaseServer) -> None:
    with contextlib.closing(postgres_server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone() == ("127.0.0.1",)


def test_postgres_runs_as_an_unprivileged_os_user(postgres_server: DatabaseServer) -> None:
    assert postgres_server.pid is not None
    status = Path(f"/proc/{postgres_server.pid}/status").read_text()
    real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        assert real_uid != 0
        assert postgres_server.os_user in {"postgres", "nobody"}
    else:
        assert real_uid == os.geteuid()


def test_postgres_rejects_a_role_name_it_would_silently_truncate(
    postgres_server: DatabaseServer,
) -> None:
    with pytest.raises(ValueError, match="63 bytes"):
        postgres_server.create_login("r" * 64, _hostile_password())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another OS user")
def test_postgres_explains_a_base_dir_its_os_user_cannot_reach(tmp_path: Path) -> None:
    require_engine("postgres")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(DatabaseServerError, match="searchable by that user"):
        start_postgres(base_dir=locked)
    assert list(locked.iterdir()) == []


# --- MariaDB ---------------------------------------------------------------------------------


def test_mariadb_has_no_anonymous_or_passwordless_accounts(mariadb_server: DatabaseServer) -> None:
    with contextlib.closing(mariadb_server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = ''")
        assert cur.fetchone() == (0,)
        cur.execute(
            "SELECT user, host FROM mysql.global_priv "
            "WHERE JSON_VALUE(priv, '$.authentication_string') = '' "
            "AND user <> 'mariadb.sys'"
        )
        assert cur.fetchall() == ()


def test_mariadb_has_an_app_database_the_new_login_can_read(mariadb_server: DatabaseServer) -> None:
    password = _hostile_password()
    mariadb_server.create_login("app-reader", password)
    try:
        assert mariadb_server.can_login("app-reader", password, dbname="app")
    finally:
        mariadb_server.drop_login("app-reader")


def test_mariadb_root_needs_the_password_even_on_the_unix_socket(
    mariadb_server: DatabaseServer,
) -> None:
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(
            unix_socket=str(mariadb_server.socket_path), user="root", password="", ssl_disabled=True
        )
    assert refused.value.args[0] == 1045


# --- Redis -----------------------------------------------------------------------------------


def test_redis_refuses_clients_that_do_not_authenticate(redis_server: DatabaseServer) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=redis_server.host,
        port=redis_server.port,
        retry=Retry(NoBackoff(), 0),
        ssl=True,
        ssl_ca_certs=str(redis_server.ca_file),
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        client.ping()
    assert not redis_server.can_login("default", "")


def test_redis_keeps_nothing_on_disk(redis_server: DatabaseServer) -> None:
    client = redis_server.admin_connection()
    try:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


# --- cleanup when the owning process goes away -----------------------------------------------


def _start_in_child(engine: str, then: str) -> tuple[subprocess.Popen[str], int, Path]:
    code = (
        "import sys, time\n"
        f"from rotator.dbservers import start_{engine}\n"
        f"s = start_{engine}()\n"
        "print(s.port, s.work_dir, flush=True)\n"
        f"{then}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC_DIR), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert len(line) == 2, "the child did not start its server"
    return child, int(line[0]), Path(line[1])


def _eventually(condition: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_server_is_cleaned_up_when_its_owner_is_killed() -> None:
    require_engine("postgres")
    child, port, work_dir = _start_in_child("postgres", "time.sleep(120)")
    assert _accepts_tcp(port)

    child.send_signal(signal.SIGKILL)
    child.wait()

    assert _eventually(lambda: not _accepts_tcp(port) and not work_dir.exists())


def test_a_server_is_cleaned_up_when_its_owner_exits_without_stopping_it() -> None:
    require_engine("redis")
    child, port, work_dir = _start_in_child("redis", "sys.exit(0)")
    assert child.wait(timeout=30) == 0
    assert not _accepts_tcp(port)
    assert not work_dir.exists()
