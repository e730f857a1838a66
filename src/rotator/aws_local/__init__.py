"""Everything the local runtime makes by hand, in one place.

The stack itself is not hand-made: :mod:`.stack` packages ``template.yaml`` into moto's S3,
translates it with aws-sam-translator and creates it with CloudFormation on moto, as
``sam deploy`` does on AWS. What remains hand-made:

- :mod:`.lambda_host`: the in-process Lambda dispatch. Each deployed function's handler is
  loaded from the source tree it was packaged from and run with the environment, timeout and
  role CloudFormation gave the function.
- :mod:`.uncreated`: what moto's CloudFormation cannot create (``AWS::SNS::Subscription``,
  ``AWS::CloudWatch::Alarm``: created through the service APIs), the alert inbox queue, and
  Secrets Manager's service events delivered to the EventBridge rules' Lambda targets.
- :mod:`.patches`: one module per AWS behaviour moto lacks, each citing the AWS documentation
  it restores, each with a test in ``tests/fidelity/`` that fails without it:

  - :mod:`.patches.state_machine_resource`: CloudFormation's state machine from
    ``DefinitionS3Location`` with ``DefinitionSubstitutions`` and logging, validated;
  - :mod:`.patches.no_value_in_lists`: ``!Ref AWS::NoValue`` as a list item removes the item;
  - :mod:`.patches.role_managed_policies`: CloudFormation attaches a role's
    ``ManagedPolicyArns``;
  - :mod:`.patches.lambda_permission_resource`: ``AWS::Lambda::Permission`` adds the statement
    ``AddPermission`` would (no ``FunctionName`` element);
  - :mod:`.patches.lambda_invoke`: ``Invoke`` runs the handler (through :mod:`.lambda_host`);
  - :mod:`.patches.sns_lambda_permission`: SNS invokes a subscribed function only when its
    resource policy allows it (with the runtime's IAM checks on);
  - :mod:`.patches.rotate_secret`: ``RotateSecret`` runs the steps in order in the background,
    stops at a failure, leaves the labels, refuses while a rotation is unfinished, and retries
    a failed one with its token as Secrets Manager does;
  - :mod:`.patches.secret_current_version`: ``GetSecretValue`` serves the AWSCURRENT version;
  - :mod:`.patches.sts_key_state`: STS refuses unknown, inactive, not-yet-propagated keys;
  - :mod:`.patches.sts_signature`: STS checks SigV4 signatures of IAM user keys;
  - :mod:`.patches.math_random`: ``States.MathRandom`` excludes its end value;
  - :mod:`.patches.choice_timestamps`: Choice rules compare RFC 3339 timestamps with
    fractional seconds (``$$.State.EnteredTime`` included);
  - :mod:`.patches.lambda_unknown`: a ``lambda:invoke`` task whose function failed without an
    error type (a timeout) fails with ``Lambda.Unknown``.
- :mod:`.cloud`: one moto per process with those patches, and the pool of deployed stacks.
"""
