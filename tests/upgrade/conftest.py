"""The upgrade tier uses the integration tier's database servers and test CA."""

from tests.integration.conftest import (  # noqa: F401 - fixtures
    postgres_server,
    test_ca,
    test_ca_stack_settings,
)
