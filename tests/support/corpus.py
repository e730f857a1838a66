"""A corpus of malformed rotation events and secrets.

Each entry says what is wrong and which words the error must contain (the field or the
problem). The corpus runs twice (tests/integration/test_bad_inputs.py): through the router in
process, and through ``rotator local serve`` with plain boto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SQL = "x'; DROP ROLE postgres; --"
# distinct strings per field, so that a leak scan can tell a password from a user name
SQL_USER = "u'; DROP ROLE postgres; --"
SQL_PASSWORD = "p'); DROP TABLE accounts; --"
UUID_LIKE = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class BadInput:
    id: str
    expect: str  # must appear in the error message
    #: event inputs: a function (secret ARN, staged token) -> the event sent to the router
    event: Any = None
    #: secret inputs: keys replaced in a valid secret (None removes the key), or a raw value
    changes: dict[str, Any] = field(default_factory=dict)
    raw: str | bytes | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: master secret (alternating users): keys replaced in a valid master, or a raw value
    master_changes: dict[str, Any] | None = None
    master_raw: str | None = None
    #: the secret is an IAM or Redis one instead of PostgreSQL
    kind: str = "postgres"
    #: needs a token staged by the runtime (in-process only)
    needs_staging: bool = False


def _event(**fields: Any) -> Any:
    def build(arn: str, token: str) -> Any:
        base: dict[str, Any] = {
            "Step": "createSecret",
            "SecretId": arn,
            "ClientRequestToken": token,
        }
        for key, value in fields.items():
            if value is _REMOVE:
                base.pop(key, None)
            else:
                base[key] = value
        return base

    return build


_REMOVE = object()

EVENTS = [
    BadInput("event: Step missing", "'Step' is required", event=_event(Step=_REMOVE)),
    BadInput("event: Step not a string", "'Step'", event=_event(Step=123)),
    BadInput("event: Step unknown", "'Step' must be one of", event=_event(Step="dropSecret")),
    BadInput("event: Step with SQL", "'Step' must be one of", event=_event(Step=SQL)),
    BadInput("event: SecretId missing", "'SecretId' is required", event=_event(SecretId=_REMOVE)),
    BadInput("event: SecretId empty", "'SecretId'", event=_event(SecretId="")),
    BadInput("event: SecretId a list", "'SecretId'", event=_event(SecretId=["a"])),
    BadInput("event: SecretId control characters", "'SecretId'", event=_event(SecretId="app\n/db")),
    BadInput(
        "event: SecretId oversized",
        "'SecretId' must be at most 2048",
        event=_event(SecretId="s" * 3000),
    ),
    BadInput(
        "event: SecretId not UTF-8 (lone surrogate)",
        "'SecretId'",
        event=_event(SecretId="app\udcff"),
    ),
    # the router's policy covers only the secrets it rotates: AWS answers AccessDenied for any
    # other, existing or not, and the error names the field either way
    BadInput(
        "event: SecretId unknown secret",
        "event field 'SecretId' names a secret that does not exist",
        event=_event(SecretId="no/such/secret"),
    ),
    BadInput(
        "event: SecretId with SQL",
        "event field 'SecretId' names a secret that does not exist",
        event=_event(SecretId=SQL),
    ),
    BadInput(
        "event: token missing",
        "'ClientRequestToken' is required",
        event=_event(ClientRequestToken=_REMOVE),
    ),
    BadInput(
        "event: token too short",
        "'ClientRequestToken' must be at least 32",
        event=_event(ClientRequestToken="abc"),
    ),
    BadInput(
        "event: token too long",
        "'ClientRequestToken' must be at most 64",
        event=_event(ClientRequestToken="a" * 65),
    ),
    BadInput(
        "event: token with spaces and SQL",
        "'ClientRequestToken' contains",
        event=_event(ClientRequestToken=(SQL + " " * 40)[:40]),
    ),
    BadInput(
        "event: token a number",
        "'ClientRequestToken'",
        event=_event(ClientRequestToken=12345678901234567890123456789012345),
    ),
    BadInput(
        "event: token not staged",
        "has no stage for rotation",
        event=_event(ClientRequestToken=UUID_LIKE),
    ),
    BadInput("event: RotationToken a number", "'RotationToken'", event=_event(RotationToken=7)),
    BadInput(
        "event: RotationToken oversized",
        "'RotationToken' must be at most 4096",
        event=_event(RotationToken="r" * 5000),
    ),
    BadInput(
        "event: not an object",
        "must be a JSON object",
        event=lambda arn, token: ["createSecret", arn, token],
    ),
    BadInput("event: null", "must be a JSON object", event=lambda arn, token: None),
    BadInput("event: a string", "must be a JSON object", event=lambda arn, token: "createSecret"),
]

SECRETS = [
    BadInput("secret: engine missing", "'engine'", changes={"engine": None}),
    BadInput("secret: engine unknown", "'engine' must be one of", changes={"engine": "oracle"}),
    BadInput("secret: engine a number", "'engine'", changes={"engine": 5}),
    BadInput("secret: engine with SQL", "'engine' must be one of", changes={"engine": SQL}),
    BadInput("secret: host missing", "'host' is required", changes={"host": None}),
    BadInput("secret: host empty", "'host'", changes={"host": ""}),
    BadInput("secret: host with SQL", "'host' contains", changes={"host": SQL}),
    BadInput("secret: host oversized", "'host' must be at most 253", changes={"host": "h" * 300}),
    BadInput("secret: port above 65535", "'port'", changes={"port": "99999"}),
    BadInput("secret: port zero", "'port'", changes={"port": 0}),
    BadInput("secret: port with SQL", "'port'", changes={"port": "5432; DROP"}),
    BadInput("secret: port a fraction", "'port'", changes={"port": 5432.5}),
    BadInput("secret: username missing", "'username' is required", changes={"username": None}),
    BadInput("secret: username empty", "'username'", changes={"username": ""}),
    BadInput(
        "secret: username over PostgreSQL's 63 bytes", "'username'", changes={"username": "u" * 70}
    ),
    BadInput(
        "secret: username oversized",
        "'username' must be at most 128",
        changes={"username": "u" * 200},
    ),
    BadInput("secret: username with NUL", "'username' contains", changes={"username": "app\u0000"}),
    BadInput(
        "secret: username not UTF-8", "'username' contains", changes={"username": "app\udcff"}
    ),
    BadInput(
        "secret: username with SQL (a legal name nobody has)",
        "NoWorkingCredentialError",
        changes={"username": SQL_USER},
    ),
    BadInput("secret: password missing", "'password' is required", changes={"password": None}),
    BadInput("secret: password a number", "'password'", changes={"password": 12345}),
    BadInput(
        "secret: password oversized",
        "'password' must be at most 4096",
        changes={"password": "p" * 5000},
    ),
    BadInput(
        "secret: password with NUL", "'password' contains", changes={"password": "pw\u0000pw"}
    ),
    BadInput(
        "secret: password with SQL (wrong)",
        "NoWorkingCredentialError",
        changes={"password": SQL_PASSWORD},
    ),
    BadInput("secret: dbname a number", "'dbname'", changes={"dbname": 3}),
    BadInput("secret: dbname empty", "'dbname'", changes={"dbname": ""}),
    BadInput(
        "secret: dbname with SQL",
        "'dbname' names a database that does not exist",
        changes={"dbname": SQL},
    ),
    BadInput("secret: ssl not a boolean", "'ssl'", changes={"ssl": "maybe"}),
    BadInput("secret: not JSON", "not valid JSON", raw="password=hunter2"),
    BadInput("secret: a JSON array", "must be a JSON object", raw='["postgres", "hunter2"]'),
    BadInput("secret: binary, not a string", "no SecretString", raw=b"\xff\xfe\x00binary"),
    BadInput(
        "tag: unknown strategy",
        "'RotationStrategy' must be one of",
        tags={"RotationStrategy": "rainbow"},
    ),
    BadInput(
        "tag: multi-credential on PostgreSQL",
        "UnsupportedStrategyError",
        tags={"RotationStrategy": "multi-credential"},
    ),
    BadInput(
        "tag: password length not a number",
        "'RotationPasswordLength' must be a whole number",
        tags={"RotationPasswordLength": "long"},
    ),
    BadInput(
        "tag: password length too short",
        "'RotationPasswordLength' must be between",
        tags={"RotationPasswordLength": "8"},
    ),
    BadInput("masterarn: not an ARN", "'masterarn'", changes={"masterarn": "my-master"}),
    BadInput(
        "masterarn: with SQL",
        "'masterarn'",
        changes={"masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + SQL},
    ),
    BadInput(
        "masterarn: no such secret",
        "'masterarn' names a secret that does not exist",
        changes={
            "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-master-AbCdEf"
        },
    ),
    BadInput("master: not JSON", "master secret is not valid JSON", master_raw="root:hunter2"),
    BadInput(
        "master: password missing",
        "master secret field 'password' is required",
        master_changes={"password": None},
    ),
    BadInput(
        "master: another host",
        "'masterarn') is for another engine, host or port",
        master_changes={"host": "10.9.8.7"},
    ),
    BadInput(
        "master: another engine",
        "'masterarn') is for another engine, host or port",
        master_changes={"engine": "mysql"},
    ),
    BadInput(
        "master: wrong password",
        "the master secret ('masterarn') does not log in",
        master_changes={"password": "not-the-master-password"},
    ),
    BadInput(
        "iam: access key id missing",
        "'access_key_id' is required",
        kind="iam",
        changes={"access_key_id": None},
    ),
    BadInput(
        "iam: user name with SQL", "'username' contains", kind="iam", changes={"username": SQL_USER}
    ),
    BadInput(
        "iam: key of another user",
        "is not a key of IAM user",
        kind="iam",
        changes={"access_key_id": "AKIAIOSFODNN7EXAMPLE"},
    ),
    BadInput(
        "redis: password with spaces",
        "'password' contains",
        kind="redis",
        changes={"password": "two words"},
    ),
    BadInput("redis: engine and port wrong", "'port'", kind="redis", changes={"port": "six"}),
    BadInput(
        "iam: a real key id with a made-up secret key",
        "STS refuses AWSCURRENT's access key",
        kind="iam",
        changes={"secret_access_key": "x" * 40},
    ),
    BadInput(
        "redis: a guessed password with a working master",
        "AWSCURRENT does not log in",
        kind="redis",
        changes={"password": "wrong-guess"},
        master_changes={},
    ),
    BadInput(
        "mariadb: username with SQL",
        "NoWorkingCredentialError",
        kind="mariadb",
        changes={"username": SQL_USER},
    ),
    BadInput(
        "mariadb: password with SQL",
        "NoWorkingCredentialError",
        kind="mariadb",
        changes={"password": SQL_PASSWORD},
    ),
    BadInput(
        "mariadb: dbname with SQL",
        "secret field 'dbname'",
        kind="mariadb",
        changes={"dbname": SQL},
    ),
    BadInput(
        "mariadb: username over MariaDB's 80 bytes",
        "'username'",
        kind="mariadb",
        changes={"username": "m" * 90},
    ),
    BadInput(
        "mariadb: master for another port",
        "is for another engine, host or port",
        kind="mariadb",
        master_changes={"port": 1},
    ),
]

CORPUS = EVENTS + SECRETS
