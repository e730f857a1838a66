"""The operator's probe: what a rotation of one secret would find, as findings, never values.

``rotator status``, ``rotator doctor`` and ``rotator plan`` invoke the stack's read-only
``ProbeFunction`` (in the VPC beside the database workers, with the workers' read policies and
no write permission). It reads the secret and, where the secret names one, its master through
the same :class:`~rotation_core.versions.SecretVersions` the workers use (so a master serves
only its own ``SecretRotationGroup``), logs in through the same engines, and answers with:

- the secret's schema check, strategy and engine (``SchemaError`` when it does not validate);
- whether TLS is verified (or plaintext, where the deployment and the secret allow it);
- for each labelled version and the master: whether it logs in, as which account, and the
  error class when it cannot (unreachable, refused, server identity not proven);
- the privileges each strategy needs and whether they are held;
- for alternating users: how the idle user differs from a twin of the original;
- with ``Plan``: the statements setSecret would run, from the strategy's own flow over a
  connection that runs reads and records writes (:mod:`rotation_core.adapters.dry_run`), every
  password literal redacted. The flow gets a placeholder password, never a stored one.

Nothing is written: no secret version, no label, no statement other than reads and logins.
Errors name classes, fields, users and hosts (the taxonomy's messages), never a value.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rotation_core.adapters.dry_run import DivergedError
from rotation_core.config import setting
from rotation_core.exceptions import (
    AuthenticationFailedError,
    DatabaseUnavailableError,
    InvalidEventError,
    InvalidSecretError,
    RotationError,
    ServerIdentityError,
)
from rotation_core.models import (
    DatabaseCredentials,
    PasswordPolicy,
    SecretMetadata,
    StepInput,
    check_strategy,
    parse_secret_string,
    secret_kind,
)
from rotation_core.ports import DatabaseEngine, SecretStore
from rotation_core.router import resolve_strategy
from rotation_core.strategies import alternating_users, single_user
from rotation_core.strategies.common import WorkerContext
from rotation_core.versions import SecretVersions
from rotation_core.vocabulary import Stage, Step, Strategy

PROBE_VERSION = 1
DB = DatabaseCredentials.from_secret
#: the token of the pending version a dry run pretends to have (never stored)
DRY_RUN_TOKEN = "rotator-plan-dry-run"  # noqa: S105 - a version id, not a password
_EVENT_KEYS = frozenset({"SecretId", "Plan"})
#: what a master needs, per engine family, to set another user's password and keep a clone
MASTER_NEEDS = {"postgres": ("CREATEROLE",), "mysql": ("CREATE USER", "GRANT OPTION")}


@dataclass(frozen=True)
class ProbeRequest:
    secret_id: str
    plan: bool = False

    @classmethod
    def parse(cls, event: Any) -> ProbeRequest:
        """The probe's event: ``{"SecretId": name or ARN, "Plan": bool}``; nothing else."""
        if not isinstance(event, dict):
            raise InvalidEventError("probe event must be a JSON object")
        unknown = sorted(set(event) - _EVENT_KEYS)
        if unknown:
            raise InvalidEventError(f"probe event field {unknown[0]!r} is not allowed")
        secret_id = event.get("SecretId")
        if not isinstance(secret_id, str) or not 0 < len(secret_id) <= 2048:
            raise InvalidEventError("probe event field 'SecretId' must be a secret name or ARN")
        plan = event.get("Plan", False)
        if not isinstance(plan, bool):
            raise InvalidEventError("probe event field 'Plan' must be true or false")
        return cls(secret_id, plan)


