"""What each AWS API call needs authorized: action, resource and request context, as AWS sees it.

One table maps (service, operation) to the authorizations the call needs. Each row builds the
resource ARN from the call's parameters and the condition keys AWS would put in the request
context from moto's backends *at the moment of the call* (a secret's tags and rotation function,
an IAM user's tags, a KMS key's attributes). An operation missing from the table fails closed
(:class:`UnmappedCallError`).

Condition keys per action come from AWS's Service Authorization Reference:
- Secrets Manager: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
  (and https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html)
- KMS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
  and https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
- IAM: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
  (``iam:ResourceTag/${TagKey}`` and ``aws:ResourceTag/${TagKey}`` on the user resource)
- Step Functions: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
- SNS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
- Lambda: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html
- Global keys: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html

A key listed in ``known`` but missing from ``context`` is one AWS would leave out of this
request; a key this table does not list is unknown and fails closed in :mod:`.policy`. Keys
whose presence we cannot model faithfully (e.g. ``secretsmanager:SecretPrimaryRegion``,
``aws:ResourceTag`` on executions and topics) are deliberately left unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotator.iam_checker.policy import ContextValue, Principal

#: Secrets Manager's own key for a secret; calls with it need no kms permission.
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"


class UnmappedCallError(Exception):
    """An API call the table does not describe: the checker refuses it (fails closed)."""


@dataclass(frozen=True)
class Authorization:
    """One permission an API call needs."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    known: tuple[str, ...] = ()
    #: ("kms", key ARN) or ("lambda", unqualified function ARN): the resource policy to apply
    resource_policy: tuple[str, str] | None = None
    #: for calls a service makes on the caller's behalf (kms:ViaService), shown in reports
    note: str = ""


class AwsState:
    """moto's backends for one account and region, read at the moment of a call."""

    def __init__(self, account: str, region: str, partition: str = "aws") -> None:
        self.account = account
        self.region = region
        self.partition = partition

    def secret(self, secret_id: str) -> Any | None:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[self.account][self.region]
        try:
            return backend.describe_secret(secret_id)
        except Exception:  # not found (or deleted): AWS still authorizes first
            return None

    def user(self, name: str) -> tuple[str, dict[str, str]]:
        """(user ARN, tags) of an IAM user; a missing user has path / and no tags."""
        from moto.iam.models import iam_backends

        backend = iam_backends[self.account][self.partition]
        try:
            user = backend.get_user(name)
        except Exception:
            return f"arn:{self.partition}:iam::{self.account}:user/{name}", {}
        tags = {t["Key"]: t["Value"] for t in backend.list_user_tags(name)}
        return str(user.arn), tags

    def key(self, key_id: str) -> Any | None:
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        try:
            return backend.describe_key(key_id)
        except Exception:
            return None

    def key_tags(self, key: Any) -> dict[str, str]:
        from moto.kms.models import kms_backends

        backend = kms_backends[self.account][self.region]
        try:
            tags = backend.list_resource_tags(key.id)["Tags"]
        except Exception:
            return {}
        return {t["TagKey"]: t["TagValue"] for t in tags}

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{resource}"


Mapper = Callable[[AwsState, Mapping[str, Any]], list[Authorization]]


# --- Secrets Manager -------------------------------------------------------------------------

_SECRET_KEYS = (
    "secretsmanager:SecretId",
    "secretsmanager:resource/AllowRotationLambdaArn",
    "secretsmanager:ResourceTag/*",
    "aws:ResourceTag/*",
)


