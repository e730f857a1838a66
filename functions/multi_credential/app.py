"""Multi-credential workers: one Lambda per step (see template.yaml) for identities that hold
two live credentials at once (IAM access keys, Redis ACL passwords), plus rollback and the
retirement of the superseded credential."""

from __future__ import annotations

from rotation_core.handlers import worker
from rotation_core.strategies import multi_credential

create_secret = worker(multi_credential.create_secret)
set_secret = worker(multi_credential.set_secret)
test_secret = worker(multi_credential.test_secret)
rollback = worker(multi_credential.rollback)
retire = worker(multi_credential.retire)
