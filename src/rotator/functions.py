"""Where the CLI and the demo find the in-process Lambda host (it lives in :mod:`rotator.aws_local`)."""

from __future__ import annotations

from rotator.aws_local.lambda_host import (
    FunctionHost,
    FunctionSpec,
    Invocation,
    LambdaContext,
    redirect_function_logs,
    rotation_step,
)

__all__ = [
    "FunctionHost",
    "FunctionSpec",
    "Invocation",
    "LambdaContext",
    "redirect_function_logs",
    "rotation_step",
]
