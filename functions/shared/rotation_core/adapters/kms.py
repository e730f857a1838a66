"""KMS encryption of the credential a worker hands to the router (the Sealer port)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from rotation_core.adapters.aws_errors import aws_errors, error_code
from rotation_core.exceptions import AwsThrottlingError, SealingError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


class KmsSealer:
    """KMS encryption of a credential handed from a worker to the router.

    The encryption context binds the ciphertext to (secret ARN, token): a blob lifted from one
    rotation cannot be replayed into another. Payloads are small JSON documents, well under
    KMS's 4 KiB plaintext limit, which :meth:`seal` enforces.
    """

    MAX_PLAINTEXT = 4096

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, payload: dict[str, Any], context: dict[str, str]) -> dict[str, str]:
        plaintext = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        if len(plaintext) > self.MAX_PLAINTEXT:
            raise SealingError(f"credential is {len(plaintext)} bytes; KMS seals at most 4096")
        try:
            with aws_errors("Encrypt"):
                response = self._client.encrypt(
                    KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=context
                )
        except AwsThrottlingError:
            raise
        except Exception as exc:
            raise SealingError(
                f"KMS Encrypt failed: {error_code(exc) or type(exc).__name__}"
            ) from None
        return {
            "Ciphertext": base64.b64encode(response["CiphertextBlob"]).decode("ascii"),
            "KeyId": response["KeyId"],
        }

    def unseal(self, sealed: Any, context: dict[str, str]) -> dict[str, Any]:
        if not isinstance(sealed, dict) or not isinstance(sealed.get("Ciphertext"), str):
            raise SealingError("sealed credential is missing its 'Ciphertext'")
        try:
            blob = base64.b64decode(sealed["Ciphertext"], validate=True)
            with aws_errors("Decrypt"):
                response = self._client.decrypt(
                    CiphertextBlob=blob, EncryptionContext=context, KeyId=self._key_id
                )
        except AwsThrottlingError:
            raise
        except Exception as exc:
            raise SealingError(
                f"KMS Decrypt failed: {error_code(exc) or type(exc).__name__}"
            ) from None
        payload: dict[str, Any] = json.loads(response["Plaintext"])
        return payload
