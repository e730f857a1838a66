"""The client library while real rotations run: every strategy, real servers, TLS verified.

Client threads keep connecting and querying while the local runtime (the repository's stack on
moto) rotates the secret through router, state machine and workers. Each test counts failed
operations: with AWS's plain caching client a single-user rotation breaks logins; through this
library no operation fails, for every strategy.

Each test also proves the library had something to do (authentication failures it absorbed),
so that a rotation that never touched the clients cannot make it pass.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rotation_client import (
    CachedSecretSource,
    RetryPolicy,
    RotatingSecret,
    connect_psycopg2,
    connect_pymysql,
    connect_with,
    create_engine,
    redis_client,
    use_secret,
)

integration = pytest.mark.integration

#: rotations per test: two for alternating users, so that they come back to a user whose password
#: changed; one is enough for the others
ROTATIONS = 2
#: client threads per test
CLIENTS = 2


@dataclass
class Tally:
    """Operations of the client threads, and when the failed ones happened."""

    ops: int = 0
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    failed_at: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self) -> None:
        with self.lock:
            self.ops += 1

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            self.ops += 1
            self.failures += 1
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            self.failed_at.append(time.monotonic())

    @property
    def outage(self) -> float:
        """Seconds from the first to the last failed operation."""
        return max(self.failed_at) - min(self.failed_at) if self.failed_at else 0.0


@contextlib.contextmanager
def clients(
    operation: Callable[[], None], threads: int = CLIENTS, pause: float = 0.005
) -> Iterator[Tally]:
    """Threads that run ``operation`` (``pause`` seconds apart) until the block ends."""
    tally, stop = Tally(), threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                operation()
            except Exception as exc:
                tally.failed(exc)
            else:
                tally.ok()
            stop.wait(pause)

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.2)  # steady state before the first rotation
        yield tally
        time.sleep(0.2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)


def rotate(rt: Any, arn: str, times: int = 1) -> None:
    for _ in range(times):
        outcome = rt.rotate(arn)
        if not outcome.succeeded:
            pytest.fail(f"the rotation failed: {json.dumps(outcome.error)}")
        time.sleep(0.1)


def report(request: pytest.FixtureRequest, label: str, tally: Tally, secret: Any = None) -> None:
    stats = secret.stats if secret is not None else None
    line = (
        f"[client-library] {label}: {tally.failures} failed of {tally.ops} operations, "
        f"outage {tally.outage:.2f} s"
    )
    if stats is not None:
        line += (
            f"; absorbed {stats.auth_failures} authentication failures "
            f"({stats.refreshes} reads, {stats.pending_used} via AWSPENDING, {stats.waits} waits)"
        )
    print(line)
    request.node.user_properties.append(("client_library", line))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def stack(test_ca_stack_settings: dict[str, dict[str, str]]) -> Iterator[Any]:
    """The rotation stack on moto, trusting the test CA; ends with the repository's leak scan."""
    from rotator.local import LocalRuntime
    from tests.conftest import assert_nothing_leaked

    with LocalRuntime(**test_ca_stack_settings) as rt:
        yield rt
        assert_nothing_leaked(rt)


@pytest.fixture
def source(stack: Any) -> Iterator[CachedSecretSource]:
    """AWS's SecretCache on the stack's Secrets Manager. No background catch-up: its 2.5-5 s
    sleep would outlive the test (the override keeps what works meanwhile)."""
    source = CachedSecretSource(stack.client("secretsmanager"), catch_up=False)
    yield source
    source.close()


def ca(server: Any) -> str:
    return str(server.ca_file)


def single_user_secret(rt: Any, server: Any) -> str:
    from tests.integration.conftest import create_app_user

    arn, _username, _password = create_app_user(rt, server)
    return arn


def alternating_secret(rt: Any, server: Any) -> str:
    from tests.integration.conftest import create_app_user, create_master

    arn, _username, _password = create_app_user(rt, server, masterarn=create_master(rt, server))
    return arn


# -- operations --------------------------------------------------------------------------------


def query(conn: Any, statement: str = "SELECT 1") -> None:
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            cur.fetchall()
    finally:
        conn.close()


def library_operation(engine: str, secret: RotatingSecret, ca_file: str) -> Callable[[], None]:
    if engine == "postgres":
        return lambda: query(connect_psycopg2(secret, ca_file=ca_file))
    return lambda: query(connect_pymysql(secret, ca_file=ca_file))


# -- without the library -----------------------------------------------------------------------


@integration
def test_the_plain_caching_client_fails_operations_during_a_single_user_rotation(
    request: pytest.FixtureRequest, stack: Any, postgres_server: Any
) -> None:
    import psycopg2
    from aws_secretsmanager_caching import SecretCache

    arn = single_user_secret(stack, postgres_server)
    cache = SecretCache(client=stack.client("secretsmanager"))

    def operation() -> None:
        creds = json.loads(cache.get_secret_string(arn))
        conn = psycopg2.connect(
            host=creds["host"],
            port=creds["port"],
            user=creds["username"],
            password=creds["password"],
            dbname=creds["dbname"],
            sslmode="verify-full",
            sslrootcert=ca(postgres_server),
            connect_timeout=10,
        )
        query(conn)

    with clients(operation) as tally:
        rotate(stack, arn, times=1)

    report(request, "postgres single-user, plain aws-secretsmanager-caching", tally)
    assert tally.failures > 0
    assert set(tally.errors) == {"OperationalError"}  # psycopg2's password authentication failure


# -- with the library: every strategy ----------------------------------------------------------


