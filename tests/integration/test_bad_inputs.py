"""The bad-input corpus (tests/support/corpus.py), in process and through ``rotator local serve``.

For every input: the error names the problem; nothing was written to Secrets Manager (no
version holds a value but the original) or to the backend (the original credential still
works, no user or key was added); no secret value appears in the error. The counts print at
the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_nothing_leaked
from tests.integration.conftest import GROUP
from tests.support.corpus import CORPUS, BadInput
from tests.support.serve import serve

pytestmark = pytest.mark.integration

PATHS = ["router", "serve"]
CASES = [
    (item, path)
    for item in CORPUS
    for path in PATHS
    if not (item.needs_staging and path == "serve")
]


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 50
    assert sum(1 for _item, path in CASES if path == "serve") >= 50


# --- the two ways in ------------------------------------------------------------------------------


class Target:
    """What a case needs from either path: AWS clients, the router, and its errors."""

    def __init__(
        self,
        clients: Any,
        router_arn: str,
        rotate_error: Any,
        invoke_router: Any,
        stage: Any = None,
    ) -> None:
        self.client = clients
        self.router_arn = router_arn
        self.rotate_error = rotate_error  # (secret arn) -> error text of its last rotation
        self.invoke_router = invoke_router  # (event) -> error text, or None when it succeeded
        #: (secret arn) -> a token staged AWSPENDING as Secrets Manager would (in process only:
        #: no AWS API stages a version without rotating)
        self.stage = stage

    @property
    def stack_name(self) -> str:
        """The stack's name (the router is ``<stack>-router``): the value of the tags that let
        its functions use a master secret or an IAM user."""
        return self.router_arn.split(":")[6].removesuffix("-router")  # ...:function:<name>:live


@pytest.fixture(scope="module")
def router_target(test_ca_stack_settings: dict[str, dict[str, str]]) -> Iterator[Target]:
    from rotator.local import LocalRuntime

    with LocalRuntime(**test_ca_stack_settings) as rt:

        def rotate_error(arn: str) -> str:
            outcome = next(o for o in reversed(rt.rotations) if o.secret_arn == arn)
            error = outcome.error or {}
            return f"{error.get('errorType')}: {error.get('errorMessage')}"

        def invoke(event: Any) -> str | None:
            result = rt.invoke_router(event)
            return (
                f"{result.error['errorType']}: {result.error['errorMessage']}"
                if result.failed
                else None
            )

        yield Target(rt.client, rt.router_function_arn, rotate_error, invoke, rt.stage_rotation)
        assert_nothing_leaked(rt)


@pytest.fixture(scope="module")
def serve_target(tmp_path_factory: pytest.TempPathFactory, test_ca: Any) -> Iterator[Target]:
    log_path = tmp_path_factory.mktemp("serve-corpus") / "stderr.log"
    with serve(log_path, test_ca.directory) as served:
        ready, client = served.ready, served.client

        def rotate_error(arn: str) -> str:
            """The router's own log line for this secret (what an operator reads)."""
            name = client("secretsmanager").describe_secret(SecretId=arn)["Name"]
            for _ in range(50):
                for line in reversed(log_path.read_text().splitlines()):
                    if '"rotation step failed"' in line and f'"secret_name":"{name}"' in line:
                        entry = json.loads(line)
                        return f"{entry.get('error_class')}: {entry.get('reason')}"
                time.sleep(0.1)
            return "(no router error logged)"

        def invoke(event: Any) -> str | None:
            response = client("lambda").invoke(
                FunctionName=ready["router_function_arn"], Payload=json.dumps(event).encode()
            )
            payload = json.loads(response["Payload"].read() or b"null")
            if "FunctionError" not in response:
                return None
            return f"{payload.get('errorType')}: {payload.get('errorMessage')}"

        yield Target(client, ready["router_function_arn"], rotate_error, invoke)


# --- one case -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "path"), CASES, ids=[f"{path}: {item.id}" for item, path in CASES]
)
def test_bad_input_names_the_problem_and_changes_nothing(
    item: BadInput, path: str, request: pytest.FixtureRequest, record_property: Any
) -> None:
    target: Target = request.getfixturevalue(f"{path}_target")
    backend = _Backend.make(item.kind, target, request)
    secret_values = backend.secret_values()
    arn, original_version = backend.create_secret(item)
    checks = 0

    if item.event is not None:
        # rotation configured (not started), as for a secret Secrets Manager would rotate
        target.client("secretsmanager").rotate_secret(
            SecretId=arn, RotationLambdaARN=target.router_arn, RotateImmediately=False
        )
        # in process a real token is staged: a router that skipped validation would write
        token = target.stage(arn) if target.stage else UUID_FOR_EVENTS
        error = target.invoke_router(item.event(arn, token))
    else:
        target.client("secretsmanager").rotate_secret(
            SecretId=arn, RotationLambdaARN=target.router_arn
        )
        error = target.rotate_error(arn)

    assert error is not None, "the input was accepted"
    assert item.expect in error, f"error does not name the problem: {error[:300]}"
    checks += 1
    leaked = [label for label, value in secret_values.items() if value and value in error]
    assert not leaked, f"the error shows {leaked}"
    checks += 1
    holding = _versions_with_values(target, arn)
    assert holding == {original_version}, f"versions holding a value: {holding}"
    checks += 1
    checks += backend.assert_unchanged()
    record_property("bad_input", {"id": item.id, "path": path, "ok": True, "checks": checks})


