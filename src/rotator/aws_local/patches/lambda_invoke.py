"""Lambda runs the function's code when it is invoked.

AWS: ``Invoke`` runs the function and returns its response; ``RequestResponse`` waits and, when
the function fails, answers with ``X-Amz-Function-Error: Unhandled`` and the error as the
payload; ``Event`` queues the invocation and answers 202 at once.
https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html

moto would run the code in a Docker container. The local runtime dispatches the invocation of
every function a local stack deployed to its handler in this process
(:mod:`rotator.aws_local.lambda_host`): through the API, and when SNS delivers to a ``lambda``
subscription (asynchronously, as SNS invokes functions). Other functions keep moto's behaviour.
https://docs.aws.amazon.com/sns/latest/dg/sns-lambda-as-subscriber.html
"""

from __future__ import annotations

import json
import threading
from typing import Any

from rotator.aws_local.patches import MotoPatch


class InvokeRunsTheHandler(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.awslambda.models import LambdaBackend

        cloud = self.cloud
        original = LambdaBackend.invoke

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes | str | None:
            found = cloud.find_function(function_name)
            if found is None:
                return original(backend, function_name, qualifier, body, headers, response_headers)
            host, spec = found
            event = json.loads(body) if body else {}
            if headers.get("x-amz-invocation-type") == "Event":
                threading.Thread(target=host.invoke, args=(spec, event), daemon=True).start()
                response_headers["status_code"] = 202
                return b""
            result = host.invoke(spec, event)
            if result.error is not None:
                response_headers["x-amz-function-error"] = "Unhandled"
                payload = json.dumps(result.error).encode()
            else:
                payload = json.dumps(result.payload).encode()
            response_headers["Content-Length"] = str(len(payload))
            return payload

        original_sns = LambdaBackend.send_sns_message

        def send_sns_message(
            backend: Any,
            function_name: str,
            message: str,
            subject: str | None = None,
            qualifier: str | None = None,
        ) -> None:
            found = cloud.find_function(function_name)
            if found is None:
                original_sns(backend, function_name, message, subject, qualifier)
                return
            host, spec = found
            event = {
                "Records": [
                    {
                        "EventSource": "aws:sns",
                        "EventVersion": "1.0",
                        "Sns": {"Type": "Notification", "Subject": subject, "Message": message},
                    }
                ]
            }
            threading.Thread(target=host.invoke, args=(spec, event), daemon=True).start()

        return [
            (LambdaBackend, "invoke", invoke),
            (LambdaBackend, "send_sns_message", send_sns_message),
        ]
