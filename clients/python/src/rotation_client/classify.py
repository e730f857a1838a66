"""Which errors mean "the password (or key) you used is not valid any more".

Only those trigger a refresh and a retry. Everything else (the network, TLS, SQL, permissions,
locked accounts, misconfigured servers) is re-raised at once, unchanged: a rotation is never
the explanation for it, and retrying it would only hide it.

No driver is imported here: errors are recognised by the module their class comes from and by
the codes the drivers expose.

=============  ==============================================================================
driver         authentication failure
=============  ==============================================================================
PyMySQL        ``OperationalError`` with code 1045 (``ER_ACCESS_DENIED_ERROR``), also through
(mysqlclient,  mysqlclient, mysql-connector, aiomysql and asyncmy. Not 1044 (no access to the
connector)     database), 1142 (table), 1130 (host not allowed), 3118 (account locked).
redis-py       ``AuthenticationError``, and replies starting ``WRONGPASS`` or ``NOAUTH``. Not
               "AUTH called without any password configured" (a server without ACL users: a
               configuration error, not a rotation).
psycopg2,      SQLSTATE 28P01 (``invalid_password``) when the driver exposes it; a failed
psycopg 3      connection carries no SQLSTATE in psycopg2 or psycopg 3, so the server's
               message ``password authentication failed for user`` is matched. A server whose
               ``lc_messages`` is not English sends a translated message: pass its wording in
               ``postgres_messages`` or set ``lc_messages`` to ``C``/``en_US`` on the server.
               Not 28000 (no pg_hba.conf entry), not 42501 (insufficient privilege).
botocore       ``ClientError`` with code ``InvalidClientTokenId``, ``UnrecognizedClientException``,
(IAM keys)     ``SignatureDoesNotMatch``, ``InvalidAccessKeyId`` or ``AuthFailure``. Not
               ``AccessDenied`` (a permission).
=============  ==============================================================================

SQLAlchemy wraps a driver's error in ``sqlalchemy.exc.DBAPIError``; its ``orig`` is examined.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

Classifier = Callable[[BaseException], bool]

MYSQL_MODULES = ("pymysql", "MySQLdb", "mysql.connector", "aiomysql", "asyncmy")
MYSQL_ACCESS_DENIED = 1045
POSTGRES_MODULES = ("psycopg2", "psycopg", "pg8000", "asyncpg")
POSTGRES_INVALID_PASSWORD = "28P01"  # noqa: S105 - a SQLSTATE, not a password
#: PostgreSQL's own message (src/backend/libpq/auth.c, auth_failed()) in English
POSTGRES_MESSAGES = ("password authentication failed for user",)
REDIS_MODULES = ("redis", "valkey")
REDIS_PREFIXES = ("WRONGPASS", "NOAUTH")
#: AuthenticationError that redis-py raises for a server *without* passwords: configuration
REDIS_NOT_ROTATION = ("without any password configured", "no password is set")
AWS_AUTH_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AuthFailure",
    }
)


def _from(exc: BaseException, modules: tuple[str, ...]) -> bool:
    """Whether exc's class (or a base class) is defined in one of ``modules`` (or below)."""
    for klass in type(exc).__mro__:
        module = klass.__module__ or ""
        if any(module == m or module.startswith(m + ".") for m in modules):
            return True
    return False


class AuthFailureClassifier:
    """Callable: ``classifier(exc)`` is True for an authentication failure.

    ``postgres_messages``: extra substrings that mean "password authentication failed" on a
    PostgreSQL server with a translated ``lc_messages`` (compared case-insensitively).
    """

    def __init__(self, postgres_messages: Iterable[str] = ()) -> None:
        phrases = [*POSTGRES_MESSAGES, *postgres_messages]
        self._postgres = re.compile("|".join(re.escape(p) for p in phrases), re.IGNORECASE)

    def __call__(self, exc: BaseException) -> bool:
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if self._one(current):
                return True
            # SQLAlchemy's DBAPIError keeps the driver's error in .orig
            orig = getattr(current, "orig", None)
            current = orig if isinstance(orig, BaseException) else None
        return False

    def _one(self, exc: BaseException) -> bool:
        if _from(exc, MYSQL_MODULES):
            return _mysql_code(exc) == MYSQL_ACCESS_DENIED
        if _from(exc, REDIS_MODULES):
            return _redis(exc)
        if _from(exc, POSTGRES_MODULES):
            return self._postgres_failed(exc)
        if _from(exc, ("botocore",)):
            return _aws_code(exc) in AWS_AUTH_CODES
        return False

    def _postgres_failed(self, exc: BaseException) -> bool:
        code = _postgres_sqlstate(exc)
        if code is not None:
            return bool(code == POSTGRES_INVALID_PASSWORD)
        return bool(self._postgres.search(str(exc)))


def _mysql_code(exc: BaseException) -> int | None:
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and not isinstance(errno, bool):
        return errno
    if exc.args and isinstance(exc.args[0], int) and not isinstance(exc.args[0], bool):
        return exc.args[0]
    return None


def _redis(exc: BaseException) -> bool:
    text = str(exc)
    names = {klass.__name__ for klass in type(exc).__mro__}
    if "AuthenticationError" in names:
        return not any(marker in text for marker in REDIS_NOT_ROTATION)
    return text.lstrip().upper().startswith(REDIS_PREFIXES)


def _postgres_sqlstate(exc: BaseException) -> str | None:
    for attribute in ("sqlstate", "pgcode"):  # psycopg 3 / asyncpg, psycopg2
        value = getattr(exc, attribute, None)
        if isinstance(value, str) and value:
            return value
    if exc.args and isinstance(exc.args[0], dict):  # pg8000: the server's error fields
        value = exc.args[0].get("C")
        if isinstance(value, str) and value:
            return value
    return None


def _aws_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


#: the default classifier (English PostgreSQL messages)
is_authentication_failure: Classifier = AuthFailureClassifier()
