"""Recorded calls and the report: who called what, what was refused, which statements no call used.

The converse of "every call is allowed" is "every statement is used": a statement no recorded
call needed is a privilege the stack grants for nothing. Calls AWS services make themselves
(Lambda writing logs, Step Functions setting up log delivery, KMS key administration) never
happen locally, so the statements that exist for them sit on :data:`ALLOW_LIST`, each with its
reason; the report lists them apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rotator.iam_checker.policy import (
    Decision,
    Policy,
    Request,
    Statement,
    StatementRef,
    wildcard_match,
)


@dataclass(frozen=True)
class Caller:
    """Who made a call: a Lambda function, a state machine, or an AWS service principal."""

    name: str
    kind: str  # "function", "state machine" or "service"
    role_arn: str = ""


@dataclass(frozen=True)
class CallRecord:
    caller: Caller
    #: the API operation, e.g. ``secretsmanager:GetSecretValue`` or ``lambda:Invoke``
    operation: str
    #: what was authorized (None when the call could not be mapped to a request)
    request: Request | None
    decision: Decision
    note: str = ""

    @property
    def message(self) -> str:
        if self.request is None:
            return f"{self.caller.name}: {self.operation} {self.decision.reason}"
        return self.decision.message(self.request)


@dataclass(frozen=True)
class AllowListEntry:
    """Statements that exist for calls AWS services make themselves (never recorded locally)."""

    reason: str
    #: a statement is excused when every action it names is one of these (exact, any case)
    actions: frozenset[str] = frozenset()
    #: or: a resource-policy statement that lets this service principal invoke a function
    service_principal: str = ""

    def excuses(self, stmt: Statement) -> bool:
        if self.service_principal:
            services = (stmt.principals or {}).get("Service", ())
            return self.service_principal in services
        if not self.actions or stmt.not_actions is not None:
            return False
        listed = {a.lower() for a in self.actions}
        return all(a.lower() in listed for a in stmt.actions)


ALLOW_LIST: tuple[AllowListEntry, ...] = (
    AllowListEntry(
        reason=(
            "Lambda itself uses the execution role to write the function's logs and, for a "
            "function in a VPC, to manage its network interfaces (AWSLambdaBasicExecutionRole, "
            "AWSLambdaVPCAccessExecutionRole); function code never makes these calls. "
            "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html"
        ),
        actions=frozenset(
            {
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            }
        ),
    ),
    AllowListEntry(
        reason=(
            "Lambda and Step Functions send trace segments to X-Ray themselves when tracing "
            "is on. https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html"
        ),
        actions=frozenset(
            {
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            }
        ),
    ),
    AllowListEntry(
        reason=(
            "Step Functions sets up delivery of execution logs to CloudWatch Logs with the "
            "state machine's role when the state machine is created or updated, not during "
            "executions. https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html"
        ),
        actions=frozenset(
            {
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            }
        ),
    ),
    AllowListEntry(
        reason=(
            "Key administration (by the account's administrators, and CloudFormation creating, "
            "updating or deleting the stack); no function administers the key. "
            "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html"
        ),
        actions=frozenset(
            {
                "kms:CreateAlias",
                "kms:Describe*",
                "kms:Enable*",
                "kms:List*",
                "kms:Put*",
                "kms:Update*",
                "kms:Revoke*",
                "kms:Disable*",
                "kms:Get*",
                "kms:Delete*",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:ScheduleKeyDeletion",
                "kms:CancelKeyDeletion",
            }
        ),
    ),
)
# Not on the list: SNS invoking the safety-net function. The local runtime delivers SNS
# messages to Lambda subscribers through the function's resource policy
# (rotator.aws_local.patches.sns_lambda_permission), so a notification published to the
# safety-net topic (as the CloudWatch alarm would) uses that statement like any other call.


@dataclass
class Report:
    """What the recorded calls prove about the policies."""

    #: caller name -> (calls allowed, calls denied)
    calls: dict[str, tuple[int, int]]
    denied: list[CallRecord]
    #: statements no call used and no allow-list entry explains
    unused: list[Statement]
    #: statements no call used, with the allow-list reason
    excused: list[tuple[Statement, str]]
    #: actions named (without wildcards) in used statements that no call needed
    unused_actions: list[tuple[Statement, str]] = field(default_factory=list)
    #: resources (ARNs or patterns) of used statements that no allowed call matched
    unused_resources: list[tuple[Statement, str]] = field(default_factory=list)
    #: what kept the report from covering every policy (e.g. a document that cannot be read)
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every statement is used by some call or explained by the allow-list."""
        return (
            not self.unused
            and not self.unused_actions
            and not self.unused_resources
            and not self.problems
        )

    def text(self) -> str:
        lines = ["IAM checker report", *(f"PROBLEM: {p}" for p in self.problems)]
        lines.append("calls per caller (allowed / denied):")
        for name, (allowed, denied) in sorted(self.calls.items()):
            lines.append(f"  {name}: {allowed} / {denied}")
        if self.denied:
            lines.append("denied calls:")
            lines.extend(f"  {record.message}" for record in self.denied)
        lines.append(f"statements never used: {len(self.unused)}")
        lines.extend(f"  {stmt.ref}" for stmt in self.unused)
        if self.unused_actions:
            lines.append("actions never needed in used statements:")
            lines.extend(f"  {stmt.ref}: {action}" for stmt, action in self.unused_actions)
        if self.unused_resources:
            lines.append("resources no call matched in used statements:")
            lines.extend(f"  {stmt.ref}: {res}" for stmt, res in self.unused_resources)
        lines.append(f"statements for calls AWS makes itself (allow-list): {len(self.excused)}")
        lines.extend(f"  {stmt.ref}: {reason.split('. ')[0]}" for stmt, reason in self.excused)
        return "\n".join(lines)


