"""Attack class 4: an unrelated role taken over as a "clone"; masters serving any secret.

Alternating users rotate toward ``<name>_clone``. A role of that name that already exists is
not proof of anything: before the master touches it, the rotation must prove it belongs (it is
the original's twin, or an earlier version of this secret logged in as it, on this server).
A master serves only the user secrets that share its ``SecretRotationGroup`` tag (tags need
TagResource, which neither an application nor a value editor holds).
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.dbservers import DatabaseServer, start_postgres
from tests.security.conftest import (
    HAVE_TEST_CA,
    REFUSAL_ERRORS,
    admin_sql,
    all_logins,
    alternating_pair,
    app_secret,
    assert_nothing_written,
    assert_refused,
    database_secret,
    master_secret,
    new_password,
    put_value,
    role_state,
    unique_name,
    versions_snapshot,
)

pytestmark = pytest.mark.integration


def _victim_clone(server: DatabaseServer, name: str) -> str:
    """Someone else's login that merely carries the name ``<app>_clone``, with a password,
    privileges, a per-role setting and (PostgreSQL) a table it owns in the app database."""
    password = new_password()
    server.create_login(name, password)
    if server.engine == "postgres":
        table = unique_name("victim_table")
        admin_sql(server, f'CREATE TABLE public."{table}" (v text)', dbname="app")
        admin_sql(server, f'ALTER TABLE public."{table}" OWNER TO "{name}"', dbname="app")
        admin_sql(server, f"ALTER ROLE \"{name}\" SET work_mem = '3MB'")
        admin_sql(server, f'GRANT pg_read_all_stats TO "{name}"')
    else:
        admin_sql(server, "GRANT INSERT, UPDATE, DELETE ON `app`.* TO %s@'%%'", (name,))
    return password


def test_an_existing_role_named_like_the_clone_is_not_taken_over(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """Attacker: holds the application ``app``'s password and its alternating-users secret (in
    the master's group). An unrelated login ``app_clone`` already exists (another team's user,
    or one the attacker asked an admin for).

    Today: the master sets ``app_clone``'s password to the new AWSPENDING value (which the
    application can read), makes it a member of ``app`` and, on PostgreSQL, reassigns its
    tables and resets its settings; on MariaDB, revokes its privileges.

    Must hold: the rotation fails at createSecret with RotationStateError or InvalidSecretError
    naming the clone; nothing is written to the secret; ``app_clone``'s password, attributes,
    memberships, settings, owned objects and grants are unchanged; ``app`` still logs in.
    """
    server = db_server
    user = unique_name("app")
    victim = f"{user}_clone"
    victim_password = _victim_clone(server, victim)
    arn, user, password, _master = alternating_pair(runtime, server, username=user)
    victim_before = role_state(server, victim)
    before = versions_snapshot(runtime, arn)

    outcome = runtime.rotate(arn)

    assert role_state(server, victim) == victim_before, "the unrelated role was changed"
    assert server.can_login(victim, victim_password)
    assert_refused(outcome, "createSecret", REFUSAL_ERRORS, naming=(victim, "'username'"))
    assert_nothing_written(runtime, arn, before)
    assert server.can_login(user, password)


def test_a_proof_of_the_original_must_come_from_the_same_server(
    runtime: Any, postgres_server: DatabaseServer, request: pytest.FixtureRequest
) -> None:
    """Attacker: holds a login named ``dba_clone`` on the shared server (a victim ``dba``
    exists, superuser) and a secret for it in the master's group, which it can edit; and a
    PostgreSQL server of its own (with a certificate the deployment trusts) where it created a
    role ``dba``.

    The rotation toward ``dba`` requires an earlier version of the secret that logs in as
    ``dba``. The attacker puts a version naming ``dba`` on its own server, then its current
    value back.

    Today: that version logs in (on the attacker's server), counts as proof, and the master
    makes ``dba_clone`` a member of ``dba`` and resets ``dba``'s password to AWSPENDING's.

    Must hold: a proof counts only on the server the secret names (same engine, host and
    port); the rotation fails at createSecret with RotationStateError or InvalidSecretError;
    nothing is written; ``dba`` and ``dba_clone`` are unchanged.
    """
    server = postgres_server
    dba, dba_password = unique_name("dba"), new_password()
    server.create_login(dba, dba_password, superuser=True)
    group = unique_name("group")
    master_arn, _m, _p = master_secret(runtime, server, group=group)
    arn, eve, eve_password = app_secret(
        runtime, server, username=f"{dba}_clone", master_arn=master_arn, group=group
    )
    # the attacker's server has a certificate the deployment trusts (a public CA issues one
    # for any name its owner controls): only the host tells it apart
    ca = {"ca": request.getfixturevalue("test_ca")} if HAVE_TEST_CA else {}
    with start_postgres(**ca) as own:
        own_password = new_password()
        own.create_login(dba, own_password)
        put_value(runtime, arn, database_secret(own, dba, own_password, masterarn=master_arn))
        put_value(runtime, arn, database_secret(server, eve, eve_password, masterarn=master_arn))
        states = {name: role_state(server, name) for name in (dba, eve)}
        before = versions_snapshot(runtime, arn)

        outcome = runtime.rotate(arn)

    assert {name: role_state(server, name) for name in (dba, eve)} == states
    assert server.can_login(dba, dba_password)
    assert_refused(outcome, "createSecret", REFUSAL_ERRORS)
    assert_nothing_written(runtime, arn, before)


@pytest.mark.parametrize(
    ("secret_group", "master_group"),
    [("team-a", "team-b"), (None, "team-b"), ("team-a", None)],
    ids=["other-group", "secret-without-group", "master-without-group"],
)
def test_a_secret_cannot_use_the_master_of_another_group(
    runtime: Any, postgres_server: DatabaseServer, secret_group: Any, master_group: Any
) -> None:
    """Attacker: can create or edit one application secret (its value, not its tags) and
    names in ``masterarn`` a master tagged for this stack but for another SecretRotationGroup
    (or the group tags are missing on one side).

    Today: any tagged master on the same host serves any secret: the rotation succeeds with
    the other group's master.

    Must hold: the rotation fails at createSecret with InvalidSecretError or
    RotationStateError naming 'masterarn' or SecretRotationGroup; nothing is written; no role
    is created and the application's password is unchanged.
    """
    server = postgres_server
    suffix = unique_name("")
    master_arn, _m, _p = master_secret(
        runtime, server, group=master_group and master_group + suffix
    )
    arn, user, password = app_secret(
        runtime, server, master_arn=master_arn, group=secret_group and secret_group + suffix
    )
    logins = all_logins(server)
    before = versions_snapshot(runtime, arn)

    outcome = runtime.rotate(arn)

    assert_refused(
        outcome, "createSecret", REFUSAL_ERRORS, naming=("'masterarn'", "SecretRotationGroup")
    )
    assert_nothing_written(runtime, arn, before)
    assert all_logins(server) == logins
    assert server.can_login(user, password)


def test_a_value_editor_cannot_point_a_secret_at_another_groups_master(
    runtime: Any, redis_server: DatabaseServer
) -> None:
    """Attacker: edit rights on one Redis secret's value (group A). It puts a new AWSCURRENT
    whose ``masterarn`` names group B's master (tagged for this stack).

    Today: the rotation uses group B's master to add a password to the user.

    Must hold: createSecret fails with InvalidSecretError or RotationStateError naming
    'masterarn' or SecretRotationGroup; nothing is written; the user's ACL entry is unchanged.
    """
    server = redis_server
    group_a = unique_name("group-a")
    master_a, _ma, _pa = master_secret(runtime, server, group=group_a)
    master_b, _mb, _pb = master_secret(runtime, server, group=unique_name("group-b"))
    arn, user, password = app_secret(runtime, server, master_arn=master_a, group=group_a)
    put_value(runtime, arn, database_secret(server, user, password, masterarn=master_b))
    acl_before = role_state(server, user)
    before = versions_snapshot(runtime, arn)

    outcome = runtime.rotate(arn)

    assert_refused(
        outcome, "createSecret", REFUSAL_ERRORS, naming=("'masterarn'", "SecretRotationGroup")
    )
    assert_nothing_written(runtime, arn, before)
    assert role_state(server, user) == acl_before
