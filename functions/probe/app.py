"""The operator's probe: read-only findings about one secret for rotator status/doctor/plan.

Logs in with the stored versions and the master, reads privileges, and dry-runs setSecret
(writes recorded, never sent); answers with findings only, never a value. See
rotation_core.probe.
"""

from __future__ import annotations

from rotation_core.handlers import probe

handler = probe
