"""Single-user workers: one Lambda per step (see template.yaml), one user's password."""

from __future__ import annotations

from rotation_core.handlers import worker
from rotation_core.strategies import single_user

create_secret = worker(single_user.create_secret)
set_secret = worker(single_user.set_secret)
test_secret = worker(single_user.test_secret)
rollback = worker(single_user.rollback)
