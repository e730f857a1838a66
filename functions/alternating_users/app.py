"""Alternating-users workers: one Lambda per step (see template.yaml); a master secret keeps
two equal users, ``name`` and ``name_clone``, and each rotation updates the idle one."""

from __future__ import annotations

from rotation_core.handlers import worker
from rotation_core.strategies import alternating_users

create_secret = worker(alternating_users.create_secret)
set_secret = worker(alternating_users.set_secret)
test_secret = worker(alternating_users.test_secret)
