"""Prove the stack deploys the way ``sam deploy`` deploys it (``make deploy-check``).

1. Package ``template.yaml`` into S3 and translate it with aws-sam-translator, as ``sam deploy``
   and CloudFormation's ``AWS::Serverless-2016-10-31`` transform do.
2. Run cfn-lint on the **translated** template: zero errors (cycles, unknown properties...).
3. Create the translated stack with CloudFormation on moto and require ``CREATE_COMPLETE``;
   print the resource types moto's CloudFormation skips.
4. Check each state machine definition after ``DefinitionSubstitutions`` with the template's
   defaults: valid JSON, and ``asl-validator`` (npm) when it is installed (``--asl-validator``).

Outputs go to ``.ci-out/``. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".ci-out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfn-lint", default=str(ROOT / ".venv" / "bin" / "cfn-lint"))
    parser.add_argument("--asl-validator", help="path of the asl-validator executable")
    args = parser.parse_args(argv)

    import boto3

    from rotator.aws_local import stack
    from rotator.aws_local.cloud import LocalCloud

    OUT.mkdir(exist_ok=True)
    started = time.monotonic()
    failures: list[str] = []
    source = stack.load_template()
    parameters = stack.ci_parameters(source)

    cloud = LocalCloud.acquire()
    cloud.enter()
    try:

        def clients(service: str) -> object:
            return boto3.client(service, region_name="us-east-1")  # type: ignore[call-overload]

        s3 = clients("s3")
        bucket = "deploy-check-artifacts"
        s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        packaged = stack.package(source, s3, bucket)
        translated = stack.translate(packaged.template, parameters)
        translated_path = OUT / "translated.template.json"
        translated_path.write_text(json.dumps(translated, indent=1))
        print(
            f"translated: {translated_path.relative_to(ROOT)} ({len(translated['Resources'])} resources)"
        )

        lint = subprocess.run([args.cfn_lint, str(translated_path)], capture_output=True, text=True)
        print(f"cfn-lint on the translated template: exit {lint.returncode}")
        if lint.stdout.strip():
            print(lint.stdout.strip())
        # cfn-lint exits 2 for errors, 4 for warnings, 8 for informational findings
        if lint.returncode & 2 or lint.returncode == 1:
            failures.append("cfn-lint found errors in the translated template")

        skipped = stack.unsupported_types(translated)
        try:
            deployed = stack.deploy(clients, stack_name="deploy-check", parameters=parameters)
        except stack.DeployError as exc:
            failures.append(f"CloudFormation on moto: {exc}")
            deployed = None
        if deployed is not None:
            print(
                f"CloudFormation on moto: CREATE_COMPLETE, {len(deployed.resources)} resources; "
                f"moto's CloudFormation skips: {', '.join(skipped) or 'nothing'}"
            )
            sfn = clients("stepfunctions")
            for logical_id, arn in deployed.of_type("AWS::StepFunctions::StateMachine").items():
                definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]  # type: ignore[attr-defined]
                path = OUT / f"{logical_id}.substituted.asl.json"
                path.write_text(definition)
                try:
                    json.loads(definition)
                except ValueError as exc:
                    failures.append(f"{logical_id}: not JSON after substitution: {exc}")
                    continue
                if args.asl_validator:
                    check = subprocess.run(
                        [args.asl_validator, "--json-path", str(path)],
                        capture_output=True,
                        text=True,
                    )
                    verdict = (check.stdout + check.stderr).strip()
                    print(
                        f"asl-validator {logical_id}: {verdict or 'exit ' + str(check.returncode)}"
                    )
                    if check.returncode != 0:
                        failures.append(f"asl-validator refused {logical_id}")
                else:
                    print(f"{logical_id}: valid JSON after substitution (asl-validator not run)")
    finally:
        cloud.leave()
        cloud.release()

    print(f"deploy check: {time.monotonic() - started:.1f} s")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
