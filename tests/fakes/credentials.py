"""In-memory backends for multi-credential rotation: a fake IAM/STS and a fake Redis ACL server,
each plugged under the real adapter (so the adapter's own logic runs, not a mock of it)."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from rotation_core.adapters.credentials.iam_keys import IamAccessKeys
from rotation_core.adapters.credentials.redis_acl import RedisAclPasswords
from rotation_core.models import DatabaseCredentials


class _ClientError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


@dataclass
class FakeIam:
    """IAM users and their keys; STS answers for active keys with the right secret."""

    #: user -> key id -> (secret, status)
    keys: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_key(self, user: str) -> tuple[str, str]:
        key = self.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    # --- the IAM client ---------------------------------------------------------------------

    def list_access_keys(self, UserName: str) -> dict[str, Any]:
        if UserName not in self.keys:
            raise _ClientError("NoSuchEntity")
        return {
            "AccessKeyMetadata": [
                {"AccessKeyId": k, "Status": status}
                for k, (_secret, status) in self.keys[UserName].items()
            ]
        }

    def create_access_key(self, UserName: str) -> dict[str, Any]:
        user = self.keys.setdefault(UserName, {})
        if len(user) >= 2:
            raise _ClientError("LimitExceeded")
        key_id = f"AKIA{next(self._ids):016d}"
        user[key_id] = (f"secret-{key_id}", "Active")
        return {"AccessKey": {"AccessKeyId": key_id, "SecretAccessKey": user[key_id][0]}}

    def update_access_key(self, UserName: str, AccessKeyId: str, Status: str) -> None:
        secret, _old = self.keys[UserName][AccessKeyId]
        self.keys[UserName][AccessKeyId] = (secret, Status)

    def delete_access_key(self, UserName: str, AccessKeyId: str) -> None:
        if AccessKeyId not in self.keys.get(UserName, {}):
            raise _ClientError("NoSuchEntity")
        del self.keys[UserName][AccessKeyId]

    # --- STS, per key pair ------------------------------------------------------------------

    def sts_for(self, key_id: str, secret: str) -> Any:
        iam = self

        class Sts:
            def get_caller_identity(self) -> dict[str, str]:
                for user, keys in iam.keys.items():
                    found = keys.get(key_id)
                    if found is not None and found == (secret, "Active"):
                        return {"Arn": f"arn:aws:iam::123456789012:user/{user}"}
                raise _ClientError("InvalidClientTokenId")

        return Sts()


def iam_backend(iam: FakeIam) -> IamAccessKeys:
    return IamAccessKeys(iam, iam.sts_for)


@dataclass
class FakeRedisServer:
    """ACL users and their passwords; the fake client speaks the commands the adapter sends."""

    users: dict[str, set[str]] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    down: bool = False
    commands: list[tuple[str, ...]] = field(default_factory=list)


class FakeRedisBackend(RedisAclPasswords):
    """The real Redis ACL backend over a fake server (no socket)."""

    def __init__(self, server: FakeRedisServer) -> None:
        super().__init__()
        self.server = server

    def _driver_errors(self) -> tuple[type[Exception], ...]:
        return (_FakeRedisError,)

    def _open(self, creds: DatabaseCredentials) -> Any:
        if self.server.down:
            raise _FakeRedisError("connection refused")
        if creds.password not in self.server.users.get(creds.username, set()):
            raise _FakeRedisError("WRONGPASS invalid username-password pair")
        return _FakeRedisClient(self.server, creds.username)

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> Any:
        from rotation_core.exceptions import (
            AuthenticationFailedError,
            DatabaseUnavailableError,
            PrivilegeError,
        )

        text = str(exc)
        if "WRONGPASS" in text:
            return AuthenticationFailedError(f"{action}: login refused")
        if "NOPERM" in text:
            return PrivilegeError(f"{action}: no permission")
        return DatabaseUnavailableError(f"{action}: unavailable")


class _FakeRedisError(Exception):
    pass


class _FakeRedisClient:
    def __init__(self, server: FakeRedisServer, user: str) -> None:
        self.server, self.user = server, user

    def execute_command(self, *args: str) -> Any:
        self.server.commands.append((self.user, *args))
        if args[:2] == ("ACL", "WHOAMI"):
            return self.user
        if args[:2] == ("ACL", "GETUSER"):
            if args[2] not in self.server.users:
                return None
            digests = [hashlib.sha256(p.encode()).hexdigest() for p in self.server.users[args[2]]]
            return {"flags": ["on"], "passwords": digests}
        if args[:2] == ("ACL", "SETUSER"):
            if self.user not in self.server.admins and self.user != args[2]:
                raise _FakeRedisError("NOPERM this user has no permissions")
            rule = args[3]
            passwords = self.server.users.setdefault(args[2], set())
            if rule.startswith(">"):
                passwords.add(rule[1:])
            elif rule.startswith("<"):
                if rule[1:] not in passwords:  # as Redis: removing a missing password is an error
                    raise _FakeRedisError("ERR Error in ACL SETUSER modifier")
                passwords.discard(rule[1:])
            return "OK"
        raise _FakeRedisError(f"unknown command {args[0]}")

    def close(self) -> None:
        return None
