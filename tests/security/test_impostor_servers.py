"""Attack class 2: credentials, the master's included, sent to a server that never proved who
it is.

Whoever can answer on the secret's host and port (a hijacked DNS name, an ARP-spoofed subnet,
a secret editor pointing ``host`` at its own machine) receives what the workers send there.
Secure by default: the server's certificate and host name are verified against the system store
plus the named CA bundle; plaintext only where both the deployment (``AllowPlaintext``) and the
secret (``"ssl": false``) allow it; otherwise a clear error at createSecret, before anything is
sent. The impostors (tests/support/impostor.py) record every byte and every answer to their
authentication challenges, and lure clients with the most revealing method each protocol has.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.security.conftest import (
    HAVE_TEST_CA,
    SERVER_IDENTITY_ERRORS,
    assert_nothing_written,
    assert_refused,
    create_secret,
    versions_snapshot,
)
from tests.support.impostor import impostor

pytestmark = pytest.mark.integration

ENGINE = {"postgres": "postgres", "mysql": "mariadb", "redis": "redis"}
ABSENT = "absent"

# (protocol, impostor mode, the secret's "ssl", lure): every case leaked a password on the code
# these tests were written against.
CASES = [
    ("postgres", "plaintext", ABSENT, "cleartext"),
    ("postgres", "plaintext", ABSENT, "md5"),
    ("postgres", "plaintext", ABSENT, "scram"),
    ("postgres", "plaintext", False, "cleartext"),
    ("postgres", "tls-untrusted", ABSENT, "cleartext"),
    ("postgres", "tls-untrusted", True, "cleartext"),
    ("postgres", "tls-wrong-host", ABSENT, "cleartext"),
    ("postgres", "tls-wrong-host", True, "scram"),
    ("mysql", "plaintext", ABSENT, "clear_password"),
    ("mysql", "plaintext", ABSENT, "dialog"),
    ("mysql", "plaintext", ABSENT, "native"),
    ("mysql", "plaintext", ABSENT, "caching_sha2"),
    ("mysql", "plaintext", False, "clear_password"),
    ("mysql", "tls-untrusted", ABSENT, "clear_password"),
    ("mysql", "tls-wrong-host", ABSENT, "clear_password"),
    ("redis", "plaintext", ABSENT, "auth"),
    ("redis", "plaintext", False, "auth"),
    ("redis", "tls-untrusted", ABSENT, "auth"),
    ("redis", "tls-wrong-host", ABSENT, "auth"),
]
# Cases where the client refused the server, but reported it as DatabaseUnavailableError: a
# transient error, retried, and announced as "the database is down".
MISNAMED_CASES = [
    ("postgres", "plaintext", True, "cleartext"),
    ("mysql", "tls-wrong-host", True, "dialog"),
    ("redis", "tls-untrusted", True, "auth"),
    ("redis", "tls-wrong-host", True, "auth"),
]


def _secret(protocol: str, host: str, port: int, username: str, ssl: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "engine": ENGINE[protocol],
        "host": host,
        "port": port,
        "username": username,
        "password": "Imp-" + secrets.token_urlsafe(18),
    }
    if protocol != "redis":
        value["dbname"] = "app"
    if ssl is not ABSENT:
        value["ssl"] = ssl
    return value


def _rotate_against_impostor(
    rt: Any, request: pytest.FixtureRequest, protocol: str, mode: str, ssl: Any, lure: str
) -> tuple[Any, Any, dict[str, Any], dict[str, Any], str, Any]:
    """An alternating-users (Redis: multi-credential) secret and its master, both on the
    impostor's host and port, rotated once."""
    if mode in ("tls-wrong-host", "tls-valid") and not HAVE_TEST_CA:
        pytest.fail("the impostor needs the session's test CA (fixture test_ca)")
    ca = request.getfixturevalue("test_ca") if mode != "plaintext" else None
    group = "imp-" + secrets.token_hex(4)
    with impostor(protocol, mode, lure=lure, ca=ca) as imp:  # type: ignore[arg-type]
        master = _secret(protocol, imp.host, imp.port, "master_" + secrets.token_hex(3), ssl)
        master_arn = create_secret(
            rt,
            master,
            tags={"SecretRotationMaster": rt.stack_name, "SecretRotationGroup": group},
        )
        app = {
            **_secret(protocol, imp.host, imp.port, "app_" + secrets.token_hex(3), ssl),
            "masterarn": master_arn,
        }
        arn = create_secret(rt, app, tags={"SecretRotationGroup": group})
        before = versions_snapshot(rt, arn)
        outcome = rt.rotate(arn)
    return imp, outcome, app, master, arn, before


