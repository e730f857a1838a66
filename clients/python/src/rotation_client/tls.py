"""TLS for every connector: the server's certificate chain and host name are verified.

Trust is the CA file the application passes (``ca_file``), or, when the secret names a
``ca_bundle`` and the application passes ``ca_dir``, ``<ca_dir>/<ca_bundle>.pem``; without
either, the system trust store. A secret with ``"ssl": false`` gets a plaintext connection only
if the application says ``allow_plaintext=True``: whoever can edit a secret's value cannot turn
an application's TLS off.

SSL contexts are built once per CA file and process (loading a trust store costs tens of
milliseconds, more than a TLS handshake to a nearby server).
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass

from rotation_client.credentials import Credentials
from rotation_client.errors import InsecureConnectionError


@dataclass(frozen=True)
class TlsSettings:
    """What the application trusts.

    ca_file:
        PEM file of the CA(s) that issued the servers' certificates (e.g. AWS's RDS
        ``global-bundle.pem``). None: the system trust store.
    ca_dir:
        directory of ``<name>.pem`` bundles, for secrets that name one in ``ca_bundle``.
    allow_plaintext:
        honour ``"ssl": false`` in a secret. Default False: such a secret is refused.
    """

    ca_file: str | os.PathLike[str] | None = None
    ca_dir: str | os.PathLike[str] | None = None
    allow_plaintext: bool = False


@dataclass(frozen=True)
class TlsChoice:
    """How one connection is made: ``verify`` False means plaintext."""

    verify: bool
    ca_file: str | None

    def context(self) -> ssl.SSLContext:
        """A verifying client context (CERT_REQUIRED, check_hostname, TLS >= 1.2), shared."""
        if not self.verify:
            raise InsecureConnectionError("a plaintext connection has no TLS context")
        return client_context(self.ca_file)


def choose(creds: Credentials, settings: TlsSettings) -> TlsChoice:
    """Apply ``settings`` to a secret's ``ssl`` and ``ca_bundle`` fields."""
    if not creds.ssl:
        if not settings.allow_plaintext:
            raise InsecureConnectionError(
                "secret field 'ssl' is false (plaintext), but the application did not pass "
                "allow_plaintext=True"
            )
        return TlsChoice(verify=False, ca_file=None)
    if creds.ca_bundle is not None and settings.ca_dir is not None:
        path = os.path.join(os.fspath(settings.ca_dir), f"{creds.ca_bundle}.pem")
        if not os.path.isfile(path):
            raise InsecureConnectionError(
                "secret field 'ca_bundle' names a bundle that is not in the application's ca_dir"
            )
        return TlsChoice(verify=True, ca_file=path)
    if settings.ca_file is not None:
        path = os.fspath(settings.ca_file)
        if not os.path.isfile(path):
            raise InsecureConnectionError("ca_file does not name a readable file")
        return TlsChoice(verify=True, ca_file=path)
    return TlsChoice(verify=True, ca_file=None)


@functools.lru_cache(maxsize=32)
def client_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify the chain against ``ca_file`` (or the system store) and the host name."""
    context = ssl.create_default_context(cafile=ca_file)  # CERT_REQUIRED, check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
