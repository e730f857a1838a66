"""Live progress of the CLI's long commands on a terminal (``rich``); nothing extra otherwise.

On a TTY a wait shows a spinner with the time spent, and a rotation a live table of its four
steps (waiting, running, done or failed, seconds). When the output is not a terminal (tests,
CI, a file) these draw nothing and the commands print their plain progress lines as before:
the callers ask :attr:`Progress.live` which form to write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def is_terminal(out: TextIO) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    def __init__(self, out: TextIO, *, live: bool | None = None) -> None:
        self.live = is_terminal(out) if live is None else live
        self._console: Any = None
        if self.live:
            from rich.console import Console

            self._console = Console(file=out)
        self._rotation: RotationTable | None = None

    @contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        """A spinner with the seconds spent, while the block runs (on a terminal)."""
        if not self.live:
            yield
            return
        from rich.live import Live
        from rich.spinner import Spinner

        began = time.monotonic()
        spinner = Spinner("dots", text)
        # the commands send their own stdout elsewhere (function logs to a file): leave it be
        with Live(
            spinner,
            console=self._console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ):
            stop = threading.Event()

            def tick() -> None:
                while not stop.wait(0.5):
                    spinner.update(text=f"{text} ({time.monotonic() - began:.0f}s)")

            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
            try:
                yield
            finally:
                stop.set()
                ticker.join(timeout=1)

    @contextmanager
    def rotation(self, secret: str) -> Iterator[RotationTable | None]:
        """A live table of one rotation's steps (None when not on a terminal)."""
        if not self.live:
            yield None
            return
        from rich.live import Live

        table = RotationTable(secret)
        with Live(
            table.render(),
            console=self._console,
            refresh_per_second=8,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            table.live = live
            self._rotation = table
            try:
                yield table
            finally:
                self._rotation = None
                live.update(table.render())

    @property
    def current(self) -> RotationTable | None:
        return self._rotation


class RotationTable:
    """The four steps of one rotation as they start and end (updated from Lambda hooks)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.rows: dict[str, dict[str, Any]] = {
            step: {"status": "waiting", "began": None, "seconds": None} for step in STEPS
        }
        self.live: Any = None
        self._lock = threading.Lock()

    def started(self, step: str) -> None:
        with self._lock:
            row = self.rows.setdefault(step, {"status": "", "began": None, "seconds": None})
            row.update(status="running", began=time.monotonic())
        self._refresh()

    def ended(self, step: str, status: str, seconds: float, execution: str) -> None:
        with self._lock:
            row = self.rows.setdefault(step, {"status": "", "began": None, "seconds": None})
            row.update(status=status, seconds=seconds, execution=execution.rsplit(":", 1)[-1])
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.render())

    def render(self) -> Any:
        from rich.table import Table

        table = Table(title=f"rotate {self.secret}", title_justify="left", expand=False)
        for column in ("step", "status", "seconds", "execution"):
            table.add_column(column)
        styles = {"done": "green", "running": "bold blue", "waiting": "dim"}
        with self._lock:
            for step, row in self.rows.items():
                status = str(row["status"])
                seconds = row["seconds"]
                if seconds is None and row["began"] is not None:
                    seconds = time.monotonic() - row["began"]
                style = styles.get(status, "bold red" if status.startswith("FAILED") else "")
                table.add_row(
                    step,
                    f"[{style}]{status}[/]" if style else status,
                    f"{seconds:5.2f}" if seconds is not None else "",
                    str(row.get("execution", "")),
                )
        return table
