"""Throwaway PostgreSQL, MariaDB and Redis servers that really enforce passwords, over TLS.

Each server runs from the installed binaries in its own temporary directory, listens on a free
TCP port on 127.0.0.1 only, speaks TLS with a certificate for 127.0.0.1 and localhost issued by
a CA the caller passes (``rotator.dbservers.tls.CertificateAuthority``) or one of its own, and is
stopped (directory removed) by ``stop()``, at interpreter exit, or by a guardian process if the
owner dies without cleaning up. One module per engine; ``process`` holds what they share.
"""

from rotator.dbservers.exceptions import DatabaseServerError
from rotator.dbservers.mariadb import mariadb_available, start_mariadb
from rotator.dbservers.postgres import postgres_available, start_postgres
from rotator.dbservers.redis import redis_available, start_redis
from rotator.dbservers.server import DatabaseServer
from rotator.dbservers.tls import CertificateAuthority

__all__ = [
    "CertificateAuthority",
    "DatabaseServer",
    "DatabaseServerError",
    "mariadb_available",
    "postgres_available",
    "redis_available",
    "start_mariadb",
    "start_postgres",
    "start_redis",
]
