"""Attack tests (issue 7): the service against the applications and secrets it serves.

The attacker holds one application's database password, or edit rights on one secret's value
(PutSecretValue/UpdateSecret), never the master and never TagResource, unless a test says
otherwise. Every test here failed on the code it was written against, for the reason its
docstring gives; each names what must hold instead.

All setup lives here, so it can follow the fixtures as they change (TLS servers with a CA the
fixtures make, one stack per session):
- ``runtime`` / ``make_runtime``: the template's stack, trusting the test CA when the fixtures
  make one, ending with the leak scan of every history, log line, alert and error;
- snapshots of what a server holds for a role, account or ACL user (``role_state``), and of a
  secret's versions (``versions_snapshot``), to prove that nothing was touched or written;
- ``assert_refused``: a rotation step failed, with one of the expected error classes.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_nothing_leaked
from tests.integration.conftest import (  # noqa: F401 - fixtures re-exported for this directory
    all_logins,
    database_secret,
    db_server,
    mariadb_server,
    new_password,
    postgres_server,
    redis_server,
    require_engine,
    unique_name,
)

try:  # the TLS fixtures (issue 7 section 2): servers with a CA the session makes
    from tests.integration.conftest import test_ca, test_ca_stack_settings  # noqa: F401

    HAVE_TEST_CA = True
except ImportError:  # the code these tests were first run against had no TLS fixtures
    HAVE_TEST_CA = False

#: error classes of the lead's contract for TLS/identity failures and plaintext refusals
SERVER_IDENTITY_ERRORS = ("ServerIdentityError", "InvalidConfigurationError")
#: error classes for unsupported or hostile identities and out-of-order steps
REFUSAL_ERRORS = ("InvalidSecretError", "RotationStateError")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


# --- the stack ------------------------------------------------------------------------------


TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref X`` -> ``{"Ref": "X"}``,
    ``!Sub s`` -> ``{"Fn::Sub": s}``)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}")
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM template as data, the way CloudFormation reads it."""
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


def _stack_settings(request: pytest.FixtureRequest) -> dict[str, dict[str, str]]:
    """``LocalRuntime`` keywords that make the stack trust the session's test CA
    (``parameter_overrides`` with ``CaBundle``, ``function_environment`` with CA_BUNDLE_DIR)."""
    if not HAVE_TEST_CA:
        return {}
    settings: dict[str, dict[str, str]] = request.getfixturevalue("test_ca_stack_settings")
    return settings


@contextlib.contextmanager
def _stack(
    settings: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    parameters: dict[str, Any],
) -> Iterator[Any]:
    from rotator.local import LocalRuntime

    knobs = inspect.signature(LocalRuntime).parameters
    known = load_template().get("Parameters", {})
    overrides = {k: v for k, v in settings.get("parameter_overrides", {}).items() if k in known}
    kwargs: dict[str, Any] = {"parameter_overrides": {**overrides, **parameters}}
    environment = settings.get("function_environment", {})
    if "function_environment" in knobs:
        kwargs["function_environment"] = environment
    else:  # the functions' environment is laid over the process environment
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
    with LocalRuntime(**kwargs) as rt:
        yield rt
        assert_nothing_leaked(rt)


@pytest.fixture
def make_runtime(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``make_runtime(**parameters)``: a context manager for the stack with template parameter
    overrides (test CA trusted); each one ends with the leak scan."""
    settings = _stack_settings(request)

    def make(**parameters: Any) -> Any:
        return _stack(settings, monkeypatch, parameters)

    return make


@pytest.fixture(scope="module")
def module_runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One stack for a whole module (for many small attacks that share nothing but the stack);
    the leak scan runs once, at the end."""
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        _stack(_stack_settings(request), monkeypatch, {}) as rt,
    ):
        yield rt


@pytest.fixture
def runtime(make_runtime: Any) -> Iterator[Any]:
    """The template's stack on moto (test CA trusted), ending with the leak scan."""
    with make_runtime() as rt:
        yield rt


# --- secrets --------------------------------------------------------------------------------


def create_secret(
    rt: Any, value: dict[str, Any], *, tags: dict[str, str] | None = None, name: str = ""
) -> str:
    kwargs: dict[str, Any] = {
        "Name": name or f"sec/{secrets.token_hex(6)}",
        "SecretString": json.dumps(value),
    }
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return str(rt.client("secretsmanager").create_secret(**kwargs)["ARN"])


def put_value(rt: Any, arn: str, value: dict[str, Any] | str) -> str:
    """What a value editor can do: PutSecretValue (the new version becomes AWSCURRENT)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return str(
        rt.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=text)["VersionId"]
    )


def value_of(rt: Any, arn: str, **kwargs: Any) -> dict[str, Any]:
    raw = rt.client("secretsmanager").get_secret_value(SecretId=arn, **kwargs)["SecretString"]
    data: dict[str, Any] = json.loads(raw)
    return data


def versions_snapshot(rt: Any, arn: str) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Every version: (its labels, its value or None when it holds none)."""
    sm = rt.client("secretsmanager")
    found: dict[str, tuple[tuple[str, ...], str | None]] = {}
    listed = sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
    for version in listed:
        try:
            text = sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"]).get(
                "SecretString"
            )
        except sm.exceptions.ResourceNotFoundException:
            text = None
        found[version["VersionId"]] = (tuple(sorted(version.get("VersionStages", []))), text)
    return found


