"""The database servers' own statement logs never receive a new password.

PostgreSQL is sent a SCRAM verifier and MariaDB a mysql_native_password hash; with every
statement logged, neither log may contain a password the rotation generated.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import (
    GROUP_TAGS,
    create_app_user,
    create_master,
    database_secret,
    new_password,
    unique_name,
)

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def _statements_logged(server: DatabaseServer) -> Iterator[Any]:
    """Log every statement while the body runs; yields a function returning the log text."""
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        if server.engine == "postgres":
            cur.execute("ALTER SYSTEM SET log_statement = 'all'")
            cur.execute("SELECT pg_reload_conf()")
        else:
            cur.execute("TRUNCATE mysql.general_log")
            cur.execute("SET GLOBAL log_output = 'TABLE'")
            cur.execute("SET GLOBAL general_log = 1")

    def read() -> str:
        if server.engine == "postgres":
            assert server.log_file is not None
            return server.log_file.read_text(errors="replace")
        with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("SELECT CAST(argument AS CHAR) FROM mysql.general_log")
            return "\n".join(str(row[0]) for row in cur.fetchall())

    try:
        yield read
    finally:
        with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
            if server.engine == "postgres":
                cur.execute("ALTER SYSTEM RESET log_statement")
                cur.execute("SELECT pg_reload_conf()")
            else:
                cur.execute("SET GLOBAL general_log = 0")


def test_statement_logs_hold_no_generated_password(runtime: Any, db_server: DatabaseServer) -> None:
    with _statements_logged(db_server) as server_log:
        single, _user, initial = create_app_user(runtime, db_server)
        master_arn = create_master(runtime, db_server)
        username, password = unique_name("alt"), new_password()
        db_server.create_login(username, password)
        alternating = runtime.client("secretsmanager").create_secret(
            Name=f"it/{unique_name()}",
            SecretString=json.dumps(
                database_secret(db_server, username, password, masterarn=master_arn)
            ),
            Tags=GROUP_TAGS,
        )["ARN"]
        for arn in (single, alternating, alternating, alternating):
            assert runtime.rotate(arn).succeeded
        text = server_log()
    assert "ALTER ROLE" in text or "SET PASSWORD" in text or "IDENTIFIED BY PASSWORD" in text, (
        "the log captured nothing"
    )
    # the test itself created the initial passwords through the admin connection in the clear
    generated = {k: v for k, v in runtime.secret_values().items() if v not in (initial, password)}
    generated = {k: v for k, v in generated.items() if "master" not in k}
    assert len(generated) >= 4
    assert_no_value_in(text, generated)
