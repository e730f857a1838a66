"""The local console (``rotator local serve --console``) in headless Chromium, during real
rotations of users on a throwaway PostgreSQL that enforces passwords."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import database_secret, new_password, unique_name
from tests.support.proxy import FlakyProxy
from tests.support.serve import Served

pytestmark = pytest.mark.integration

WAIT_MS = 90_000
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


@pytest.fixture
def page(browser: Any, console: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.goto(console.ready["console_url"])
    opened.wait_for_selector("body[data-polls]")
    try:
        yield opened
    finally:
        context.close()


def _follow(page: Any, secret_name: str) -> None:
    """Click the secret: the page then follows its newest rotation."""
    item = page.locator(f'li.secret[data-secret="{secret_name}"] > button')
    item.wait_for(timeout=WAIT_MS)
    item.click()


def _start_rotation(console: Served, arn: str) -> str:
    sm = console.client("secretsmanager")
    token: str = sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=console.ready["router_function_arn"]
    )["VersionId"]
    return token


def test_a_failing_rotation_shows_its_failed_state_highlighted(
    console: Served, page: Any, postgres_server: DatabaseServer, screenshot: Any
) -> None:
    """GIVEN a secret whose stored password is wrong, and the console following it
    WHEN it rotates THEN the page shows the execution FAILED with the failed task in red."""
    username, real = unique_name("console_fail"), new_password()
    postgres_server.create_login(username, real)
    wrong = database_secret(postgres_server, username, new_password())
    name = f"console/{username}"
    arn = console.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(wrong))[
        "ARN"
    ]
    _follow(page, name)

    _start_rotation(console, arn)

    page.wait_for_selector("#exec-status.FAILED", timeout=WAIT_MS)
    failed_task = page.locator('#graph g.state.failed[data-state="Create pending secret"]')
    failed_task.wait_for(timeout=WAIT_MS)
    path = screenshot(page, "failing-rotation")
    assert "NoWorkingCredentialError" in page.inner_text("#exec-error")
    assert page.locator('#graph g.state.failed[data-state="Rotation step failed"]').count() == 1
    # the path taken is green, what was never reached is not
    assert page.locator('#graph g.state.visited[data-state="Route by step"]').count() == 1
    assert page.locator('#graph g.state.visited[data-state="Set pending secret"]').count() == 0
    # the failed box is drawn red (the class is not just a name: the style applies)
    stroke = failed_task.locator("rect").evaluate("r => getComputedStyle(r).stroke")
    assert stroke == "rgb(192, 36, 43)", path
    events = page.locator("#events tbody tr.failure")
    assert events.count() >= 1 and "TaskFailed" in events.first.inner_text()


def test_a_succeeding_rotation_updates_the_page_live(
    console: Served, page: Any, postgres_server: DatabaseServer, screenshot: Any
) -> None:
    """GIVEN the console following a secret on a database that answers slowly
    WHEN it rotates THEN the page shows the steps progress, without a reload, to SUCCEEDED."""
    proxy = FlakyProxy(postgres_server.host, postgres_server.port, delay=0.8)
    username, password = unique_name("console_live"), new_password()
    postgres_server.create_login(username, password)
    secret = database_secret(postgres_server, username, password, host="127.0.0.1", port=proxy.port)
    name = f"console/{username}"
    arn = console.client("secretsmanager").create_secret(
        Name=name, SecretString=json.dumps(secret)
    )["ARN"]
    _follow(page, name)
    page.evaluate("window.sameDocument = true")

    _start_rotation(console, arn)

    seen: list[tuple[str, str]] = []
    shot_mid = None
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        snapshot = page.evaluate(
            """() => [document.getElementById('exec-step').textContent + ' '
                      + document.getElementById('exec-status').textContent,
                      [...document.querySelectorAll('#rotation-steps li')]
                        .map(li => li.dataset.step + ':' + li.className.split(' ')[0]).join(',')]"""
        )
        pair = (str(snapshot[0]), str(snapshot[1]))
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if shot_mid is None and "RUNNING" in pair[0]:
            shot_mid = screenshot(page, "rotation-running")
        if pair[1] == ",".join(f"{s}:SUCCEEDED" for s in STEPS):
            break
        time.sleep(0.1)
    proxy.close()
    screenshot(page, "rotation-succeeded")

    assert seen and seen[-1][1] == ",".join(f"{s}:SUCCEEDED" for s in STEPS), seen
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    running = [shown for shown, _steps in seen if shown.endswith("RUNNING")]
    assert running, f"the page never showed a running execution: {seen}"
    steps_shown = {shown.split()[0] for shown, _steps in seen if shown.strip()}
    assert len(steps_shown) >= 3, f"the page did not follow the steps: {seen}"
    assert page.locator("#graph g.state.current").count() == 0


def test_the_page_never_shows_a_secret_value(
    console: Served, page: Any, postgres_server: DatabaseServer, screenshot: Any
) -> None:
    """GIVEN the page open WHEN a real secret rotates and every one of its executions is opened
    THEN neither the page's HTML nor any JSON it read holds the old or the new password."""
    bodies: list[str] = []
    page.on("response", lambda response: bodies.append(_text(response)))
    username, old = unique_name("console_leak"), new_password()
    postgres_server.create_login(username, old)
    name = f"console/{username}"
    sm = console.client("secretsmanager")
    arn = sm.create_secret(
        Name=name, SecretString=json.dumps(database_secret(postgres_server, username, old))
    )["ARN"]
    _follow(page, name)

    _start_rotation(console, arn)
    page.wait_for_selector(
        '#rotation-steps li[data-step="finishSecret"].SUCCEEDED', timeout=WAIT_MS
    )
    executions = page.locator(f'li.secret[data-secret="{name}"] button.execution')
    assert executions.count() == 4
    html = []
    for index in range(executions.count()):
        executions.nth(index).click()
        page.wait_for_function(
            "arn => document.getElementById('exec-name').textContent === arn.split(':').pop()",
            arg=executions.nth(index).get_attribute("data-execution"),
        )
        html.append(page.content())
    screenshot(page, "rotation-finish-step")

    new = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["password"]
    assert new != old and postgres_server.can_login(username, new)
    assert any('"events"' in body for body in bodies), "the page read no execution"
    assert_no_value_in("\n".join(html + bodies), {"old password": old, "new password": new})


def _text(response: Any) -> str:
    try:
        return str(response.text())
    except Exception:
        return ""