def current_version(rt: Any, arn: str) -> str:
    stages = rt.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"]
    return next(v for v, labels in stages.items() if "AWSCURRENT" in labels)


def assert_nothing_written(
    rt: Any, arn: str, before: dict[str, tuple[tuple[str, ...], str | None]]
) -> None:
    """No version gained a value, no value changed, AWSCURRENT did not move.

    A version id staged AWSPENDING with no value is what Secrets Manager itself creates before
    it calls the rotation function; that one is allowed.
    """
    after = versions_snapshot(rt, arn)
    current_before = next(v for v, (labels, _) in before.items() if "AWSCURRENT" in labels)
    current_after = next(v for v, (labels, _) in after.items() if "AWSCURRENT" in labels)
    assert current_after == current_before, "AWSCURRENT moved"
    for version, (_labels, text) in after.items():
        if version in before:
            assert text == before[version][1], f"version {version} changed its value"
        else:
            assert text is None, f"a new version {version} was written with a value"


# --- outcomes -------------------------------------------------------------------------------


def failure_text(result: Any) -> str:
    """``errorType: errorMessage`` of a failed rotation (RotationOutcome) or invocation."""
    error = result.error or {}
    return f"{error.get('errorType')}: {error.get('errorMessage')}"


def assert_refused(
    result: Any,
    step: str | None,
    classes: tuple[str, ...],
    *,
    naming: tuple[str, ...] = (),
) -> None:
    """The rotation (or one router invocation) failed at ``step`` with one of ``classes`` (the
    router's own error type or the worker error it reports), and the message names one of
    ``naming`` (a field, a tag)."""
    failed = getattr(result, "failed", None)
    if failed is None:  # a RotationOutcome
        assert not result.succeeded, "the attack was not refused: the rotation succeeded"
        if step is not None:
            assert result.failed_step == step, (
                f"refused at {result.failed_step}, expected at {step}: {failure_text(result)}"
            )
    else:
        assert failed, f"the attack was not refused: {step} succeeded ({result.payload})"
    text = failure_text(result)
    assert any(name in text for name in classes), f"expected one of {classes}, got {text}"
    if naming:
        assert any(name in text for name in naming), f"the error names none of {naming}: {text}"


def router(rt: Any, step: str, arn: str, token: str) -> Any:
    """One router invocation, as Secrets Manager makes it."""
    return rt.invoke_router({"Step": step, "SecretId": arn, "ClientRequestToken": token})


# --- what a server holds --------------------------------------------------------------------


def _pg_rows(server: DatabaseServer, query: str, params: tuple[Any, ...]) -> list[Any]:
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return [tuple(row) for row in cur.fetchall()]


def role_state(server: DatabaseServer, name: str, host: str = "%") -> Any:
    """Everything the server holds for one role / account / ACL user (None if it is absent):
    password verifier, attributes, memberships both ways, per-role settings, owned objects,
    grants. Equal snapshots prove nothing was touched."""
    if server.engine == "postgres":
        attributes = _pg_rows(
            server,
            "SELECT rolpassword, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,"
            " rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil::text"
            " FROM pg_catalog.pg_authid WHERE rolname = %s",
            (name,),
        )
        if not attributes:
            return None
        member_of = _pg_rows(
            server,
            "SELECT g.rolname, m.admin_option FROM pg_catalog.pg_auth_members m"
            " JOIN pg_catalog.pg_roles g ON g.oid = m.roleid"
            " JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE u.rolname = %s ORDER BY 1",
            (name,),
        )
        members = _pg_rows(
            server,
            "SELECT u.rolname, m.admin_option FROM pg_catalog.pg_auth_members m"
            " JOIN pg_catalog.pg_roles g ON g.oid = m.roleid"
            " JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE g.rolname = %s ORDER BY 1",
            (name,),
        )
        settings = _pg_rows(
            server,
            "SELECT s.setdatabase, s.setconfig::text FROM pg_catalog.pg_db_role_setting s"
            " WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s)"
            " ORDER BY 1",
            (name,),
        )
        owned = _pg_rows(
            server,
            "SELECT dbid, classid, objid FROM pg_catalog.pg_shdepend WHERE deptype = 'o'"
            " AND refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s)"
            " ORDER BY 1, 2, 3",
            (name,),
        )
        return {
            "attributes": attributes,
            "member_of": member_of,
            "members": members,
            "settings": settings,
            "owned": owned,
        }
    if server.engine == "mariadb":
        with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT Priv FROM mysql.global_priv WHERE User = %s AND Host = %s", (name, host)
            )
            row = cur.fetchone()
            if row is None:
                return None
            priv = json.loads(row[0])
            priv.pop("password_last_changed", None)
            cur.execute("SHOW GRANTS FOR %s@%s", (name, host))
            grants = sorted(str(line) for (line,) in cur.fetchall())
            cur.execute(
                "SELECT Role, Admin_option FROM mysql.roles_mapping WHERE User = %s AND Host = %s",
                (name, host),
            )
            roles = sorted(cur.fetchall())
        return {"priv": priv, "grants": grants, "roles": roles}
    client = server.admin_connection()
    try:
        return client.execute_command("ACL", "GETUSER", name)
    finally:
        client.close()


