"""``rotator status | doctor | plan SECRET``: what an operator needs to know, and label repairs.

The operator's own credentials read metadata only (DescribeSecret, ListSecretVersionIds, the
stack's outputs, the Step Functions executions) and never a value. Everything that needs a
value (logging in, privileges, the statements a rotation would run) happens in the stack's
read-only ``ProbeFunction`` (:mod:`rotation_core.probe`), which answers with findings only.
``doctor --repair`` changes staging labels only, and only after confirmation.

Findings have a level: ``ok``, ``note`` (worth knowing, nothing to fix) or ``problem``. Exit
status: 0 nothing to fix, 3 problems found (or a plan that would fail), 1 error, 2 usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rotation_core.recovery import recovery, urgent
from rotation_core.router import belongs_to_rotation
from rotation_core.safety_net import _console_url as console_url
from rotator.migrate import MASTER_TAG, MigrationPlan, _iam_user, _master

#: how many executions per state machine are searched (newest first)
EXECUTION_SCAN_LIMIT = 1000
_STUCK_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class Finding:
    level: str  # "ok", "note" or "problem"
    subject: str
    text: str


@dataclass
class Report:
    command: str
    secret: str
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    next_steps: str | None = None

    def add(self, level: str, subject: str, text: str) -> None:
        self.findings.append(Finding("problem" if level == "block" else level, subject, text))

    @property
    def problems(self) -> bool:
        return any(f.level == "problem" for f in self.findings)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "problems": self.problems}, indent=2, default=str)

    def text(self, extra: list[str] | None = None) -> str:
        marks = {"ok": "ok     ", "note": "note   ", "problem": "PROBLEM"}
        lines = [f"{self.command} {self.secret}"]
        lines += extra or []
        lines += [f"  {marks[f.level]} {f.subject}: {f.text}" for f in self.findings]
        if self.next_steps:
            lines.append(f"  next: {self.next_steps}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Stack:
    """What the commands need of the deployed stack (its outputs)."""

    name: str
    router_arn: str | None
    state_machine_arns: tuple[str, ...]
    probe_arn: str | None

    @classmethod
    def from_outputs(cls, name: str, outputs: dict[str, str]) -> Stack:
        machines = tuple(
            outputs[k] for k in ("StateMachineArn", "RetirementStateMachineArn") if k in outputs
        )
        return cls(
            name, outputs.get("RouterFunctionArn"), machines, outputs.get("ProbeFunctionArn")
        )


# --- the probe -----------------------------------------------------------------------------------


class ProbeError(Exception):
    """The probe function failed (its error class and value-free message)."""


def invoke_probe(lambda_client: Any, probe_arn: str | None, secret: str, *, plan: bool) -> Any:
    """Invoke the stack's ProbeFunction and return its findings."""
    if not probe_arn:
        raise ProbeError("the stack has no ProbeFunctionArn output (deploy this version first)")
    answer = lambda_client.invoke(
        FunctionName=probe_arn, Payload=json.dumps({"SecretId": secret, "Plan": plan}).encode()
    )
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        error = payload if isinstance(payload, dict) else {}
        raise ProbeError(
            f"the probe failed: {error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
        )
    return payload


# --- shared reads ----------------------------------------------------------------------------------


def stuck_pending(meta: dict[str, Any]) -> str | None:
    """The version holding AWSPENDING without AWSCURRENT (an unfinished rotation), if any."""
    stages = meta.get("VersionIdsToStages", {})
    return next((v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s), None)


def executions_of(
    sfn: Any, stack: Stack, secret_arn: str, tokens: list[str], region: str
) -> list[dict[str, Any]]:
    """This secret's executions (every step, attempt and retirement of ``tokens``), newest
    first, found by the names the router gives them (``rotation_core.router.execution_name``)."""
    found = []
    for machine in stack.state_machine_arns:
        seen = 0
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
            for execution in page["executions"]:
                seen += 1
                token = next(
                    (t for t in tokens if belongs_to_rotation(execution["name"], secret_arn, t)),
                    None,
                )
                if token is not None:
                    found.append(_execution(sfn, execution, token, region))
            if seen >= EXECUTION_SCAN_LIMIT:
                break
    return sorted(found, key=lambda e: str(e["started"]), reverse=True)


