"""``rotator status | doctor | plan`` against the local runtime and real database servers.

The CLI runs in process (its boto3 clients reach the in-process stack as they would AWS) on a
healthy secret, a stuck one (a half-finished AWSPENDING) and a broken one (a wrong password
stored). Every output, text and ``--json``, is scanned for the secret values; exit codes are
the documented ones; ``plan`` and ``doctor`` without ``--repair`` change nothing, in Secrets
Manager or in the database.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from rotator.aws_local.lambda_host import SERVICE_LOGGER, LogSink
from rotator.cli import main
from rotator.dbservers import DatabaseServer
from rotator.local import LocalRuntime
from tests.conftest import assert_no_value_in, assert_nothing_leaked
from tests.integration.conftest import (
    GROUP_TAGS,
    create_app_user,
    create_master,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(test_ca_stack_settings: dict[str, Any]) -> Iterator[LocalRuntime]:
    with LocalRuntime(**test_ca_stack_settings) as runtime:
        yield runtime


@contextlib.contextmanager
def _function_logs_to(stream: Any) -> Iterator[None]:
    """In process the functions log to stdout; keep them out of the CLI's output (the
    runtime's log sink still has them for the leak scan)."""
    handlers = [
        h
        for h in logging.getLogger(SERVICE_LOGGER).handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, LogSink)
    ]
    before = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, original in zip(handlers, before, strict=True):
            handler.setStream(original)


def _run(capsys: pytest.CaptureFixture[str], rt: Any, *argv: str) -> tuple[int, str]:
    """The CLI in process; returns (exit status, its output), everything scanned for values."""
    logs = io.StringIO()
    capsys.readouterr()
    with _function_logs_to(logs):
        code = main([*argv, "--region", rt.region, "--stack-name", rt.stack_name])
    out = capsys.readouterr()
    text = out.out + out.err
    assert_no_value_in(text + logs.getvalue(), rt.secret_values())
    return code, text


def _point_at_router(rt: Any, arn: str) -> None:
    rt.client("secretsmanager").rotate_secret(
        SecretId=arn, RotationLambdaARN=rt.router_function_arn, RotateImmediately=False
    )


def _stages(rt: Any, arn: str) -> dict[str, list[str]]:
    return dict(rt.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"])


def _roles(server: DatabaseServer) -> list[tuple[Any, ...]]:
    """Every role with its password verifier and attributes: what a write would change."""
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT a.rolname, a.rolpassword, a.rolsuper, a.rolcreaterole, r.rolconfig::text,"
            " ARRAY(SELECT m.roleid::regrole::text FROM pg_auth_members m"
            "   WHERE m.member = a.oid ORDER BY 1)::text"
            " FROM pg_authid a JOIN pg_roles r ON r.oid = a.oid ORDER BY a.rolname"
        )
        return list(cur.fetchall())


def _mysql_accounts(server: DatabaseServer) -> list[tuple[Any, ...]]:
    """Every account with its password hash and grants: what a write would change."""
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SELECT User, Host, authentication_string FROM mysql.user ORDER BY 1, 2")
        accounts = list(cur.fetchall())
        found = []
        for user, host, hashed in accounts:
            try:
                cur.execute("SHOW GRANTS FOR %s@%s", (user, host))
                grants = tuple(sorted(r[0] for r in cur.fetchall()))
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != 1141:  # a role (another test's) with no grant of its own
                    raise
                grants = ()
            found.append((user, host, hashed, grants))
        return found


def _stage_pending(rt: Any, arn: str, value: dict[str, Any]) -> str:
    token = str(uuid.uuid4())
    rt.client("secretsmanager").put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps(value),
        VersionStages=["AWSPENDING"],
    )
    return token


# --- healthy --------------------------------------------------------------------------------------


