"""RouterTimeoutSeconds against the retry parameters: a deployment whose retries let a step run
longer than the router waits is refused before anything changes (tools/asl.py
``timing_budget``), with the worst case the README's formulas give.

CloudFormation cannot refuse it at deploy time: template Rules may only compare parameter values
(Fn::Equals, Fn::Contains...), not add them
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html),
so the state machine derives the worst case from its own substituted parameters. These tests
deploy the template the way ``sam deploy`` does (translated, then CloudFormation on moto) with
parameter overrides, and rotate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rotation_core.router import RouterConfig
from rotator.aws_local import stack
from tests.conftest import assert_nothing_leaked
from tests.functional.conftest import iam_secret, versions


def worst_case(p: dict[str, Any], *, propagation: int, rollback: bool) -> int:
    """Each step's worst case, as the README gives it; the largest."""

    def n(name: str) -> int:
        return int(p[name])

    waits = sum(
        min(n("RetryIntervalSeconds") * 2 ** (i - 1), n("RetryMaxDelaySeconds"))
        for i in range(1, n("RetryMaxAttempts") + 1)
    )
    worker_task = (n("RetryMaxAttempts") + 1) * n("WorkerTimeoutSeconds") + waits
    test = (
        propagation
        + max(n("GraceBudgetSeconds"), n("TestAttemptTimeoutSeconds"))
        + (worker_task if rollback else 0)
    )
    return max(worker_task, test)


def router_wait(p: dict[str, Any]) -> float:
    return int(p["RouterTimeoutSeconds"]) - RouterConfig.safety_margin_seconds


def _defaults() -> dict[str, Any]:
    template = stack.load_template()
    return {
        name: spec["Default"] for name, spec in template["Parameters"].items() if "Default" in spec
    }


#: capped waits (3, 6, then 10 s), a shorter worker timeout, and a router that cannot wait that long
TIGHT = {
    "RetryMaxAttempts": "5",
    "RetryIntervalSeconds": "3",
    "RetryMaxDelaySeconds": "10",
    "WorkerTimeoutSeconds": "20",
    "GraceBudgetSeconds": "15",
    "TestAttemptTimeoutSeconds": "2",
    "IamPropagationWaitSeconds": "1",
    "RouterTimeoutSeconds": "30",
}


@pytest.fixture
def tight() -> Iterator[Any]:
    from rotator.local import LocalRuntime

    with LocalRuntime(parameter_overrides=TIGHT) as rt:
        yield rt
        assert_nothing_leaked(rt)


def test_the_template_defaults_fit_in_the_router_wait() -> None:
    defaults = _defaults()
    for propagation in (0, int(defaults["IamPropagationWaitSeconds"])):
        assert worst_case(defaults, propagation=propagation, rollback=True) <= router_wait(defaults)


def test_a_step_that_can_outlast_the_router_is_refused_before_anything_changes(
    tight: Any,
) -> None:
    arn, old = iam_secret(tight, "svc-budget")

    outcome = tight.rotate(arn)

    assert outcome.failed_step == "createSecret"
    assert "InvalidConfigurationError" in outcome.error["errorMessage"]
    keys = tight.client("iam").list_access_keys(UserName=old["username"])["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [old["access_key_id"]], "a worker ran"
    assert versions(tight, arn)[outcome.token] == ["AWSPENDING"]  # an empty version, as on AWS
    (alert,) = tight.alerts(wait_seconds=1)
    body = alert.message
    expected = worst_case(TIGHT, propagation=1, rollback=True)
    assert (body["error"], body["worst_case_seconds"]) == ("InvalidConfigurationError", expected)
    assert body["router_wait_seconds"] == router_wait(TIGHT)
    assert "RouterTimeoutSeconds" in body["next_steps"] and "no worker ran" in body["rolled_back"]


def test_the_fast_local_parameters_are_counted_as_the_formula_counts_them(runtime: Any) -> None:
    arn, _value = iam_secret(runtime, "svc-budget-ok")

    assert runtime.rotate(arn).succeeded

    (create,) = [e for e in runtime.executions() if e["name"].startswith("createSecret")]
    budget = next(
        json.loads(h["stateExitedEventDetails"]["output"])["Budget"]
        for h in runtime.history(create["executionArn"])
        if h.get("stateExitedEventDetails", {}).get("name") == "Check the timing budget"
    )
    parameters = {**_defaults(), **runtime._overrides}
    assert budget["Worst"] == worst_case(parameters, propagation=1, rollback=True)
    assert budget["Worst"] <= budget["RouterWait"] == router_wait(parameters)
