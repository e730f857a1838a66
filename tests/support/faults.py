"""Fault-injection harness: stop a rotation at every point where it can stop, then prove
nobody was locked out and that retrying finishes the job with exactly one new credential.

A *combo* is a strategy on a backend (single-user/postgres ... multi-credential/redis). A
*fault* patches one seam for the first rotation attempt: before or after a worker's resource
change, before or after each router write, a worker exception or hard timeout, the backend
going down and coming back, Secrets Manager throttling, a KMS failure, a test that fails (and
a rollback that crashes). The scenario then:

1. runs RotateSecret with the fault in place, checking invariant 4 after every router step by
   logging in with the stored versions (AWSCURRENT or AWSPENDING for single-user; AWSCURRENT
   for the others);
2. clears the fault and retries the whole rotation as Secrets Manager would, at most twice;
3. checks the end state by logging in with every stored version: exactly the expected ones
   work (single-user: AWSCURRENT only; others: AWSCURRENT and AWSPREVIOUS), and the backend
   holds exactly one new credential;
4. reports the canary: a client reading AWSCURRENT and logging in throughout.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from rotator.checks import access_key_works
from rotator.dbservers import DatabaseServer

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
WORKER_TIMEOUT = 2


class InjectedCrash(RuntimeError):
    """What a crashing Lambda dies of (an unhandled error class, as a real bug would be)."""


# --- subjects: a rotated identity and how to check its credentials --------------------------------


@dataclass
class Subject:
    arn: str
    strategy: str
    logs_in: Callable[[dict[str, Any]], bool]
    #: how many credentials the backend holds for the identity (None: one by construction)
    credentials_held: Callable[[], int] | None = None
    proxy: Any = None


@dataclass(frozen=True)
class Combo:
    strategy: str
    backend: str  # postgres, mariadb, iam, redis

    @property
    def name(self) -> str:
        return f"{self.strategy}/{self.backend}"


COMBOS = [
    Combo("single-user", "postgres"),
    Combo("single-user", "mariadb"),
    Combo("alternating-users", "postgres"),
    Combo("alternating-users", "mariadb"),
    Combo("multi-credential", "iam"),
    Combo("multi-credential", "redis"),
]


def make_subject(rt: Any, combo: Combo, servers: dict[str, DatabaseServer], unique: str) -> Subject:
    """Create the identity, its secret (and a master where needed) for one scenario."""
    from tests.support.proxy import FlakyProxy

    sm = rt.client("secretsmanager")
    if combo.backend == "iam":
        iam = rt.client("iam")
        iam.create_user(UserName=unique, Tags=[{"Key": "SecretRotation", "Value": rt.stack_name}])
        key = iam.create_access_key(UserName=unique)["AccessKey"]
        value = {
            "engine": "iam",
            "username": unique,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
        arn = sm.create_secret(Name=f"faults/{unique}", SecretString=json.dumps(value))["ARN"]
        return Subject(
            arn,
            combo.strategy,
            lambda creds: access_key_works(creds, rt.region),
            credentials_held=lambda: len(
                iam.list_access_keys(UserName=unique)["AccessKeyMetadata"]
            ),
        )
    server = servers[combo.backend]
    proxy = FlakyProxy(server.host, server.port)
    password = "Init-" + unique + "-pw"
    server.create_login(unique, password)
    engine = {"postgres": "postgres", "mariadb": "mariadb", "redis": "redis"}[combo.backend]
    value = {
        "engine": engine,
        "host": "127.0.0.1",
        "port": proxy.port,
        "username": unique,
        "password": password,
    }
    if combo.backend != "redis":
        value["dbname"] = "app"
    if combo.strategy == "alternating-users":
        master, master_password = unique + "_m", "Master-" + unique
        server.create_login(master, master_password, superuser=True)
        master_value = {**value, "username": master, "password": master_password}
        value["masterarn"] = sm.create_secret(
            Name=f"faults/{unique}/master",
            SecretString=json.dumps(master_value),
            Tags=[
                {"Key": "SecretRotationMaster", "Value": rt.stack_name},
                {"Key": "SecretRotationGroup", "Value": "faults"},
            ],
        )["ARN"]
    arn = sm.create_secret(
        Name=f"faults/{unique}",
        SecretString=json.dumps(value),
        Tags=[{"Key": "SecretRotationGroup", "Value": "faults"}],
    )["ARN"]
    held = None
    if combo.backend == "redis":
        held = lambda: _redis_passwords(server, unique)  # noqa: E731
    # logins go straight to the server: the invariant is about credentials, not the network
    return Subject(
        arn,
        combo.strategy,
        lambda creds: server.can_login(creds["username"], creds["password"]),
        credentials_held=held,
        proxy=proxy,
    )


def _redis_passwords(server: DatabaseServer, username: str) -> int:
    admin = server.admin_connection()
    try:
        return len(admin.execute_command("ACL", "GETUSER", username)["passwords"])
    finally:
        admin.close()


# --- faults ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    install: Callable[[contextlib.ExitStack, Combo, Subject, Any], None]
    applies: Callable[[Combo], bool] = lambda _combo: True
    #: the state machine sees this failure, so AWSCURRENT must log in once the attempt ends
    #: (single-user by rolling back; the other strategies never touch it)
    current_works_after_failure: bool = False
    #: transient: retries inside the first rotation absorb it, and nobody is alerted; else
    #: the rotation fails once, announces it exactly once, and the retry completes it
    absorbed: bool = False


def _wrap(
    stack: contextlib.ExitStack,
    owner: Any,
    method: str,
    *,
    when: str,
    fire: Callable[[], None],
    times: int = 1,
    on_call: int = 1,
) -> None:
    """Patch ``owner.method`` so that calls number on_call..on_call+times-1 fire the fault.

    Only calls made by the functions count (threads the local runtime names ``lambda:...``):
    the harness's own logins and reads never trip a fault.
    """
    original = getattr(owner, method)
    calls = {"n": 0}
    lock = threading.Lock()

    def patched(*args: Any, **kwargs: Any) -> Any:
        if not threading.current_thread().name.startswith("lambda:"):
            return original(*args, **kwargs)
        with lock:
            calls["n"] += 1
            hit = on_call <= calls["n"] < on_call + times
        if hit and when == "before":
            fire()
        result = original(*args, **kwargs)
        if hit and when == "after":
            fire()
        return result

    stack.enter_context(mock.patch.object(owner, method, patched))


def _crash() -> None:
    raise InjectedCrash("injected crash")


def _hang() -> None:
    # Outlive the Lambda timeout, then die without doing anything more (a killed sandbox).
    time.sleep(WORKER_TIMEOUT + 1)
    raise InjectedCrash("killed after its timeout")


def _aws_error(code: str) -> Callable[[], None]:
    def fire() -> None:
        from moto.core.exceptions import JsonRESTError

        raise JsonRESTError(code, f"injected {code}")

    return fire


def _change_seam(combo: Combo) -> tuple[Any, str]:
    """The call in which each strategy's worker changes the backend."""
    from rotation_core.adapters.credentials.iam_keys import IamAccessKeys as IamKeys
    from rotation_core.adapters.credentials.redis_acl import RedisAclPasswords as RedisAcl
    from rotation_core.adapters.database import DatabaseEngine

    if combo.backend == "iam":
        return IamKeys, "create"
    if combo.backend == "redis":
        return RedisAcl, "add_password"
    if combo.strategy == "alternating-users":
        return DatabaseEngine, "sync_clone"
    return DatabaseEngine, "change_own_password"


