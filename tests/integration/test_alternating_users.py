"""Alternating users on PostgreSQL and MariaDB: two equal users, the idle one is updated.

Clients on the previous AWSCURRENT keep working; objects created by either user stay usable by
the other; the master secret never shows in histories or logs (the ``runtime`` fixture scans).
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest

from rotation_core.adapters import engine_for
from rotation_core.connection import ConnectionPolicy
from rotation_core.models import DatabaseCredentials
from rotation_core.tls import TlsSettings
from rotator.dbservers import DatabaseServer
from tests.integration.conftest import (
    GROUP_TAGS,
    create_master,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration


def _alternating_secret(
    rt: Any, server: DatabaseServer, username: str | None = None, **extra: Any
) -> tuple[str, str, str]:
    master_arn = create_master(rt, server)
    username = username or unique_name("alt")
    password = new_password()
    server.create_login(username, password)
    secret = database_secret(server, username, password, masterarn=master_arn, **extra)
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/alt/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]
    return arn, username, password


def _sql(
    server: DatabaseServer,
    username: str,
    password: str,
    *statements: str,
    dbname: str | None = None,
) -> list[Any]:
    """Run statements as a user; return the last statement's rows."""
    rows: list[Any] = []
    with (
        contextlib.closing(server.connect(username, password, dbname)) as conn,
        conn.cursor() as cur,
    ):
        for statement in statements:
            cur.execute(statement)
            rows = list(cur.fetchall()) if cur.description else []
    return rows


def _admin(
    server: DatabaseServer, statement: str, params: tuple[Any, ...] = (), dbname: str | None = None
) -> list[Any]:
    with contextlib.closing(server.admin_connection(dbname)) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []


def test_three_rotations_alternate_users_and_keep_the_previous_current_working(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, original, _password = _alternating_secret(runtime, db_server)
    users = []
    for _ in range(3):
        previous = secret_value(runtime, arn)
        outcome = runtime.rotate(arn)
        assert outcome.succeeded, outcome.error
        current = secret_value(runtime, arn)
        users.append(current["username"])
        assert db_server.can_login(current["username"], current["password"])
        # the previous AWSCURRENT was not touched: its clients keep working
        assert db_server.can_login(previous["username"], previous["password"])
    assert users == [f"{original}_clone", original, f"{original}_clone"]


@pytest.mark.parametrize("engine", ["postgres"])
def test_a_table_created_by_either_user_is_usable_by_the_other_after_rotation(
    runtime: Any, postgres_server: DatabaseServer, engine: str
) -> None:
    server = postgres_server
    arn, original, password = _alternating_secret(runtime, server)
    schema = unique_name("s")
    _admin(server, f'CREATE SCHEMA "{schema}" AUTHORIZATION "{original}"', dbname="app")
    _sql(
        server,
        original,
        password,
        f'CREATE TABLE "{schema}".made_by_original (v text)',
        f"INSERT INTO \"{schema}\".made_by_original VALUES ('one')",
        dbname="app",
    )

    assert runtime.rotate(arn).succeeded
    clone = secret_value(runtime, arn)
    assert clone["username"] == f"{original}_clone"
    rows = _sql(
        server,
        clone["username"],
        clone["password"],
        f"INSERT INTO \"{schema}\".made_by_original VALUES ('two')",
        f'ALTER TABLE "{schema}".made_by_original ADD COLUMN n int',
        f'CREATE TABLE "{schema}".made_by_clone (v text)',
        f"INSERT INTO \"{schema}\".made_by_clone VALUES ('three')",
        f'SELECT count(*) FROM "{schema}".made_by_original',
        dbname="app",
    )
    assert rows == [(2,)]

    assert runtime.rotate(arn).succeeded
    back = secret_value(runtime, arn)
    assert back["username"] == original
    rows = _sql(
        server,
        original,
        back["password"],
        f"INSERT INTO \"{schema}\".made_by_clone VALUES ('four')",
        f'ALTER TABLE "{schema}".made_by_clone ADD COLUMN n int',
        f'SELECT v FROM "{schema}".made_by_clone ORDER BY v',
        dbname="app",
    )
    assert rows == [("four",), ("three",)]
    owners = _admin(
        server, "SELECT tableowner FROM pg_tables WHERE schemaname = %s", (schema,), dbname="app"
    )
    assert {o for (o,) in owners} == {original}


def test_mariadb_clone_lives_on_the_original_host_and_follows_its_grants(
    runtime: Any, mariadb_server: DatabaseServer
) -> None:
    server = mariadb_server
    database = unique_name("db")
    master_arn = create_master(runtime, server)
    original, password = unique_name("alt"), new_password()
    server.create_login(original, password, host="127.0.0.1")
    _admin(server, f"CREATE DATABASE `{database}`")
    _admin(server, f"GRANT SELECT, INSERT, CREATE ON `{database}`.* TO %s@'127.0.0.1'", (original,))
    secret = database_secret(server, original, password, masterarn=master_arn, dbname=database)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]
    _sql(
        server, original, password, f"CREATE TABLE `{database}`.t (v VARCHAR(10))", dbname=database
    )

    assert runtime.rotate(arn).succeeded
    clone = secret_value(runtime, arn)
    hosts = _admin(server, "SELECT Host FROM mysql.user WHERE User = %s", (clone["username"],))
    assert hosts == [("127.0.0.1",)]
    _sql(
        server,
        clone["username"],
        clone["password"],
        f"INSERT INTO `{database}`.t VALUES ('x')",
        dbname=database,
    )

    # grants change between rotations: the next clone rotation follows them
    _admin(server, f"REVOKE INSERT ON `{database}`.* FROM %s@'127.0.0.1'", (original,))
    _admin(server, f"GRANT UPDATE ON `{database}`.* TO %s@'127.0.0.1'", (original,))
    assert runtime.rotate(arn).succeeded  # the original is current again
    assert runtime.rotate(arn).succeeded  # the clone again, with the new grants
    clone = secret_value(runtime, arn)
    _sql(
        server,
        clone["username"],
        clone["password"],
        f"UPDATE `{database}`.t SET v = 'y'",
        dbname=database,
    )
    with pytest.raises(Exception, match="INSERT command denied"):
        _sql(
            server,
            clone["username"],
            clone["password"],
            f"INSERT INTO `{database}`.t VALUES ('z')",
            dbname=database,
        )