def error_of(exc: BaseException) -> str:
    """An error as findings carry it: the taxonomy's message (value-free), else the class."""
    if isinstance(exc, RotationError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def _rotated_by_this_stack(rotation_lambda_arn: str | None) -> None:
    """The probe's role may also describe and read master secrets (it logs in with a secret's
    master): asked about a master itself, or any secret another function rotates, it answers
    nothing (identities and logins of masters are not for whoever may invoke the probe)."""
    router = setting("ROUTER_ARN")
    if router is None:
        return
    # exactly the router's alias, as the roles' AllowRotationLambdaArn conditions require
    if rotation_lambda_arn != router:
        raise InvalidSecretError(
            "the secret is not rotated by this stack's router: the probe answers only about "
            "secrets it rotates"
        )


def probe(ctx: WorkerContext, request: ProbeRequest) -> dict[str, Any]:
    """Everything the operator commands need to know about one secret; changes nothing."""
    meta = ctx.secrets.describe(request.secret_id)
    _rotated_by_this_stack(meta.rotation_lambda_arn)
    answer: dict[str, Any] = {
        "ProbeVersion": PROBE_VERSION,
        "SecretArn": meta.arn,
        "SecretName": meta.name,
    }
    try:
        current_raw = parse_secret_string(
            ctx.secrets.get_string(meta.arn, stage=str(Stage.CURRENT)), what="AWSCURRENT secret"
        )
        kind = secret_kind(current_raw, what="AWSCURRENT secret")
        strategy = resolve_strategy(meta.tags, current_raw)
        check_strategy(kind, strategy)
        answer.update(Strategy=strategy, Engine=str(current_raw.get("engine")), Kind=kind)
        answer["Identity"] = {
            key: current_raw[key]
            for key in ("username", "host", "port", "dbname", "masterarn")
            if isinstance(current_raw.get(key), str | int)
        }
        if kind != "database":
            answer["Schema"] = {"Valid": True}
            answer["NotProbed"] = f"logins of {kind} secrets are not probed (schema only)"
            return answer
        current = DB(current_raw, what="AWSCURRENT secret")
        answer["Schema"] = {"Valid": True}
    except RotationError as exc:
        answer["Schema"] = {"Valid": False, "Error": error_of(exc)}
        return answer
    step = StepInput(
        step=Step.SET,
        secret_arn=meta.arn,
        token=DRY_RUN_TOKEN,
        strategy=Strategy(strategy),
        engine=current.engine,
        secret_name=meta.name,
    )
    _DatabaseProbe(ctx, meta, step, current, answer).run(plan=request.plan)
    return answer


class _DatabaseProbe:
    def __init__(
        self,
        ctx: WorkerContext,
        meta: SecretMetadata,
        step: StepInput,
        current: DatabaseCredentials,
        answer: dict[str, Any],
    ) -> None:
        self.ctx, self.meta, self.step, self.current, self.answer = ctx, meta, step, current, answer
        self.versions = SecretVersions(ctx.secrets, step)
        self.engine: DatabaseEngine | None = None
        self.master: DatabaseCredentials | None = None

    def run(self, *, plan: bool) -> None:
        try:
            engine = self.ctx.engines(self.current.engine)
        except RotationError as exc:
            self.answer["Schema"] = {"Valid": False, "Error": error_of(exc)}
            return
        self.engine = engine
        self.answer["Tls"] = self._tls()
        self.answer["Logins"] = self._logins()
        reached = [v for v in self.answer["Logins"] if v["Reachable"]]
        self.answer["Reachable"] = bool(reached)
        self.answer["Privileges"] = self._privileges()
        if self.step.strategy == Strategy.ALTERNATING_USERS:
            self.answer["CloneDifferences"] = self._clone_differences()
        if plan:
            self.answer["Statements"], self.answer["PlanOutcome"] = self._statements()

    def _tls(self) -> dict[str, Any]:
        tls = getattr(self.engine, "policy", None)
        try:
            choice = tls.tls.choose(self.current.ssl, self.current.ca_bundle) if tls else None
        except RotationError as exc:
            return {"Verified": False, "Error": error_of(exc)}
        verified = bool(choice and choice.verify)
        return {"Verified": verified, "Mode": "verified" if verified else "plaintext"}

    def _logins(self) -> list[dict[str, Any]]:
        found = []
        for version_id, stages in sorted(self.meta.versions.items()):
            labels = [s for s in stages if s in set(Stage)]
            if not labels:
                continue
            entry: dict[str, Any] = {"Who": "/".join(sorted(labels)), "VersionId": version_id}
            try:
                raw = self.ctx.secrets.get_string(self.meta.arn, stage=None, version_id=version_id)
                if raw is None and Stage.PENDING in labels:
                    # RotateSecret staged the version; createSecret has not written it yet
                    found.append({**entry, "LogsIn": None, "Reachable": False, "Empty": True})
                    continue
                creds = DB(
                    parse_secret_string(raw, what=f"{entry['Who']} secret"),
                    what=f"{entry['Who']} secret",
                )
            except RotationError as exc:
                found.append({**entry, "LogsIn": None, "Reachable": False, "Error": error_of(exc)})
                continue
            found.append({**entry, **self._login(creds)})
        try:
            self.master = self.versions.master(self.current, DB, required=False)
        except RotationError as exc:
            found.append(
                {"Who": "master", "LogsIn": None, "Reachable": False, "Error": error_of(exc)}
            )
            return found
        if self.master is not None:
            found.append({"Who": "master", **self._login(self.master)})
        return found

    def _login(self, creds: DatabaseCredentials) -> dict[str, Any]:
        assert self.engine is not None
        result: dict[str, Any] = {"Username": creds.username}
        try:
            account = self.engine.account(creds)
        except AuthenticationFailedError as exc:
            return {**result, "LogsIn": False, "Reachable": True, "Error": error_of(exc)}
        except (DatabaseUnavailableError, ServerIdentityError) as exc:
            return {**result, "LogsIn": None, "Reachable": False, "Error": error_of(exc)}
        except RotationError as exc:
            return {**result, "LogsIn": None, "Reachable": True, "Error": error_of(exc)}
        shown = "@".join(account) if isinstance(account, tuple) else str(account)
        return {**result, "LogsIn": True, "Reachable": True, "Account": shown}

    def _privileges(self) -> list[dict[str, Any]]:
        assert self.engine is not None
        by_master = self.step.strategy == Strategy.ALTERNATING_USERS or (
            self.meta.tags.get(single_user.SET_BY_TAG, "self").strip().lower() == "master"
        )
        if not by_master:
            return [
                {
                    "Who": "AWSCURRENT",
                    "Needed": "change its own password (no privilege needed)",
                    "Held": self._logs_in("AWSCURRENT"),
                }
            ]
        if self.master is None:
            return [{"Who": "master", "Needed": "a master secret", "Held": False}]
        try:
            held = self.engine.admin_privileges(self.master)
        except (RotationError, NotImplementedError) as exc:
            return [{"Who": "master", "Needed": "read its privileges", "Error": error_of(exc)}]
        needs = MASTER_NEEDS.get(self.current.family, ())
        return [{"Who": "master", "Needed": need, "Held": held.get(need, False)} for need in needs]

    def _logs_in(self, label: str) -> bool | None:
        for entry in self.answer.get("Logins", []):
            if label in str(entry.get("Who", "")).split("/"):
                value = entry.get("LogsIn")
                return value if isinstance(value, bool) else None
        return None

    def _clone_differences(self) -> list[str] | dict[str, str]:
        assert self.engine is not None
        if self.master is None:
            return {"Error": "no master secret to compare the users with"}
        try:
            original = alternating_users._original_account(self.engine, self.current)
            idle = alternating_users.partner_of(self.current.username)
            name = alternating_users.original_of(idle) + alternating_users.CLONE_SUFFIX
            clone = alternating_users._same_host(original, name)
            return self.engine.clone_differences(self.master, original, clone)
        except (RotationError, NotImplementedError) as exc:
            return {"Error": error_of(exc)}

    def _statements(self) -> tuple[list[str], str]:
        """What setSecret would run, from the strategy's own flow (writes recorded, not run)."""
        assert self.engine is not None
        placeholder = "dryrun-" + secrets.token_urlsafe(24)
        dry, statements = self.engine.dry_run(placeholder)
        pending = dict(self.current.raw, password=placeholder)
        if self.step.strategy == Strategy.ALTERNATING_USERS:
            pending["username"] = alternating_users.partner_of(self.current.username)
            set_secret: Callable[[WorkerContext, StepInput], Any] = alternating_users.set_secret
        else:
            set_secret = single_user.set_secret
        ctx = WorkerContext(
            secrets=_WithPending(self.ctx.secrets, self.meta.arn, json.dumps(pending)),
            engines=lambda _engine: dry,
        )
        try:
            set_secret(ctx, self.step)
        except DivergedError:
            return statements, "later statements depend on the ones above (not run)"
        except RotationError as exc:
            return statements, f"setSecret would fail: {error_of(exc)}"
        return statements, "setSecret would run these statements"


class _WithPending:
    """The secret store, plus an AWSPENDING version holding the dry run's placeholder."""

    def __init__(self, store: SecretStore, arn: str, pending: str) -> None:
        self._store, self._arn, self._pending = store, arn, pending

    def describe(self, secret_id: str) -> SecretMetadata:
        return self._store.describe(secret_id)

    def get_string(
        self,
        secret_id: str,
        *,
        stage: str | None = str(Stage.CURRENT),
        version_id: str | None = None,
    ) -> str | None:
        if secret_id == self._arn and version_id == DRY_RUN_TOKEN:
            return self._pending
        return self._store.get_string(secret_id, stage=stage, version_id=version_id)

    def unlabeled_versions(self, secret_id: str, limit: int = 2) -> list[str]:
        return self._store.unlabeled_versions(secret_id, limit)

    def random_password(self, policy: PasswordPolicy) -> str:
        raise AssertionError("a dry run generates no password")
