"""The IAM checker's policy language and evaluation logic, one rule at a time (no AWS, no moto).

Each condition operator and evaluation rule has a case that allows and one that denies; the
fail-closed rules each have a case proving the request is refused with a reason naming what the
checker does not know.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.iam_checker.policy import (
    Decision,
    Denial,
    Policy,
    PolicyError,
    PolicyKind,
    Principal,
    Request,
    evaluate,
    parse_policy,
    wildcard_match,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/other"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/db-AbCdEf"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:router"


def identity(*statements: dict[str, Any], label: str = "role worker: inline") -> Policy:
    return parse_policy(
        {"Version": "2012-10-17", "Statement": list(statements)}, label, PolicyKind.IDENTITY
    )


def resource(*statements: dict[str, Any], label: str = "resource") -> Policy:
    return parse_policy(
        {"Version": "2012-10-17", "Statement": list(statements)}, label, PolicyKind.RESOURCE
    )


def allow(
    action: str = "secretsmanager:GetSecretValue", res: str = "*", **extra: Any
) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def req(
    action: str = "secretsmanager:GetSecretValue",
    res: str = SECRET,
    context: dict[str, Any] | None = None,
    known: tuple[str, ...] = (),
    principal: Principal | None = None,
) -> Request:
    return Request(
        principal=principal or Principal(ROLE, ACCOUNT, session="worker-fn"),
        action=action,
        resource=res,
        context=context or {},
        known=known,
    )


def decide(policy: Policy, request: Request) -> Decision:
    return evaluate(request, [policy])


def refused(decision: Decision) -> bool:
    """Denied because nothing allowed it (not because the checker failed closed)."""
    return not decision.allowed and decision.denial is Denial.IMPLICIT


def with_condition(operator: str, key: str, values: Any) -> Policy:
    return identity(allow(Condition={operator: {key: values}}))


TAG = "secretsmanager:ResourceTag/SecretRotationMaster"
TAGS_KNOWN = ("secretsmanager:ResourceTag/*",)


# --- actions and resources -------------------------------------------------------------------


def test_an_action_wildcard_matches_in_any_case():
    policy = identity(allow("SecretsManager:Get*"))
    assert decide(policy, req()).allowed


def test_an_action_the_statement_does_not_name_is_implicitly_denied():
    decision = decide(identity(allow("secretsmanager:DescribeSecret")), req())
    assert not decision.allowed
    assert decision.denial is Denial.IMPLICIT
    assert decision.reason == (
        "because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_the_access_denied_message_has_aws_shape():
    decision = decide(identity(allow("secretsmanager:DescribeSecret")), req())
    assert decision.message(req()) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/worker/worker-fn is not authorized to "
        f"perform: secretsmanager:GetSecretValue on resource: {SECRET} because no "
        "identity-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_not_action_allows_every_other_action():
    policy = identity(
        {"Effect": "Allow", "NotAction": "secretsmanager:PutSecretValue", "Resource": "*"}
    )
    assert decide(policy, req()).allowed
    assert refused(decide(policy, req("secretsmanager:PutSecretValue")))


def test_a_resource_wildcard_spans_the_secret_name_suffix():
    policy = identity(allow(res=f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/*"))
    assert decide(policy, req()).allowed


def test_resources_match_case_sensitively():
    policy = identity(allow(res=f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:APP/*"))
    assert refused(decide(policy, req()))


def test_not_resource_allows_everything_but_the_named_resources():
    policy = identity({"Effect": "Allow", "Action": "secretsmanager:*", "NotResource": SECRET})
    other = SECRET.replace("app/db", "app/other")
    assert decide(policy, req(res=other)).allowed
    assert refused(decide(policy, req()))


def test_a_resource_level_statement_does_not_match_an_action_without_resources():
    # GetRandomPassword has no resource type: the request's resource is "*".
    policy = identity(
        allow("secretsmanager:GetRandomPassword", f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:*")
    )
    assert refused(decide(policy, req("secretsmanager:GetRandomPassword", "*")))
    assert decide(
        identity(allow("secretsmanager:GetRandomPassword")),
        req("secretsmanager:GetRandomPassword", "*"),
    ).allowed


def test_question_mark_matches_one_character_and_brackets_are_literal():
    assert wildcard_match("secret:a?c", "secret:abc")
    assert not wildcard_match("secret:a?c", "secret:abbc")
    assert not wildcard_match("secret:[ab]", "secret:a")
    assert wildcard_match("secret:[ab]", "secret:[ab]")


# --- explicit deny ---------------------------------------------------------------------------


def test_an_explicit_deny_wins_over_an_allow():
    policy = identity(allow(), {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"})
    decision = decide(policy, req())
    assert not decision.allowed
    assert decision.denial is Denial.EXPLICIT
    assert decision.reason == "with an explicit deny in a identity-based policy"


def test_a_deny_in_a_resource_policy_wins_over_an_identity_allow():
    deny = resource(
        {"Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction", "Resource": "*"}
    )
    decision = evaluate(req("lambda:InvokeFunction", FUNCTION), [identity(allow("lambda:*"))], deny)
    assert not decision.allowed
    assert decision.policy_kind is PolicyKind.RESOURCE


def test_a_deny_whose_condition_is_false_does_not_apply():
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    decision = decide(identity(allow(), deny), req(context={"aws:SecureTransport": "true"}))
    assert decision.allowed


# --- string operators ------------------------------------------------------------------------


def test_string_equals_allows_the_same_value():
    policy = with_condition("StringEquals", TAG, "rotator")
    assert decide(policy, req(context={TAG: "rotator"}, known=TAGS_KNOWN)).allowed


def test_string_equals_denies_another_value():
    policy = with_condition("StringEquals", TAG, "rotator")
    assert refused(decide(policy, req(context={TAG: "other-stack"}, known=TAGS_KNOWN)))


def test_string_equals_denies_when_the_key_is_missing():
    policy = with_condition("StringEquals", TAG, "rotator")
    assert refused(decide(policy, req(known=TAGS_KNOWN)))


def test_string_equals_with_several_values_allows_any_of_them():
    policy = with_condition("StringEquals", TAG, ["a", "rotator"])
    assert decide(policy, req(context={TAG: "rotator"})).allowed


def test_string_equals_is_case_sensitive_but_key_names_are_not():
    policy = with_condition("StringEquals", TAG.upper(), "rotator")
    assert decide(policy, req(context={TAG: "rotator"})).allowed
    assert refused(decide(policy, req(context={TAG: "Rotator"})))


def test_string_equals_ignore_case_allows_another_case():
    policy = with_condition("StringEqualsIgnoreCase", TAG, "ROTATOR")
    assert decide(policy, req(context={TAG: "rotator"})).allowed
    assert refused(decide(policy, req(context={TAG: "rotator2"})))


def test_string_not_equals_allows_another_value():
    policy = with_condition("StringNotEquals", TAG, "production")
    assert decide(policy, req(context={TAG: "rotator"})).allowed


def test_string_not_equals_denies_the_same_value():
    policy = with_condition("StringNotEquals", TAG, ["production", "rotator"])
    assert refused(decide(policy, req(context={TAG: "rotator"})))


def test_string_not_equals_holds_when_the_key_is_missing():
    # AWS: a negated operator on a missing key is true.
    policy = with_condition("StringNotEquals", TAG, "production")
    assert decide(policy, req(known=TAGS_KNOWN)).allowed


def test_string_like_allows_a_wildcard_match():
    policy = with_condition("StringLike", TAG, "rot*")
    assert decide(policy, req(context={TAG: "rotator"})).allowed


def test_string_like_denies_a_non_match():
    policy = with_condition("StringLike", TAG, "rot?")
    assert refused(decide(policy, req(context={TAG: "rotator"})))


def test_string_not_like_denies_a_match_and_allows_a_missing_key():
    policy = with_condition("StringNotLike", TAG, "rot*")
    assert refused(decide(policy, req(context={TAG: "rotator"})))
    assert decide(policy, req(known=TAGS_KNOWN)).allowed


# --- ARN operators ---------------------------------------------------------------------------

PRINCIPAL_ARN = "aws:PrincipalArn"


def test_arn_equals_allows_the_same_arn():
    policy = with_condition("ArnEquals", PRINCIPAL_ARN, [OTHER_ROLE, ROLE])
    assert decide(policy, req(context={PRINCIPAL_ARN: ROLE})).allowed


def test_arn_equals_denies_another_arn():
    policy = with_condition("ArnEquals", PRINCIPAL_ARN, OTHER_ROLE)
    assert refused(decide(policy, req(context={PRINCIPAL_ARN: ROLE})))


def test_arn_like_matches_each_part_with_wildcards():
    policy = with_condition("ArnLike", "aws:SourceArn", f"arn:aws:events:*:{ACCOUNT}:rule/*")
    rule = f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/failed"
    assert decide(policy, req(context={"aws:SourceArn": rule})).allowed


def test_arn_like_does_not_let_a_wildcard_cross_into_another_part():
    policy = with_condition(
        "ArnLike", "aws:SourceArn", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/*"
    )
    other_account = "arn:aws:events:us-east-1:999999999999:rule/failed"
    assert refused(decide(policy, req(context={"aws:SourceArn": other_account})))
    assert refused(decide(policy, req(context={"aws:SourceArn": "not-an-arn"})))


def test_arn_not_like_denies_a_match():
    policy = with_condition("ArnNotLike", PRINCIPAL_ARN, f"arn:aws:iam::{ACCOUNT}:role/w*")
    assert refused(decide(policy, req(context={PRINCIPAL_ARN: ROLE})))
    assert decide(policy, req(context={PRINCIPAL_ARN: OTHER_ROLE})).allowed


# --- Null and Bool ---------------------------------------------------------------------------

CONTEXT_KEY = "kms:EncryptionContext:SecretArn"
KMS_KNOWN = ("kms:EncryptionContext:*", "kms:EncryptionContextKeys")


def test_null_false_allows_a_present_key():
    policy = identity(allow("kms:Encrypt", Condition={"Null": {CONTEXT_KEY: "false"}}))
    assert decide(policy, req("kms:Encrypt", KEY, {CONTEXT_KEY: SECRET}, KMS_KNOWN)).allowed


def test_null_false_denies_a_missing_key():
    policy = identity(allow("kms:Encrypt", Condition={"Null": {CONTEXT_KEY: "false"}}))
    assert refused(decide(policy, req("kms:Encrypt", KEY, {}, KMS_KNOWN)))


def test_null_true_allows_only_a_missing_key():
    policy = identity(allow("kms:Encrypt", Condition={"Null": {CONTEXT_KEY: "true"}}))
    assert decide(policy, req("kms:Encrypt", KEY, {}, KMS_KNOWN)).allowed
    assert refused(decide(policy, req("kms:Encrypt", KEY, {CONTEXT_KEY: SECRET}, KMS_KNOWN)))


def test_bool_allows_a_matching_value():
    policy = with_condition("Bool", "aws:SecureTransport", "true")
    assert decide(policy, req(context={"aws:SecureTransport": "true"})).allowed


def test_bool_denies_another_value():
    policy = with_condition("Bool", "aws:SecureTransport", True)
    assert refused(decide(policy, req(context={"aws:SecureTransport": "false"})))


# --- set operators and IfExists --------------------------------------------------------------

KEYS = "kms:EncryptionContextKeys"
SEALED = ["SecretArn", "ClientRequestToken"]


def sealing_policy(*, with_null: bool) -> Policy:
    condition: dict[str, Any] = {"ForAllValues:StringEquals": {KEYS: SEALED}}
    if with_null:
        condition["Null"] = {"kms:EncryptionContext:SecretArn": "false"}
    return identity(allow("kms:Encrypt", Condition=condition))


def kms_req(context: dict[str, str]) -> Request:
    values: dict[str, Any] = {f"kms:EncryptionContext:{k}": v for k, v in context.items()}
    if context:
        values[KEYS] = tuple(context)
    return req("kms:Encrypt", KEY, values, KMS_KNOWN)


def test_for_all_values_allows_a_subset_of_the_listed_values():
    assert decide(sealing_policy(with_null=False), kms_req({"SecretArn": SECRET})).allowed


def test_for_all_values_denies_a_value_outside_the_list():
    context = {"SecretArn": SECRET, "ClientRequestToken": "t", "Extra": "x"}
    assert refused(decide(sealing_policy(with_null=False), kms_req(context)))


def test_for_all_values_holds_for_an_empty_context_which_is_why_null_is_paired_with_it():
    assert decide(sealing_policy(with_null=False), kms_req({})).allowed
    assert refused(decide(sealing_policy(with_null=True), kms_req({})))


def test_for_any_value_allows_when_one_value_matches():
    policy = identity(
        allow("kms:Encrypt", Condition={"ForAnyValue:StringEquals": {KEYS: "SecretArn"}})
    )
    assert decide(policy, kms_req({"SecretArn": SECRET, "Other": "x"})).allowed


def test_for_any_value_denies_when_no_value_matches_or_the_key_is_missing():
    policy = identity(
        allow("kms:Encrypt", Condition={"ForAnyValue:StringEquals": {KEYS: "SecretArn"}})
    )
    assert refused(decide(policy, kms_req({"Other": "x"})))
    assert refused(decide(policy, kms_req({})))


def test_for_all_values_with_a_negated_operator_denies_a_listed_value():
    policy = identity(
        allow("kms:Encrypt", Condition={"ForAllValues:StringNotLike": {KEYS: "aws*"}})
    )
    assert decide(policy, kms_req({"SecretArn": SECRET})).allowed
    assert refused(decide(policy, kms_req({"aws-crypto": "x"})))


def test_if_exists_allows_a_missing_key():
    policy = with_condition("StringEqualsIfExists", TAG, "rotator")
    assert decide(policy, req(known=TAGS_KNOWN)).allowed


def test_if_exists_still_checks_a_present_key():
    policy = with_condition("StringEqualsIfExists", TAG, "rotator")
    assert refused(decide(policy, req(context={TAG: "other"}, known=TAGS_KNOWN)))


def test_several_keys_and_operators_must_all_hold():
    policy = identity(
        allow(
            Condition={
                "StringEquals": {TAG: "rotator", "aws:PrincipalAccount": ACCOUNT},
                "Bool": {"aws:SecureTransport": "true"},
            }
        )
    )
    good = {TAG: "rotator", "aws:PrincipalAccount": ACCOUNT, "aws:SecureTransport": "true"}
    assert decide(policy, req(context=good)).allowed
    assert refused(decide(policy, req(context={**good, "aws:SecureTransport": "false"})))


# --- principals and resource policies --------------------------------------------------------


def test_a_resource_policy_naming_the_role_allows_without_an_identity_policy():
    policy = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        }
    )
    assert evaluate(req("lambda:InvokeFunction", FUNCTION), [], policy).allowed


def test_a_resource_policy_naming_another_role_does_not_allow():
    policy = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": OTHER_ROLE},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        }
    )
    assert refused(evaluate(req("lambda:InvokeFunction", FUNCTION), [], policy))


def test_a_resource_policy_naming_the_account_needs_an_identity_allow():
    policy = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        }
    )
    request = req("lambda:InvokeFunction", FUNCTION)
    assert refused(evaluate(request, [], policy))
    assert evaluate(request, [identity(allow("lambda:InvokeFunction", FUNCTION))], policy).allowed


SERVICE = Principal("secretsmanager.amazonaws.com", ACCOUNT, is_service=True)
ROUTER_PERMISSION = resource(
    {
        "Sid": "RouterInvokePermission",
        "Effect": "Allow",
        "Principal": {"Service": "secretsmanager.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": FUNCTION,
        "Condition": {"StringEquals": {"AWS:SourceAccount": ACCOUNT}},
    }
)


def service_req(principal: Principal, account: str) -> Request:
    return req(
        "lambda:InvokeFunction",
        FUNCTION,
        {"aws:SourceAccount": account},
        ("aws:SourceArn",),
        principal,
    )


def test_a_service_principal_named_in_the_function_policy_may_invoke():
    decision = evaluate(service_req(SERVICE, ACCOUNT), [], ROUTER_PERMISSION)
    assert decision.allowed
    assert [str(r) for r in decision.allowed_by] == ["resource#RouterInvokePermission"]


def test_a_service_principal_from_another_account_may_not_invoke():
    decision = evaluate(service_req(SERVICE, "999999999999"), [], ROUTER_PERMISSION)
    assert not decision.allowed
    assert (
        decision.reason
        == "because no resource-based policy allows the lambda:InvokeFunction action"
    )


def test_another_service_principal_may_not_invoke():
    events = Principal("events.amazonaws.com", ACCOUNT, is_service=True)
    assert refused(evaluate(service_req(events, ACCOUNT), [], ROUTER_PERMISSION))


# --- KMS key policies ------------------------------------------------------------------------


def key_policy(*statements: dict[str, Any]) -> Policy:
    return resource(*statements, label="key sealing: key policy")


ACCOUNT_ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


def test_an_identity_policy_alone_cannot_use_a_kms_key():
    policy = key_policy(
        {"Effect": "Allow", "Principal": ACCOUNT_ROOT, "Action": "kms:Describe*", "Resource": "*"}
    )
    decision = evaluate(
        req("kms:Decrypt", KEY), [identity(allow("kms:*"))], policy, key_policy=True
    )
    assert not decision.allowed
    assert decision.reason == "because no resource-based policy allows the kms:Decrypt action"


def test_a_key_policy_naming_the_role_allows_without_an_identity_policy():
    policy = key_policy(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    assert evaluate(req("kms:Decrypt", KEY), [], policy, key_policy=True).allowed


def test_a_key_policy_delegating_to_the_account_needs_an_identity_allow():
    policy = key_policy(
        {"Effect": "Allow", "Principal": ACCOUNT_ROOT, "Action": "kms:Decrypt", "Resource": "*"}
    )
    request = req("kms:Decrypt", KEY)
    denied = evaluate(request, [], policy, key_policy=True)
    assert not denied.allowed
    assert denied.reason == "because no identity-based policy allows the kms:Decrypt action"
    allowed = evaluate(request, [identity(allow("kms:Decrypt", KEY))], policy, key_policy=True)
    assert allowed.allowed
    assert {str(r) for r in allowed.allowed_by} == {
        "key sealing: key policy#0",
        "role worker: inline#0",
    }


def test_a_key_policy_delegation_capped_by_principal_arn_refuses_other_roles():
    policy = key_policy(
        {
            "Effect": "Allow",
            "Principal": ACCOUNT_ROOT,
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": ROLE}},
        }
    )
    generous = [identity(allow("kms:*"))]
    mine = req("kms:Decrypt", KEY, {"aws:PrincipalArn": ROLE})
    theirs = req(
        "kms:Decrypt",
        KEY,
        {"aws:PrincipalArn": OTHER_ROLE},
        principal=Principal(OTHER_ROLE, ACCOUNT),
    )
    assert evaluate(mine, generous, policy, key_policy=True).allowed
    assert refused(evaluate(theirs, generous, policy, key_policy=True))


# --- fail closed -----------------------------------------------------------------------------


def test_an_unknown_condition_operator_fails_closed_and_names_it():
    policy = with_condition("DateGreaterThan", "aws:CurrentTime", "2020-01-01T00:00:00Z")
    decision = decide(policy, req(context={"aws:CurrentTime": "2030-01-01T00:00:00Z"}))
    assert not decision.allowed
    assert decision.denial is Denial.UNKNOWN
    assert "'DateGreaterThan'" in decision.reason


def test_a_misspelt_operator_fails_closed():
    decision = decide(with_condition("StringEqual", TAG, "rotator"), req(context={TAG: "rotator"}))
    assert not decision.allowed
    assert "'StringEqual'" in decision.reason


def test_an_unknown_condition_key_fails_closed_and_names_it():
    decision = decide(with_condition("StringEquals", "aws:SourceVpc", "vpc-1"), req())
    assert not decision.allowed
    assert "condition key 'aws:SourceVpc' is not known" in decision.reason


def test_an_unknown_key_fails_closed_even_beside_a_false_condition():
    policy = identity(allow(Condition={"StringEquals": {TAG: "x", "aws:SourceVpc": "vpc-1"}}))
    decision = decide(policy, req(context={TAG: "rotator"}))
    assert decision.denial is Denial.UNKNOWN


def test_an_unknown_key_in_a_deny_statement_fails_closed():
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}},
    }
    decision = decide(identity(allow(), deny), req())
    assert not decision.allowed
    assert decision.denial is Denial.UNKNOWN


def test_a_statement_for_another_action_does_not_need_to_be_understood():
    other = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    assert decide(identity(allow(), other), req()).allowed


def test_a_policy_variable_fails_closed():
    policy = identity(allow(res="arn:aws:secretsmanager:*:*:secret:${aws:username}-*"))
    decision = decide(policy, req())
    assert decision.denial is Denial.UNKNOWN
    assert "policy variable" in decision.reason


def test_a_set_operator_on_a_single_valued_key_fails_closed():
    decision = decide(
        with_condition("ForAnyValue:StringEquals", TAG, "rotator"), req(context={TAG: "rotator"})
    )
    assert decision.denial is Denial.UNKNOWN
    assert "single-valued" in decision.reason


def test_a_single_valued_operator_on_a_multivalued_key_fails_closed():
    policy = identity(allow("kms:Encrypt", Condition={"StringEquals": {KEYS: "SecretArn"}}))
    decision = decide(policy, kms_req({"SecretArn": SECRET}))
    assert decision.denial is Denial.UNKNOWN
    assert "needs ForAllValues: or ForAnyValue:" in decision.reason


def test_a_null_condition_with_a_set_prefix_fails_closed():
    policy = identity(allow("kms:Encrypt", Condition={"ForAllValues:Null": {KEYS: "false"}}))
    assert decide(policy, kms_req({"SecretArn": SECRET})).denial is Denial.UNKNOWN


def test_an_unmodelled_principal_type_fails_closed():
    policy = resource(
        {
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "lambda:*",
            "Resource": "*",
        }
    )
    decision = evaluate(req("lambda:InvokeFunction", FUNCTION), [], policy)
    assert decision.denial is Denial.UNKNOWN


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": ROLE}, "Action": "*"}]},
            "NotPrincipal",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principals": "*"}]},
            "unknown statement element",
        ),
        ({"Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]}, "Effect"),
        ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action"),
        ({"Statement": [], "Extra": 1}, "unknown policy element"),
    ],
)
def test_malformed_or_unmodelled_policies_are_refused_when_read(
    document: dict[str, Any], problem: str
):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(document, "bad", PolicyKind.RESOURCE)


def test_a_principal_in_an_identity_policy_is_refused():
    with pytest.raises(PolicyError, match="cannot name a Principal"):
        identity({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})


def test_a_wildcard_inside_a_principal_arn_is_refused():
    with pytest.raises(PolicyError, match="wildcards are not allowed"):
        resource(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"},
                "Action": "*",
            }
        )
