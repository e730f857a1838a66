"""How the router waits for an execution, and finishSecret's order (fake clock, no timing).

The schedule is asserted as the sequence of sleeps the router asks for: a fake ``sleep``
advances a fake clock, and a fake Step Functions ends the execution after a given number of
polls. Nothing here measures real time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rotation_core.exceptions import AwsRequestError, AwsThrottlingError, RotationInProgressError
from rotation_core.ports import Execution
from rotation_core.router import PollSchedule, Router, RouterConfig, execution_name

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:rotator-rotation"
TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EXECUTION = MACHINE.replace(":stateMachine:", ":execution:") + ":createSecret-x"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class EndsAfter:
    """An execution that is RUNNING for ``polls`` describes, then SUCCEEDED; some describes
    can be throttled (by their 1-based index)."""

    def __init__(self, polls: int, throttled: frozenset[int] = frozenset()) -> None:
        self.polls, self.throttled, self.describes = polls, throttled, 0

    def describe(self, arn: str) -> Execution | None:
        self.describes += 1
        if self.describes in self.throttled:
            raise AwsThrottlingError("DescribeExecution: AWS returned ThrottlingException")
        status = "RUNNING" if self.describes <= self.polls else "SUCCEEDED"
        return Execution(arn=arn, status=status, started=T0, output="{}")


def _wait(
    runner: Any, config: RouterConfig, remaining: float = 600.0
) -> tuple[Execution, FakeClock]:
    clock = FakeClock()
    router = Router(None, runner, None, config, sleep=clock.sleep, clock=clock.clock)  # type: ignore[arg-type]
    found = router._wait(EXECUTION, lambda: remaining - clock.now)
    return found, clock


def test_the_first_polls_are_short_then_each_wait_is_a_quarter_of_the_time_waited() -> None:
    found, clock = _wait(EndsAfter(polls=8), RouterConfig(state_machine_arn=MACHINE))
    assert found.status == "SUCCEEDED"
    assert clock.sleeps == pytest.approx(
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.125, 0.15625, 0.1953125, 0.244140625]
    )


def test_the_waits_stop_growing_at_the_cap() -> None:
    config = RouterConfig(state_machine_arn=MACHINE, poll_max_seconds=0.5)
    _found, clock = _wait(EndsAfter(polls=40), config)
    assert max(clock.sleeps) == 0.5
    assert clock.sleeps[-5:] == [0.5] * 5
    # growing, never shrinking
    assert clock.sleeps == sorted(clock.sleeps)


def test_an_execution_already_ended_is_seen_at_the_first_poll() -> None:
    found, clock = _wait(EndsAfter(polls=0), RouterConfig(state_machine_arn=MACHINE))
    assert found.status == "SUCCEEDED" and clock.sleeps == [0.1]


def test_a_throttled_poll_waits_the_cap_and_asks_again() -> None:
    runner = EndsAfter(polls=3, throttled=frozenset({2}))
    config = RouterConfig(state_machine_arn=MACHINE, poll_max_seconds=1.0)
    found, clock = _wait(runner, config)
    assert found.status == "SUCCEEDED"
    # poll 1 running, poll 2 throttled -> wait the cap, then the schedule goes on from there
    assert clock.sleeps[:3] == [0.1, 0.1, 1.0]
    assert runner.describes == 4  # running, throttled, running, succeeded


def test_the_router_stops_waiting_before_its_safety_margin() -> None:
    config = RouterConfig(state_machine_arn=MACHINE, safety_margin_seconds=5.0)
    with pytest.raises(RotationInProgressError, match="still running"):
        _wait(EndsAfter(polls=10_000), config, remaining=8.0)


@pytest.mark.parametrize(
    ("first", "growth", "cap"), [(0.0, 0.25, 2.0), (3.0, 0.25, 2.0), (0.1, 0.0, 2.0)]
)
def test_a_schedule_that_could_spin_or_never_poll_is_refused(
    first: float, growth: float, cap: float
) -> None:
    with pytest.raises(ValueError, match="poll schedule"):
        PollSchedule(first, growth, cap)


# --- finishSecret: the label first, then the execution that records the step ------------------


class Writer:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log, self.fail = log, fail

    def finish(self, secret_arn: str, token: str) -> None:
        if self.fail:
            raise AwsRequestError("UpdateSecretVersionStage", "AccessDeniedException")
        self.log.append("move AWSCURRENT")


class Recording:
    """Step Functions that records starts; ``refuse`` makes StartExecution fail."""

    def __init__(self, log: list[str], refuse: Exception | None = None) -> None:
        self.log, self.refuse = log, refuse
        self.executions: dict[str, Execution] = {}

    def execution_arn(self, machine: str, name: str) -> str:
        return machine.replace(":stateMachine:", ":execution:") + ":" + name

    def start(self, machine: str, name: str, body: str) -> bool:
        if self.refuse is not None:
            raise self.refuse
        arn = self.execution_arn(machine, name)
        if arn in self.executions:
            return False
        self.log.append(f"start {name.split('-')[0]}")
        self.executions[arn] = Execution(arn=arn, status="RUNNING", started=T0, input=body)
        return True

    def describe(self, arn: str) -> Execution | None:
        step = arn.rsplit(":", 1)[-1].split("-")[0]
        # after the finish, the router looks up createSecret's and setSecret's executions for
        # the rotation's metrics (telemetry): not part of the finish itself
        if step == "finishSecret":
            self.log.append("describe")
        return self.executions.get(arn)


class Metadata:
    arn, name, versions, tags = ARN, "app/db", {TOKEN: ["AWSPENDING"]}, {}


STEP_INPUT = {"Step": "finishSecret", "SecretArn": ARN, "Token": TOKEN, "Strategy": "single-user"}


def _finish(writer: Writer, sfn: Recording) -> dict[str, Any]:
    router = Router(writer, sfn, None, RouterConfig(state_machine_arn=MACHINE))  # type: ignore[arg-type]
    return router._finish(Metadata(), TOKEN, "single-user", dict(STEP_INPUT))  # type: ignore[arg-type]


def test_finish_moves_the_label_then_starts_its_execution_without_waiting() -> None:
    log: list[str] = []
    result = _finish(Writer(log), Recording(log))
    assert log == ["move AWSCURRENT", "start finishSecret"]
    assert result["ExecutionArn"].endswith(execution_name("finishSecret", TOKEN, ARN, 1))


def test_a_failed_label_move_starts_no_execution() -> None:
    log: list[str] = []
    with pytest.raises(AwsRequestError):
        _finish(Writer(log, fail=True), Recording(log))
    assert log == []


def test_a_finish_already_recorded_by_an_earlier_invocation_is_not_recorded_twice() -> None:
    log: list[str] = []
    sfn = Recording(log)
    _finish(Writer(log), sfn)
    log.clear()
    result = _finish(Writer(log), sfn)
    assert log == ["move AWSCURRENT", "describe"]
    assert result["ExecutionArn"].endswith(execution_name("finishSecret", TOKEN, ARN, 1))


def test_a_finish_whose_record_cannot_start_still_reports_the_moved_label() -> None:
    log: list[str] = []
    refused = AwsThrottlingError("StartExecution: AWS returned ThrottlingException")
    result = _finish(Writer(log), Recording(log, refuse=refused))
    assert log == ["move AWSCURRENT"]
    assert result["Outcome"] == "done" and result["ExecutionArn"] is None