@integration
@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
@pytest.mark.parametrize("mode", ["pending", "budget"])
def test_single_user_rotations_fail_no_operation(
    request: pytest.FixtureRequest, stack: Any, source: CachedSecretSource, engine: str, mode: str
) -> None:
    server = request.getfixturevalue(f"{engine}_server")
    arn = single_user_secret(stack, server)
    secret = RotatingSecret(
        arn, source, try_pending=mode == "pending", policy=RetryPolicy(budget=30)
    )

    with clients(library_operation(engine, secret, ca(server))) as tally:
        rotate(stack, arn)

    report(request, f"{engine} single-user, library ({mode})", tally, secret)
    assert tally.failures == 0, tally.errors
    assert secret.stats.auth_failures > 0  # the clients did meet the outage window
    if mode == "pending":
        assert secret.stats.pending_used > 0 and secret.stats.waits == 0
    else:
        assert secret.stats.waits > 0


@integration
def test_alternating_users_rotations_fail_no_operation_with_psycopg2(
    request: pytest.FixtureRequest, stack: Any, source: CachedSecretSource, postgres_server: Any
) -> None:
    arn = alternating_secret(stack, postgres_server)
    secret = RotatingSecret(arn, source)

    with clients(library_operation("postgres", secret, ca(postgres_server))) as tally:
        rotate(stack, arn, times=ROTATIONS)

    report(request, "postgres alternating-users, library", tally, secret)
    assert tally.failures == 0, tally.errors
    # the second rotation changed the password the (stale) cache still held
    assert secret.stats.auth_failures > 0


@integration
def test_alternating_users_rotations_fail_no_operation_through_a_sqlalchemy_do_connect_engine(
    request: pytest.FixtureRequest, stack: Any, source: CachedSecretSource, mariadb_server: Any
) -> None:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    arn = alternating_secret(stack, mariadb_server)
    secret = RotatingSecret(arn, source)
    # the URL's user, password and host are ignored: the secret provides them
    engine = sqlalchemy.create_engine(
        "mariadb+pymysql://ignored:ignored@localhost/app", poolclass=NullPool
    )
    use_secret(engine, secret, ca_file=ca(mariadb_server))

    def operation() -> None:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1")).all()

    with clients(operation) as tally:
        rotate(stack, arn, times=ROTATIONS)

    engine.dispose()
    report(request, "mariadb alternating-users, library via SQLAlchemy do_connect", tally, secret)
    assert tally.failures == 0, tally.errors
    assert secret.stats.auth_failures > 0


@integration
def test_single_user_rotations_fail_no_operation_through_a_sqlalchemy_psycopg3_engine(
    request: pytest.FixtureRequest, stack: Any, source: CachedSecretSource, postgres_server: Any
) -> None:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    arn = single_user_secret(stack, postgres_server)
    secret = RotatingSecret(arn, source, try_pending=True)
    # NullPool: every operation opens a connection, so every one of them logs in
    engine = create_engine(
        secret, driver="psycopg", ca_file=ca(postgres_server), poolclass=NullPool
    )

    def operation() -> None:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1")).all()

    with clients(operation) as tally:
        rotate(stack, arn)

    engine.dispose()
    report(request, "postgres single-user, library via SQLAlchemy + psycopg 3", tally, secret)
    assert tally.failures == 0, tally.errors
    assert secret.stats.pending_used > 0


@integration
def test_multi_credential_redis_rotations_fail_no_operation_past_the_retirement(
    request: pytest.FixtureRequest, stack: Any, source: CachedSecretSource, redis_server: Any
) -> None:
    from rotator.checks import eventually
    from tests.integration.conftest import create_app_user

    arn, username, first = create_app_user(stack, redis_server)
    secret = RotatingSecret(arn, source)

    def operation() -> None:
        client = redis_client(secret, ca_file=ca(redis_server))
        try:
            client.ping()  # a new connection: AUTH with the credentials of the moment
        finally:
            client.close()

    with clients(operation) as tally:
        rotate(stack, arn, times=1)
        # the superseded password is retired a few seconds later (RetireAfterSeconds)
        assert eventually(lambda: not redis_server.can_login(username, first), timeout=30)
        time.sleep(0.3)

    report(request, "redis multi-credential, library", tally, secret)
    assert tally.failures == 0, tally.errors
    assert secret.stats.auth_failures > 0  # the clients met the retirement


@integration
def test_multi_credential_iam_rotations_fail_no_operation_past_the_retirement(
    request: pytest.FixtureRequest, stack: Any, source: CachedSecretSource
) -> None:
    import boto3
    from rotator.checks import access_key_works, eventually
    from tests.functional.conftest import iam_secret
    from tests.integration.conftest import unique_name

    arn, first = iam_secret(stack, unique_name("svc"))
    secret = RotatingSecret(arn, source)
    sts_clients: dict[str, Any] = {}
    lock = threading.Lock()

    def caller_identity(creds: Any) -> Any:
        with lock:  # one client per key; boto3 sessions are not for sharing between threads
            client = sts_clients.get(creds.access_key_id)
            if client is None:
                client = boto3.session.Session().client(
                    "sts",
                    region_name=stack.region,
                    aws_access_key_id=creds.access_key_id,
                    aws_secret_access_key=creds.secret_access_key,
                )
                sts_clients[creds.access_key_id] = client
        return client.get_caller_identity()

    # STS on moto answers in a millisecond: pace the callers so they do not starve the rotation
    with clients(lambda: connect_with(secret, caller_identity), pause=0.03) as tally:
        rotate(stack, arn, times=1)
        # the superseded key is deactivated a few seconds later (RetireAfterSeconds)
        assert eventually(lambda: not access_key_works(first, stack.region), timeout=30)
        time.sleep(0.3)

    report(request, "iam multi-credential, library (generic connect_with)", tally, secret)
    assert tally.failures == 0, tally.errors
    assert secret.stats.auth_failures > 0  # the clients met the deactivated key
