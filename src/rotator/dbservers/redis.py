"""Throwaway Redis: ACL users only (``default`` is off), TLS on its only port, nothing on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from rotator.dbservers.exceptions import DatabaseServerError
from rotator.dbservers.process import HOST, which
from rotator.dbservers.server import CONNECT_TIMEOUT, DatabaseServer
from rotator.dbservers.tls import CertificateAuthority


def _binary() -> Path | None:
    return which("redis-server")


def redis_available() -> bool:
    """True if redis-server was found."""
    return _binary() is not None


class RedisServer(DatabaseServer):
    """Redis with ACL user ``admin``; ``default`` is disabled."""

    engine = "redis"
    admin_user = "admin"
    _binary: Path

    def _prepare(self) -> None:
        binary = _binary()
        if binary is None:
            raise DatabaseServerError("redis-server was not found")
        self._binary = binary
        self.data_dir.mkdir(mode=0o700)

    def _argv(self) -> list[str]:
        # Only the SHA-256 of the admin password is written to disk.
        digest = hashlib.sha256(self.admin_password.encode()).hexdigest()
        if self._certificate is not None and self.ca_file is not None:
            listen = [
                "port 0",  # no plaintext port at all
                f"tls-port {self.port}",
                f'tls-cert-file "{self._certificate.cert_file}"',
                f'tls-key-file "{self._certificate.key_file}"',
                f'tls-ca-cert-file "{self.ca_file}"',
                "tls-auth-clients no",  # clients prove themselves with passwords, not certificates
                'tls-protocols "TLSv1.2 TLSv1.3"',
            ]
        else:
            listen = [f"port {self.port}"]
        lines = [
            *listen,
            f"bind {HOST}",
            "protected-mode yes",
            "daemonize no",
            'logfile ""',
            f'dir "{self.data_dir}"',
            'save ""',
            "appendonly no",
            "user default off resetpass nocommands",
            f"user {self.admin_user} on #{digest} ~* &* +@all",
        ]
        config = self.work_dir / "redis.conf"
        config.unlink(missing_ok=True)  # a port retry writes it again
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return [str(self._binary), str(config)]

    # -- logins ------------------------------------------------------------------------------

    def connect(self, username: str, password: str, dbname: str | None = None) -> Any:
        """redis-py client (decoded responses), authenticated now rather than lazily."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        tls: dict[str, Any] = {}
        if self.ca_file is not None:
            tls = {
                "ssl": True,
                "ssl_ca_certs": str(self.ca_file),
                "ssl_cert_reqs": "required",
                "ssl_check_hostname": True,
            }
        client = redis.Redis(
            host=self.host,
            port=self.port,
            username=username,
            password=password,
            db=int(dbname) if dbname else 0,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=60,
            decode_responses=True,
            # redis-py retries ConnectionError (incl. AuthenticationError) with backoff.
            retry=Retry(NoBackoff(), 0),
            **tls,
        )
        client.ping()
        return client

    def _login_verdict(self, exc: Exception) -> bool | None:
        import redis

        if isinstance(exc, redis.exceptions.AuthenticationError):
            return False
        if isinstance(exc, redis.exceptions.NoPermissionError):
            return True  # authenticated, merely not allowed to PING
        if isinstance(exc, redis.exceptions.ResponseError) and (
            "WRONGPASS" in str(exc) or "NOAUTH" in str(exc)
        ):
            return False
        return None

    def create_login(
        self, username: str, password: str, *, superuser: bool = False, host: str = "%"
    ) -> None:
        """An ACL user with every command (``superuser`` changes nothing on Redis)."""
        client = self.admin_connection()
        try:
            if client.execute_command("ACL", "GETUSER", username) is not None:
                raise ValueError("a Redis ACL user with that name already exists")
            client.execute_command(
                "ACL", "SETUSER", username, "reset", "on", f">{password}", "~*", "&*", "+@all"
            )
        finally:
            client.close()

    def drop_login(self, username: str, host: str = "%") -> None:
        client = self.admin_connection()
        try:
            client.execute_command("ACL", "DELUSER", username)
        finally:
            client.close()


def start_redis(
    base_dir: Path | None = None, *, ca: CertificateAuthority | None = None, tls: bool = True
) -> RedisServer:
    """Start a throwaway Redis with ACLs: ``default`` disabled, ``admin`` with a password.

    With TLS (the default) its only port speaks TLS, with a certificate from ``ca`` or from a
    CA of its own when none is given.
    """
    return RedisServer.start(base_dir, ca=ca, tls=tls)
