"""Credential backends for multi-credential rotation, one module each.

A backend module defines ``ENGINE`` (the secret ``engine`` it rotates) and ``build(wiring)``
returning a :class:`~rotation_core.ports.CredentialBackend`; its secrets follow
``schemas/<engine>-secret.schema.json``. Modules are found here by name, so adding a backend is
adding its module (and its schema): nothing else is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from rotation_core.connection import ConnectionPolicy
from rotation_core.exceptions import UnsupportedEngineError
from rotation_core.ports import CredentialBackend


@dataclass(frozen=True)
class Wiring:
    """What backends may need to be built: AWS clients, STS per key pair, the TLS policy."""

    client: Callable[[str], Any]
    sts_for: Callable[[str, str], Any]
    policy: ConnectionPolicy


@cache
def _builders() -> dict[str, Callable[[Wiring], CredentialBackend]]:
    found: dict[str, Callable[[Wiring], CredentialBackend]] = {}
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        if hasattr(loaded, "ENGINE") and hasattr(loaded, "build"):
            found[str(loaded.ENGINE)] = loaded.build
    return found


def engines() -> list[str]:
    """The secret engines some backend rotates."""
    return sorted(_builders())


def backend_for(engine: str, wiring: Wiring) -> CredentialBackend:
    builder = _builders().get(engine)
    if builder is None:
        raise UnsupportedEngineError(
            f"multi-credential cannot rotate engine {engine!r} (backends: {', '.join(engines())})"
        )
    return builder(wiring)
