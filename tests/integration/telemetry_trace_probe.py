"""Run rotations on the local runtime in a process that looks like Lambda to Powertools Tracer.

Started by ``test_telemetry_traces.py`` with ``LAMBDA_TASK_ROOT`` (Tracer enables itself only in
Lambda), ``_X_AMZN_TRACE_ID`` (a sampled trace, as Lambda's active tracing sets it) and
``AWS_XRAY_DAEMON_ADDRESS`` (the test's UDP collector) in its environment: X-Ray's patches are
process-wide, so they stay out of the test process.

stdin: JSON ``{"runtime": LocalRuntime kwargs, "master": secret or null, "users": [secret...]}``
(secrets as stored; a user secret with ``"masterarn": true`` is given the master's ARN).
argv[1]: where to write ``{"succeeded": [...], "values": {label: value}}``: every password any
secret version held, for the test's scan. Nothing is printed.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path


def main() -> int:
    from rotator.local import LocalRuntime

    spec = json.loads(sys.stdin.read())
    out = Path(sys.argv[1])
    group = "trace-group"
    with LocalRuntime(**spec["runtime"]) as rt:
        sm = rt.client("secretsmanager")
        master_arn = None
        if spec.get("master"):
            master_arn = sm.create_secret(
                Name=f"trace/master/{secrets.token_hex(4)}",
                SecretString=json.dumps(spec["master"]),
                Tags=[
                    {"Key": "SecretRotationMaster", "Value": rt.stack_name},
                    {"Key": "SecretRotationGroup", "Value": group},
                ],
            )["ARN"]
        succeeded = []
        for user in spec["users"]:
            if user.pop("masterarn", False):
                user["masterarn"] = master_arn
            arn = sm.create_secret(
                Name=f"trace/user/{secrets.token_hex(4)}",
                SecretString=json.dumps(user),
                Tags=[{"Key": "SecretRotationGroup", "Value": group}],
            )["ARN"]
            succeeded.append(rt.rotate(arn).succeeded)
        out.write_text(json.dumps({"succeeded": succeeded, "values": rt.secret_values()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