@pytest.mark.parametrize(
    ("protocol", "mode", "ssl", "lure"),
    CASES,
    ids=[f"{p}-{m}-ssl={s}-{lure}" for p, m, s, lure in CASES],
)
def test_no_password_reaches_a_server_that_did_not_prove_its_identity(
    module_runtime: Any,
    request: pytest.FixtureRequest,
    protocol: str,
    mode: str,
    ssl: Any,
    lure: str,
) -> None:
    """Attacker: answers on the secret's host and port (network position, DNS, or edit rights
    on the secret's value to point ``host`` at its own machine). It holds no password and no
    certificate the deployment trusts for that name. The secret names a master on the same
    host (alternating users; Redis: the master's ACL user).

    Today: PostgreSQL ``prefer``/``require`` (no ``ssl``, ``ssl: true``) accept any certificate
    or none; MySQL and Redis without ``ssl`` speak plaintext (to a TLS impostor too), and
    pymysql answers mysql_clear_password/dialog switches in cleartext and encrypts to the
    server's own RSA key: the application's password reaches the impostor (with
    ``ssl: false`` too, though the deployment never allowed plaintext).

    Must hold: neither the application's nor the master's password reaches the impostor in any
    form, the client never answers an authentication challenge there, and the rotation fails
    at createSecret with ServerIdentityError or InvalidConfigurationError (``ssl: false``
    without AllowPlaintext: refused before connecting); nothing is written.
    """
    rt = module_runtime
    imp, outcome, app, master, arn, before = _rotate_against_impostor(
        rt, request, protocol, mode, ssl, lure
    )

    assert not imp.saw(app["password"]), f"the application's password reached it: {imp.events}"
    assert not imp.saw(master["password"]), f"the master's password reached it: {imp.events}"
    assert imp.auth_responses == [], [r.kind for r in imp.auth_responses]
    expected = SERVER_IDENTITY_ERRORS
    if (protocol, mode, ssl) == ("redis", "plaintext", ABSENT):
        # Redis has no TLS negotiation: this impostor answers the handshake by closing the
        # connection, which is exactly what a failover or a load balancer without a healthy
        # target does. The worker treats it as the outage it may be (retried, then one
        # alert); what matters is asserted above: nothing reached the impostor.
        expected = (*SERVER_IDENTITY_ERRORS, "DatabaseUnavailableError")
    assert_refused(outcome, "createSecret", expected)
    assert_nothing_written(rt, arn, before)


@pytest.mark.parametrize(
    ("protocol", "mode", "ssl", "lure"),
    MISNAMED_CASES,
    ids=[f"{p}-{m}-ssl={s}-{lure}" for p, m, s, lure in MISNAMED_CASES],
)
def test_a_server_that_fails_its_identity_check_is_reported_as_such(
    module_runtime: Any,
    request: pytest.FixtureRequest,
    protocol: str,
    mode: str,
    ssl: Any,
    lure: str,
) -> None:
    """Attacker: as above; here the client does refuse the impostor (``ssl: true`` with a
    verifying client, or a plaintext server where TLS is required).

    Today: the refusal is classified DatabaseUnavailableError: transient, so the state machine
    connects to the impostor twice more, and the alert tells the operator the database is
    down rather than that something answered in its place.

    Must hold: the rotation fails at createSecret with ServerIdentityError or
    InvalidConfigurationError (permanent, not retried); no password reaches the impostor;
    nothing is written.
    """
    rt = module_runtime
    imp, outcome, app, master, arn, before = _rotate_against_impostor(
        rt, request, protocol, mode, ssl, lure
    )

    assert not imp.saw(app["password"]) and not imp.saw(master["password"])
    assert_refused(outcome, "createSecret", SERVER_IDENTITY_ERRORS)
    assert_nothing_written(rt, arn, before)
