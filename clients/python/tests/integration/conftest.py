"""Run from clients/python: borrow the rotator repository's servers, CA and local runtime.

Through the repository's own test run (tests/integration/test_client_library.py) these fixtures
come from tests/integration/conftest.py instead, and this file is not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
if (REPO / "src" / "rotator").is_dir() and str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

try:
    from rotator.aws_local.cloud import LocalCloud
    from tests.integration.conftest import (  # noqa: F401 - fixtures
        mariadb_server,
        postgres_server,
        redis_server,
        test_ca,
        test_ca_stack_settings,
    )
except ImportError:  # installed alone: only the unit tests can run
    collect_ignore_glob = ["test_*.py"]
else:

    def pytest_configure() -> None:
        LocalCloud.keep()  # deploy the stack once per session, as the repository's run does

    def pytest_unconfigure() -> None:
        LocalCloud.let_go()
