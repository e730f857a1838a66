"""Browser tier: the local console in real headless Chromium (Debian's ``chromium``).

Playwright drives the system's browser (``executable_path``); it never downloads one of its
own. ``.ci/run`` installs chromium when it is absent, so under CI=true a missing browser is a
failure, not a skip. Screenshots go to each test's tmp dir and are listed at the end of the
run ("console screenshots").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import postgres_server, test_ca  # noqa: F401 - fixtures
from tests.support.serve import Served, serve

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true (.ci/run installs chromium), so this is a failure")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _unavailable("chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """``rotator local serve --json --console``, its functions trusting the test CA."""
    ca = request.getfixturevalue("test_ca")
    log_path = tmp_path_factory.mktemp("console-serve") / "stderr.log"
    with serve(log_path, ca.directory, "--console") as running:
        assert "console_url" in running.ready, "serve --console printed no console_url"
        yield running


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """``screenshot(page, name)`` saves a full-page PNG and lists it in the run's summary."""

    def take(page: Any, name: str) -> str:
        path = str(tmp_path / f"{name}.png")
        page.screenshot(path=path, full_page=False)
        request.node.user_properties.append(("screenshot", path))
        print(f"screenshot: {path}")
        return path

    return take


def pytest_terminal_summary(terminalreporter: Any) -> None:
    paths = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for key, value in getattr(report, "user_properties", [])
        if key == "screenshot" and getattr(report, "when", "") == "call"
    ]
    if paths:
        terminalreporter.section("console screenshots")
        for path in dict.fromkeys(paths):
            terminalreporter.write_line(str(path))
