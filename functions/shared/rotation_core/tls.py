"""Whom a worker may send a credential to: TLS that proves the server's identity, by default.

Every connection a worker opens (as the application or as the master) verifies the server's
certificate chain and host name. Trust is the system store plus, when one is named, a CA bundle
shipped in the layer: ``ca_bundles/<name>.pem`` next to this module (deployers drop AWS's RDS
global bundle there, for example). The deployment parameter ``CaBundle`` names the default
bundle; a secret's ``ca_bundle`` key overrides it for that secret.

Plaintext is allowed only where both sides say so: the deployment (parameter
``AllowPlaintext=true``) and the secret (``"ssl": false``). Anything else that asks for it is
refused before a byte is sent, with an error that names the field.

SSL contexts and combined CA files are built once per process and bundle: a login must not pay
for loading the trust store.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from rotation_core import config
from rotation_core.exceptions import InvalidConfigurationError, InvalidSecretError

BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: where bundles live in the layer (``/opt/python/rotation_core/ca_bundles`` on Lambda)
PACKAGED_BUNDLES = Path(__file__).resolve().parent / "ca_bundles"
#: system trust files, first one found wins (Debian/Ubuntu, Amazon Linux/RHEL, OpenSSL default)
SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/usr/lib/ssl/cert.pem",
)


@dataclass(frozen=True)
class TlsSettings:
    """The deployment's TLS policy (template parameters, read from the environment)."""

    allow_plaintext: bool = False
    default_bundle: str | None = None
    bundle_dir: Path = PACKAGED_BUNDLES

    @classmethod
    def from_environment(cls) -> TlsSettings:
        allow = (config.setting("ALLOW_PLAINTEXT") or "false").strip().lower()
        if allow not in ("true", "false"):
            raise InvalidConfigurationError("setting 'AllowPlaintext' must be true or false")
        bundle = (config.setting("CA_BUNDLE") or "").strip() or None
        if bundle is not None and not BUNDLE_NAME.fullmatch(bundle):
            raise InvalidConfigurationError(
                "setting 'CaBundle' must be a bundle name (letters, digits, '.', '_', '-')"
            )
        directory = config.setting("CA_BUNDLE_DIR")
        return cls(
            allow_plaintext=allow == "true",
            default_bundle=bundle,
            bundle_dir=Path(directory) if directory else PACKAGED_BUNDLES,
        )

    def choose(self, ssl_field: bool | None, bundle_field: str | None) -> TlsChoice:
        """How to reach a server, given a secret's ``ssl`` and ``ca_bundle`` fields.

        Raises before anything is sent when the secret asks for what the deployment forbids.
        """
        if ssl_field is False:
            if not self.allow_plaintext:
                raise InvalidConfigurationError(
                    "secret field 'ssl' is false (plaintext), but this deployment requires TLS; "
                    "set the stack parameter AllowPlaintext=true only for servers that cannot "
                    "speak TLS"
                )
            return TlsChoice(verify=False, ca_file=None, bundle=None)
        if bundle_field is not None:
            return TlsChoice(
                True, self._bundle_file(bundle_field, "secret field 'ca_bundle'"), bundle_field
            )
        if self.default_bundle is not None:
            return TlsChoice(
                True,
                self._bundle_file(self.default_bundle, "setting 'CaBundle'"),
                self.default_bundle,
            )
        return TlsChoice(verify=True, ca_file=None, bundle=None)

    def _bundle_file(self, name: str, where: str) -> str:
        if not BUNDLE_NAME.fullmatch(name):
            raise InvalidSecretError(
                f"{where} must be a bundle name (letters, digits, '.', '_', '-')"
            )
        path = self.bundle_dir / f"{name}.pem"
        if not path.is_file():
            raise InvalidConfigurationError(
                f"{where} names CA bundle {name!r}, which is not in the layer's ca_bundles "
                "directory"
            )
        return str(path)


@dataclass(frozen=True)
class TlsChoice:
    """The TLS a connection uses: verified (system store + optional bundle) or none."""

    verify: bool
    ca_file: str | None
    bundle: str | None

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying context (certificate chain and host name), shared per bundle."""
        if not self.verify:
            raise InvalidConfigurationError("plaintext connections have no TLS context")
        return _context(self.ca_file)

    def combined_ca_file(self) -> str:
        """One PEM file with the system store and the named bundle (for libpq's sslrootcert,
        which takes a single file)."""
        if not self.verify:
            raise InvalidConfigurationError("plaintext connections have no CA file")
        return _combined_file(self.ca_file)


#: settings every verifying context has; part of the cache key, so a change of them cannot be
#: served a context built with the old ones
_CONTEXT_SETTINGS = (ssl.TLSVersion.TLSv1_2, True, ssl.CERT_REQUIRED)
_contexts: dict[tuple[str | None, tuple[object, ...]], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _context(ca_file: str | None) -> ssl.SSLContext:
    """The process's one verifying context for ``ca_file`` (and :data:`_CONTEXT_SETTINGS`).

    Built under a lock, so that threads logging in at the same time share one context: loading
    the system store costs a login tens of milliseconds (issue 11). An ``SSLContext`` may be
    used by many connections and threads at once once configured."""
    key = (ca_file, _CONTEXT_SETTINGS)
    context = _contexts.get(key)
    if context is not None:
        return context
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _build_context(ca_file)
            _contexts[key] = context
    return context


def _build_context(ca_file: str | None) -> ssl.SSLContext:
    minimum, check_hostname, verify_mode = _CONTEXT_SETTINGS
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # system store, host check
    context.minimum_version = minimum
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    # create_default_context already sets these; stated so a reader need not know that
    context.check_hostname = check_hostname
    context.verify_mode = verify_mode
    return context


@functools.cache
def _combined_file(ca_file: str | None) -> str:
    parts: list[bytes] = []
    system = next((p for p in SYSTEM_CA_FILES if os.path.isfile(p)), None)
    if system is not None:
        parts.append(Path(system).read_bytes())
    if ca_file is not None:
        parts.append(Path(ca_file).read_bytes())
    if not parts:
        raise InvalidConfigurationError(
            "no CA certificates: the system store is empty and no CA bundle is named"
        )
    content = b"\n".join(parts)
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"rotation-ca-{digest}.pem"
    if not path.exists():
        # written once per process and bundle; a unique temp name, then an atomic rename
        fd, tmp = tempfile.mkstemp(prefix="rotation-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    return str(path)
