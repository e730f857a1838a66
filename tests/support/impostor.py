"""Impostor database servers: they try every trick to get a client to send its password.

An impostor listens on 127.0.0.1 and speaks just enough PostgreSQL, MySQL/MariaDB or Redis to
make a client authenticate, then records what it was sent and refuses the login. It comes in
two kinds:

- ``mode="plaintext"``: no TLS at all. PostgreSQL answers SSLRequest with ``N``; MySQL's
  handshake lacks the SSL capability; Redis takes AUTH and HELLO in the clear.
- TLS with a certificate a careful client must refuse: ``"tls-untrusted"`` (issued by a CA of
  its own, which nobody trusts) or ``"tls-wrong-host"`` (issued by the CA the client trusts,
  given as ``ca=``, but for ``db.example.invalid`` instead of 127.0.0.1). ``"tls-valid"``
  (the trusted CA, the right names) exists only as the control that proves the TLS path can
  catch a leak at all.

The ``lure`` picks the authentication it asks for, the most revealing by default:

- postgres: ``cleartext`` (AuthenticationCleartextPassword), ``md5``, ``scram`` (SCRAM-SHA-256);
- mysql: ``clear_password`` (an auth switch to mysql_clear_password), ``dialog`` (an auth
  switch to the PAM dialog plugin, prompting ``Password:``), ``native`` (only the handshake's
  mysql_native_password scramble), ``caching_sha2`` (caching_sha2_password full
  authentication, handing the client an RSA key of the impostor's own);
- redis: ``auth`` (AUTH and HELLO ... AUTH answered with OK).

``received_bytes`` is every byte a client sent (decrypted once TLS is up). ``saw(secret)``
says whether the password reached the impostor in any form the protocol can carry it: its
bytes anywhere, or an authentication answer that only this password produces (an MD5 digest,
a SCRAM proof, a MySQL scramble, an RSA-encrypted password, which the impostor decrypts).
``auth_responses`` lists every answer a client gave to an authentication challenge, so a test
can assert that a careful client gave none, i.e. aborted before authenticating at all::

    with impostor("postgres", mode="plaintext") as imp:
        connect_somehow(host=imp.host, port=imp.port, password=secret)
    assert not imp.saw(secret)
    assert imp.auth_responses == []
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import socket
import ssl
import string
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from rotator.dbservers.tls import SERVER_HOSTS, CertificateAuthority

Protocol = Literal["postgres", "mysql", "redis"]
Mode = Literal["plaintext", "tls-untrusted", "tls-wrong-host", "tls-valid"]

MODES: tuple[Mode, ...] = ("plaintext", "tls-untrusted", "tls-wrong-host", "tls-valid")
#: the modes a careful client must refuse (tls-valid is only a control)
HOSTILE_MODES: tuple[Mode, ...] = ("plaintext", "tls-untrusted", "tls-wrong-host")
LURES: dict[Protocol, tuple[str, ...]] = {
    "postgres": ("cleartext", "md5", "scram"),
    "mysql": ("clear_password", "dialog", "native", "caching_sha2"),
    "redis": ("auth",),
}
WRONG_HOST = "db.example.invalid"
HOST = "127.0.0.1"
IO_TIMEOUT = 5.0


class _ClientGone(Exception):
    """The client closed the connection (or went silent)."""


# --- what a client answered to an authentication challenge -----------------------------------


@dataclass(frozen=True)
class AuthResponse:
    """One answer a client gave to an authentication challenge.

    ``kind`` names the exchange: postgres ``cleartext``/``md5``/``scram``; mysql
    ``mysql_native``/``caching_sha2_fast`` (the handshake's scramble), ``clear_password``,
    ``dialog``, ``caching_sha2_rsa`` (decrypted), ``caching_sha2_plain`` (full authentication
    over TLS); redis ``auth``/``hello``. ``data`` is what the client sent (the password itself
    for the cleartext kinds), ``context`` what is needed to check a password against it.
    """

    kind: str
    data: bytes
    context: dict[str, Any] = field(default_factory=dict)

    def reveals(self, secret: str) -> bool:
        """True if this answer is what a client holding ``secret`` would send."""
        check = _REVEALS.get(self.kind, _reveals_plain)
        return any(check(self, candidate) for candidate in _encodings(secret))


def _encodings(secret: str) -> list[bytes]:
    forms = [secret.encode("utf-8")]
    with contextlib.suppress(UnicodeEncodeError):
        forms.append(secret.encode("latin-1"))  # pymysql's encoding for passwords
    return list(dict.fromkeys(forms))


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _reveals_plain(response: AuthResponse, password: bytes) -> bool:
    return response.data == password


def _reveals_md5(response: AuthResponse, password: bytes) -> bool:
    user, salt = response.context["user"].encode(), response.context["salt"]
    inner = hashlib.md5(password + user).hexdigest().encode()  # noqa: S324 - the protocol's
    return response.data == b"md5" + hashlib.md5(inner + salt).hexdigest().encode()  # noqa: S324


def _reveals_scram(response: AuthResponse, password: bytes) -> bool:
    ctx = response.context
    salted = hashlib.pbkdf2_hmac("sha256", password, ctx["salt"], ctx["iterations"])
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    signature = hmac.digest(stored_key, ctx["auth_message"], "sha256")
    return hmac.compare_digest(response.data, _xor(client_key, signature))


def _reveals_mysql_native(response: AuthResponse, password: bytes) -> bool:
    stage1 = hashlib.sha1(password).digest()  # noqa: S324 - the protocol's
    stage2 = hashlib.sha1(stage1).digest()  # noqa: S324
    mask = hashlib.sha1(response.context["salt"] + stage2).digest()  # noqa: S324
    return response.data == _xor(mask, stage1)


def _reveals_caching_sha2_fast(response: AuthResponse, password: bytes) -> bool:
    p1 = hashlib.sha256(password).digest()
    p2 = hashlib.sha256(p1).digest()
    p3 = hashlib.sha256(p2 + response.context["salt"]).digest()
    return response.data == _xor(p1, p3)


_REVEALS: dict[str, Callable[[AuthResponse, bytes], bool]] = {
    "md5": _reveals_md5,
    "scram": _reveals_scram,
    "mysql_native": _reveals_mysql_native,
    "caching_sha2_fast": _reveals_caching_sha2_fast,
}


# --- one client connection -------------------------------------------------------------------


@dataclass
class Session:
    """What happened on one client connection."""

    received: bytearray = field(default_factory=bytearray)
    events: list[str] = field(default_factory=list)
    auth_responses: list[AuthResponse] = field(default_factory=list)
    tls: bool = False  # a TLS handshake completed


class _Wire:
    """A client socket that records every byte it reads (after decryption, once TLS is up)."""

    def __init__(self, sock: socket.socket, session: Session, lock: threading.Lock) -> None:
        self.sock = sock
        self.session = session
        self._lock = lock

    def event(self, text: str) -> None:
        with self._lock:
            self.session.events.append(text)

    def answered(self, response: AuthResponse) -> None:
        with self._lock:
            self.session.auth_responses.append(response)
            self.session.events.append(f"auth response: {response.kind}")

    def read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._recv(size - len(data))
            data += chunk
        return bytes(data)

    def read_line(self) -> bytes:
        """Up to and including CRLF."""
        data = bytearray()
        while not data.endswith(b"\r\n"):
            data += self._recv(1)
            if len(data) > 1 << 16:
                raise _ClientGone("line too long")
        return bytes(data)

    def peek(self) -> bytes:
        """The next byte, left unread ('' if the client closed)."""
        try:
            return self.sock.recv(1, socket.MSG_PEEK)
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def start_tls(self, context: ssl.SSLContext) -> bool:
        """Upgrade to TLS; False (and the reason recorded) if the client refused the handshake."""
        try:
            self.sock = context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.event(f"TLS refused by the client: {exc}")
            return False
        self.event("TLS established")
        with self._lock:
            self.session.tls = True
        return True

    def _recv(self, size: int) -> bytes:
        try:
            chunk = self.sock.recv(size)
        except (TimeoutError, ssl.SSLError, OSError) as exc:
            raise _ClientGone(str(exc)) from exc
        if not chunk:
            raise _ClientGone("closed")
        with self._lock:
            self.session.received += chunk
        return chunk


def _looks_like_tls(first: bytes) -> bool:
    return first == b"\x16"  # a TLS handshake record: the client wanted TLS from the start


# --- PostgreSQL -------------------------------------------------------------------------------

_PG_SSL_REQUEST = 80877103
_PG_GSSENC_REQUEST = 80877104
_PG_CANCEL_REQUEST = 80877102


def _pg_auth_request(code: int, payload: bytes = b"") -> bytes:
    return b"R" + struct.pack("!II", 8 + len(payload), code) + payload


def _pg_read_message(wire: _Wire) -> tuple[bytes, bytes]:
    kind = wire.read(1)
    (length,) = struct.unpack("!I", wire.read(4))
    return kind, wire.read(length - 4)


def _pg_error(message: str) -> bytes:
    fields = b"SFATAL\0VFATAL\0C28P01\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", 4 + len(fields)) + fields


def _serve_postgres(wire: _Wire, imp: Impostor) -> None:
    if _looks_like_tls(wire.peek()):
        wire.event("client opened with a TLS handshake (direct SSL)")
        if imp.tls_context is None or not wire.start_tls(imp.tls_context):
            return
    while True:
        (length,) = struct.unpack("!I", wire.read(4))
        body = wire.read(length - 4)
        (code,) = struct.unpack("!I", body[:4])
        if code == _PG_SSL_REQUEST:
            wire.event("SSLRequest")
            if imp.tls_context is None:
                wire.send(b"N")
                wire.event("answered N: no TLS here")
                continue
            wire.send(b"S")
            if not wire.start_tls(imp.tls_context):
                return
            continue
        if code == _PG_GSSENC_REQUEST:
            wire.send(b"N")
            continue
        if code == _PG_CANCEL_REQUEST:
            return
        break
    words = body[4:].split(b"\0")
    params = dict(zip(words[0::2], words[1::2], strict=False))
    user = params.get(b"user", b"").decode("utf-8", "replace")
    wire.event(f"StartupMessage user={user}")
    if imp.lure == "cleartext":
        wire.send(_pg_auth_request(3))
        wire.event("asked for the cleartext password")
        kind, payload = _pg_read_message(wire)
        if kind == b"p":
            wire.answered(AuthResponse("cleartext", payload.rstrip(b"\0")))
    elif imp.lure == "md5":
        salt = os.urandom(4)
        wire.send(_pg_auth_request(5, salt))
        wire.event("asked for an MD5 password")
        kind, payload = _pg_read_message(wire)
        if kind == b"p":
            wire.answered(AuthResponse("md5", payload.rstrip(b"\0"), {"user": user, "salt": salt}))
    else:
        _pg_scram(wire)
    wire.send(_pg_error(f'password authentication failed for user "{user}"'))


def _pg_scram(wire: _Wire) -> None:
    wire.send(_pg_auth_request(10, b"SCRAM-SHA-256\0\0"))
    wire.event("asked for SCRAM-SHA-256")
    kind, payload = _pg_read_message(wire)
    if kind != b"p":
        return
    _mechanism, _, rest = payload.partition(b"\0")
    (size,) = struct.unpack("!i", rest[:4])
    client_first = rest[4 : 4 + size].decode()
    _gs2_flag, _authzid, client_first_bare = client_first.split(",", 2)
    client_nonce = dict(item.split("=", 1) for item in client_first_bare.split(","))["r"]
    salt, iterations = os.urandom(16), 4096
    nonce = client_nonce + base64.b64encode(os.urandom(18)).decode()
    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={iterations}"
    wire.send(_pg_auth_request(11, server_first.encode()))
    kind, payload = _pg_read_message(wire)
    if kind != b"p":
        return
    client_final = payload.decode()
    without_proof, _, proof = client_final.rpartition(",p=")
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    context = {"salt": salt, "iterations": iterations, "auth_message": auth_message}
    wire.answered(AuthResponse("scram", base64.b64decode(proof), context))


# --- MySQL / MariaDB ------------------------------------------------------------------------

_CLIENT_LONG_PASSWORD = 1
_CLIENT_FOUND_ROWS = 1 << 1
_CLIENT_LONG_FLAG = 1 << 2
_CLIENT_CONNECT_WITH_DB = 1 << 3
_CLIENT_PROTOCOL_41 = 1 << 9
_CLIENT_SSL = 1 << 11
_CLIENT_TRANSACTIONS = 1 << 13
_CLIENT_SECURE_CONNECTION = 1 << 15
_CLIENT_MULTI_RESULTS = 1 << 17
_CLIENT_PLUGIN_AUTH = 1 << 19
_CLIENT_CONNECT_ATTRS = 1 << 20
_CLIENT_PLUGIN_AUTH_LENENC = 1 << 21
_MYSQL_CAPABILITIES = (
    _CLIENT_LONG_PASSWORD
    | _CLIENT_FOUND_ROWS
    | _CLIENT_LONG_FLAG
    | _CLIENT_CONNECT_WITH_DB
    | _CLIENT_PROTOCOL_41
    | _CLIENT_TRANSACTIONS
    | _CLIENT_SECURE_CONNECTION
    | _CLIENT_MULTI_RESULTS
    | _CLIENT_PLUGIN_AUTH
    | _CLIENT_CONNECT_ATTRS
    | _CLIENT_PLUGIN_AUTH_LENENC
)


def _mysql_packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def _mysql_read(wire: _Wire) -> tuple[int, bytes]:
    header = wire.read(4)
    return header[3], wire.read(int.from_bytes(header[:3], "little"))


def _mysql_lenenc(data: bytes, at: int) -> tuple[int, int]:
    first = data[at]
    if first < 0xFB:
        return first, at + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[at + 1 : at + 1 + width], "little"), at + 1 + width


@functools.cache
def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rsa_public_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _rsa_decrypt(ciphertext: bytes, salt: bytes) -> bytes | None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        message = _rsa_key().decrypt(
            ciphertext,
            padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
        )
    except ValueError:
        return None
    clear = bytes(byte ^ salt[i % len(salt)] for i, byte in enumerate(message))
    return clear.rstrip(b"\0")


def _serve_mysql(wire: _Wire, imp: Impostor) -> None:
    salt = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(20))
    scramble = salt.encode()
    plugin = b"caching_sha2_password" if imp.lure == "caching_sha2" else b"mysql_native_password"
    capabilities = _MYSQL_CAPABILITIES | (_CLIENT_SSL if imp.tls_context is not None else 0)
    handshake = (
        b"\x0a8.0.36-impostor\0"
        + struct.pack("<I", 7)
        + scramble[:8]
        + b"\0"
        + struct.pack("<H", capabilities & 0xFFFF)
        + bytes([45])  # utf8mb4_general_ci
        + struct.pack("<H", 0x0002)  # autocommit
        + struct.pack("<H", capabilities >> 16)
        + bytes([21])
        + b"\0" * 10
        + scramble[8:]
        + b"\0"
        + plugin
        + b"\0"
    )
    wire.send(_mysql_packet(0, handshake))
    wire.event("HandshakeV10" + (" with SSL" if imp.tls_context is not None else " without SSL"))
    seq, payload = _mysql_read(wire)
    client_caps = struct.unpack("<I", payload[:4])[0]
    if client_caps & _CLIENT_SSL and len(payload) == 32:
        wire.event("SSLRequest")
        if imp.tls_context is None or not wire.start_tls(imp.tls_context):
            return
        seq, payload = _mysql_read(wire)
    at = 32
    user, _, _ = payload[at:].partition(b"\0")
    at += len(user) + 1
    if client_caps & _CLIENT_PLUGIN_AUTH_LENENC:
        size, at = _mysql_lenenc(payload, at)
    else:
        size, at = payload[at], at + 1
    answer = payload[at : at + size]
    wire.event(f"HandshakeResponse41 user={user.decode('utf-8', 'replace')}")
    if answer:
        kind = "caching_sha2_fast" if imp.lure == "caching_sha2" else "mysql_native"
        wire.answered(AuthResponse(kind, answer, {"salt": scramble}))
    seq = _mysql_lure(wire, imp.lure, seq, scramble)
    error = b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied"
    wire.send(_mysql_packet(seq + 1, error))


def _mysql_lure(wire: _Wire, lure: str, seq: int, scramble: bytes) -> int:
    """Ask for the password the lure's way; returns the client's last sequence number."""
    if lure == "native":
        return seq
    if lure in ("clear_password", "dialog"):
        switch = {
            "clear_password": b"\xfemysql_clear_password\0",
            # flag 0x04: a password prompt; 0x01: the last question
            "dialog": b"\xfedialog\0\x05Password: ",
        }[lure]
        wire.send(_mysql_packet(seq + 1, switch))
        wire.event(f"auth switch to {lure}")
        seq, answer = _mysql_read(wire)
        wire.answered(AuthResponse(lure, answer.rstrip(b"\0")))
        return seq
    wire.send(_mysql_packet(seq + 1, b"\x01\x04"))  # caching_sha2: perform full authentication
    wire.event("asked for caching_sha2_password full authentication")
    seq, answer = _mysql_read(wire)
    if answer == b"\x02":  # no TLS: the client asks for the server's RSA key
        wire.send(_mysql_packet(seq + 1, b"\x01" + _rsa_public_pem()))
        wire.event("sent the impostor's own RSA public key")
        seq, answer = _mysql_read(wire)
        clear = _rsa_decrypt(answer, scramble)
        wire.answered(AuthResponse("caching_sha2_rsa", clear if clear is not None else answer))
    else:
        wire.answered(AuthResponse("caching_sha2_plain", answer.rstrip(b"\0")))
    return seq


# --- Redis ------------------------------------------------------------------------------------


def _resp_read_command(wire: _Wire) -> list[bytes]:
    line = wire.read_line()
    if not line.startswith(b"*"):
        return line.strip().split()  # an inline command
    args = []
    for _ in range(int(line[1:-2])):
        header = wire.read_line()
        size = int(header[1:-2])
        args.append(wire.read(size + 2)[:-2])
    return args


def _resp_bulk(value: str) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value.encode())


def _hello_reply(protocol: int) -> bytes:
    pairs = [
        ("server", _resp_bulk("redis")),
        ("version", _resp_bulk("7.0.15")),
        ("proto", b":%d\r\n" % protocol),
        ("id", b":7\r\n"),
        ("mode", _resp_bulk("standalone")),
        ("role", _resp_bulk("master")),
        ("modules", b"*0\r\n"),
    ]
    head = b"%%%d\r\n" % len(pairs) if protocol == 3 else b"*%d\r\n" % (2 * len(pairs))
    return head + b"".join(_resp_bulk(key) + value for key, value in pairs)


def _serve_redis(wire: _Wire, imp: Impostor) -> None:
    # Redis has no negotiation: a TLS client opens with a handshake, a plaintext one with a
    # command. Serve each what it asked for, so a plaintext client never goes unrecorded.
    if _looks_like_tls(wire.peek()):
        if imp.tls_context is None:
            wire.event("client opened with a TLS handshake; no TLS here")
            return
        if not wire.start_tls(imp.tls_context):
            return
    while True:
        args = _resp_read_command(wire)
        if not args:
            continue
        name = args[0].upper()
        wire.event(f"command {name.decode('ascii', 'replace')}")
        if name == b"AUTH":
            user = args[1] if len(args) > 2 else b"default"
            wire.answered(AuthResponse("auth", args[-1], {"user": user.decode(errors="replace")}))
            wire.send(b"+OK\r\n")
        elif name == b"HELLO":
            upper = [arg.upper() for arg in args]
            if b"AUTH" in upper:
                at = upper.index(b"AUTH")
                wire.answered(AuthResponse("hello", args[at + 2], {"user": args[at + 1].decode()}))
            wire.send(_hello_reply(int(args[1]) if len(args) > 1 else 2))
        elif name == b"PING":
            wire.send(b"+PONG\r\n")
        else:
            wire.send(b"+OK\r\n")


_SERVE: dict[Protocol, Callable[[_Wire, Impostor], None]] = {
    "postgres": _serve_postgres,
    "mysql": _serve_mysql,
    "redis": _serve_redis,
}


# --- the impostor -----------------------------------------------------------------------------


class Impostor:
    """A loopback server that lures clients into sending passwords; use as a context manager."""

    def __init__(
        self,
        protocol: Protocol,
        mode: Mode = "plaintext",
        *,
        lure: str | None = None,
        ca: CertificateAuthority | None = None,
    ) -> None:
        if protocol not in LURES:
            raise ValueError(f"protocol must be one of {sorted(LURES)}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.protocol: Protocol = protocol
        self.mode: Mode = mode
        self.lure = lure or LURES[protocol][0]
        if self.lure not in LURES[protocol]:
            raise ValueError(f"lure for {protocol} must be one of {LURES[protocol]}")
        if mode in ("tls-wrong-host", "tls-valid") and ca is None:
            raise ValueError(f"mode {mode!r} needs ca=, the CA the client trusts")
        self.host = HOST
        self._trusted_ca = ca
        self._dir = tempfile.TemporaryDirectory(prefix=f"impostor-{protocol}-")
        self.tls_context = self._tls_context()
        self.sessions: list[Session] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    # -- what it saw ---------------------------------------------------------------------------

    @property
    def received_bytes(self) -> bytes:
        """Every byte any client sent, in order per connection (decrypted inside TLS)."""
        with self._lock:
            return b"".join(bytes(session.received) for session in self.sessions)

    @property
    def auth_responses(self) -> list[AuthResponse]:
        """Every answer a client gave to an authentication challenge."""
        with self._lock:
            return [response for s in self.sessions for response in s.auth_responses]

    @property
    def events(self) -> list[str]:
        """What happened, in order per connection (SSLRequest, TLS refused, auth switch...)."""
        with self._lock:
            return [event for s in self.sessions for event in s.events]

    @property
    def tls_established(self) -> bool:
        """True if any client completed a TLS handshake with this impostor's certificate."""
        with self._lock:
            return any(s.tls for s in self.sessions)

    def saw(self, secret: str) -> bool:
        """True if ``secret`` reached the impostor in any form the protocol can carry it."""
        if not secret:
            raise ValueError("an empty secret is in everything")
        raw = self.received_bytes
        if any(form in raw for form in _encodings(secret)):
            return True
        return any(response.reveals(secret) for response in self.auth_responses)

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Impostor:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, let running conversations finish (bounded), clean up."""
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join()
        self._listener.close()
        for thread in self._threads:
            thread.join(IO_TIMEOUT + 1)
        self._dir.cleanup()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.mode == "plaintext":
            return None
        work = Path(self._dir.name)
        if self.mode == "tls-untrusted":
            issuer = CertificateAuthority(work / "untrusted-ca")
        else:
            assert self._trusted_ca is not None
            issuer = self._trusted_ca
        hosts = (WRONG_HOST,) if self.mode == "tls-wrong-host" else SERVER_HOSTS
        certificate = issuer.issue_server_certificate(work / "tls", hosts)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        return context

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            session = Session()
            with self._lock:
                self.sessions.append(session)
            thread = threading.Thread(target=self._converse, args=(client, session), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _converse(self, client: socket.socket, session: Session) -> None:
        client.settimeout(IO_TIMEOUT)
        wire = _Wire(client, session, self._lock)
        try:
            _SERVE[self.protocol](wire, self)
        except _ClientGone as gone:
            wire.event(f"client gone: {gone}")
        except (OSError, ValueError, struct.error, IndexError, KeyError) as exc:
            wire.event(f"conversation broke off: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                wire.sock.close()


def impostor(
    protocol: Protocol,
    mode: Mode = "plaintext",
    *,
    lure: str | None = None,
    ca: CertificateAuthority | None = None,
) -> Impostor:
    """An impostor server (start it with ``with``); see the module docstring."""
    return Impostor(protocol, mode, lure=lure, ca=ca)


@contextlib.contextmanager
def impostors(
    protocol: Protocol, *, ca: CertificateAuthority | None = None
) -> Iterator[list[Impostor]]:
    """Every hostile mode and lure of one protocol at once (tls-wrong-host only with ca)."""
    with contextlib.ExitStack() as stack:
        started = [
            stack.enter_context(impostor(protocol, mode, lure=lure, ca=ca))
            for mode in HOSTILE_MODES
            if ca is not None or mode != "tls-wrong-host"
            for lure in LURES[protocol]
        ]
        yield started
