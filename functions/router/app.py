"""Rotation router: the Lambda that Secrets Manager calls for every rotation step.

It validates the event, checks the secret's staging labels, resolves the strategy, runs the
step's Step Functions execution and performs the step's Secrets Manager write.
"""

from __future__ import annotations

from typing import Any

from rotation_core.handlers import route


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return route(event, context)
