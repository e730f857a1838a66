"""Structured logging, metrics and tracing (Powertools). Log keys, never values.

Tracing patches botocore only. By default Tracer patches every library the X-Ray SDK supports,
psycopg2 and pymysql included, and the SDK's database patches record each statement's text in
the trace ("sanitized_query"); an ALTER ROLE or SET PASSWORD is not something a trace may hold.
Responses and errors are not captured as trace metadata either (the handlers' decorators say
so, and so do POWERTOOLS_TRACER_CAPTURE_RESPONSE / POWERTOOLS_TRACER_CAPTURE_ERROR in the
template). The X-Ray SDK itself still records a raised exception's message and stack frames in
the segment's cause (its subsegment context manager does so whatever Tracer is told): that is
why an error leaving a handler is always one of the taxonomy's, whose messages name fields,
hosts and users but never a value (handlers._unexpected replaces any other by its class).
https://docs.aws.amazon.com/powertools/python/latest/core/tracer/
https://docs.aws.amazon.com/powertools/python/stage/api_doc/tracer/tracing/
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "secret-rotation"
METRICS_NAMESPACE = "SecretRotation"
#: the only library Tracer patches (tests/integration/test_telemetry_traces.py fails otherwise)
TRACED_MODULES = ("botocore",)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
# Disabled outside Lambda (no LAMBDA_TASK_ROOT), as Powertools decides.
tracer = Tracer(service=SERVICE, patch_modules=TRACED_MODULES)