def _secret(action: str, *, request_keys: tuple[str, ...] = (), kms_action: str = "") -> Mapper:
    """A row for an action on one secret (``Secret*`` resource type)."""

    def mapper(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
        secret_id = str(params.get("SecretId", ""))
        secret = aws.secret(secret_id)
        arn = str(secret.arn) if secret is not None else _secret_arn_guess(aws, secret_id)
        context: dict[str, ContextValue] = {"secretsmanager:SecretId": arn}
        if secret is not None:
            if secret.rotation_lambda_arn:
                context["secretsmanager:resource/AllowRotationLambdaArn"] = str(
                    secret.rotation_lambda_arn
                )
            for tag in secret.tags or []:
                context[f"secretsmanager:ResourceTag/{tag['Key']}"] = str(tag["Value"])
                context[f"aws:ResourceTag/{tag['Key']}"] = str(tag["Value"])
        known = list(_SECRET_KEYS)
        # Request parameters become keys only when the request carries them.
        for name in request_keys:
            if params.get(name) is not None:
                context[f"secretsmanager:{name}"] = str(params[name])
                known.append(f"secretsmanager:{name}")
        needed = [Authorization(action, arn, context, tuple(known))]
        if kms_action and secret is not None:
            needed.extend(_secret_key_use(aws, secret, kms_action, params))
        return needed

    return mapper


def _secret_arn_guess(aws: AwsState, secret_id: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    # AWS matches a name against the ARN pattern ``secret:<name>-??????``; the suffix is unknown.
    return aws.arn("secretsmanager", f"secret:{secret_id}")


def _secret_key_use(
    aws: AwsState, secret: Any, kms_action: str, params: Mapping[str, Any]
) -> list[Authorization]:
    """The kms permission a read or write of a secret under a customer managed key needs.

    Secrets Manager calls KMS on the caller's behalf (``kms:ViaService``) with the encryption
    context ``SecretARN``/``SecretVersionId``; the caller needs ``kms:Decrypt`` to read and
    ``kms:GenerateDataKey`` to write. Secrets under ``aws/secretsmanager`` need nothing.
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
    """
    key_ref = str(secret.kms_key_id or "")
    if not key_ref or key_ref.endswith(AWS_MANAGED_SECRETS_KEY):
        return []
    key = aws.key(key_ref)
    if key is None:
        raise UnmappedCallError(f"secret's KMS key {key_ref} is not in this account")
    version = params.get("VersionId") or params.get("ClientRequestToken") or ""
    context: dict[str, ContextValue] = {
        "kms:ViaService": f"secretsmanager.{aws.region}.amazonaws.com",
        "kms:CallerAccount": aws.account,
        "kms:EncryptionContext:SecretARN": str(secret.arn),
        "kms:EncryptionContextKeys": ("SecretARN", "SecretVersionId"),
    }
    if version:
        context["kms:EncryptionContext:SecretVersionId"] = str(version)
    return [
        Authorization(
            f"kms:{kms_action}",
            str(key.arn),
            context,
            ("kms:EncryptionContext:*", "kms:EncryptionContextKeys", "kms:ViaService"),
            resource_policy=("kms", str(key.arn)),
            note="via Secrets Manager",
        )
    ]


def _no_resource(action: str) -> Mapper:
    """An action without resource-level permissions: the policy must say ``Resource: "*"``."""

    def mapper(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
        return [Authorization(action, "*")]

    return mapper


# --- KMS -------------------------------------------------------------------------------------


def _kms(action: str) -> Mapper:
    """Encrypt/Decrypt on a symmetric key, with its encryption context as condition keys."""

    def mapper(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
        key_ref = params.get("KeyId") or _key_in_ciphertext(params.get("CiphertextBlob"))
        if not key_ref:
            raise UnmappedCallError(f"{action}: cannot tell which KMS key the call uses")
        key = aws.key(str(key_ref))
        if key is None:
            raise UnmappedCallError(f"{action}: KMS key {key_ref} does not exist")
        encryption_context = dict(params.get("EncryptionContext") or {})
        context: dict[str, ContextValue] = {
            "kms:CallerAccount": aws.account,
            "kms:EncryptionAlgorithm": str(params.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT")),
            "kms:KeyOrigin": str(key.origin),
            "kms:KeySpec": str(key.key_spec),
            "kms:KeyUsage": str(key.key_usage),
            "kms:MultiRegion": "true" if key.multi_region else "false",
        }
        for name, value in encryption_context.items():
            context[f"kms:EncryptionContext:{name}"] = str(value)
        if encryption_context:
            context["kms:EncryptionContextKeys"] = tuple(encryption_context)
        if str(key_ref).startswith("alias/") or ":alias/" in str(key_ref):
            context["kms:RequestAlias"] = "alias/" + str(key_ref).split("alias/", 1)[1]
        for name, value in aws.key_tags(key).items():
            context[f"aws:ResourceTag/{name}"] = value
        known = (
            "kms:EncryptionContext:*",
            "kms:EncryptionContextKeys",
            "kms:RequestAlias",
            "kms:ViaService",  # absent: the caller calls KMS itself
            "aws:ResourceTag/*",
        )
        return [
            Authorization(action, str(key.arn), context, known, resource_policy=("kms", key.arn))
        ]

    return mapper


def _key_in_ciphertext(blob: Any) -> str | None:
    # moto's ciphertext starts with the key id (36 ASCII characters), as AWS's embeds its key.
    if isinstance(blob, bytes | bytearray) and len(blob) >= 36:
        try:
            return bytes(blob[:36]).decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


# --- IAM and STS -----------------------------------------------------------------------------


def _iam_user(action: str) -> Mapper:
    """An action on an IAM user (access keys): the user's tags are condition keys."""

    def mapper(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
        name = params.get("UserName")
        if not name:
            # Without UserName IAM acts on the caller, which for a role is an error.
            raise UnmappedCallError(f"{action} without UserName is not modelled")
        arn, tags = aws.user(str(name))
        context: dict[str, ContextValue] = {}
        for key, value in tags.items():
            context[f"iam:ResourceTag/{key}"] = value
            context[f"aws:ResourceTag/{key}"] = value
        return [Authorization(action, arn, context, ("iam:ResourceTag/*", "aws:ResourceTag/*"))]

    return mapper


def _nothing(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
    """sts:GetCallerIdentity needs no permission, and an explicit Deny cannot stop it.

    https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    """
    return []


# --- Step Functions, SNS, Lambda -------------------------------------------------------------


def _by_arn_param(action: str, param: str) -> Mapper:
    def mapper(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
        arn = params.get(param)
        if not arn:
            raise UnmappedCallError(f"{action} without {param} is not modelled")
        return [Authorization(action, str(arn))]

    return mapper


def _start_execution(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
    """states:StartExecution on a state machine, a version or an alias: Step Functions
    authorizes the state machine's own (unqualified) ARN, and the version number or alias
    name is the ``states:StateMachineQualifier`` condition key (absent for the unqualified
    ARN). https://docs.aws.amazon.com/step-functions/latest/dg/auth-version-alias.html
    """
    arn = params.get("stateMachineArn")
    if not arn:
        raise UnmappedCallError("states:StartExecution without stateMachineArn is not modelled")
    parts = str(arn).split(":")
    context: dict[str, ContextValue] = {}
    if len(parts) == 8:
        context["states:StateMachineQualifier"] = (parts[7],)
    return [
        Authorization(
            "states:StartExecution",
            ":".join(parts[:7]),
            context=context,
            known=("states:StateMachineQualifier",),
        )
    ]


def _publish(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
    target = params.get("TopicArn") or params.get("TargetArn")
    if not target:
        raise UnmappedCallError("sns:Publish to a phone number is not modelled")
    return [Authorization("sns:Publish", str(target))]


def _put_events(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
    """events:PutEvents: one authorization per entry, on the entry's bus, with the entry's
    ``events:source`` and ``events:detail-type`` as condition keys.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html
    """
    needed = []
    for entry in params.get("Entries") or []:
        bus = str(entry.get("EventBusName") or "default")
        arn = bus if bus.startswith("arn:") else aws.arn("events", f"event-bus/{bus}")
        context: dict[str, ContextValue] = {}
        if entry.get("Source") is not None:
            context["events:source"] = str(entry["Source"])
        if entry.get("DetailType") is not None:
            context["events:detail-type"] = str(entry["DetailType"])
        needed.append(
            Authorization(
                "events:PutEvents",
                arn,
                context=context,
                known=("events:source", "events:detail-type"),
            )
        )
    if not needed:
        raise UnmappedCallError("events:PutEvents without entries is not modelled")
    return needed


def lambda_function_arn(aws: AwsState, name: str, qualifier: str | None = None) -> str:
    """The ARN Lambda authorizes for FunctionName (name, partial or full ARN) + Qualifier.

    The qualified ARN is the resource when a version or alias is named.
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html
    """
    if name.startswith("arn:"):
        parts = name.split(":")
        base, embedded = ":".join(parts[:7]), parts[7] if len(parts) > 7 else None
    elif ":function:" in name:  # account:function:name[:qualifier]
        account, _, rest = name.split(":", 2)
        fn, _, embedded_q = rest.partition(":")
        base = f"arn:{aws.partition}:lambda:{aws.region}:{account}:function:{fn}"
        embedded = embedded_q or None
    else:
        fn, _, embedded_q = name.partition(":")
        base = aws.arn("lambda", f"function:{fn}")
        embedded = embedded_q or None
    final = qualifier or embedded
    return f"{base}:{final}" if final else base


def _invoke(aws: AwsState, params: Mapping[str, Any]) -> list[Authorization]:
    name = str(params.get("FunctionName", ""))
    arn = lambda_function_arn(aws, name, params.get("Qualifier"))
    unqualified = ":".join(arn.split(":")[:7])
    return [Authorization("lambda:InvokeFunction", arn, resource_policy=("lambda", unqualified))]


#: (botocore service name, operation) -> what the call needs authorized
TABLE: dict[tuple[str, str], Mapper] = {
    ("secretsmanager", "DescribeSecret"): _secret("secretsmanager:DescribeSecret"),
    ("secretsmanager", "GetSecretValue"): _secret(
        "secretsmanager:GetSecretValue",
        request_keys=("VersionId", "VersionStage"),
        kms_action="Decrypt",
    ),
    ("secretsmanager", "PutSecretValue"): _secret(
        "secretsmanager:PutSecretValue", kms_action="GenerateDataKey"
    ),
    ("secretsmanager", "UpdateSecretVersionStage"): _secret(
        "secretsmanager:UpdateSecretVersionStage", request_keys=("VersionStage",)
    ),
    ("secretsmanager", "ListSecretVersionIds"): _secret("secretsmanager:ListSecretVersionIds"),
    ("secretsmanager", "GetRandomPassword"): _no_resource("secretsmanager:GetRandomPassword"),
    ("kms", "Encrypt"): _kms("kms:Encrypt"),
    ("kms", "Decrypt"): _kms("kms:Decrypt"),
    ("iam", "ListAccessKeys"): _iam_user("iam:ListAccessKeys"),
    ("iam", "CreateAccessKey"): _iam_user("iam:CreateAccessKey"),
    ("iam", "UpdateAccessKey"): _iam_user("iam:UpdateAccessKey"),
    ("iam", "DeleteAccessKey"): _iam_user("iam:DeleteAccessKey"),
    ("iam", "GetUser"): _iam_user("iam:GetUser"),
    ("sts", "GetCallerIdentity"): _nothing,
    ("stepfunctions", "StartExecution"): _start_execution,
    ("stepfunctions", "ListExecutions"): _by_arn_param("states:ListExecutions", "stateMachineArn"),
    ("stepfunctions", "DescribeExecution"): _by_arn_param(
        "states:DescribeExecution", "executionArn"
    ),
    ("stepfunctions", "GetExecutionHistory"): _by_arn_param(
        "states:GetExecutionHistory", "executionArn"
    ),
    ("stepfunctions", "StopExecution"): _by_arn_param("states:StopExecution", "executionArn"),
    ("sns", "Publish"): _publish,
    ("lambda", "Invoke"): _invoke,
    ("events", "PutEvents"): _put_events,
}


def authorizations(
    aws: AwsState, service: str, operation: str, params: Mapping[str, Any]
) -> list[Authorization]:
    """What calling ``service.operation(**params)`` needs authorized; fails closed if unmapped."""
    mapper = TABLE.get((service, operation))
    if mapper is None:
        raise UnmappedCallError(
            f"{service}:{operation} is not in the IAM checker's request table "
            "(rotator.iam_checker.requests.TABLE)"
        )
    return mapper(aws, params)


# --- the principal's side of the request context ----------------------------------------------


def principal_context(
    principal: Principal,
    region: str,
    *,
    role_tags: Mapping[str, str] | None = None,
    function_arn: str | None = None,
    source_arn: str | None = None,
    source_account: str | None = None,
) -> tuple[dict[str, ContextValue], tuple[str, ...]]:
    """Global condition keys that describe who calls, and the ones AWS leaves out.

    For a role session: ``aws:PrincipalArn`` is the role's ARN (not the session's),
    ``aws:PrincipalType`` is ``AssumedRole``, ``aws:PrincipalTag/*`` are the role's tags, and
    ``aws:SourceArn``/``aws:SourceAccount`` are absent (no service acts on its behalf). A Lambda
    function's credentials carry ``lambda:SourceFunctionArn``. For a service principal the
    service's ``aws:SourceArn``/``aws:SourceAccount`` are present.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
    https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html
    """
    context: dict[str, ContextValue] = {
        "aws:RequestedRegion": region,
        "aws:SecureTransport": "true",
    }
    known = ["aws:SourceArn", "aws:SourceAccount", "aws:RequestedRegion", "aws:SecureTransport"]
    if principal.is_service:
        context["aws:PrincipalIsAWSService"] = "true"
        context["aws:PrincipalServiceName"] = principal.arn
        if source_arn:
            context["aws:SourceArn"] = source_arn
        if source_account:
            context["aws:SourceAccount"] = source_account
        known += ["aws:PrincipalIsAWSService", "aws:PrincipalServiceName"]
        return context, tuple(known)
    context.update(
        {
            "aws:PrincipalArn": principal.arn,
            "aws:PrincipalAccount": principal.account,
            "aws:PrincipalType": "AssumedRole",
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
        }
    )
    for key, value in (role_tags or {}).items():
        context[f"aws:PrincipalTag/{key}"] = value
    known += [
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalType",
        "aws:PrincipalIsAWSService",
        "aws:ViaAWSService",
        "aws:PrincipalTag/*",
    ]
    if function_arn:
        context["lambda:SourceFunctionArn"] = function_arn
        known.append("lambda:SourceFunctionArn")
    return context, tuple(known)
