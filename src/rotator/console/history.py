"""What the console shows of an execution: its path, its failures, and its events, redacted.

Execution inputs, outputs and histories carry no secret value by design (DESIGN.md, invariant
2; the leak scans of the tests check it). The console still never renders a field that would
hold one: any key named like a password, a secret string or binary, a secret access key, a
rotation token, a sealed envelope or a KMS plaintext/ciphertext is replaced by ``"(redacted)"``,
also inside JSON that is itself a string (Step Functions stores inputs and outputs as strings).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

REDACTED = "(redacted)"
#: keys whose values are never shown (matched on the key folded to lower case, no separators)
_SENSITIVE = re.compile(
    r"password|passwd|secretstring|secretbinary|secretaccesskey|secretkey|rotationtoken"
    r"|sealed|ciphertext|plaintext|privatekey|sessiontoken|credential"
)
MAX_TEXT = 6000
#: history events that say a state's task (or the state itself) failed
_FAILURE = re.compile(r"(Task|LambdaFunction|Activity|Map|Parallel)?(Failed|TimedOut)$")


def _sensitive(key: str) -> bool:
    return bool(_SENSITIVE.search(re.sub(r"[^a-z]", "", key.lower())))


def redact(value: Any) -> Any:
    """``value`` with every sensitive field's value replaced, JSON strings parsed and redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if _sensitive(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and len(stripped) < 1_000_000:
            try:
                parsed = json.loads(stripped)
            except ValueError:
                return value
            return json.dumps(redact(parsed), indent=1, sort_keys=True, default=str)
    return value


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"\u2026 ({len(text)} chars)"


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    """One history event as the page lists it: id, type, state, time, redacted details."""
    details: dict[str, Any] = {}
    state = ""
    for key, value in event.items():
        if not key.endswith("EventDetails") or not isinstance(value, dict):
            continue
        state = str(value.get("name") or state)
        for field, content in redact(value).items():
            if field in ("name", "inputDetails", "outputDetails"):
                continue
            text = content if isinstance(content, str) else json.dumps(content, default=str)
            details[field] = _clip(text)
    timestamp = event.get("timestamp")
    return {
        "id": event.get("id"),
        "type": str(event.get("type", "")),
        "state": state,
        "time": timestamp.isoformat() if isinstance(timestamp, datetime) else str(timestamp or ""),
        "details": details,
    }


def path_of(
    events: list[dict[str, Any]], edges: set[tuple[str, str]], status: str
) -> dict[str, set[Any]]:
    """Which states an execution entered, which failed last time they ran, which run now, and
    the transitions it took (consecutive entries joined by an edge of the machine)."""
    visited: set[str] = set()
    failed: set[str] = set()
    running: list[str] = []
    taken: set[tuple[str, str]] = set()
    previous = "((start))"
    last = ""
    for event in events:
        kind = str(event.get("type", ""))
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            name = str(entered.get("name", ""))
            visited.add(name)
            if (previous, name) in edges:
                taken.add((previous, name))
            previous = last = name
            running.append(name)
            if kind == "FailStateEntered":
                failed.add(name)
        elif exited:
            name = str(exited.get("name", ""))
            if name in running:
                running.remove(name)
        elif kind.endswith("Succeeded") and last:
            failed.discard(last)  # a retry that worked
        elif _FAILURE.search(kind) and kind != "ExecutionFailed" and last:
            failed.add(last)
    if status != "RUNNING" and (last, "((end))") in edges:
        taken.add((last, "((end))"))
        visited.add("((end))")
    return {
        "visited": visited | {"((start))"},
        "failed": failed,
        "current": set(running) if status == "RUNNING" else set(),
        "taken": taken,
    }
