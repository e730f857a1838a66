"""``rotator demo``: real rotations through the whole stack, on this machine.

One local stack (template.yaml on moto) and, for each database whose server is installed, a
throwaway server that enforces passwords. Then, per strategy:

- single user: an application user's password is changed in place;
- alternating users: a master secret keeps ``app`` and ``app_clone``; each rotation updates the
  idle one, and a table created by one user is used by the other;
- multi-credential: an IAM user's access keys (on moto) and a Redis ACL user's passwords; the
  previous credential keeps working until the retirement state machine retires it.

Every section proves its claims by logging in, and checks that no execution history or log
line holds a secret value.
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

from rotator.checks import access_key_works, eventually
from rotator.console.progress import Progress
from rotator.dbservers import (
    CertificateAuthority,
    DatabaseServer,
    mariadb_available,
    postgres_available,
    redis_available,
    start_mariadb,
    start_postgres,
    start_redis,
)

#: what the functions call the demo's CA bundle (CA_BUNDLE_DIR holds ``test-ca.pem``)
CA_BUNDLE = "test-ca"
#: every section the demo can run; --engine picks some
SECTIONS = ("postgres", "mariadb", "iam", "redis")
GROUP = "demo"

DATABASES: dict[str, tuple[str, Callable[[], bool], Callable[..., DatabaseServer]]] = {
    "postgres": ("PostgreSQL", postgres_available, start_postgres),
    "mariadb": ("MariaDB", mariadb_available, start_mariadb),
}


# The demo's table, written out per engine (PostgreSQL keeps it in a schema, MariaDB in `app`).
_ORDERS = {
    "postgres": {
        "name": "demo.orders",
        "create": "CREATE TABLE demo.orders (id INT)",
        "insert": "INSERT INTO demo.orders VALUES (1)",
        "count": "SELECT count(*) FROM demo.orders",
    },
    "mariadb": {
        "name": "app.orders",
        "create": "CREATE TABLE app.orders (id INT)",
        "insert": "INSERT INTO app.orders VALUES (1)",
        "count": "SELECT count(*) FROM app.orders",
    },
}


def _password(prefix: str = "Demo") -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


class Demo:
    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        #: on a terminal, spinners for the waits and a live table per rotation; otherwise the
        #: plain lines below, unchanged (tests and CI read them)
        self.progress = Progress(out)
        self.failures: list[str] = []
        self.runtime: Any = None
        self.ca: CertificateAuthority | None = None

    # --- output --------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def check(self, ok: bool, text: str) -> None:
        self.say(f"    {'ok  ' if ok else 'FAIL'} {text}")
        if not ok:
            self.failures.append(text)

    def _show_step(self, invocation: Any) -> None:
        from rotator.functions import rotation_step

        step = rotation_step(invocation)
        table = self.progress.current
        if step is not None and table is not None:
            table.ended(str(step["step"]), step["status"], step["seconds"], step["execution"])
        elif step is not None:  # workers are covered by their router's line
            self.say(
                f"      {step['step']:<13} {step['status']:<8} {step['seconds']:5.2f}s"
                f"  execution {step['execution']}"
            )

    def _step_starts(self, _spec: Any, event: Any) -> None:
        table = self.progress.current
        if table is not None and isinstance(event, dict) and "ClientRequestToken" in event:
            table.started(str(event.get("Step")))

    # --- the run -------------------------------------------------------------------------------

    def run(self, engines: list[str] | None) -> int:
        # a file of this run's own: concurrent demos must not write over each other
        fd, name = tempfile.mkstemp(prefix="rotator-demo-", suffix=".log")
        log_path = Path(name)
        with open(fd, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
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

        sections = list(engines or SECTIONS)
        chosen = [name for name in sections if name in DATABASES]
        for name in [n for n in chosen if not DATABASES[n][1]()]:
            self.say(f"{DATABASES[name][0]}: server binaries not installed here; skipping it.")
        chosen = [name for name in chosen if DATABASES[name][1]()]
        if not chosen and engines is None:
            self.say("No database server found (install PostgreSQL, or `pip install pgserver`).")
            return 1

        self.say("Starting the stack of template.yaml on moto: router, two state machines,")
        self.say("worker Lambdas per strategy and step, alert topic, KMS key...")
        with (
            tempfile.TemporaryDirectory(prefix="rotator-demo-ca-") as ca_dir,
            contextlib.ExitStack() as servers,
        ):
            # One CA for every demo server; the functions trust it as the bundle "test-ca",
            # as a deployment trusts a bundle shipped in the layer (CaBundle parameter).
            self.ca = CertificateAuthority(Path(ca_dir))
            with self.progress.waiting("deploying template.yaml on moto"):
                runtime = servers.enter_context(
                    LocalRuntime(
                        parameter_overrides={"CaBundle": CA_BUNDLE},
                        function_environment={"CA_BUNDLE_DIR": str(self.ca.directory)},
                    )
                )
            self.runtime = runtime
            assert runtime.host is not None
            runtime.host.after_invoke.append(self._show_step)
            runtime.host.before_invoke.append(self._step_starts)
            self.say(f"  router:        {runtime.router_function_arn}")
            self.say(f"  state machine: {runtime.state_machine_arn}")
            started = {name: self._start(servers, name) for name in chosen}
            for name, server in started.items():
                self.single_user(name, server)
            for name, server in started.items():
                self.alternating_users(name, server)
            if "iam" in sections:
                self.iam_access_keys()
            if "redis" in sections:
                if redis_available():
                    self.redis_acl(self._start_redis(servers))
                else:
                    self.say("\nRedis: redis-server not installed here; skipping its section.")
            self._scan()
        self.say()
        if self.failures:
            self.say(f"Demo FAILED: {len(self.failures)} check(s) did not hold.")
            return 1
        self.say("Demo passed: every check held.")
        return 0

    def _start(self, servers: contextlib.ExitStack, name: str) -> DatabaseServer:
        label, _available, start = DATABASES[name]
        began = time.monotonic()
        with self.progress.waiting(f"starting a throwaway {label}"):
            server = servers.enter_context(start(ca=self.ca))
        self.say(
            f"\nStarted a throwaway {label} on {server.host}:{server.port} "
            f"with password authentication over TLS ({time.monotonic() - began:.1f}s)."
        )
        self.check(
            not server.can_login(server.admin_user, "not-the-password"),
            f"{label} refuses a wrong password",
        )
        return server

    def _start_redis(self, servers: contextlib.ExitStack) -> DatabaseServer:
        with self.progress.waiting("starting a throwaway Redis"):
            server = servers.enter_context(start_redis(ca=self.ca))
        self.say(
            f"\nStarted a throwaway Redis on {server.host}:{server.port} with ACL users, over TLS."
        )
        return server

    def _secret(self, name: str, value: dict[str, Any], **tags: str) -> str:
        kwargs: dict[str, Any] = {"Name": name, "SecretString": json.dumps(value)}
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        return str(self.runtime.client("secretsmanager").create_secret(**kwargs)["ARN"])

    def _value(self, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
        sm = self.runtime.client("secretsmanager")
        value: dict[str, Any] = json.loads(
            sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]
        )
        return value

    def _rotate(self, arn: str) -> bool:
        name = arn.rsplit(":", 1)[-1]
        if not self.progress.live:
            self.say(f"    rotate-secret {name}")
        with self.progress.rotation(name):
            outcome = self.runtime.rotate(arn)
        self.check(outcome.succeeded, "the rotation succeeded")
        if not outcome.succeeded:
            self.say(f"    error: {json.dumps(outcome.error)[:400]}")
        return bool(outcome.succeeded)

    @staticmethod
    def _db_secret(
        server: DatabaseServer, username: str, password: str, **extra: Any
    ) -> dict[str, Any]:
        engine = "mariadb" if server.engine == "mariadb" else "postgres"
        return {
            "engine": engine,
            "host": server.host,
            "port": server.port,
            "username": username,
            "password": password,
            "dbname": "app",
            **extra,
        }

    # --- single user -----------------------------------------------------------------------------

    def single_user(self, name: str, server: DatabaseServer) -> None:
        label = DATABASES[name][0]
        self.say(f"\n== Single user on {label}: the user's own password changes ==")
        username, old = "app_user", _password()
        server.create_login(username, old)
        arn = self._secret(f"demo/{name}/single-user", self._db_secret(server, username, old))
        if not self._rotate(arn):
            return
        new = self._value(arn)["password"]
        self.check(not server.can_login(username, old), "the old password is refused")
        self.check(server.can_login(username, new), "the new password is accepted")

    # --- alternating users -----------------------------------------------------------------------

    def alternating_users(self, name: str, server: DatabaseServer) -> None:
        label = DATABASES[name][0]
        self.say(
            f"\n== Alternating users on {label}: a master keeps app_owner and app_owner_clone =="
        )
        master_user, master_password = "rotation_master", _password("Master")
        server.create_login(master_user, master_password, superuser=True)
        master_arn = self._secret(
            f"demo/{name}/master",
            {
                k: v
                for k, v in self._db_secret(server, master_user, master_password).items()
                if k != "dbname"  # a master works in its own database
            },
            SecretRotationMaster=self.runtime.stack_name,
            SecretRotationGroup=GROUP,
        )
        original, password = "app_owner", _password()
        server.create_login(original, password)
        table = self._prepare_table(server, original, password)
        arn = self._secret(
            f"demo/{name}/alternating",
            self._db_secret(server, original, password, masterarn=master_arn),
            SecretRotationGroup=GROUP,
        )
        for expected in (f"{original}_clone", original):
            before = self._value(arn)
            if not self._rotate(arn):
                return
            current = self._value(arn)
            self.check(current["username"] == expected, f"AWSCURRENT is now {expected!r}")
            self.check(
                server.can_login(current["username"], current["password"]),
                f"{expected!r} logs in with the new password",
            )
            self.check(
                server.can_login(before["username"], before["password"]),
                "the previous AWSCURRENT still logs in (its clients were never cut off)",
            )
            if table:
                self.check(
                    self._use_table(server, current),
                    f"{expected!r} reads and writes {table}, created by {original!r}",
                )

    def _prepare_table(self, server: DatabaseServer, user: str, password: str) -> str | None:
        with (
            contextlib.closing(
                server.admin_connection("app" if server.engine == "postgres" else None)
            ) as conn,
            conn.cursor() as cur,
        ):
            if server.engine == "postgres":
                cur.execute('CREATE SCHEMA demo AUTHORIZATION "app_owner"')
            else:
                cur.execute("GRANT ALL ON `app`.* TO 'app_owner'@'%'")
        with (
            contextlib.closing(server.connect(user, password, "app")) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(_ORDERS[server.engine]["create"])
        return _ORDERS[server.engine]["name"]

    @staticmethod
    def _use_table(server: DatabaseServer, creds: dict[str, Any]) -> bool:
        try:
            with (
                contextlib.closing(
                    server.connect(creds["username"], creds["password"], "app")
                ) as conn,
                conn.cursor() as cur,
            ):
                cur.execute(_ORDERS[server.engine]["insert"])
                cur.execute(_ORDERS[server.engine]["count"])
                return bool(cur.fetchone()[0] >= 1)
        except Exception:
            return False

    # --- multi-credential ------------------------------------------------------------------------

    def iam_access_keys(self) -> None:
        self.say("\n== Multi-credential: an IAM user's two access keys (IAM and STS on moto) ==")
        iam = self.runtime.client("iam")
        iam.create_user(
            UserName="svc-orders",
            Tags=[{"Key": "SecretRotation", "Value": self.runtime.stack_name}],
        )
        key = iam.create_access_key(UserName="svc-orders")["AccessKey"]
        arn = self._secret(
            "demo/iam/svc-orders",
            {
                "engine": "iam",
                "username": "svc-orders",
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
            },
        )
        for _ in range(2):
            old = self._value(arn)
            if not self._rotate(arn):
                return
            new = self._value(arn)
            keys = iam.list_access_keys(UserName="svc-orders")["AccessKeyMetadata"]
            self.check(len(keys) <= 2, f"the user holds {len(keys)} keys (never more than two)")
            self.check(
                self._key_works(new), f"the new key {new['access_key_id']} is accepted by STS"
            )
            self.check(self._key_works(old), f"the previous key {old['access_key_id']} still works")
        self.say("    waiting for the retirement state machine (RetireAfterSeconds=3 locally)...")
        with self.progress.waiting("the retirement state machine retires the previous key"):
            retired = eventually(lambda: not self._key_works(old))
        self.check(
            retired,
            f"the previous key {old['access_key_id']} is deactivated after the grace period",
        )
        self.check(self._key_works(self._value(arn)), "the current key still works")

    def _key_works(self, creds: dict[str, Any]) -> bool:
        return access_key_works(creds, self.runtime.region)

    def redis_acl(self, server: DatabaseServer) -> None:
        self.say("\n== Multi-credential: a Redis ACL user holds the old and the new password ==")
        username, old = "cache_user", _password()
        server.create_login(username, old)
        arn = self._secret(
            "demo/redis/cache_user",
            {
                "engine": "redis",
                "host": server.host,
                "port": server.port,
                "username": username,
                "password": old,
            },
        )
        if not self._rotate(arn):
            return
        new = self._value(arn)["password"]
        self.check(server.can_login(username, new), "the new password is accepted")
        self.check(server.can_login(username, old), "the old password still works for now")
        self.say("    waiting for the retirement state machine...")
        with self.progress.waiting("the retirement state machine removes the old password"):
            removed = eventually(lambda: not server.can_login(username, old))
        self.check(removed, "the old password is removed after the grace period")

    # --- the leak scan ---------------------------------------------------------------------------

    def _scan(self) -> None:
        values = list(self.runtime.secret_values().values())
        histories, logs = self.runtime.all_histories_text(), self.runtime.log_text()
        executions = len(self.runtime.executions())
        self.say("\n== No secret in the clear outside Secrets Manager ==")
        self.check(
            not any(v in histories for v in values),
            f"none of {len(values)} secret values appears in {executions} execution histories",
        )
        self.check(
            not any(v in logs for v in values),
            f"none appears in {len(self.runtime.host.sink.lines)} function log lines",
        )


def run_demo(engines: list[str] | None = None) -> int:
    return Demo().run(engines)
