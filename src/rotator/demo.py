"""``rotator demo``: rotate a real database password through the whole stack, on this machine.

For each engine whose server is installed: start a throwaway server that enforces passwords,
create an application user and an AWS-shaped secret for it, call RotateSecret with the router,
and show each step with its Step Functions execution; then prove the old password is refused,
the new one accepted, and that no execution history holds either.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rotator.dbservers import (
    DatabaseServer,
    mariadb_available,
    postgres_available,
    start_mariadb,
    start_postgres,
)

ENGINES: dict[str, tuple[str, Callable[[], bool], Callable[[], DatabaseServer]]] = {
    "postgres": ("PostgreSQL", postgres_available, start_postgres),
    "mariadb": ("MariaDB", mariadb_available, start_mariadb),
}


class Demo:
    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.failures: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def check(self, ok: bool, text: str) -> None:
        self.say(f"    {'ok  ' if ok else 'FAIL'} {text}")
        if not ok:
            self.failures.append(text)

    def run(self, engines: list[str] | None) -> int:
        log_path = Path(tempfile.gettempdir()) / "rotator-demo-functions.log"
        with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            # The functions' JSON logs and EMF metrics go to the file; the story stays readable.
            from rotator.functions import redirect_function_logs

            redirect_function_logs(log)
            try:
                code = self._run(engines)
            finally:
                redirect_function_logs(sys.__stdout__)
        self.say(f"(the functions' own structured logs are in {log_path})")
        return code

    def _run(self, engines: list[str] | None) -> int:
        from rotator.local import LocalRuntime

        chosen = engines or [name for name, (_, available, _) in ENGINES.items() if available()]
        missing = [name for name in chosen if not ENGINES[name][1]()]
        for name in missing:
            self.say(f"{ENGINES[name][0]}: server binaries not installed here; skipping.")
        chosen = [name for name in chosen if name not in missing]
        if not chosen:
            self.say(
                "No database server binaries found (install PostgreSQL, or `pip install pgserver`)."
            )
            return 1

        self.say(
            "Starting the stack of template.yaml on moto "
            "(router, state machine, workers, topic, key)..."
        )
        with LocalRuntime() as runtime:
            assert runtime.host is not None
            runtime.host.after_invoke.append(self._show_step)
            self.say(f"  router:        {runtime.router_function_arn}")
            self.say(f"  state machine: {runtime.state_machine_arn}")
            for name in chosen:
                self._demo_engine(runtime, name)
        self.say()
        if self.failures:
            self.say(f"Demo FAILED: {len(self.failures)} check(s) did not hold.")
            return 1
        self.say("Demo passed: every check held.")
        return 0

    def _demo_engine(self, runtime: Any, name: str) -> None:
        label, _available, start = ENGINES[name]
        self.say()
        self.say(f"== {label} ==")
        started = time.monotonic()
        with start() as server:
            self.say(
                f"  throwaway {label} on {server.host}:{server.port} "
                f"(password authentication, started in {time.monotonic() - started:.1f}s)"
            )
            self.check(
                not server.can_login(server.admin_user, "not-the-password"),
                "the server refuses a wrong password",
            )
            username = "app_user"
            old_password = "Demo-" + secrets.token_urlsafe(18)
            server.create_login(username, old_password)
            secret = {
                "engine": name,
                "host": server.host,
                "port": server.port,
                "username": username,
                "password": old_password,
                "dbname": "app",
            }
            sm = runtime.client("secretsmanager")
            arn = sm.create_secret(Name=f"demo/{name}/{username}", SecretString=json.dumps(secret))[
                "ARN"
            ]
            self.say(f"  secret {arn}")
            self.say("  rotate-secret (createSecret, setSecret, testSecret, finishSecret):")
            outcome = runtime.rotate(arn)
            self.check(outcome.succeeded, "the rotation succeeded")
            if not outcome.succeeded:
                self.say(f"    error: {json.dumps(outcome.error)[:400]}")
                return
            new_password = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["password"]
            stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
            self.check(
                stages.get(outcome.token) == ["AWSCURRENT"], "AWSCURRENT moved to the new version"
            )
            self.check(not server.can_login(username, old_password), "the old password is refused")
            self.check(server.can_login(username, new_password), "the new password is accepted")
            histories = runtime.all_histories_text()
            self.check(
                old_password not in histories and new_password not in histories,
                f"no password in {len(runtime.executions())} execution histories",
            )
            logs = runtime.log_text()
            self.check(
                old_password not in logs and new_password not in logs,
                f"no password in {len(runtime.host.sink.lines)} log lines",
            )

    def _show_step(self, invocation: Any) -> None:
        event = invocation.event if isinstance(invocation.event, dict) else {}
        if "ClientRequestToken" not in event:
            return  # a worker; the router's line below covers the step
        if invocation.failed:
            status = f"FAILED {invocation.error.get('errorType')}"
            where = ""
        else:
            status = "done"
            where = (
                invocation.payload.get("ExecutionArn", "")
                if isinstance(invocation.payload, dict)
                else ""
            )
        execution = where.rsplit(":", 1)[-1] if where else "-"
        self.say(
            f"    {event.get('Step', '?'):<13} {status:<8} {invocation.duration:5.2f}s"
            f"  execution {execution}"
        )


def run_demo(engines: list[str] | None = None) -> int:
    return Demo().run(engines)
