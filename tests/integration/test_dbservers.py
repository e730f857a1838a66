"""Throwaway database servers: they must really check passwords, and clean up after themselves."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rotator.dbservers as dbservers
from rotator.dbservers import (
    DatabaseServer,
    DatabaseServerError,
    mariadb_available,
    postgres_available,
    redis_available,
    start_mariadb,
    start_postgres,
    start_redis,
)
from tests.integration.conftest import all_logins, require_engine

pytestmark = pytest.mark.integration

ENGINES: dict[str, tuple[Callable[[], bool], Callable[..., DatabaseServer]]] = {
    "postgres": (postgres_available, start_postgres),
    "mariadb": (mariadb_available, start_mariadb),
    "redis": (redis_available, start_redis),
}
SYSTEM_PORTS = {5432, 3306, 6379}  # the machine's trust-auth servers: never ours
HOSTILE_NAMES = ["x; DROP ROLE y", "O'Brien", 'a"b', "app-user"]
SRC_DIR = Path(dbservers.__file__).resolve().parent.parent


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


@pytest.fixture(scope="module")
def postgres() -> Iterator[DatabaseServer]:
    require_engine("postgres")
    with start_postgres() as started:
        yield started


@pytest.fixture(scope="module")
def mariadb() -> Iterator[DatabaseServer]:
    require_engine("mariadb")
    with start_mariadb() as started:
        yield started


@pytest.fixture(scope="module")
def redis_server() -> Iterator[DatabaseServer]:
    require_engine("redis")
    with start_redis() as started:
        yield started


FIXTURE_OF = {"postgres": "postgres", "mariadb": "mariadb", "redis": "redis_server"}


@pytest.fixture(params=list(ENGINES))
def server(request: pytest.FixtureRequest) -> DatabaseServer:
    """Each engine's module-wide server in turn."""
    return request.getfixturevalue(FIXTURE_OF[request.param])  # type: ignore[no-any-return]


@pytest.fixture(params=["postgres", "mariadb"])
def sql_server(request: pytest.FixtureRequest) -> DatabaseServer:
    """The SQL engines' servers (Redis gives every login +@all by design)."""
    return request.getfixturevalue(FIXTURE_OF[request.param])  # type: ignore[no-any-return]


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


def test_an_ordinary_sql_login_cannot_create_otherall_logins(sql_server: DatabaseServer) -> None:
    password = _hostile_password()
    sql_server.create_login("plain-user", password)
    try:
        with pytest.raises(Exception):  # noqa: B017 - each driver raises its own type
            _create_a_login_as(sql_server, "plain-user", password, "should-not-exist")
        assert _login_key(sql_server, "should-not-exist") not in all_logins(sql_server)
    finally:
        sql_server.drop_login("should-not-exist")
        sql_server.drop_login("plain-user")


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
    assert _accepts_tcp(port)

    started.stop()

    assert not data_dir.exists()
    assert work_dir is not None and not work_dir.exists()
    assert not _accepts_tcp(port)
    assert not started.running
    started.stop()  # idempotent
    with pytest.raises(Exception):  # noqa: B017 - a dead server is an error, not "refused"
        started.can_login(started.admin_user, started.admin_password)


# --- PostgreSQL -----------------------------------------------------------------------------


def test_postgres_pg_hba_requires_scram_and_has_no_trust_lines(postgres: DatabaseServer) -> None:
    rules = [
        line.split()
        for line in (postgres.data_dir / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules
    assert all(rule[-1] == "scram-sha-256" for rule in rules)
    assert ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"] in rules


def test_postgres_stores_passwords_as_scram_hashes(postgres: DatabaseServer) -> None:
    postgres.create_login("hashed-user", _hostile_password())
    try:
        with contextlib.closing(postgres.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("SHOW password_encryption")
            assert cur.fetchone() == ("scram-sha-256",)
            cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'hashed-user'")
            row = cur.fetchone()
            assert row is not None and row[0].startswith("SCRAM-SHA-256$")
    finally:
        postgres.drop_login("hashed-user")


def test_postgres_has_an_app_database_the_new_login_can_use(postgres: DatabaseServer) -> None:
    password = _hostile_password()
    postgres.create_login("app-db-user", password)
    try:
        assert postgres.can_login("app-db-user", password, dbname="app")
    finally:
        postgres.drop_login("app-db-user")


def test_postgres_listens_only_on_localhost(postgres: DatabaseServer) -> None:
    with contextlib.closing(postgres.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone() == ("127.0.0.1",)


def test_postgres_runs_as_an_unprivileged_os_user(postgres: DatabaseServer) -> None:
    assert postgres.pid is not None
    status = Path(f"/proc/{postgres.pid}/status").read_text()
    real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        assert real_uid != 0
        assert postgres.os_user in {"postgres", "nobody"}
    else:
        assert real_uid == os.geteuid()


def test_postgres_rejects_a_role_name_it_would_silently_truncate(postgres: DatabaseServer) -> None:
    with pytest.raises(ValueError, match="63 bytes"):
        postgres.create_login("r" * 64, _hostile_password())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another OS user")
def test_postgres_explains_a_base_dir_its_os_user_cannot_reach(tmp_path: Path) -> None:
    require_engine("postgres")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(DatabaseServerError, match="searchable by that user"):
        start_postgres(base_dir=locked)
    assert list(locked.iterdir()) == []


# --- MariaDB ---------------------------------------------------------------------------------


def test_mariadb_has_no_anonymous_or_passwordless_accounts(mariadb: DatabaseServer) -> None:
    with contextlib.closing(mariadb.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = ''")
        assert cur.fetchone() == (0,)
        cur.execute(
            "SELECT user, host FROM mysql.global_priv "
            "WHERE JSON_VALUE(priv, '$.authentication_string') = '' "
            "AND user <> 'mariadb.sys'"
        )
        assert cur.fetchall() == ()


def test_mariadb_has_an_app_database_the_new_login_can_read(mariadb: DatabaseServer) -> None:
    password = _hostile_password()
    mariadb.create_login("app-reader", password)
    try:
        assert mariadb.can_login("app-reader", password, dbname="app")
    finally:
        mariadb.drop_login("app-reader")


def test_mariadb_root_needs_the_password_even_on_the_unix_socket(mariadb: DatabaseServer) -> None:
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(
            unix_socket=str(mariadb.socket_path), user="root", password="", ssl_disabled=True
        )
    assert refused.value.args[0] == 1045


# --- Redis -----------------------------------------------------------------------------------


def test_redis_refuses_clients_that_do_not_authenticate(redis_server: DatabaseServer) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=redis_server.host, port=redis_server.port, retry=Retry(NoBackoff(), 0)
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