def test_mariadb_clone_keeps_the_original_tls_requirement(
    runtime: Any, mariadb_server: DatabaseServer, test_ca: Any
) -> None:
    server = mariadb_server
    master_arn = create_master(runtime, server)
    master = DatabaseCredentials.from_secret(secret_value(runtime, master_arn))
    original = unique_name("tls")
    server.create_login(original, new_password())
    _admin(
        server,
        "ALTER USER %s@'%%' REQUIRE SUBJECT %s AND ISSUER %s",
        (original, "/CN=app", "/CN=ca"),
    )

    trusting = ConnectionPolicy(
        tls=TlsSettings(default_bundle="test-ca", bundle_dir=test_ca.directory)
    )
    engine_for("mariadb", trusting).sync_clone(
        master, (original, "%"), f"{original}_clone", new_password()
    )

    rows = _admin(
        server,
        "SELECT ssl_type, x509_subject, x509_issuer FROM mysql.user WHERE User = %s",
        (f"{original}_clone",),
    )
    assert [
        (
            str(a),
            bytes(b).decode() if isinstance(b, bytes | bytearray) else b,
            bytes(c).decode() if isinstance(c, bytes | bytearray) else c,
        )
        for a, b, c in rows
    ] == [("SPECIFIED", "/CN=app", "/CN=ca")]


