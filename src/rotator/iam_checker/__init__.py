"""A recorded-call IAM checker for the local runtime (issue 8 §6).

moto checks almost nothing of IAM for this stack, so every AWS call a function or state
machine makes in the local runtime is authorized here, against the stack's own policies
(identity policies of the caller's role, the KMS key policy, Lambda resource policies), with
the condition keys AWS would put in the request. Modules:

- :mod:`.policy`: the policy language and AWS's evaluation logic;
- :mod:`.requests`: the table from API call to (action, resource, condition keys);
- :mod:`.sources`: the policies, from moto (as CloudFormation created them) or the template;
- :mod:`.record`: recorded calls, the report, the allow-list of calls AWS makes itself;
- :mod:`.hook`: :class:`IamChecker` and :func:`install`, the hook into the runtime.
"""

from rotator.iam_checker.hook import (
    IamChecker,
    ServiceInvokeDeniedError,
    install,
    unchecked_below,
)
from rotator.iam_checker.policy import Decision, Policy, PolicyKind, Principal, Request, evaluate
from rotator.iam_checker.record import ALLOW_LIST, Caller, CallRecord, Recorder, Report
from rotator.iam_checker.sources import MotoPolicies, PolicyStore, Scope, TemplatePolicies

__all__ = [
    "ALLOW_LIST",
    "CallRecord",
    "Caller",
    "Decision",
    "IamChecker",
    "MotoPolicies",
    "Policy",
    "PolicyKind",
    "PolicyStore",
    "Principal",
    "Recorder",
    "Report",
    "Request",
    "Scope",
    "ServiceInvokeDeniedError",
    "TemplatePolicies",
    "evaluate",
    "install",
    "unchecked_below",
]