def _at_change(when: str, fire: Callable[[], None]) -> Callable[..., None]:
    def install(stack: contextlib.ExitStack, combo: Combo, _subject: Subject, _rt: Any) -> None:
        owner, method = _change_seam(combo)
        _wrap(stack, owner, method, when=when, fire=fire)

    return install


def _router_write(method: str, when: str) -> Callable[..., None]:
    def install(stack: contextlib.ExitStack, _combo: Combo, _subject: Subject, _rt: Any) -> None:
        from rotation_core.adapters.secretsmanager import SecretsManagerWriter as SecretWriter

        _wrap(stack, SecretWriter, method, when=when, fire=_crash)

    return install


def _moto(module: str, cls: str, method: str, code: str, times: int) -> Callable[..., None]:
    def install(stack: contextlib.ExitStack, _combo: Combo, _subject: Subject, _rt: Any) -> None:
        import importlib

        owner = getattr(importlib.import_module(module), cls)
        _wrap(stack, owner, method, when="before", fire=_aws_error(code), times=times)

    return install


def _backend_down(stack: contextlib.ExitStack, combo: Combo, subject: Subject, rt: Any) -> None:
    """The backend stops answering when setSecret begins (IAM: CreateAccessKey fails twice),
    and is back before the state machine's retries run out."""
    if combo.backend == "iam":
        from moto.iam.exceptions import IAMException
        from moto.iam.models import IAMBackend

        def unavailable() -> None:
            raise IAMException("ServiceFailure", "injected: IAM is unavailable")

        _wrap(stack, IAMBackend, "create_access_key", when="before", fire=unavailable, times=2)
        return

    def take_down(spec: Any, event: Any) -> None:
        if spec.logical_id.endswith("SetSecretFunction") and not taken:
            taken.append(1)
            subject.proxy.refuse_next(2)  # two attempts fail; the third (last retry) connects

    taken: list[int] = []
    rt.host.before_invoke.append(take_down)
    stack.callback(rt.host.before_invoke.remove, take_down)