class Recorder:
    """Thread-safe list of every checked call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records)

    def denied(self) -> list[CallRecord]:
        return [r for r in self.records if not r.decision.allowed]

    def report(
        self,
        universe: Sequence[Policy],
        allow_list: Iterable[AllowListEntry] = ALLOW_LIST,
        include: Callable[[CallRecord], bool] | None = None,
    ) -> Report:
        """The report over ``universe``, counting the records ``include`` accepts (all)."""
        records = [r for r in self.records if include is None or include(r)]
        counts: Counter[tuple[str, bool]] = Counter(
            (r.caller.name, r.decision.allowed) for r in records
        )
        names = sorted({r.caller.name for r in records})
        used_actions: dict[StatementRef, set[str]] = {}
        used_resources: dict[StatementRef, set[str]] = {}
        for record in records:
            if record.decision.allowed and record.request is not None:
                for ref in record.decision.allowed_by:
                    used_actions.setdefault(ref, set()).add(record.request.action)
                    used_resources.setdefault(ref, set()).add(record.request.resource)
        entries = list(allow_list)
        unused: list[Statement] = []
        excused: list[tuple[Statement, str]] = []
        unused_actions: list[tuple[Statement, str]] = []
        unused_resources: list[tuple[Statement, str]] = []
        for policy in universe:
            for stmt in policy.statements:
                if stmt.ref not in used_actions:
                    reason = next((e.reason for e in entries if e.excuses(stmt)), None)
                    if reason is None:
                        unused.append(stmt)
                    else:
                        excused.append((stmt, reason))
                    continue
                for pattern in stmt.actions:
                    needed = used_actions[stmt.ref]
                    if not any(wildcard_match(pattern, a, ignore_case=True) for a in needed):
                        unused_actions.append((stmt, pattern))
                # e.g. one of the functions a state machine may invoke that no execution invoked
                if stmt.not_resources is None:
                    touched = used_resources[stmt.ref]
                    for pattern in stmt.resources:
                        if not any(wildcard_match(pattern, r) for r in touched):
                            unused_resources.append((stmt, pattern))
        return Report(
            calls={n: (counts[(n, True)], counts[(n, False)]) for n in names},
            denied=[r for r in records if not r.decision.allowed],
            unused=unused,
            excused=excused,
            unused_actions=unused_actions,
            unused_resources=unused_resources,
        )
