"""Attack class 3: ``%`` in a role name changes the SQL the workers run.

psycopg2 %-formats a composed statement whenever parameters are passed, after the identifiers
were quoted: ``"x%%"`` becomes ``"x%"`` (another role) and ``"x%s"`` consumes a parameter.
A role name is data; whatever characters it holds, the statement must act on that role.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.security.conftest import (
    STEPS,
    all_logins,
    app_secret,
    create_pg_login,
    database_secret,
    master_secret,
    new_password,
    put_value,
    role_state,
    router,
    unique_name,
    value_of,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("suffix", ["%s", "%%", "%(x)s"])
def test_single_user_rotation_of_a_role_with_percent_in_its_name_acts_on_that_role(
    runtime: Any, postgres_server: DatabaseServer, suffix: str
) -> None:
    """Attacker: none needed, the role is merely named with ``%`` (``app%s``, ``app%%``,
    ``app%(x)s``); for ``%%`` a role named with one ``%`` less exists beside it.

    Today: ``%s`` and ``%(x)s`` crash the setSecret worker with an unclassified TypeError /
    KeyError; ``%%`` makes ``ALTER ROLE`` name the other role ``app%``.

    Must hold: the rotation succeeds, the role itself logs in with the new AWSCURRENT password,
    the look-alike role is untouched and no role is created.
    """
    server = postgres_server
    base = unique_name("pct")
    user, password = base + suffix, new_password()
    lookalike = user.replace("%%", "%")
    if lookalike != user:
        create_pg_login(server, lookalike, new_password())
    lookalike_before = role_state(server, lookalike) if lookalike != user else None
    create_pg_login(server, user, password)
    arn, _u, _p = app_secret(runtime, server, username=user, password=password, create_login=False)
    logins = all_logins(server)

    outcome = runtime.rotate(arn)

    if lookalike != user:
        assert role_state(server, lookalike) == lookalike_before, "another role was changed"
    assert all_logins(server) == logins
    assert outcome.succeeded, outcome.error
    current = value_of(runtime, arn)
    assert current["username"] == user
    assert server.can_login(user, current["password"])


def test_the_master_does_not_reset_a_role_one_percent_sign_away_from_the_clone(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    """Attacker: holds the application ``b%%`` and its clone ``b%%_clone`` (a migration from
    AWS's alternating template: both versions are in the secret). A victim role ``b%_clone``
    (one ``%`` less) exists on the same server.

    Today: the master's setSecret runs ``ALTER ROLE "b%_clone" WITH LOGIN PASSWORD <new>`` and
    ``ALTER ROLE "b%_clone" SET role TO 'b%%'``: the victim's password becomes the one stored
    in the attacker's AWSPENDING, and the victim's sessions act as the attacker's role.

    Must hold: the victim's password, attributes, memberships and settings are unchanged; the
    rotation completes on ``b%%_clone``, which logs in with AWSCURRENT.
    """
    server = postgres_server
    base = unique_name("pct")
    original, clone, victim = f"{base}%%", f"{base}%%_clone", f"{base}%_clone"
    create_pg_login(server, victim, new_password())
    group = unique_name("group")
    master_arn, _m, _p = master_secret(runtime, server, group=group)
    clone_password = new_password()
    create_pg_login(server, clone, clone_password)
    # the clone's version first (AWSPREVIOUS after the next put), the original's current
    arn, _u, _p = app_secret(
        runtime,
        server,
        username=clone,
        create_login=False,
        master_arn=master_arn,
        group=group,
        password=clone_password,
    )
    password = new_password()
    create_pg_login(server, original, password)
    put_value(runtime, arn, database_secret(server, original, password, masterarn=master_arn))
    victim_before = role_state(server, victim)

    token = runtime.stage_rotation(arn)
    results = []
    for step in STEPS:
        results.append(router(runtime, step, arn, token))
        assert role_state(server, victim) == victim_before, f"{step} changed the victim role"
        assert not results[-1].failed, results[-1].error
    current = value_of(runtime, arn)
    assert current["username"] == clone
    assert server.can_login(clone, current["password"])