def _test_fails(stack: contextlib.ExitStack, combo: Combo, _subject: Subject, _rt: Any) -> None:
    """The new credential is refused by the test (a permanent error): roll back, alert."""
    from rotation_core.adapters.credentials.iam_keys import IamAccessKeys as IamKeys
    from rotation_core.adapters.credentials.redis_acl import RedisAclPasswords as RedisAcl
    from rotation_core.adapters.database import DatabaseEngine
    from rotation_core.exceptions import ProbeFailedError, RotationStateError

    if combo.backend == "iam":

        def refuse() -> None:
            raise RotationStateError("injected: the key belongs to someone else")

        _wrap(stack, IamKeys, "identity", when="before", fire=refuse)
        return

    def probe_fails() -> None:
        raise ProbeFailedError("injected: read probe failed")

    owner = RedisAcl if combo.backend == "redis" else DatabaseEngine
    _wrap(stack, owner, "probe", when="before", fire=probe_fails)


def _rollback_crashes(stack: contextlib.ExitStack, combo: Combo, subject: Subject, rt: Any) -> None:
    """The test fails and the rollback dies right after undoing the change."""
    from rotation_core.adapters.credentials.iam_keys import IamAccessKeys as IamKeys
    from rotation_core.adapters.credentials.redis_acl import RedisAclPasswords as RedisAcl
    from rotation_core.adapters.database import DatabaseEngine

    _test_fails(stack, combo, subject, rt)
    if combo.backend == "iam":
        _wrap(stack, IamKeys, "set_status", when="after", fire=_crash)
    elif combo.backend == "redis":
        _wrap(stack, RedisAcl, "remove_password", when="after", fire=_crash)
    else:  # the rollback's change_own_password is the second call (setSecret made the first)
        _wrap(stack, DatabaseEngine, "change_own_password", when="after", fire=_crash, on_call=2)


