"""A watchdog that cleans up after an owner that died without stopping its servers.

The owner starts it with ``Guardian(path)`` and keeps the write end of its stdin, on which it
names the process groups and directories to clean. ``done`` means the owner cleaned up itself;
EOF without ``done`` means it died (even by SIGKILL, which no atexit handler survives): the
guardian stops the groups (their own stop signal, then SIGKILL) and removes the directories.

This file is also the guardian's program. It runs as ``python -I -S guardian.py`` and imports
only the standard library, so it starts quickly and inherits none of the owner's environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

GRACE_SECONDS = 10.0  # how long the groups get to stop before SIGKILL


class Guardian:
    """The owner's end: a child process in its own session that outlives us if we die."""

    def __init__(self, path: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", __file__, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to our process group must not reach it
            env={"PATH": os.environ.get("PATH", os.defpath)},
        )

    def watch_group(self, pgid: int, stop_signal: int) -> None:
        """Stop this process group if the owner dies."""
        self._send(f"pgid {pgid} {int(stop_signal)}")

    def watch_path(self, path: Path) -> None:
        """Remove this directory if the owner dies."""
        self._send(f"path {path}")

    def release(self) -> None:
        """Tell the guardian everything was cleaned up normally and let it exit."""
        self._send("done")
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _send(self, line: str) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            stdin.write(line.encode() + b"\n")
            stdin.flush()


# --- the guardian process ------------------------------------------------------------------


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_groups(groups: Iterable[tuple[int, int]]) -> None:
    for pgid, sig in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def clean_up(groups: list[tuple[int, int]], paths: list[str]) -> None:
    """Stop the groups (their signal, then SIGKILL after a grace period), remove the paths."""
    _signal_groups(groups)
    deadline = time.monotonic() + GRACE_SECONDS
    while any(_alive(pgid) for pgid, _ in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_groups((pgid, signal.SIGKILL) for pgid, _ in groups)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Read orders until ``done`` (exit quietly) or EOF (the owner died: clean up)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: list[tuple[int, int]] = []
    paths = list(argv)
    for raw in sys.stdin.buffer:
        word, _, arg = raw.decode("utf-8", "replace").rstrip("\n").partition(" ")
        if word == "done":
            return 0
        if word == "pgid":
            pgid, sig = arg.split()
            groups.append((int(pgid), int(sig)))
        elif word == "path":
            paths.append(arg)
    clean_up(groups, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
