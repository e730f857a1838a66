"""Structured logging and metrics (Powertools). Log keys, never values."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "secret-rotation"
METRICS_NAMESPACE = "SecretRotation"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
