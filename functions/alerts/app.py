"""Alert safety net: announces failed rotations that no state machine announced (once).

Fed by the EventBridge rule on Secrets Manager's RotationFailed event and by the alarm on
failed executions; see rotation_core.safety_net for the dedupe rule.
"""

from __future__ import annotations

from rotation_core.handlers import safety_net

handler = safety_net
