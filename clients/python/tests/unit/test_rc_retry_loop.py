"""RotatingSecret.run: refresh on authentication failure, backoff, budget (fakes, no sleeping)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest
from rc_fakes import (
    FakeAuthError,
    FakeClock,
    FakeNetworkError,
    FakeServer,
    FakeSource,
    is_fake_auth,
    secret_text,
)

from rotation_client import RetryPolicy, RotatingSecret, Timing

OLD, NEW, NEWER = "old-password", "new-password", "newer-password"


def make(
    source: FakeSource,
    clock: FakeClock,
    *,
    random: Callable[[], float] = lambda: 1.0,
    **kwargs: Any,
) -> RotatingSecret:
    return RotatingSecret(
        "app/db",
        source,
        classifier=is_fake_auth,
        timing=Timing(clock=clock, sleep=clock.sleep, random=random),
        **kwargs,
    )


def test_a_working_password_costs_no_read_and_no_wait() -> None:
    clock, source = FakeClock(), FakeSource({"AWSCURRENT": secret_text(OLD)}, secret_text(OLD))
    server = FakeServer({OLD})
    secret = make(source, clock)

    assert secret.run(server.login) == "session as app"

    assert source.fetches == [] and clock.sleeps == [] and server.logins == [OLD]


def test_an_error_that_is_not_authentication_propagates_unchanged_without_a_refresh() -> None:
    clock, source = FakeClock(), FakeSource({"AWSCURRENT": secret_text(NEW)}, secret_text(OLD))
    error = FakeNetworkError("connection refused")

    def refuse(_creds: Any) -> None:
        raise error

    secret = make(source, clock)
    with pytest.raises(FakeNetworkError) as raised:
        secret.run(refuse)

    assert raised.value is error
    assert source.fetches == [] and clock.sleeps == [] and secret.stats.attempts == 1


def test_a_stale_cache_is_refreshed_once_and_the_new_password_is_used_at_once() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEW)}, cache=secret_text(OLD))
    server = FakeServer({NEW})
    secret = make(source, clock)

    secret.run(server.login)

    assert server.logins == [OLD, NEW]
    assert source.fetches == ["AWSCURRENT"] and clock.sleeps == []
    assert source.catch_ups == 1  # the cache is asked to catch up in the background


def test_later_calls_use_the_password_that_worked_until_the_cache_catches_up() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEW)}, cache=secret_text(OLD))
    server = FakeServer({NEW})
    secret = make(source, clock)
    secret.run(server.login)

    secret.run(server.login)
    source.cache = secret_text(NEW)
    secret.run(server.login)

    assert server.logins == [OLD, NEW, NEW, NEW]
    assert source.fetches == ["AWSCURRENT"]
    assert secret.stats.auth_failures == 1


def test_single_user_window_without_pending_waits_with_backoff_until_finish() -> None:
    # setSecret changed the password; finishSecret moves AWSCURRENT 1.2 s later
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(OLD)}, cache=secret_text(OLD))
    server = FakeServer({NEW})
    finish_at = clock.now + 1.2
    real_fetch = source.fetch

    def fetch(secret_id: str, stage: str) -> Any:
        if clock.now >= finish_at:
            source.stages["AWSCURRENT"] = secret_text(NEW)
        return real_fetch(secret_id, stage)

    source.fetch = fetch  # type: ignore[method-assign]
    secret = make(source, clock, policy=RetryPolicy(budget=10, first_delay=0.1, max_delay=0.8))

    assert secret.run(server.login) == "session as app"

    assert server.logins[-1] == NEW and set(server.logins[:-1]) == {OLD}
    # random() = 1.0: each wait is its ceiling, 0.1, 0.2, 0.4, 0.8 (capped)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert clock.now >= finish_at


def test_with_try_pending_the_single_user_window_needs_no_wait() -> None:
    clock = FakeClock()
    source = FakeSource(
        {"AWSCURRENT": secret_text(OLD), "AWSPENDING": secret_text(NEW)}, cache=secret_text(OLD)
    )
    server = FakeServer({NEW})
    secret = make(source, clock, try_pending=True)

    secret.run(server.login)

    assert server.logins == [OLD, NEW]
    assert clock.sleeps == [] and secret.stats.pending_used == 1
    assert source.fetches == ["AWSCURRENT", "AWSPENDING"]


def test_pending_is_not_read_unless_asked_for() -> None:
    clock = FakeClock()
    source = FakeSource(
        {"AWSCURRENT": secret_text(OLD), "AWSPENDING": secret_text(NEW)}, cache=secret_text(OLD)
    )
    secret = make(source, clock, policy=RetryPolicy(budget=1))

    with pytest.raises(FakeAuthError):
        secret.run(FakeServer({NEW}).login)

    assert "AWSPENDING" not in source.fetches


def test_a_pending_password_that_stopped_working_falls_back_to_current() -> None:
    # a failed single-user rotation rolled the password back; AWSPENDING stays behind
    clock = FakeClock()
    source = FakeSource(
        {"AWSCURRENT": secret_text(OLD), "AWSPENDING": secret_text(NEW)}, cache=secret_text(OLD)
    )
    server = FakeServer({NEW})
    secret = make(source, clock, try_pending=True)
    secret.run(server.login)  # in the window: pending works and is kept

    server.valid = {OLD}  # rollback
    assert secret.run(server.login) == "session as app"

    assert server.logins == [OLD, NEW, NEW, OLD]
    assert clock.sleeps == []


def test_the_budget_ends_the_retries_with_the_last_authentication_error_itself() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(OLD)}, cache=secret_text(OLD))
    errors: list[FakeAuthError] = []

    def reject(_creds: Any) -> None:
        errors.append(FakeAuthError("password authentication failed"))
        raise errors[-1]

    secret = make(source, clock, policy=RetryPolicy(budget=3, first_delay=0.5, max_delay=1))
    start = clock.now
    with pytest.raises(FakeAuthError) as raised:
        secret.run(reject)

    assert raised.value is errors[-1]
    assert clock.now - start == pytest.approx(3.0)  # the last wait is cut to the budget
    assert sum(clock.sleeps) == pytest.approx(3.0)
    assert secret.stats.exhausted == 1
    if sys.version_info >= (3, 11):  # exceptions carry notes from 3.11 on
        notes = getattr(raised.value, "__notes__", [])
        assert any("authentication failed" in n and "app/db" in n for n in notes)


def test_full_jitter_draws_each_wait_below_its_ceiling() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(OLD)}, cache=secret_text(OLD))
    draws = iter([0.25, 0.5, 0.0, 0.75, 0.5, 0.5, 0.5])
    secret = make(
        source,
        clock,
        random=lambda: next(draws),
        policy=RetryPolicy(budget=100, first_delay=1, max_delay=4, max_attempts=6),
    )

    with pytest.raises(FakeAuthError):
        secret.run(FakeServer(set()).login)

    assert clock.sleeps == pytest.approx([0.25 * 1, 0.5 * 2, 0.0 * 4, 0.75 * 4, 0.5 * 4])


def test_max_attempts_caps_the_logins() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(OLD)}, cache=secret_text(OLD))
    server = FakeServer(set())
    secret = make(source, clock, policy=RetryPolicy(budget=100, max_attempts=3))

    with pytest.raises(FakeAuthError):
        secret.run(server.login)

    assert len(server.logins) == 3


def test_a_budget_of_zero_still_tries_the_refreshed_password_once() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEW)}, cache=secret_text(OLD))
    server = FakeServer({NEW})
    secret = make(source, clock, policy=RetryPolicy(budget=0))

    secret.run(server.login)

    assert server.logins == [OLD, NEW] and clock.sleeps == []


def test_a_network_error_during_the_retries_propagates_at_once() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEW)}, cache=secret_text(OLD))
    server = FakeServer({NEW})

    def login(creds: Any) -> str:
        if creds.password == NEW:
            server.down = True
        return server.login(creds)

    secret = make(source, clock)
    with pytest.raises(FakeNetworkError):
        secret.run(login)

    assert clock.sleeps == [] and secret.stats.attempts == 2


def test_secrets_manager_unreachable_during_refresh_keeps_backing_off_then_gives_up() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEW)}, cache=secret_text(OLD), broken=True)
    secret = make(source, clock, policy=RetryPolicy(budget=2, first_delay=0.5, max_delay=0.5))

    with pytest.raises(FakeAuthError):
        secret.run(FakeServer({NEW}).login)

    assert len(source.fetches) >= 2 and sum(clock.sleeps) == pytest.approx(2.0)


def test_denied_pending_is_reported_once_and_not_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    source = FakeSource(
        {"AWSCURRENT": secret_text(OLD), "AWSPENDING": secret_text(NEW)},
        cache=secret_text(OLD),
        deny={"AWSPENDING"},
    )
    secret = make(source, clock, try_pending=True, policy=RetryPolicy(budget=1, first_delay=0.3))

    with caplog.at_level(logging.WARNING, logger="rotation_client"), pytest.raises(FakeAuthError):
        secret.run(FakeServer({NEW}).login)

    assert source.fetches.count("AWSPENDING") == 1
    assert source.fetches.count("AWSCURRENT") > 1
    warnings = [r for r in caplog.records if "AWSPENDING" in r.getMessage()]
    assert len(warnings) == 1 and "secretsmanager:VersionStage" in warnings[0].getMessage()


def test_no_password_reaches_the_log_or_the_error(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(OLD)}, cache=secret_text(OLD))
    secret = make(source, clock, policy=RetryPolicy(budget=1))

    with (
        caplog.at_level(logging.DEBUG, logger="rotation_client"),
        pytest.raises(FakeAuthError) as raised,
    ):
        secret.run(FakeServer({NEW}).login)

    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert OLD not in logged and OLD not in " ".join(getattr(raised.value, "__notes__", []))
    assert OLD not in repr(secret.credentials())


def test_the_preferred_password_expires_back_to_the_cache() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEW)}, cache=secret_text(OLD))
    secret = make(source, clock, override_seconds=60)
    secret.run(FakeServer({NEW}).login)
    assert secret.credentials().password == NEW

    clock.now += 61

    assert secret.credentials().password == OLD


def test_connector_returns_a_factory_that_runs_through_the_loop() -> None:
    clock = FakeClock()
    source = FakeSource({"AWSCURRENT": secret_text(NEWER)}, cache=secret_text(OLD))
    server = FakeServer({NEWER})
    factory = make(source, clock).connector(server.login)

    assert factory() == "session as app" and server.logins == [OLD, NEWER]