FAULTS = [
    Fault("worker crashes before its change", _at_change("before", _crash)),
    Fault("worker crashes after its change", _at_change("after", _crash)),
    Fault("worker times out before its change", _at_change("before", _hang), absorbed=True),
    Fault("worker times out after its change", _at_change("after", _hang), absorbed=True),
    Fault("router crashes before PutSecretValue", _router_write("put_pending", "before")),
    Fault("router crashes after PutSecretValue", _router_write("put_pending", "after")),
    Fault("router crashes before the label move", _router_write("finish", "before")),
    Fault("router crashes after the label move", _router_write("finish", "after")),
    Fault(
        "Secrets Manager throttles",
        _moto(
            "moto.secretsmanager.models",
            "SecretsManagerBackend",
            "get_secret_value",
            "ThrottlingException",
            3,
        ),
        absorbed=True,
    ),
    Fault(
        "KMS fails to encrypt",
        _moto("moto.kms.models", "KmsBackend", "encrypt", "KMSInternalException", 1),
        absorbed=True,
    ),
    Fault(
        "KMS fails to decrypt",
        _moto("moto.kms.models", "KmsBackend", "decrypt", "KMSInternalException", 1),
    ),
    Fault("backend down, then back", _backend_down, absorbed=True),
    Fault("the test refuses the new credential", _test_fails, current_works_after_failure=True),
    Fault(
        "the rollback crashes after undoing",
        _rollback_crashes,
        applies=lambda combo: combo.strategy != "alternating-users",
    ),
]


# --- running a scenario ---------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    combo: str
    fault: str
    rotations: int = 0
    invariant_checks: int = 0
    invariant_failures: list[str] = field(default_factory=list)
    canary_logins: int = 0
    canary_failures: int = 0
    alerts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and not self.invariant_failures


class Canary:
    """A client that keeps reading AWSCURRENT and logging in with it."""

    def __init__(self, rt: Any, subject: Subject) -> None:
        self._rt, self._subject = rt, subject
        self._stop = threading.Event()
        self.logins = self.failures = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="canary")

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        sm = self._rt.client("secretsmanager")
        while not self._stop.is_set():
            try:
                creds = json.loads(sm.get_secret_value(SecretId=self._subject.arn)["SecretString"])
                ok = self._subject.logs_in(creds)
            except Exception:
                ok = False
            self.logins += 1
            self.failures += 0 if ok else 1
            self._stop.wait(0.05)


def versions(rt: Any, arn: str) -> dict[str, tuple[list[str], dict[str, Any] | None]]:
    """Every version with its labels and value (None when it holds none)."""
    sm = rt.client("secretsmanager")
    found: dict[str, tuple[list[str], dict[str, Any] | None]] = {}
    for version in sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]:
        try:
            value = json.loads(
                sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])["SecretString"]
            )
        except Exception:
            value = None
        found[version["VersionId"]] = (list(version.get("VersionStages", [])), value)
    return found


def _labelled(found: dict[str, tuple[list[str], Any]], stage: str) -> dict[str, Any] | None:
    return next((value for stages, value in found.values() if stage in stages), None)


def check_invariant(rt: Any, subject: Subject) -> str | None:
    """Invariant 4, by logging in: None when it holds, else what failed."""
    found = versions(rt, subject.arn)
    current, pending = _labelled(found, CURRENT), _labelled(found, PENDING)
    if current is not None and subject.logs_in(current):
        return None
    if subject.strategy == "single-user" and pending is not None and subject.logs_in(pending):
        return None
    return (
        "neither AWSCURRENT nor AWSPENDING logs in"
        if subject.strategy == "single-user"
        else "AWSCURRENT does not log in"
    )


