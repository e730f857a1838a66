"""The impostor servers catch what careless clients send, and careful clients send them nothing.

A security test that says "no password reached the impostor" proves something only if the
impostor would have caught one: here each lure gets a careless client (psycopg2 with
sslmode=disable or require, pymysql with its defaults, redis-py without TLS or without
verification) that does hand over its password, and a careful client (verified certificate and
host name) that gives up before any authentication.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rotator.dbservers.tls import CertificateAuthority, client_context
from tests.support.impostor import HOSTILE_MODES, LURES, Impostor, Mode, Protocol, impostor

PROTOCOLS: tuple[Protocol, ...] = ("postgres", "mysql", "redis")
TLS_HOSTILE: tuple[Mode, ...] = ("tls-untrusted", "tls-wrong-host")


@pytest.fixture(scope="module")
def trusted_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """The CA the careful clients trust (as the test servers' session CA would be)."""
    return CertificateAuthority(tmp_path_factory.mktemp("trusted-ca"))


def _password() -> str:
    return "Pw-" + secrets.token_urlsafe(16)


# --- clients ----------------------------------------------------------------------------------


def _postgres(imp: Impostor, password: str, careful: bool, ca_file: Path) -> None:
    import psycopg2

    tls: dict[str, Any]
    if careful:
        tls = {"sslmode": "verify-full", "sslrootcert": str(ca_file)}
    else:  # no TLS against a plaintext server, unverified TLS against a TLS one
        tls = {"sslmode": "disable" if imp.mode == "plaintext" else "require"}
    psycopg2.connect(
        host=imp.host,
        port=imp.port,
        user="app",
        password=password,
        dbname="app",
        connect_timeout=5,
        gssencmode="disable",
        **tls,
    ).close()


def _mysql(imp: Impostor, password: str, careful: bool, ca_file: Path) -> None:
    import pymysql

    # careless: pymysql's defaults (TLS if offered, any certificate, else plaintext)
    tls: dict[str, Any] = {"ssl": client_context(ca_file)} if careful else {}
    pymysql.connect(
        host=imp.host, port=imp.port, user="app", password=password, connect_timeout=5, **tls
    ).close()


def _redis(imp: Impostor, password: str, careful: bool, ca_file: Path) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    tls: dict[str, Any] = {}
    if careful:
        tls = {"ssl": True, "ssl_ca_certs": str(ca_file), "ssl_check_hostname": True}
    elif imp.mode != "plaintext":
        tls = {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False}
    client = redis.Redis(
        host=imp.host,
        port=imp.port,
        username="app",
        password=password,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
        **tls,
    )
    try:
        client.ping()
    finally:
        client.close()


CLIENTS: dict[Protocol, Callable[[Impostor, str, bool, Path], None]] = {
    "postgres": _postgres,
    "mysql": _mysql,
    "redis": _redis,
}


def _try_login(imp: Impostor, password: str, *, careful: bool, ca: CertificateAuthority) -> None:
    """Log in as ``app``; the impostor refuses (or the client gives up): either is fine here."""
    with contextlib.suppress(Exception):  # what matters is what the impostor received
        CLIENTS[imp.protocol](imp, password, careful, ca.ca_file)


ALL_LURES = [(protocol, lure) for protocol in PROTOCOLS for lure in LURES[protocol]]


# --- careless clients leak, and the impostor catches it ----------------------------------------


@pytest.mark.parametrize(("protocol", "lure"), ALL_LURES)
def test_a_careless_plaintext_client_hands_its_password_to_a_plaintext_impostor(
    protocol: Protocol, lure: str, trusted_ca: CertificateAuthority
) -> None:
    password = _password()
    with impostor(protocol, "plaintext", lure=lure) as imp:
        _try_login(imp, password, careful=False, ca=trusted_ca)
    assert imp.saw(password)
    assert imp.auth_responses
    assert not imp.saw(_password())  # and not just any password


@pytest.mark.parametrize("mode", TLS_HOSTILE)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_skips_verification_hands_its_password_to_a_tls_impostor(
    protocol: Protocol, mode: Mode, trusted_ca: CertificateAuthority
) -> None:
    password = _password()
    with impostor(protocol, mode, ca=trusted_ca) as imp:
        _try_login(imp, password, careful=False, ca=trusted_ca)
    assert imp.tls_established
    assert imp.saw(password)


@pytest.mark.parametrize(
    ("protocol", "lure", "kind"),
    [
        ("postgres", "md5", "md5"),
        ("postgres", "scram", "scram"),
        ("mysql", "native", "mysql_native"),
        ("mysql", "caching_sha2", "caching_sha2_rsa"),
    ],
)
def test_a_password_sent_only_as_a_digest_or_encrypted_is_still_recognised(
    protocol: Protocol, lure: str, kind: str, trusted_ca: CertificateAuthority
) -> None:
    password = _password()
    with impostor(protocol, "plaintext", lure=lure) as imp:
        _try_login(imp, password, careful=False, ca=trusted_ca)
    assert password.encode() not in imp.received_bytes
    assert [response.kind for response in imp.auth_responses][-1] == kind
    assert imp.saw(password)
    assert not imp.saw(password + "x")


def test_the_mysql_auth_switch_lures_get_the_password_itself(
    trusted_ca: CertificateAuthority,
) -> None:
    for lure in ("clear_password", "dialog"):
        password = _password()
        with impostor("mysql", "plaintext", lure=lure) as imp:
            _try_login(imp, password, careful=False, ca=trusted_ca)
        assert f"auth switch to {lure}" in imp.events
        assert imp.auth_responses[-1].data == password.encode()


# --- careful clients give up before authenticating ---------------------------------------------


@pytest.mark.parametrize("mode", HOSTILE_MODES)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_verifies_the_server_sends_an_impostor_nothing(
    protocol: Protocol, mode: Mode, trusted_ca: CertificateAuthority
) -> None:
    password = _password()
    with (
        impostor(protocol, mode, ca=trusted_ca) as imp,
        pytest.raises(Exception),  # noqa: B017 - each driver raises its own type
    ):
        CLIENTS[protocol](imp, password, True, trusted_ca.ca_file)
    assert imp.sessions, "the client never reached the impostor"
    assert imp.auth_responses == []
    assert not imp.saw(password)
    if mode == "tls-untrusted":
        assert not imp.tls_established
        assert any(event.startswith("TLS refused by the client") for event in imp.events)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_a_valid_certificate_the_careful_client_talks_so_the_tls_path_can_catch_a_leak(
    protocol: Protocol, trusted_ca: CertificateAuthority
) -> None:
    """The control: the TLS impostor records what arrives inside TLS."""
    password = _password()
    with impostor(protocol, "tls-valid", ca=trusted_ca) as imp:
        _try_login(imp, password, careful=True, ca=trusted_ca)
    assert imp.tls_established
    assert imp.saw(password)


# --- the API ----------------------------------------------------------------------------------


def test_a_tls_mode_that_needs_the_clients_ca_says_so() -> None:
    with pytest.raises(ValueError, match="needs ca="):
        impostor("postgres", "tls-wrong-host")


def test_an_unknown_lure_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="clear_password"):
        impostor("mysql", lure="cleartext")


def test_saw_refuses_an_empty_secret() -> None:
    with impostor("redis") as imp, pytest.raises(ValueError):
        imp.saw("")


def test_a_resp2_client_authenticating_with_auth_is_caught_too() -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    password = _password()
    with impostor("redis") as imp:
        client = redis.Redis(
            host=imp.host,
            port=imp.port,
            username="app",
            password=password,
            protocol=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )
        client.ping()
        client.close()
    assert [response.kind for response in imp.auth_responses] == ["auth"]
    assert imp.saw(password)
