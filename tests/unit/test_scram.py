"""The SCRAM-SHA-256 verifier PostgreSQL receives instead of the plain password."""

from __future__ import annotations

import base64
import hashlib
import hmac

from rotation_core.engines.postgres import scram_verifier


def test_the_verifier_proves_knowledge_of_the_password_as_scram_defines() -> None:
    salt = bytes(range(16))
    verifier = scram_verifier("pencil", salt)
    assert verifier is not None
    method, rest = verifier.split("$", 1)
    params, keys = rest.split("$")
    iterations, salt_b64 = params.split(":")
    stored_key_b64, server_key_b64 = keys.split(":")
    assert method == "SCRAM-SHA-256" and iterations == "4096"
    assert base64.b64decode(salt_b64) == salt
    # RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key"))
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(stored_key_b64) == hashlib.sha256(client_key).digest()
    assert (
        base64.b64decode(server_key_b64) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    )


def test_the_verifier_does_not_contain_the_password() -> None:
    verifier = scram_verifier("correct-horse-battery")
    assert verifier is not None and "correct-horse-battery" not in verifier


def test_each_verifier_has_a_fresh_salt() -> None:
    assert scram_verifier("same-password") != scram_verifier("same-password")


def test_non_ascii_passwords_are_left_for_the_server_to_hash() -> None:
    assert scram_verifier("pässwörd") is None
