"""CachedSecretSource on fakes of boto3's client and AWS's SecretCache; redis-py's retry."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rc_fakes import secret_text

from rotation_client import CachedSecretSource, SecretUnavailableError
from rotation_client.source import AccessDeniedToStage


def client_error(code: str) -> Exception:
    exceptions = pytest.importorskip("botocore.exceptions")
    error: Exception = exceptions.ClientError(
        {"Error": {"Code": code, "Message": "fake"}}, "GetSecretValue"
    )
    return error


class FakeClient:
    """boto3's secretsmanager client: get_secret_value answers from ``stages`` or raises."""

    def __init__(self, stages: dict[str, Any]) -> None:
        self.stages = stages
        self.calls: list[dict[str, Any]] = []

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer = self.stages[kwargs["VersionStage"]]
        if isinstance(answer, Exception):
            raise answer
        return {"SecretString": answer, "VersionId": "v-" + kwargs["VersionStage"]}


class FakeCache:
    """AWS's SecretCache: refresh_secret_now blocks until released (it sleeps seconds for real)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.refreshes = 0
        self.release = threading.Event()
        self.started = threading.Event()

    def get_secret_string(self, secret_id: str) -> str:
        return self.text

    def refresh_secret_now(self, secret_id: str) -> bool:
        self.started.set()
        self.release.wait(5)
        self.refreshes += 1
        return True


def test_a_direct_read_asks_for_the_stage_by_name() -> None:
    client = FakeClient({"AWSCURRENT": secret_text("new")})
    source = CachedSecretSource(client, FakeCache(secret_text("old")))

    version = source.fetch("app/db", "AWSCURRENT")

    assert version is not None and version.version_id == "v-AWSCURRENT"
    # by VersionStage, so that the secretsmanager:VersionStage condition key is in the request
    assert client.calls == [{"SecretId": "app/db", "VersionStage": "AWSCURRENT"}]


def test_no_pending_version_is_none_but_a_missing_current_is_an_error() -> None:
    client = FakeClient(
        {
            "AWSPENDING": client_error("ResourceNotFoundException"),
            "AWSCURRENT": client_error("ResourceNotFoundException"),
        }
    )
    source = CachedSecretSource(client, FakeCache(secret_text("old")))

    assert source.fetch("app/db", "AWSPENDING") is None
    with pytest.raises(SecretUnavailableError, match="ResourceNotFoundException"):
        source.fetch("app/db", "AWSCURRENT")


def test_access_denied_to_a_stage_is_its_own_error() -> None:
    client = FakeClient({"AWSPENDING": client_error("AccessDeniedException")})
    source = CachedSecretSource(client, FakeCache(secret_text("old")))

    with pytest.raises(AccessDeniedToStage):
        source.fetch("app/db", "AWSPENDING")


def test_the_cache_catches_up_in_one_background_refresh_per_secret() -> None:
    cache = FakeCache(secret_text("old"))
    source = CachedSecretSource(FakeClient({}), cache)

    source.catch_up("app/db")
    assert cache.started.wait(5)
    source.catch_up("app/db")  # one is already running: no second thread
    cache.release.set()
    source.close(timeout=5)

    assert cache.refreshes == 1


def test_a_closed_source_starts_no_refresh() -> None:
    cache = FakeCache(secret_text("old"))
    source = CachedSecretSource(FakeClient({}), cache)
    source.close()

    source.catch_up("app/db")

    assert not cache.started.wait(0.2)


def test_redis_retry_raises_an_authentication_failure_at_once_and_retries_the_rest() -> None:
    redis = pytest.importorskip("redis")
    from redis.backoff import NoBackoff

    from rotation_client.redis import AuthFailFastRetry

    retry = AuthFailFastRetry(NoBackoff(), 3)
    calls: list[str] = []

    def fail_with(error: Exception) -> Any:
        def do() -> None:
            calls.append(type(error).__name__)
            raise error

        return do

    auth = redis.exceptions.AuthenticationError("WRONGPASS invalid username-password pair")
    closed: list[Exception] = []
    with pytest.raises(redis.exceptions.AuthenticationError) as raised:
        retry.call_with_retry(fail_with(auth), closed.append)
    assert raised.value is auth and calls == ["AuthenticationError"]
    assert closed == [auth]  # the failure callback (redis-py closes the connection) still ran

    calls.clear()
    with pytest.raises(redis.exceptions.ConnectionError):
        retry.call_with_retry(fail_with(redis.exceptions.ConnectionError("down")), lambda _e: None)
    assert len(calls) == 4  # the first try and three retries, as configured
