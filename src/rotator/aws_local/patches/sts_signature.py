"""STS checks the request's Signature Version 4 signature against the access key's secret.

AWS: every request is signed with the secret access key; AWS recomputes the signature and
refuses a mismatch with ``SignatureDoesNotMatch``. A key id alone proves nothing. "A request
must reach AWS within five minutes of the time stamp in the request. Otherwise, AWS denies the
request": a captured request cannot be replayed later.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-signing.html

moto 5.2 never checks a signature: a known key id with any secret, at any time, passes. The
patch recomputes the signature of ``GetCallerIdentity`` requests signed with an IAM user's key
or a temporary key moto's STS issued (the call a multi-credential test makes with the new key)
and refuses one signed more than five minutes away from now.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rotator.aws_local.patches import MotoPatch
from rotator.aws_local.patches.sts_key_state import find_access_key, find_temporary_credentials

#: how far a request's signing time may be from now
SIGNATURE_WINDOW = timedelta(minutes=5)

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/[0-9]{8}/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)"
)


def signed_recently(response: Any) -> bool:
    """The request's ``X-Amz-Date`` is within :data:`SIGNATURE_WINDOW` of now."""
    stamp = {k.lower(): v for k, v in response.headers.items()}.get("x-amz-date", "")
    try:
        signed = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return abs(datetime.now(UTC) - signed) <= SIGNATURE_WINDOW


def signature_matches(response: Any, secret_access_key: str) -> bool:
    """Recompute a request's SigV4 signature (as AWS does) with the key's secret."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {k.lower(): v for k, v in response.headers.items()}
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if not match:
        return False
    key_id, region, service, signed, signature = match.groups()
    body = response.body if isinstance(response.body, bytes) else (response.body or "").encode()
    form = getattr(response, "form_data", None)
    if not body and form:
        # werkzeug parsed the form body away; query-protocol bodies re-encode identically
        from botocore.utils import percent_encode_sequence

        pairs: Any = list(form.items(multi=True))
        body = percent_encode_sequence(pairs).encode()
    request = AWSRequest(
        method=response.method,
        url=response.uri,
        data=body,
        headers={name: headers[name] for name in signed.split(";") if name in headers},
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    auth = SigV4Auth(Credentials(key_id, secret_access_key), service, region)
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    return bool(expected == signature)


class StsChecksSignatures(MotoPatch):
    aws_doc = (
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html"
    )

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.sts.exceptions import STSClientError
        from moto.sts.responses import TokenResponse

        original = TokenResponse.get_caller_identity

        def get_caller_identity(response: Any) -> Any:
            key_id = response.get_access_key()
            key = find_access_key(key_id) or find_temporary_credentials(key_id)
            if key is not None:
                if not signed_recently(response):
                    raise STSClientError("SignatureDoesNotMatch", "Signature expired.")
                if not signature_matches(response, key.secret_access_key):
                    raise STSClientError(
                        "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided.",
                    )
            return original(response)

        return [(TokenResponse, "get_caller_identity", get_caller_identity)]
