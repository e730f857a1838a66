"""STS refuses access keys that IAM does not know, that are inactive, or that have not
propagated yet.

AWS: an inactive access key "cannot be used to make API calls"; a deleted one no longer exists;
IAM is eventually consistent, so a key just created can be refused for a few seconds.
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency

moto 5.2's STS answers ``GetCallerIdentity`` for any key. The patch refuses an unknown ``AKIA``
key, an inactive one and a temporary ``ASIA`` key STS never issued with
``InvalidClientTokenId``, and, for keys the stack's own functions
created, simulates propagation for as long as the runtime asks (``iam_propagation_seconds`` /
``iam_propagation_checks``).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from rotator.aws_local.patches import MotoPatch


def find_access_key(access_key_id: str) -> Any:
    """moto's IAM access key object with this id, in any account, or None."""
    from moto.iam.models import iam_backends

    for by_partition in iam_backends.values():
        for backend in by_partition.values():
            for user in list(backend.users.values()):
                for key in user.access_keys:
                    if key.access_key_id == access_key_id:
                        return key
    return None


def find_temporary_credentials(access_key_id: str) -> Any:
    """The session moto's STS issued with this temporary (``ASIA``) key id, or None."""
    from moto.sts.models import sts_backends

    for by_partition in sts_backends.values():
        for backend in by_partition.values():
            for role in list(backend.assumed_roles):
                if role.access_key_id == access_key_id:
                    return role
    return None


class StsRefusesUnusableKeys(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.iam.models import IAMBackend
        from moto.sts.exceptions import STSClientError
        from moto.sts.models import STSBackend

        cloud = self.cloud
        original_identity = STSBackend.get_caller_identity
        original_create = IAMBackend.create_access_key

        def get_caller_identity(backend: Any, access_key_id: str, region: str) -> Any:
            key = find_access_key(access_key_id)
            refused = STSClientError(
                "InvalidClientTokenId", "The security token included in the request is invalid."
            )
            if key is None and access_key_id.startswith("AKIA"):
                raise refused  # an IAM user key that no longer exists
            if (
                access_key_id.startswith("ASIA")
                and find_temporary_credentials(access_key_id) is None
            ):
                raise refused  # a temporary key STS never issued
            if key is not None:
                if key.status != "Active":
                    raise refused
                runtime = cloud.key_creators.get(access_key_id)
                if runtime is not None and runtime.key_still_propagating(key):
                    raise refused
            return original_identity(backend, access_key_id, region)

        def create_access_key(backend: Any, *args: Any, **kwargs: Any) -> Any:
            key = original_create(backend, *args, **kwargs)
            thread = threading.current_thread().name
            if thread.startswith("lambda:"):
                runtime = cloud.find_runtime(thread.removeprefix("lambda:"))
                if runtime is not None:
                    cloud.key_creators[key.access_key_id] = runtime
            return key

        return [
            (STSBackend, "get_caller_identity", get_caller_identity),
            (IAMBackend, "create_access_key", create_access_key),
        ]


def key_age_seconds(key: Any) -> float:
    return (datetime.now(UTC) - key.create_date.replace(tzinfo=UTC)).total_seconds()