def _execution(sfn: Any, execution: dict[str, Any], token: str, region: str) -> dict[str, Any]:
    entry = {
        "step": execution["name"].split("-", 1)[0],
        "token": token,
        "status": execution["status"],
        "started": _iso(execution.get("startDate")),
        "stopped": _iso(execution.get("stopDate")),
        "error": None,
        "console_url": console_url(region, execution["executionArn"]),
    }
    if execution["status"] in _STUCK_STATUSES:
        # the error class only: the cause is for the console (value-free, but long)
        entry["error"] = sfn.describe_execution(executionArn=execution["executionArn"]).get("error")
    return entry


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def _versions(sm: Any, meta: dict[str, Any]) -> list[dict[str, Any]]:
    created: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"SecretId": meta["ARN"], "MaxResults": 100}
    while True:  # botocore has no paginator for ListSecretVersionIds
        page = sm.list_secret_version_ids(**kwargs)
        created.update({v["VersionId"]: _iso(v.get("CreatedDate")) for v in page["Versions"]})
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return [
        {"version": v, "stages": sorted(s), "created": created.get(v)}
        for v, s in sorted(
            meta.get("VersionIdsToStages", {}).items(), key=lambda i: str(created.get(i[0]))
        )
    ]


# --- status --------------------------------------------------------------------------------------


def status(sm: Any, sfn: Any, stack: Stack, secret: str, region: str) -> Report:
    """Versions and labels, last and next rotation, this secret's executions, what to do next."""
    meta = sm.describe_secret(SecretId=secret)
    report = Report("status", meta["Name"])
    tokens = list(meta.get("VersionIdsToStages", {}))
    executions = executions_of(sfn, stack, meta["ARN"], tokens, region)
    report.details = {
        "arn": meta["ARN"],
        "rotation_enabled": bool(meta.get("RotationEnabled")),
        "rotation_function": meta.get("RotationLambdaARN"),
        "rotation_rules": meta.get("RotationRules"),
        "last_rotated": _iso(meta.get("LastRotatedDate")),
        "next_rotation": _iso(meta.get("NextRotationDate")),
        "versions": _versions(sm, meta),
        "executions": executions,
    }
    _rotation_function(report, meta, stack)
    _pending(report, meta, executions, logins=None)
    return report


def status_text(report: Report) -> str:
    d = report.details
    lines = [
        f"  rotation: {'on' if d['rotation_enabled'] else 'off'}, last {d['last_rotated'] or '-'},"
        f" next {d['next_rotation'] or '-'}",
        "  versions:",
    ]
    lines += [
        f"    {v['version']}  {','.join(v['stages']) or '-'}  created {v['created'] or '-'}"
        for v in d["versions"]
    ]
    lines.append(f"  executions ({len(d['executions'])}):")
    for e in d["executions"]:
        error = f" {e['error']}" if e["error"] else ""
        lines.append(f"    {e['started']}  {e['step']:<12} {e['status']}{error}")
        lines.append(f"      {e['console_url']}")
    return report.text(lines)


def _rotation_function(report: Report, meta: dict[str, Any], stack: Stack) -> None:
    configured = meta.get("RotationLambdaARN")
    if not meta.get("RotationEnabled"):
        report.add(
            "problem" if configured else "note",
            "rotation",
            "automatic rotation is off (rotate-secret turns it back on)",
        )
    if stack.router_arn and configured != stack.router_arn:
        report.add(
            "problem",
            "rotation function",
            f"the secret's rotation function is {configured or 'none'}, not this stack's router "
            f"{stack.router_arn} (rotator migrate switches it)",
        )
    elif configured:
        report.add("ok", "rotation function", "this stack's router")