def test_clients_on_the_previous_current_never_fail_during_a_rotation(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, username, password = _alternating_secret(runtime, db_server)
    stop, failures, logins = threading.Event(), [], []

    def client() -> None:
        while not stop.is_set():
            ok = db_server.can_login(username, password)
            (logins if ok else failures).append(1)

    worker = threading.Thread(target=client)
    worker.start()
    try:
        assert runtime.rotate(arn).succeeded
    finally:
        stop.set()
        worker.join(10)
    assert logins and not failures


def test_each_step_twice_sets_the_idle_password_once(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, _username, _password = _alternating_secret(runtime, db_server)
    token = runtime.stage_rotation(arn)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        for _ in range(2):
            result = runtime.invoke_router(
                {"Step": step, "SecretId": arn, "ClientRequestToken": token}
            )
            assert not result.failed, result.error
    current = secret_value(runtime, arn)
    assert db_server.can_login(current["username"], current["password"])
    assert (
        len(runtime.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"])
        == 2
    )
    assert len([e for e in runtime.executions() if e["name"].startswith("createSecret")]) == 1


def test_a_clone_name_over_the_engine_limit_fails_before_any_change(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    long_name = "u" * 60  # + "_clone" = 66 bytes > 63
    arn, username, password = _alternating_secret(runtime, postgres_server, username=long_name)
    outcome = runtime.rotate(arn)
    assert outcome.failed_step == "createSecret"
    assert outcome.error["errorType"] == "StepFailedError"
    assert (
        "InvalidSecretError" in outcome.error["errorMessage"]
        and "63" in outcome.error["errorMessage"]
    )
    assert not _admin(
        postgres_server,
        "SELECT 1 FROM pg_roles WHERE rolname LIKE %s",
        (long_name[:50] + "%_clone",),
    )
    assert postgres_server.can_login(username, password)


def test_alternating_users_without_a_master_arn_names_the_field(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    username, password = unique_name(), new_password()
    postgres_server.create_login(username, password)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(postgres_server, username, password)),
        Tags=[{"Key": "RotationStrategy", "Value": "alternating-users"}, *GROUP_TAGS],
    )["ARN"]
    outcome = runtime.rotate(arn)
    assert outcome.failed_step == "createSecret" and "'masterarn'" in outcome.error["errorMessage"]


def test_a_master_without_privileges_fails_at_set_and_changes_nothing(
    runtime: Any, db_server: DatabaseServer
) -> None:
    weak, weak_password = unique_name("weak"), new_password()
    db_server.create_login(weak, weak_password)
    master_arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(db_server, weak, weak_password)),
        Tags=[{"Key": "SecretRotationMaster", "Value": runtime.stack_name}, *GROUP_TAGS],
    )["ARN"]
    username, password = unique_name("alt"), new_password()
    db_server.create_login(username, password)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(
            database_secret(db_server, username, password, masterarn=master_arn)
        ),
        Tags=GROUP_TAGS,
    )["ARN"]

    outcome = runtime.rotate(arn)

    # PostgreSQL lets anyone read pg_roles, so the weak master fails at setSecret; MariaDB's
    # mysql.user is not readable to it, so the ownership checks already fail at createSecret
    assert outcome.failed_step in ("createSecret", "setSecret")
    assert "PrivilegeError" in outcome.error["errorMessage"]
    assert secret_value(runtime, arn)["username"] == username
    assert db_server.can_login(username, password)
    alerts = runtime.alerts()
    assert len(alerts) == 1 and alerts[0].message["error"] == "PrivilegeError"


@pytest.mark.parametrize("username", ["app-user", "O'Brien", 'a"b', "x; DROP ROLE y"])
def test_hostile_usernames_alternate_safely(
    runtime: Any, db_server: DatabaseServer, username: str
) -> None:
    unique = f"{username}{unique_name('')}"[:20]
    arn, _u, _p = _alternating_secret(runtime, db_server, username=unique)
    for _ in range(2):
        assert runtime.rotate(arn).succeeded
        current = secret_value(runtime, arn)
        assert db_server.can_login(current["username"], current["password"])


