"""Process plumbing shared by the engines: free ports, child processes, readiness, logs.

A server process is a mirakuru ``Executor``: started in its own session (so its whole process
group can be signalled), ready once a real login succeeds, stopped with the engine's signal and
SIGKILLed if it does not stop in time. Ports come from port-for, which picks from ports that are
neither IANA-registered nor in the kernel's ephemeral range, so a server port never collides with
the source port of some outgoing connection.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import string
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import port_for
from mirakuru import Executor
from mirakuru.base import ENV_UUID, SimpleExecutor
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

from rotator.dbservers.exceptions import DatabaseServerError, PortInUseError

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0  # also how long stop() waits before SIGKILL
POLL_INTERVAL = 0.02  # readiness and exit checks; a refused connect costs microseconds
PORT_ATTEMPTS = 4
LOG_TAIL_LINES = 40
# Unix socket paths are limited to 108 bytes on Linux; keep a margin for the file name.
MAX_SOCKET_DIR_LEN = 80


@dataclass(frozen=True)
class RunAs:
    """An OS user to run a server as (we are root, and the server refuses root)."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, *paths: Path) -> None:
        """Make the paths this user's."""
        for path in paths:
            os.chown(path, self.uid, self.gid)


def child_env() -> dict[str, str]:
    """Minimal environment for server processes: none of our credentials leak into them."""
    return {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "LANG": "C"}


def which(*names: str) -> Path | None:
    """The first of these programs found on PATH or in the usual sbin directories."""
    search = os.pathsep.join(
        [os.environ.get("PATH", os.defpath), "/usr/sbin", "/usr/bin", "/usr/local/sbin"]
    )
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    return None


def tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """Last lines of a log file ('' if there is none)."""
    if path is None:
        return ""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def run_checked(
    argv: list[str], what: str, run_as: RunAs | None, cwd: Path, timeout: float = 120
) -> None:
    """Run a setup program (initdb, mariadb-install-db, ...); raise with its output if it fails."""
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=cwd,
            env=child_env(),
            timeout=timeout,
            check=False,
            **(run_as.popen_kwargs() if run_as else {}),
        )
    except subprocess.TimeoutExpired as exc:
        raise DatabaseServerError(f"{what} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise DatabaseServerError(f"{what} could not be run: {exc}") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        raise DatabaseServerError(
            f"{what} failed with exit code {result.returncode}",
            "\n".join(output.splitlines()[-LOG_TAIL_LINES:]),
        )


def make_work_dir(engine: str, base_dir: Path | None) -> Path:
    """A fresh private directory for one server (data, socket, log, certificates)."""
    if base_dir is not None:
        Path(base_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"rotator-{engine}-", dir=base_dir))


def short_dir_for_socket(work_dir: Path, engine: str) -> tuple[Path, bool]:
    """A directory for a Unix socket: ``work_dir/sock`` unless that path is too long.

    Returns the directory and whether it lies outside work_dir (the caller must remove it).
    """
    candidate = work_dir / "sock"
    if len(str(candidate)) <= MAX_SOCKET_DIR_LEN:
        candidate.mkdir(mode=0o700)
        return candidate, False
    return Path(tempfile.mkdtemp(prefix=f"rotator-{engine}-sock-")), True


def _marker() -> str:
    # mirakuru marks each child with ENV_UUID="<owner pid>:<uuid4>", and at interpreter exit
    # SIGKILLs every process whose marker *contains* str(os.getpid()) as a substring, so the
    # exit of any unrelated process whose pid appears among the digits of our marker would
    # kill our server. Letters only: nothing but our own stop() (whole marker) can match it.
    return "rotator-" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(24))


class ServerProcess(Executor):
    """One server process: spawned in its own session, ready when ``probe()`` succeeds."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        log_file: Path,
        run_as: RunAs | None,
        stop_signal: int,
        probe: Callable[[], object],
        on_spawn: Callable[[int], None],
    ) -> None:
        self._log = open(log_file, "ab")  # noqa: SIM115 - closed once the server is ready
        super().__init__(
            argv,
            cwd=str(cwd),
            timeout=STARTUP_TIMEOUT,
            sleep=POLL_INTERVAL,
            stop_signal=stop_signal,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            popen_kwargs=run_as.popen_kwargs() if run_as else {},
        )
        self._uuid = _marker()
        self._probe = probe
        self._on_spawn = on_spawn
        self.last_error = "no attempt made"

    @property
    def envvars(self) -> dict[str, str]:
        """The child's whole environment: ours minus everything, plus mirakuru's marker."""
        return {**child_env(), ENV_UUID: self._uuid}

    def start(self) -> Self:
        """Spawn, tell the guardian about the new process group, then wait until ready."""
        try:
            SimpleExecutor.start(self)
            assert self.process is not None
            self._on_spawn(self.process.pid)
            self.wait_for(self.check_subprocess)
        finally:
            self._log.close()
        return self

    def after_start_check(self) -> bool:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:  # exited with 0: mirakuru only notices non-zero exits itself
            raise ProcessExitedWithError(self, code)
        try:
            self._probe()
        except Exception as exc:  # not accepting logins yet
            self.last_error = f"{type(exc).__name__}: {exc}".strip()
            return False
        return True

    @property
    def pid(self) -> int | None:
        return None if self.process is None else int(self.process.pid)


@functools.cache
def _candidate_ports() -> frozenset[int]:
    # Computing port-for's ranges takes tens of milliseconds; they never change.
    return frozenset(port_for.available_good_ports())


def free_port() -> int:
    """A port nothing listens on or is bound to, outside the ephemeral range."""
    return int(port_for.select_random(set(_candidate_ports())))


def start_server_process(
    engine: str,
    build_argv: Callable[[int], list[str]],
    *,
    cwd: Path,
    log_file: Path,
    run_as: RunAs | None,
    stop_signal: int,
    probe: Callable[[], object],
    on_spawn: Callable[[int], None],
) -> tuple[ServerProcess, int]:
    """Start ``build_argv(port)`` on a free port and wait until ``probe()`` logs in.

    A port taken between choosing it and the server binding it is retried on another port.
    Raises DatabaseServerError with the log tail if the server exits or never becomes ready.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        process = ServerProcess(
            build_argv(port),
            cwd=cwd,
            log_file=log_file,
            run_as=run_as,
            stop_signal=stop_signal,
            probe=probe,
            on_spawn=on_spawn,
        )
        try:
            process.start()
        except ProcessExitedWithError as exc:
            log_tail = tail(log_file)
            if "Address already in use" in log_tail and attempt < PORT_ATTEMPTS:
                continue
            error = PortInUseError if "Address already in use" in log_tail else DatabaseServerError
            raise error(
                f"{engine} exited with code {exc.exit_code} during startup on port {port}",
                log_tail,
            ) from None
        except TimeoutExpired:
            raise DatabaseServerError(
                f"{engine} did not accept logins on {HOST}:{port} within "
                f"{STARTUP_TIMEOUT:.0f}s (last error: {process.last_error})",
                tail(log_file),
            ) from None
        except BaseException:
            process.kill()
            raise
        return process, port
    raise AssertionError("unreachable")  # pragma: no cover