UUID_FOR_EVENTS = "11111111-2222-4333-8444-555555555555"


def _versions_with_values(target: Target, arn: str) -> set[str]:
    sm = target.client("secretsmanager")
    holding = set()
    for version in sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]:
        with contextlib.suppress(Exception):
            value = sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
            if "SecretString" in value or "SecretBinary" in value:
                holding.add(version["VersionId"])
    return holding


class _Backend:
    """A real identity the malformed secret is about, and proof afterwards that it is untouched."""

    def __init__(self, kind: str, target: Target) -> None:
        self.kind, self.target = kind, target
        self.name = f"bad_{secrets.token_hex(4)}"
        self.password = "Corpus-" + secrets.token_urlsafe(12)
        self.server: DatabaseServer | None = None
        self.master_password = "Master-" + secrets.token_urlsafe(12)
        self.iam_key: dict[str, str] = {}
        self._has_master = False

    @classmethod
    def make(cls, kind: str, target: Target, request: pytest.FixtureRequest) -> _Backend:
        backend = cls(kind, target)
        if kind in ("postgres", "mariadb", "redis"):
            backend.server = request.getfixturevalue(f"{kind}_server")
            backend.server.create_login(backend.name, backend.password)
        elif kind == "iam":
            iam = target.client("iam")
            iam.create_user(
                UserName=backend.name,
                Tags=[{"Key": "SecretRotation", "Value": target.stack_name}],
            )
            backend.iam_key = iam.create_access_key(UserName=backend.name)["AccessKey"]
        return backend

    def secret_values(self) -> dict[str, str]:
        values = {"password": self.password, "master password": self.master_password}
        if self.iam_key:
            values["secret access key"] = self.iam_key["SecretAccessKey"]
        return values

    def _valid(self) -> dict[str, Any]:
        if self.kind == "iam":
            return {
                "engine": "iam",
                "username": self.name,
                "access_key_id": self.iam_key["AccessKeyId"],
                "secret_access_key": self.iam_key["SecretAccessKey"],
            }
        assert self.server is not None
        value = {
            "engine": self.kind,
            "host": self.server.host,
            "port": self.server.port,
            "username": self.name,
            "password": self.password,
        }
        if self.kind in ("postgres", "mariadb"):
            value["dbname"] = "app"
        return value

    def create_secret(self, item: BadInput) -> tuple[str, str]:
        sm = self.target.client("secretsmanager")
        kwargs: dict[str, Any] = {"Name": f"corpus/{self.name}"}
        value = self._valid()
        if item.master_changes is not None or item.master_raw is not None:
            value["masterarn"] = self._master(item)
        for key, replacement in item.changes.items():
            if replacement is None:
                value.pop(key, None)
            else:
                value[key] = replacement
        if isinstance(item.raw, bytes):
            kwargs["SecretBinary"] = item.raw
        else:
            kwargs["SecretString"] = item.raw if item.raw is not None else json.dumps(value)
        tags = dict(item.tags or {})
        if "masterarn" in value:
            tags.setdefault("SecretRotationGroup", GROUP)
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        created = sm.create_secret(**kwargs)
        return created["ARN"], created["VersionId"]

    def _master(self, item: BadInput) -> str:
        assert self.server is not None
        master_user = self.name + "_m"
        self.server.create_login(master_user, self.master_password, superuser=True)
        self._has_master = True
        master = {**self._valid(), "username": master_user, "password": self.master_password}
        for key, replacement in (item.master_changes or {}).items():
            if replacement is None:
                master.pop(key, None)
            else:
                master[key] = replacement
        string = item.master_raw if item.master_raw is not None else json.dumps(master)
        return str(
            self.target.client("secretsmanager").create_secret(
                Name=f"corpus/{self.name}/master",
                SecretString=string,
                Tags=[
                    {"Key": "SecretRotationMaster", "Value": self.target.stack_name},
                    {"Key": "SecretRotationGroup", "Value": GROUP},
                ],
            )["ARN"]
        )

    def assert_unchanged(self) -> int:
        """The original credential still works and nothing was added; returns checks made."""
        if self.kind == "iam":
            keys = self.target.client("iam").list_access_keys(UserName=self.name)[
                "AccessKeyMetadata"
            ]
            assert [k["AccessKeyId"] for k in keys] == [self.iam_key["AccessKeyId"]]
            return 1
        assert self.server is not None
        assert self.server.can_login(self.name, self.password), (
            "the original password stopped working"
        )
        if self.kind in ("postgres", "mariadb"):
            query = {
                "postgres": "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s",
                "mariadb": "SELECT count(*) FROM mysql.user WHERE User LIKE %s",
            }[self.kind]
            with contextlib.closing(self.server.admin_connection()) as conn, conn.cursor() as cur:
                cur.execute(query, (self.name + "%",))
                count = cur.fetchone()[0]
            expected = 1 + int(self._has_master)
            assert count == expected, f"{count} users named {self.name}*, expected {expected}"
        else:
            admin = self.server.admin_connection()
            try:
                assert len(admin.execute_command("ACL", "GETUSER", self.name)["passwords"]) == 1
            finally:
                admin.close()
        return 2
