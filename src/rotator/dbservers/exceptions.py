"""Errors of the throwaway database servers."""

from __future__ import annotations


class DatabaseServerError(RuntimeError):
    """A throwaway server could not be set up or started."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(f"{message}\n--- server log tail ---\n{log_tail}" if log_tail else message)


class PortInUseError(DatabaseServerError):
    """The chosen port was taken between picking it and the server binding it."""
