"""Attack class 1: the application steers the master's database session.

The master holds the most privileged login on the server. Whatever an application can set up
(its database's settings, objects in its schemas, its own role's settings) must not change
what the master's session runs: search_path pinned against database and role settings,
catalog objects and operators qualified, master work done in the master's own database except
what must run in the application's.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.security.conftest import (
    admin_sql,
    alternating_pair,
    role_state,
    unique_name,
    user_sql,
    value_of,
)

pytestmark = pytest.mark.integration

# Catalog relations and functions the master's session might use, shadowed in the attacker's
# schema: any of them, resolved there, runs the attacker's code with the master's rights.
_SHADOWED_RELATIONS = (
    "pg_roles",
    "pg_authid",
    "pg_auth_members",
    "pg_shdepend",
    "pg_database",
    "pg_db_role_setting",
    "pg_class",
    "pg_namespace",
    "pg_user",
    "pg_settings",
)
_SHADOWED_FUNCTIONS = (
    # name, arguments, return type, result expression
    ("set_config", "a text, b text, c boolean", "text", "pg_catalog.set_config(a, b, c)"),
    ("current_database", "", "name", "pg_catalog.current_database()"),
    ("now", "", "timestamptz", "pg_catalog.now()"),
    ("quote_ident", "a text", "text", "pg_catalog.quote_ident(a)"),
    ("format", "a text", "text", "pg_catalog.format(a)"),
    ("pg_has_role", "a name, b name, c text", "boolean", "pg_catalog.pg_has_role(a, b, c)"),
    ("unnest", "a text[]", "SETOF text", "pg_catalog.unnest(a)"),
    ("lower", "a text", "text", "pg_catalog.lower(a)"),
    ("version", "", "text", "pg_catalog.version()"),
)


def _plant_trap(server: DatabaseServer, user: str, password: str, dbname: str) -> None:
    """What the application (owner of its database) does: a schema of look-alikes that record
    who calls them and make the application superuser when the caller can, put first on the
    database's search_path; and a per-role setting so the master copies settings."""
    pwn = (
        "CREATE FUNCTION trap.pwn() RETURNS boolean LANGUAGE plpgsql"
        " SET search_path = pg_catalog AS $f$ BEGIN"
        " INSERT INTO trap.calls (who) VALUES (session_user::text);"
        " IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN"
        f" EXECUTE 'ALTER ROLE \"{user}\" SUPERUSER'; END IF;"
        " RETURN true; END $f$"
    )
    statements = [
        "CREATE SCHEMA trap",
        "CREATE TABLE trap.calls (who text, at timestamptz DEFAULT pg_catalog.now())",
        "GRANT USAGE ON SCHEMA trap TO PUBLIC",
        "GRANT INSERT, SELECT ON trap.calls TO PUBLIC",
        pwn,
        "CREATE FUNCTION trap.name_eq(a name, b name) RETURNS boolean LANGUAGE sql"
        " SET search_path = pg_catalog AS $f$ SELECT trap.pwn() AND pg_catalog.nameeq(a, b) $f$",
        "CREATE OPERATOR trap.= (LEFTARG = name, RIGHTARG = name, FUNCTION = trap.name_eq)",
        "CREATE FUNCTION trap.text_eq(a text, b text) RETURNS boolean LANGUAGE sql"
        " SET search_path = pg_catalog AS $f$ SELECT trap.pwn() AND pg_catalog.texteq(a, b) $f$",
        "CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.text_eq)",
    ]
    statements += [
        f"CREATE VIEW trap.{rel} AS SELECT * FROM pg_catalog.{rel} WHERE trap.pwn()"
        for rel in _SHADOWED_RELATIONS
    ]
    for name, args, returns, body in _SHADOWED_FUNCTIONS:
        returns_set = returns.startswith("SETOF")
        select = f"SELECT {body} FROM (SELECT trap.pwn()) AS t"
        statements.append(
            f"CREATE FUNCTION trap.{name}({args}) RETURNS {returns} LANGUAGE sql"
            f" SET search_path = pg_catalog AS $f$ {select} $f$"
            + (" ROWS 10" if returns_set else "")
        )
    statements += [
        f'ALTER DATABASE "{dbname}" SET search_path = trap, pg_catalog, public',
        f"ALTER ROLE \"{user}\" SET work_mem = '8MB'",
        f'ALTER ROLE "{user}" SET search_path = trap, pg_catalog, public',
    ]
    user_sql(server, user, password, *statements, dbname=dbname)