def run_scenario(rt: Any, combo: Combo, fault: Fault, subject: Subject) -> ScenarioResult:
    result = ScenarioResult(combo=combo.name, fault=fault.name)
    original = _labelled(versions(rt, subject.arn), CURRENT)

    def at_boundary(invocation: Any) -> None:
        if isinstance(invocation.event, dict) and "ClientRequestToken" in invocation.event:
            result.invariant_checks += 1
            broken = check_invariant(rt, subject)
            if broken:
                step = invocation.event.get("Step")
                result.invariant_failures.append(
                    f"after {step} (rotation {result.rotations + 1}): {broken}"
                )

    rt.host.after_invoke.append(at_boundary)
    try:
        with Canary(rt, subject) as canary:
            with contextlib.ExitStack() as faults:
                fault.install(faults, combo, subject, rt)
                outcome = _rotate(rt, subject, result)
            if fault.current_works_after_failure and not outcome.succeeded:
                current = _labelled(versions(rt, subject.arn), CURRENT)
                result.invariant_checks += 1
                if current is None or not subject.logs_in(current):
                    result.invariant_failures.append(
                        "AWSCURRENT does not log in after the failed rotation"
                    )
            # Secrets Manager retries an unfinished rotation; one whose labels already moved
            # (the router died after finishSecret's write) is finished.
            while not _finished(rt, subject, outcome) and result.rotations < 3:
                outcome = _rotate(rt, subject, result, retry=True)
        result.canary_logins, result.canary_failures = canary.logins, canary.failures
    finally:
        rt.host.after_invoke.remove(at_boundary)
        if subject.proxy is not None:
            subject.proxy.close()
    result.alerts = len(rt.alerts())
    if fault.absorbed and (result.rotations != 1 or result.alerts):
        result.problems.append(
            f"a transient fault should be absorbed: {result.rotations} rotations, {result.alerts} alerts"
        )
    if not fault.absorbed and result.alerts != 1:
        result.problems.append(f"{result.alerts} alerts, expected exactly one")
    if not _finished(rt, subject, outcome):
        result.problems.append(
            f"still failing after {result.rotations} rotations: {(outcome.error or {}).get('errorMessage', '')[:200]}"
        )
        return result
    _check_end_state(rt, subject, original, result)
    if subject.strategy != "single-user" and result.canary_failures:
        result.problems.append(
            f"{result.canary_failures} failed client logins (this strategy promises none)"
        )
    return result


def _finished(rt: Any, subject: Subject, outcome: Any) -> bool:
    if outcome.succeeded:
        return True
    stages = versions(rt, subject.arn).get(outcome.token, ([], None))[0]
    return CURRENT in stages


def _rotate(rt: Any, subject: Subject, result: ScenarioResult, *, retry: bool = False) -> Any:
    result.rotations += 1
    try:
        # a retry is Secrets Manager's own, with the unfinished token (RotateSecret refuses)
        return rt.retry_rotation(subject.arn) if retry else rt.rotate(subject.arn)
    except Exception as exc:  # RotateSecret itself refused (e.g. still rotating)
        result.problems.append(f"RotateSecret raised {type(exc).__name__}")
        raise


def _check_end_state(rt: Any, subject: Subject, original: Any, result: ScenarioResult) -> None:
    found = versions(rt, subject.arn)
    current, previous = _labelled(found, CURRENT), _labelled(found, PREVIOUS)
    expected = {CURRENT} if subject.strategy == "single-user" else {CURRENT, PREVIOUS}
    working: set[str] = set()
    for stages, value in found.values():
        if value is not None and subject.logs_in(value):
            labels = [s for s in stages if s in (CURRENT, PREVIOUS)] or ["an unlabeled version"]
            working.update(labels)
    if working != expected:
        result.problems.append(
            f"logging in works for {sorted(working)}, expected {sorted(expected)}"
        )
    if current == original:
        result.problems.append("AWSCURRENT did not change")
    if subject.strategy != "single-user" and previous != original:
        result.problems.append("AWSPREVIOUS is not the original credential")
    if subject.credentials_held is not None and subject.credentials_held() != 2:
        result.problems.append(
            f"the backend holds {subject.credentials_held()} credentials, expected 2"
        )


@contextlib.contextmanager
def fault_runtime(trust: dict[str, dict[str, str]] | None = None) -> Iterator[Any]:
    """The local stack with short worker timeouts and retirement out of the way; ``trust``
    (the integration tier's test_ca_stack_settings) makes its functions trust the test CA."""
    from rotator.local import LocalRuntime

    trust = trust or {}
    with LocalRuntime(
        worker_timeout=WORKER_TIMEOUT,
        parameter_overrides={
            "RetireAfterSeconds": "3600",
            "DeleteAfterSeconds": "3600",
            **trust.get("parameter_overrides", {}),
        },
        function_environment=trust.get("function_environment"),
    ) as rt:
        yield rt
