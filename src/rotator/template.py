"""``template.yaml``, the single source of truth, read as a dict (intrinsics in long form).

Nothing here resolves the template: the local runtime deploys it the way ``sam deploy`` does
(:mod:`rotator.aws_local.stack`).
"""

from __future__ import annotations

from rotator.aws_local.stack import DEFAULT_TEMPLATE, PROJECT_ROOT, load_template

__all__ = ["DEFAULT_TEMPLATE", "PROJECT_ROOT", "load_template"]