def _pending(
    report: Report,
    meta: dict[str, Any],
    executions: list[dict[str, Any]],
    logins: dict[str, bool | None] | None,
) -> str | None:
    """Finds a stuck AWSPENDING and says what to do; returns its version when stuck."""
    token = stuck_pending(meta)
    if token is None:
        report.add("ok", "AWSPENDING", "no unfinished rotation")
        return None
    mine = [e for e in executions if e["token"] == token]
    if any(e["status"] == "RUNNING" for e in mine):
        report.add(
            "note", "AWSPENDING", f"version {token} is being rotated now (running execution)"
        )
        return None
    failed = next((e for e in mine if e["status"] in _STUCK_STATUSES), None)
    why = (
        f"its last execution {failed['step']} ended {failed['status']}"
        if failed
        else "no execution runs"
    )
    report.add(
        "problem",
        "AWSPENDING",
        f"version {token} holds AWSPENDING without AWSCURRENT and {why}: rotate-secret is "
        "refused until it is finished or cleared",
    )
    if logins and logins.get("AWSPENDING") and not logins.get("AWSCURRENT"):
        report.next_steps = urgent(meta["ARN"], token)
    else:
        report.next_steps = recovery(meta["ARN"], token)
    return token


# --- doctor --------------------------------------------------------------------------------------


@dataclass
class Repair:
    """One label change: UpdateSecretVersionStage's arguments, and why."""

    why: str
    arguments: dict[str, str]

    def text(self) -> str:
        args = " ".join(f"--{_kebab(k)} {v}" for k, v in self.arguments.items() if k != "SecretId")
        return f"aws secretsmanager update-secret-version-stage --secret-id {self.arguments['SecretId']} {args}  ({self.why})"


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


def doctor(
    sm: Any, sfn: Any, iam: Any, lambda_client: Any, stack: Stack, secret: str, region: str
) -> tuple[Report, list[Repair]]:
    """Stuck labels, which versions log in, the tags and rotation settings the stack needs."""
    meta = sm.describe_secret(SecretId=secret)
    report = Report("doctor", meta["Name"])
    tokens = list(meta.get("VersionIdsToStages", {}))
    executions = executions_of(sfn, stack, meta["ARN"], tokens, region)
    _rotation_function(report, meta, stack)
    try:
        found = invoke_probe(lambda_client, stack.probe_arn, meta["ARN"], plan=False)
    except ProbeError as exc:
        report.add("problem", "probe", str(exc))
        found = {}
    report.details = {"arn": meta["ARN"], "probe": found}
    logins = _probe_findings(report, found, meta)
    _tags(report, sm, iam, found, meta, stack)
    token = _pending(report, meta, executions, logins=logins if found else None)
    repairs: list[Repair] = []
    if token is not None:
        repairs = _label_repairs(report, meta, token, logins if found else {})
    report.details["repairs"] = [asdict(r) for r in repairs]
    return report, repairs


def _label_repairs(
    report: Report, meta: dict[str, Any], token: str, logins: dict[str, bool | None]
) -> list[Repair]:
    arn = meta["ARN"]
    current = next(
        (v for v, s in meta.get("VersionIdsToStages", {}).items() if "AWSCURRENT" in s), None
    )
    if logins.get("AWSCURRENT") is True:
        return [
            Repair(
                "AWSCURRENT logs in: clear the unfinished version; the next rotation starts afresh",
                {"SecretId": arn, "VersionStage": "AWSPENDING", "RemoveFromVersionId": token},
            )
        ]
    # Never promote AWSPENDING here. Whoever may stage a version could have written it (naming
    # another user or server), and nothing here knows whether its test passed; the router moves
    # AWSCURRENT only to a version its own createSecret wrote and testSecret proved.
    if logins.get("AWSPENDING") is True and current:
        report.add(
            "problem",
            "repair",
            "only AWSPENDING logs in: finish the rotation through the router (Secrets Manager "
            "retries it; or rotate again with the same token) so that it is tested before it "
            "becomes current; doctor never moves AWSCURRENT",
        )
        return []
    report.add(
        "note",
        "repair",
        "no label change is safe without knowing that AWSCURRENT logs in: fix the logins first",
    )
    return []


def apply_repairs(sm: Any, repairs: list[Repair]) -> None:
    for repair in repairs:
        sm.update_secret_version_stage(**repair.arguments)


