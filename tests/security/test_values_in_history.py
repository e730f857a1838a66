"""Attack class 8: a secret's characters reach the execution history, logs or alerts.

Execution histories, logs and alerts are read by operators who hold no database password.
Only the service's own error classes, with messages vetted to carry no values, may end up
there: a driver's exception text (which quotes the character it could not encode, and its
position) must not, nor may a malformed secret crash a function with an unclassified error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.security.conftest import (
    admin_sql,
    app_secret,
    assert_nothing_written,
    assert_refused,
    create_secret,
    database_secret,
    master_secret,
    new_password,
    router,
    unique_name,
    versions_snapshot,
)

# outside Latin-1 (pymysql encodes passwords as Latin-1), and rare enough to search for
MARK = "\u2603"


def _everything_operators_read(rt: Any) -> str:
    rt.alerts()
    errors = [json.dumps(inv.error) for inv in rt.host.invocations if inv.error]
    parts = [
        rt.all_histories_text(),
        rt.log_text(),
        *(alert.raw + alert.subject for alert in rt.seen_alerts),
        *errors,
    ]
    return "\n".join(parts)


def _assert_no_trace_of_the_password(text: str) -> None:
    for trace in (MARK, "\\u2603", "\\\\u2603", "u2603", "in position", "codec can't"):
        assert trace not in text, f"a trace of the password reached the history/logs: {trace!r}"


@pytest.mark.integration
@pytest.mark.parametrize("whose", ["application", "master"])
def test_a_password_outside_latin1_leaves_no_trace_on_mariadb(
    runtime: Any, mariadb_server: DatabaseServer, whose: str
) -> None:
    """Attacker: edit rights on one secret's value, or simply an application or master whose
    password holds a character outside Latin-1 (a passphrase with a snowman); the attacker
    reads execution histories (states:GetExecutionHistory), not secrets.

    Today: pymysql raises UnicodeEncodeError while logging in; its message, with the character
    and its position in the password, goes into the execution history and the logs.

    Must hold: createSecret fails with InvalidSecretError naming 'password' (each engine's
    password alphabet is checked before use); neither the character nor the driver's message
    appears in any history, log line, alert or error; nothing is written.
    """
    server = mariadb_server
    odd = new_password()[:10] + MARK + new_password()[:10]
    if whose == "application":
        user = unique_name("app")
        server.create_login(user, new_password())
        admin_sql(server, "ALTER USER %s@'%%' IDENTIFIED BY %s", (user, odd))
        arn, _u, _p = app_secret(runtime, server, username=user, password=odd, create_login=False)
    else:
        group = unique_name("group")
        master_arn, master_user, _p = master_secret(runtime, server, group=group)
        admin_sql(server, "ALTER USER %s@'%%' IDENTIFIED BY %s", (master_user, odd))
        runtime.client("secretsmanager").put_secret_value(
            SecretId=master_arn, SecretString=json.dumps(database_secret(server, master_user, odd))
        )
        arn, _u, _p = app_secret(runtime, server, master_arn=master_arn, group=group)
    before = versions_snapshot(runtime, arn)

    outcome = runtime.rotate(arn)

    _assert_no_trace_of_the_password(_everything_operators_read(runtime))
    assert_refused(outcome, "createSecret", ("InvalidSecretError",), naming=("'password'",))
    assert_nothing_written(runtime, arn, before)


def test_deeply_nested_secret_json_is_refused_naming_the_secret(runtime: Any) -> None:
    """Attacker: edit rights on one secret's value. It stores valid JSON nested 5,000 levels
    deep (well under Secrets Manager's 64 KiB).

    Today: the router's json.loads raises RecursionError: an unclassified crash that names no
    field, and the safety net's alert says nothing useful.

    Must hold: the router refuses with InvalidSecretError naming the AWSCURRENT version;
    nothing is written.
    """
    depth = 5000
    value = json.dumps(database_secret_stub())[:-1] + ', "notes": ' + "[" * depth + "]" * depth
    arn = create_secret(runtime, {"engine": "postgres"})
    runtime.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=value + "}")
    token = runtime.stage_rotation(arn)
    before = versions_snapshot(runtime, arn)

    result = router(runtime, "createSecret", arn, token)

    assert_refused(result, "createSecret", ("InvalidSecretError",), naming=("AWSCURRENT",))
    assert "RecursionError" not in json.dumps(result.error)
    assert_nothing_written(runtime, arn, before)


def database_secret_stub() -> dict[str, Any]:
    """A well-formed database secret for a server nobody needs to reach."""
    return {
        "engine": "postgres",
        "host": "127.0.0.1",
        "port": 9,
        "username": "app",
        "password": "not-used-" + new_password(),
        "dbname": "app",
    }