def test_a_secret_for_someone_elses_clone_cannot_aim_the_master_at_the_original(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """Eve can log in as a role named ``dba_clone``; her secret must not get dba reset."""
    dba, dba_password = unique_name("dba"), new_password()
    db_server.create_login(dba, dba_password, superuser=True)
    eve_password = new_password()
    db_server.create_login(f"{dba}_clone", eve_password)
    master_arn = create_master(runtime, db_server)
    secret = database_secret(db_server, f"{dba}_clone", eve_password, masterarn=master_arn)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert (
        outcome.failed_step == "createSecret"
        and "RotationStateError" in outcome.error["errorMessage"]
    )
    assert db_server.can_login(dba, dba_password)
    assert secret_value(runtime, arn)["username"] == f"{dba}_clone"


def test_objects_the_clone_owned_before_this_scheme_become_usable_by_the_original(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    """Migrating from AWS's template: both users exist and the clone owns a table."""
    server = postgres_server
    original, password = unique_name("mig"), new_password()
    clone_password = new_password()
    server.create_login(original, password)
    server.create_login(f"{original}_clone", clone_password)
    schema = unique_name("s")
    _admin(server, f'CREATE SCHEMA "{schema}"', dbname="app")
    _admin(
        server,
        f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{original}", "{original}_clone"',
        dbname="app",
    )
    _sql(
        server,
        f"{original}_clone",
        clone_password,
        f'CREATE TABLE "{schema}".by_clone (n int)',
        dbname="app",
    )
    master_arn = create_master(runtime, server)
    sm = runtime.client("secretsmanager")
    arn = sm.create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(server, original, password, masterarn=master_arn)),
        Tags=GROUP_TAGS,
    )["ARN"]
    # AWS's template left the clone current: put its version on top, the original's previous
    sm.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(
            database_secret(server, f"{original}_clone", clone_password, masterarn=master_arn)
        ),
    )

    assert runtime.rotate(arn).succeeded
    current = secret_value(runtime, arn)
    assert current["username"] == original
    assert _sql(
        server,
        original,
        current["password"],
        f'SELECT count(*) FROM "{schema}".by_clone',
        dbname="app",
    ) == [(0,)]


def test_mariadb_role_grants_follow_when_the_master_may_grant_them(
    runtime: Any, mariadb_server: DatabaseServer
) -> None:
    server = mariadb_server
    role = unique_name("role")
    master_arn = create_master(runtime, server)
    master = secret_value(runtime, master_arn)["username"]
    original, password = unique_name("alt"), new_password()
    server.create_login(original, password)
    _admin(server, f"CREATE ROLE `{role}`")
    _admin(server, f"GRANT `{role}` TO %s@'%%' WITH ADMIN OPTION", (master,))
    _admin(server, f"GRANT SELECT ON `app`.* TO `{role}`")
    _admin(server, f"GRANT `{role}` TO %s@'%%'", (original,))
    _admin(server, f"SET DEFAULT ROLE `{role}` FOR %s@'%%'", (original,))
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(server, original, password, masterarn=master_arn)),
        Tags=GROUP_TAGS,
    )["ARN"]
    assert runtime.rotate(arn).succeeded
    grants = " ".join(
        r[0] for r in _admin(server, "SHOW GRANTS FOR %s@'%%'", (f"{original}_clone",))
    )
    assert role in grants


def test_mariadb_role_the_master_cannot_grant_fails_as_a_privilege_error_and_strips_nothing(
    runtime: Any, mariadb_server: DatabaseServer
) -> None:
    server = mariadb_server
    role = unique_name("role")
    master_arn = create_master(runtime, server)
    original, password = unique_name("alt"), new_password()
    server.create_login(original, password)
    _admin(server, "GRANT INSERT ON `app`.* TO %s@'%%'", (original,))
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(server, original, password, masterarn=master_arn)),
        Tags=GROUP_TAGS,
    )["ARN"]
    assert runtime.rotate(arn).succeeded  # the clone exists now, with INSERT
    assert runtime.rotate(arn).succeeded  # the original is current again; the clone is idle
    _admin(server, f"CREATE ROLE `{role}`")  # owned by root: the master has no ADMIN on it
    _admin(server, f"GRANT `{role}` TO %s@'%%'", (original,))

    outcome = runtime.rotate(arn)

    assert outcome.failed_step == "setSecret" and "PrivilegeError" in outcome.error["errorMessage"]
    grants = " ".join(
        r[0] for r in _admin(server, "SHOW GRANTS FOR %s@'%%'", (f"{original}_clone",))
    )
    assert "INSERT" in grants, "a failed re-sync must not strip what the clone had"
