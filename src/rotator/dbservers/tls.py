"""A certificate authority for the test servers, and client TLS settings that trust only it.

The CA (made with trustme) lives in memory; its certificate is written as
``<directory>/test-ca.pem``, which is what the local runtime's ``CA_BUNDLE_DIR`` points at (the
bundle name is ``test-ca``). Server certificates are issued for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_BUNDLE_NAME = "test-ca"
CA_FILE_NAME = f"{CA_BUNDLE_NAME}.pem"
SERVER_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ServerCertificate:
    """A server's certificate chain and private key, as PEM files."""

    cert_file: Path
    key_file: Path


class CertificateAuthority:
    """A CA made for one test session or server; its PEM is ``<directory>/test-ca.pem``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="rotator throwaway test CA")
        self.directory = directory
        self.ca_file = directory / CA_FILE_NAME
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def issue_server_certificate(
        self, directory: Path, hosts: Sequence[str] = SERVER_HOSTS
    ) -> ServerCertificate:
        """Write ``server.crt`` (leaf then chain) and ``server.key`` (mode 0600) into directory."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        leaf = self._ca.issue_cert(*hosts)
        cert_file, key_file = directory / "server.crt", directory / "server.key"
        cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(leaf.private_key_pem.bytes())
        return ServerCertificate(cert_file, key_file)

    @functools.cached_property
    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA and checks the host name (made once)."""
        return client_context(self.ca_file)


def client_context(ca_file: Path) -> ssl.SSLContext:
    """Verify the server's certificate against ca_file alone, and its host name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(ca_file))
    return context