def _probe_findings(
    report: Report, found: dict[str, Any], meta: dict[str, Any]
) -> dict[str, bool | None]:
    """Findings from the probe's answer; returns which labels (and the master) log in."""
    logins: dict[str, bool | None] = {}
    if not found:
        return logins
    schema = found.get("Schema") or {}
    if not schema.get("Valid"):
        report.add("problem", "secret", f"AWSCURRENT does not validate: {schema.get('Error')}")
        return logins
    report.add("ok", "secret", f"{found.get('Strategy')} on {found.get('Engine')}; schema valid")
    if found.get("NotProbed"):
        report.add("note", "logins", str(found["NotProbed"]))
        return logins
    tls = found.get("Tls") or {}
    if tls.get("Error"):
        report.add("problem", "TLS", str(tls["Error"]))
    else:
        report.add("ok" if tls.get("Verified") else "note", "TLS", str(tls.get("Mode")))
    if not found.get("Reachable"):
        report.add(
            "problem",
            "reachability",
            "no login reached a server that proved who it is (the logins below say why)",
        )
    for entry in found.get("Logins", []):
        who = str(entry.get("Who"))
        for label in who.split("/"):
            logins[label] = entry.get("LogsIn")
        if entry.get("Empty"):
            report.add("note", f"login {who}", "no value yet (createSecret has not written it)")
            continue
        if entry.get("LogsIn"):
            report.add("ok", f"login {who}", f"logs in as {entry.get('Account')}")
        else:
            important = "AWSCURRENT" in who or who == "master"
            level = "problem" if important else "note"
            report.add(level, f"login {who}", str(entry.get("Error") or "does not log in"))
    for privilege in found.get("Privileges", []):
        if privilege.get("Error"):
            report.add("problem", f"privilege ({privilege['Who']})", str(privilege["Error"]))
        else:
            held = privilege.get("Held")
            state = {True: "held", False: "MISSING"}.get(held, "unknown (no login)")
            report.add(
                "ok" if held else "problem",
                f"privilege ({privilege['Who']})",
                f"{privilege['Needed']}: {state}",
            )
    differences = found.get("CloneDifferences")
    if isinstance(differences, dict):
        report.add("note", "clone", str(differences.get("Error")))
    elif differences:
        report.add("note", "clone", "; ".join(differences))
    elif differences is not None:
        report.add("ok", "clone", "the idle user is the original's twin")
    return logins


def _tags(
    report: Report, sm: Any, iam: Any, found: dict[str, Any], meta: dict[str, Any], stack: Stack
) -> None:
    """The tags the stack's roles need, checked by migrate's own checks (written once)."""
    identity = found.get("Identity") or {}
    tags = {t["Key"]: t["Value"] for t in meta.get("Tags", [])}
    collected = MigrationPlan(secret=meta["Name"])
    if found.get("Strategy") == "alternating-users" or identity.get("masterarn"):
        _master(collected, sm, identity, tags, stack.name)
        if not any(f.subject == "master" for f in collected.findings):
            collected.add("ok", "master", f"tagged {MASTER_TAG}={stack.name}")
    if found.get("Kind") == "iam" and identity.get("username"):
        _iam_user(collected, iam, str(identity["username"]), stack.name)
    for finding in collected.findings:
        report.add(finding.level, finding.subject, finding.text)


# --- plan ----------------------------------------------------------------------------------------


def plan(lambda_client: Any, stack: Stack, secret: str) -> Report:
    """A dry run through the probe: nothing changes."""
    found = invoke_probe(lambda_client, stack.probe_arn, secret, plan=True)
    report = Report("plan", str(found.get("SecretName", secret)))
    report.details = {"probe": found}
    _probe_findings(report, found, {})
    statements = found.get("Statements")
    outcome = str(found.get("PlanOutcome", ""))
    if statements is not None:
        level = "problem" if outcome.startswith("setSecret would fail") else "note"
        report.add(level, "setSecret", outcome)
    return report


def plan_text(report: Report) -> str:
    found = report.details.get("probe", {})
    lines = []
    statements = found.get("Statements")
    if statements:
        lines.append("  statements setSecret would run (values redacted):")
        lines += [f"    {s}" for s in statements]
    return report.text() + ("\n" + "\n".join(lines) if lines else "")


def confirm(prompt: Callable[[str], str], count: int) -> bool:
    """Ask before changing anything; anything but y/yes is no."""
    try:
        answer = prompt(f"apply these {count} label change(s)? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