def admin_sql(
    server: DatabaseServer, statement: str, params: tuple[Any, ...] = (), dbname: str | None = None
) -> list[Any]:
    """Run one statement as the server's own administrator (the test's setup, not the attack)."""
    with contextlib.closing(server.admin_connection(dbname)) as conn, conn.cursor() as cur:
        cur.execute(statement, params or None)
        return [tuple(row) for row in cur.fetchall()] if cur.description else []


def create_pg_login(server: DatabaseServer, name: str, password: str) -> None:
    """A PostgreSQL login with any characters in its name (``%`` included): the statement is
    composed client-side and sent without parameters, so nothing %-formats it."""
    from psycopg2 import sql

    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        statement = sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        )
        cur.execute(statement.as_string(conn))


def user_sql(
    server: DatabaseServer,
    username: str,
    password: str,
    *statements: str,
    dbname: str | None = None,
) -> list[Any]:
    """Run statements as an application user (what the attacker can do); last rows returned."""
    rows: list[Any] = []
    with (
        contextlib.closing(server.connect(username, password, dbname)) as conn,
        conn.cursor() as cur,
    ):
        for statement in statements:
            cur.execute(statement)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
    return rows


def master_secret(
    rt: Any, server: DatabaseServer, *, group: str | None = None, superuser: bool = True
) -> tuple[str, str, str]:
    """A master login on ``server`` and its secret, tagged for this stack (and for ``group``:
    the SecretRotationGroup that binds masters to the user secrets they serve)."""
    username, password = unique_name("master"), new_password()
    server.create_login(username, password, superuser=superuser)
    tags = {"SecretRotationMaster": rt.stack_name}
    if group is not None:
        tags["SecretRotationGroup"] = group
    arn = create_secret(
        rt,
        database_secret(server, username, password),
        tags=tags,
        name=f"sec/master/{secrets.token_hex(6)}",
    )
    return arn, username, password


def app_secret(
    rt: Any,
    server: DatabaseServer,
    *,
    username: str | None = None,
    password: str | None = None,
    master_arn: str | None = None,
    group: str | None = None,
    tags: dict[str, str] | None = None,
    create_login: bool = True,
    **extra: Any,
) -> tuple[str, str, str]:
    """An application login on ``server`` (unless ``create_login=False``) and its secret
    (alternating users when ``master_arn`` is given; tagged with ``group`` as its
    SecretRotationGroup)."""
    username = username or unique_name("app")
    password = password or new_password()
    if create_login:
        server.create_login(username, password)
    if master_arn is not None:
        extra["masterarn"] = master_arn
    all_tags = dict(tags or {})
    if group is not None:
        all_tags["SecretRotationGroup"] = group
    arn = create_secret(rt, database_secret(server, username, password, **extra), tags=all_tags)
    return arn, username, password


def alternating_pair(
    rt: Any, server: DatabaseServer, *, username: str | None = None, **extra: Any
) -> tuple[str, str, str, str]:
    """A master and an alternating-users secret in the same SecretRotationGroup:
    (secret ARN, username, password, master ARN)."""
    group = unique_name("group")
    master_arn, _m, _p = master_secret(rt, server, group=group)
    arn, user, password = app_secret(
        rt, server, username=username, master_arn=master_arn, group=group, **extra
    )
    return arn, user, password, master_arn


def iam_secret(rt: Any, user: str | None = None) -> tuple[str, dict[str, Any]]:
    """An IAM user tagged for this stack, with one access key, and its secret."""
    user = user or unique_name("svc").replace("_", "-")
    iam = rt.client("iam")
    iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": rt.stack_name}])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    value = {
        "engine": "iam",
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }
    return create_secret(rt, value, name=f"sec/iam/{user}"), value


def access_keys(rt: Any, user: str) -> dict[str, str]:
    """The user's access keys and their status."""
    keys = rt.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in keys}


def executions_named(rt: Any, prefix: str) -> list[dict[str, Any]]:
    """Executions of either state machine whose name starts with ``prefix`` (names are public:
    the Step Functions console and ListExecutions show them)."""
    return [e for e in rt.executions() if e["name"].startswith(prefix)]