def _master_calls(server: DatabaseServer, user: str, dbname: str) -> list[Any]:
    """Sessions other than the application's own two users that ran the attacker's code."""
    rows = admin_sql(server, "SELECT DISTINCT who FROM trap.calls", dbname=dbname)
    return sorted(who for (who,) in rows if who not in (user, f"{user}_clone"))


def test_a_database_owner_cannot_run_code_as_the_master_through_search_path(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    """Attacker: the application, holding its own password and owning the database its secret
    names (usual on RDS). It sets the database's search_path to a schema of look-alikes of the
    catalog relations, functions and the ``=`` operator the master's session uses unqualified.

    Today: the master's setSecret session in the application's database resolves them, runs the
    attacker's code as superuser and the application becomes SUPERUSER.

    Must hold: no master session resolves anything in the attacker's schema (its call log shows
    no caller but the application itself); the application's role attributes are unchanged;
    the master's role is unchanged; and the rotation still succeeds (pinning the master's
    search_path, not refusing the database, is the fix): the clone logs in with AWSCURRENT.
    """
    server = postgres_server
    user = unique_name("owner")
    dbname = unique_name("db")
    arn, user, password, master_arn = alternating_pair(
        runtime, server, username=user, dbname=dbname
    )
    admin_sql(server, f'CREATE DATABASE "{dbname}" OWNER "{user}"')
    _plant_trap(server, user, password, dbname)
    master_user = value_of(runtime, master_arn)["username"]
    before = {user: role_state(server, user), master_user: role_state(server, master_user)}

    outcome = runtime.rotate(arn)

    assert not role_state(server, user)["attributes"][0][1], "the application became SUPERUSER"
    assert _master_calls(server, user, dbname) == [], "a master session ran the attacker's code"
    after = role_state(server, user)
    # the only change the rotation makes to the original: its clone became a member of it
    assert after["members"] in (before[user]["members"], [(f"{user}_clone", False)])
    assert {**after, "members": None} == {**before[user], "members": None}
    assert role_state(server, master_user) == before[master_user]
    assert outcome.succeeded, outcome.error
    current = value_of(runtime, arn)
    assert current["username"] == f"{user}_clone"
    assert server.can_login(current["username"], current["password"], dbname)


def test_a_database_setting_cannot_make_the_master_act_as_another_role(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    """Attacker: the application, owning the database its secret names. It sets
    ``ALTER DATABASE ... SET role = '<itself>'``, so every session that connects there switches
    to the application's role, the master's included.

    Today: the master's setSecret session in the application's database runs as the
    application: creating the clone fails with a privilege error (and whatever the master did
    there would be done with the application's rights and ownership).

    Must hold: the master's work runs as the master (in its own database, or pinned): the
    rotation succeeds, the clone logs in with AWSCURRENT, and the clone was not created by
    (nor is it administered by) the application's role.
    """
    server = postgres_server
    user, dbname = unique_name("owner"), unique_name("db")
    arn, user, password, _master = alternating_pair(runtime, server, username=user, dbname=dbname)
    admin_sql(server, f'CREATE DATABASE "{dbname}" OWNER "{user}"')
    user_sql(server, user, password, f"ALTER DATABASE \"{dbname}\" SET role = '{user}'")

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    current = value_of(runtime, arn)
    assert server.can_login(current["username"], current["password"], dbname)
    admins = admin_sql(
        server,
        "SELECT u.rolname FROM pg_catalog.pg_auth_members m"
        " JOIN pg_catalog.pg_roles g ON g.oid = m.roleid"
        " JOIN pg_catalog.pg_roles u ON u.oid = m.member"
        " WHERE g.rolname = %s AND m.admin_option",
        (current["username"],),
    )
    assert (user,) not in admins