def test_a_healthy_rotated_secret_is_ok_in_status_doctor_and_plan(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    arn, user, _password = create_app_user(rt, postgres_server)
    assert rt.rotate(arn).succeeded

    code, text = _run(capsys, rt, "status", arn)
    assert code == 0, text
    assert "AWSCURRENT" in text and "AWSPREVIOUS" in text
    assert "createSecret" in text and "finishSecret" in text and "SUCCEEDED" in text
    assert f"https://{rt.region}.console.aws.amazon.com/states/home?region={rt.region}" in text

    code, text = _run(capsys, rt, "status", arn, "--json")
    report = json.loads(text)
    assert code == 0 and report["problems"] is False
    steps = {e["step"] for e in report["details"]["executions"]}
    assert steps == {"createSecret", "setSecret", "testSecret", "finishSecret"}
    assert all(e["status"] == "SUCCEEDED" for e in report["details"]["executions"])

    code, text = _run(capsys, rt, "doctor", arn, "--json")
    report = json.loads(text)
    assert code == 0, text
    logins = {e["Who"]: e["LogsIn"] for e in report["details"]["probe"]["Logins"]}
    assert logins["AWSCURRENT"] is True and logins["AWSPREVIOUS"] is False
    assert report["details"]["probe"]["Tls"] == {"Verified": True, "Mode": "verified"}

    code, text = _run(capsys, rt, "plan", arn)
    assert code == 0, text
    assert f"ALTER ROLE \"{user}\" PASSWORD '<redacted>'" in text
    assert_nothing_leaked(rt)


def test_plan_changes_nothing_in_the_database_or_the_secret(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # an alternating-users secret whose clone does not exist yet: the plan would create it
    username, password = unique_name("alt"), new_password()
    postgres_server.create_login(username, password)
    master = create_master(rt, postgres_server)
    secret = database_secret(postgres_server, username, password, masterarn=master)
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/ops/{unique_name()}", SecretString=json.dumps(secret), Tags=GROUP_TAGS
    )["ARN"]
    _point_at_router(rt, arn)
    roles, stages = _roles(postgres_server), _stages(rt, arn)
    versions = rt.client("secretsmanager").list_secret_version_ids(SecretId=arn)["Versions"]

    code, text = _run(capsys, rt, "plan", arn, "--json")

    assert code == 0, text
    found = json.loads(text)["details"]["probe"]
    statements = "\n".join(found["Statements"])
    assert f"CREATE ROLE \"{username}_clone\" WITH LOGIN PASSWORD '<redacted>'" in statements
    assert f'GRANT "{username}" TO "{username}_clone"' in statements
    assert {p["Needed"]: p["Held"] for p in found["Privileges"]} == {"CREATEROLE": True}
    assert found["CloneDifferences"] == [
        f"'{username}_clone' does not exist yet: the next rotation creates it"
    ]
    assert _roles(postgres_server) == roles  # no role created, no password or setting changed
    assert _stages(rt, arn) == stages
    after = rt.client("secretsmanager").list_secret_version_ids(SecretId=arn)["Versions"]
    assert [v["VersionId"] for v in after] == [v["VersionId"] for v in versions]
    assert_nothing_leaked(rt)


# --- stuck ----------------------------------------------------------------------------------------


def test_doctor_finds_a_stuck_pending_and_repairs_only_its_label_after_confirmation(
    rt: Any,
    postgres_server: DatabaseServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arn, user, password = create_app_user(rt, postgres_server)
    _point_at_router(rt, arn)
    # an interrupted rotation: AWSPENDING staged, never set on the database
    token = _stage_pending(rt, arn, {**secret_value(rt, arn), "password": new_password()})

    code, text = _run(capsys, rt, "status", arn)
    assert code == 3, text
    assert f"version {token} holds AWSPENDING" in text
    assert "cancel-rotate-secret" in text and f"--remove-from-version-id {token}" in text

    code, text = _run(capsys, rt, "doctor", arn)
    assert code == 3, text
    assert "would change (run with --repair)" in text
    assert token in _stages(rt, arn)  # a dry run by default

    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    code, text = _run(capsys, rt, "doctor", arn, "--repair")
    assert code == 3 and "nothing changed" in text
    assert "AWSPENDING" in _stages(rt, arn)[token]

    monkeypatch.setattr("builtins.input", lambda _prompt: "y")
    code, text = _run(capsys, rt, "doctor", arn, "--repair")
    assert code == 0, text
    assert _stages(rt, arn).get(token, []) == []
    assert postgres_server.can_login(user, password)  # the database was not touched

    code, text = _run(capsys, rt, "doctor", arn, "--json")
    assert code == 0, text
    assert rt.rotate(arn).succeeded  # rotate-secret is accepted again
    assert_nothing_leaked(rt)


def test_doctor_never_makes_a_pending_current_even_when_it_alone_logs_in(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old function set the pending password and died: clients on AWSCURRENT are locked
    out. doctor says so, and points to finishing through the router, which tests a version
    before making it current; it never moves AWSCURRENT itself (whoever may stage a version
    could have written one naming a user or server of their own)."""
    arn, user, _password = create_app_user(rt, postgres_server)
    _point_at_router(rt, arn)
    current = secret_value(rt, arn)
    pending_password = new_password()
    token = _stage_pending(rt, arn, {**current, "password": pending_password})
    with contextlib.closing(postgres_server.admin_connection()) as conn, conn.cursor() as cur:
        from psycopg2 import sql

        cur.execute(
            sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(user)), (pending_password,)
        )

    code, text = _run(capsys, rt, "status", arn)
    assert code == 3 and "cancel-rotate-secret" in text  # status has no logins: the usual advice

    code, text = _run(capsys, rt, "doctor", arn, "--repair", "--yes")
    assert code == 3, text
    assert "doctor never moves AWSCURRENT" in text
    assert _stages(rt, arn)[token] == ["AWSPENDING"]
    assert secret_value(rt, arn) == current
    assert_nothing_leaked(rt)


def test_doctor_does_not_promote_a_staged_version_naming_another_user(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack: someone who may stage versions writes one naming a user of their own (which
    logs in) and makes AWSCURRENT fail; a repair must not hand every client that user."""
    arn, user, _password = create_app_user(rt, postgres_server)
    _point_at_router(rt, arn)
    current = secret_value(rt, arn)
    theirs, their_password = unique_name("evil"), new_password()
    postgres_server.create_login(theirs, their_password)
    token = _stage_pending(rt, arn, {**current, "username": theirs, "password": their_password})
    with contextlib.closing(postgres_server.admin_connection()) as conn, conn.cursor() as cur:
        from psycopg2 import sql

        cur.execute(
            sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(user)), (new_password(),)
        )

    code, text = _run(capsys, rt, "doctor", arn, "--repair", "--yes")

    assert code == 3, text
    assert _stages(rt, arn)[token] == ["AWSPENDING"]
    assert secret_value(rt, arn) == current
    assert their_password not in text


# --- broken ---------------------------------------------------------------------------------------


def test_a_wrong_stored_password_is_a_problem_for_doctor_and_plan(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    user, real = unique_name("broken"), new_password()
    postgres_server.create_login(user, real)
    wrong = new_password()
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/ops/{unique_name()}",
        SecretString=json.dumps(database_secret(postgres_server, user, wrong)),
    )["ARN"]
    _point_at_router(rt, arn)
    before = _roles(postgres_server)

    code, text = _run(capsys, rt, "doctor", arn)
    assert code == 3, text
    assert "PROBLEM login AWSCURRENT: AuthenticationFailedError" in text

    code, text = _run(capsys, rt, "plan", arn, "--json")
    assert code == 3, text
    report = json.loads(text)
    assert report["details"]["probe"]["Reachable"] is True
    assert report["details"]["probe"]["PlanOutcome"].startswith(
        "setSecret would fail: NoWorkingCredentialError"
    )
    assert report["details"]["probe"]["Statements"] == []
    assert real not in text and wrong not in text
    assert _roles(postgres_server) == before
    assert_nothing_leaked(rt)


def test_errors_are_one_line_and_usage_errors_exit_2(
    rt: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _run(capsys, rt, "status", "it/ops/no-such-secret")
    assert code == 1
    assert text.startswith("rotator: ") and text.count("\n") == 1 and "Traceback" not in text
    with pytest.raises(SystemExit) as usage:
        main(["doctor"])
    assert usage.value.code == 2


def test_the_probe_refuses_malformed_events_naming_the_field(rt: Any) -> None:
    answer = rt.client("lambda").invoke(
        FunctionName=f"{rt.stack_name}-probe",
        Payload=json.dumps({"SecretId": "x", "Values": True}).encode(),
    )
    error = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") and error["errorType"] == "InvalidEventError"
    assert "'Values'" in error["errorMessage"]


def test_the_probe_runs_under_its_own_read_only_role(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every call the probe makes is checked against ProbeFunction's role: reading a rotated
    secret, its master and (dry-run fallbacks) its version list is allowed; a secret this
    stack does not rotate is refused to it, as on AWS (AllowRotationLambdaArn)."""
    probe = f"{rt.stack_name}-probe"
    username, password = unique_name("alt"), new_password()
    postgres_server.create_login(username, password)
    secret = database_secret(
        postgres_server, username, password, masterarn=create_master(rt, postgres_server)
    )
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/ops/{unique_name()}", SecretString=json.dumps(secret), Tags=GROUP_TAGS
    )["ARN"]
    _point_at_router(rt, arn)
    broken, _user, _password = create_app_user(rt, postgres_server)
    _point_at_router(rt, broken)
    with contextlib.closing(postgres_server.admin_connection()) as conn, conn.cursor() as cur:
        from psycopg2 import sql

        cur.execute(
            sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(_user)), (new_password(),)
        )

    assert _run(capsys, rt, "plan", arn)[0] == 0
    assert _run(capsys, rt, "plan", broken)[0] == 3  # falls back to superseded versions
    report = rt.iam_report()
    assert report.calls[probe][0] > 0
    assert not [r for r in report.denied if r.caller.name == probe], report.text()

    unrouted, _user, _password = create_app_user(rt, postgres_server)
    code, text = _run(capsys, rt, "plan", unrouted)
    assert code == 1 and "AccessDenied" in text
    denied = [r for r in rt.iam_report().denied if r.caller.name == probe]
    assert denied and all(r.request.action == "secretsmanager:DescribeSecret" for r in denied)

    # a master: the role may read it (the probe logs in with a secret's master), the probe
    # still answers nothing about it, neither its identity nor its logins
    master = secret["masterarn"]
    master_value = secret_value(rt, master)
    code, text = _run(capsys, rt, "plan", master, "--json")
    assert code == 1 and "not rotated by this stack's router" in text
    assert master_value["username"] not in text and master_value["password"] not in text


def test_plan_on_mariadb_alternating_users_reads_grants_and_changes_nothing(
    rt: Any, mariadb_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    username, password = unique_name("alt"), new_password()
    mariadb_server.create_login(username, password)
    secret = database_secret(
        mariadb_server, username, password, masterarn=create_master(rt, mariadb_server)
    )
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/ops/{unique_name()}", SecretString=json.dumps(secret), Tags=GROUP_TAGS
    )["ARN"]
    _point_at_router(rt, arn)
    before = _mysql_accounts(mariadb_server)

    code, text = _run(capsys, rt, "plan", arn, "--json")

    assert code == 0, text
    found = json.loads(text)["details"]["probe"]
    assert {p["Needed"]: p["Held"] for p in found["Privileges"]} == {
        "CREATE USER": True,
        "GRANT OPTION": True,
    }
    statements = "\n".join(found["Statements"])
    assert f"CREATE USER '{username}_clone'@" in statements and "'<redacted>'" in statements
    assert password not in statements
    # the clone's grants cannot be read before it exists: the plan says so and stops
    assert found["PlanOutcome"] in (
        "setSecret would run these statements",
        "later statements depend on the ones above (not run)",
    )
    assert _mysql_accounts(mariadb_server) == before  # no user created, no grant changed
    assert_nothing_leaked(rt)


def test_doctor_names_a_version_rotate_secret_staged_but_create_never_wrote(
    rt: Any, postgres_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    user, real = unique_name("early"), new_password()
    postgres_server.create_login(user, real)
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/ops/{unique_name()}",
        SecretString=json.dumps(database_secret(postgres_server, user, new_password())),
    )["ARN"]
    _point_at_router(rt, arn)
    outcome = rt.rotate(arn)
    assert outcome.failed_step == "createSecret"

    code, text = _run(capsys, rt, "doctor", arn)

    assert code == 3, text
    assert "login AWSPENDING: no value yet" in text
    assert "PROBLEM login AWSCURRENT: AuthenticationFailedError" in text
    assert real not in text
