"""The fleet benchmark's quota model (bench/fleet.py): its bookkeeping, not its numbers."""

from __future__ import annotations

from bench.fleet import QUOTAS, StepPlan, _polls_for, paper_bounds, plan_from_profile, simulate


def _plans() -> list[StepPlan]:
    profile = {
        "createSecret": {
            "operations": {
                "secretsmanager:DescribeSecret": 1,
                "secretsmanager:GetSecretValue": 1,
                "secretsmanager:PutSecretValue": 1,
                "states:StartExecution": 1,
            },
            "state_transitions": 6,
            "worker_invocations": 1,
        },
        "setSecret": {"operations": {}, "state_transitions": 6, "worker_invocations": 1},
        "testSecret": {"operations": {}, "state_transitions": 6, "worker_invocations": 1},
        "finishSecret": {
            "operations": {"secretsmanager:UpdateSecretVersionStage": 1},
            "state_transitions": 2,
            "worker_invocations": 0,
        },
    }
    return plan_from_profile(profile, "postgres")


def test_a_small_fleet_rotates_without_touching_a_quota() -> None:
    result = simulate(_plans(), secrets_count=20)

    assert result["rotated"] == 20
    assert result["first_quota_hit"] is None
    assert result["step_failures_retried_by_secrets_manager"] == {}


def test_a_large_fleet_hits_a_quota_and_still_rotates_every_secret() -> None:
    result = simulate(_plans(), secrets_count=3000)

    assert result["first_quota_hit"] is not None
    assert result["rotated"] == 3000
    assert result["lambda_peak_concurrency"] <= QUOTAS["lambda_concurrency"].bucket


def test_the_writes_bound_is_the_writes_over_their_refill_rate() -> None:
    bounds = paper_bounds(_plans(), secrets_count=10_000)

    writes = QUOTAS["sm_write"]
    assert bounds[writes.name] == round((2 * 10_000 - writes.bucket) / writes.refill, 1)


def test_polls_follow_the_routers_schedule() -> None:
    # waits of 0.1 s until a quarter of the time waited exceeds it: 0.1 0.2 0.3 0.4 0.5
    assert _polls_for(0.45) == 5
    assert _polls_for(0.05) == 1
