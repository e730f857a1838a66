"""The console's own rules, without a browser: who it answers, what it refuses, what it hides."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from rotator.console.app import ConsoleApp, ConsoleData
from rotator.console.history import REDACTED, event_view, path_of, redact
from rotator.console.layout import machine_layout, svg

TOKEN = "run-token-1234"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:rotator-rotation"


class NoAws:
    """The stack is never reached by a refused request (any call fails the test)."""

    def __call__(self, service: str) -> Any:
        raise AssertionError(f"a refused request reached {service}")


@pytest.fixture
def client() -> Client:
    app = ConsoleApp(ConsoleData(NoAws(), {"RotationStateMachine": MACHINE}), TOKEN)
    app.port = 8765
    return Client(app)


def _get(client: Client, path: str, **headers: str) -> Any:
    return client.get(path, headers={"Host": "127.0.0.1:8765", **headers})


def test_the_page_is_served_under_its_token_with_a_strict_policy(client: Client) -> None:
    response = _get(client, f"/{TOKEN}/")
    assert response.status_code == 200 and b"console.js" in response.data
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/", "/index.html", "/wrong-token/", f"/{TOKEN}x/api/overview"])
def test_nothing_is_served_without_the_runs_token(client: Client, path: str) -> None:
    assert _get(client, path).status_code == 404


@pytest.mark.parametrize(
    "host", ["attacker.example:8765", "127.0.0.1:9999", "10.0.0.1:8765", "", "localhost.:8765"]
)
def test_a_host_that_is_not_this_loopback_port_is_refused(client: Client, host: str) -> None:
    assert _get(client, f"/{TOKEN}/api/overview", Host=host).status_code == 403


def test_another_sites_page_is_refused(client: Client) -> None:
    assert (
        _get(client, f"/{TOKEN}/api/overview", Origin="https://attacker.example").status_code == 403
    )
    assert (
        _get(client, f"/{TOKEN}/api/overview", **{"Sec-Fetch-Site": "cross-site"}).status_code
        == 403
    )


def test_only_get_is_answered(client: Client) -> None:
    response = client.post(f"/{TOKEN}/api/overview", headers={"Host": "127.0.0.1:8765"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        "",
        "arn=not-an-arn",
        "arn=a&arn=b",
        "arn=arn:aws:states:us-east-1:123456789012:execution:other-machine:x",
    ],
)
def test_a_bad_execution_arn_is_refused_naming_the_field(client: Client, query: str) -> None:
    response = _get(client, f"/{TOKEN}/api/execution?{query}")
    assert response.status_code == 400
    assert json.loads(response.data)["error"].startswith("arn:")


def test_redact_hides_every_secret_field_also_inside_json_strings() -> None:
    """A worker that (wrongly) put a value in its output still shows none of it."""
    output = json.dumps(
        {
            "Step": "setSecret",
            "SecretString": "s1",
            "nested": [{"Password": "s2"}],
            "master_password": "s3",
        }
    )
    task = {"id": 7, "type": "TaskSucceeded", "taskSucceededEventDetails": {"output": output}}
    exited = {
        "id": 8,
        "type": "TaskStateExited",
        "stateExitedEventDetails": {"name": "x", "output": json.dumps({"secret_access_key": "s4"})},
    }
    shown = json.dumps([event_view(task), event_view(exited)])
    shown += json.dumps(redact({"RotationToken": "s5", "Sealed": "s6"}))
    for value in ("s1", "s2", "s3", "s4", "s5", "s6"):
        assert f'"{value}"' not in shown and f'\\"{value}\\"' not in shown
    assert REDACTED in shown and "setSecret" in shown


def test_the_path_marks_the_failed_task_and_the_fail_state() -> None:
    layout = machine_layout("rotation")
    edges = {(s, t) for s, t, _l, _e, _p in layout.edges}
    events = [
        {"type": "ChoiceStateEntered", "stateEnteredEventDetails": {"name": "Route by step"}},
        {"type": "ChoiceStateExited", "stateExitedEventDetails": {"name": "Route by step"}},
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Set pending secret"}},
        {"type": "TaskFailed", "taskFailedEventDetails": {"error": "X"}},
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "Set pending secret"}},
        {"type": "FailStateEntered", "stateEnteredEventDetails": {"name": "Rotation step failed"}},
        {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "X"}},
    ]

    path = path_of(events, edges, "FAILED")
    drawn = svg(layout, failed=frozenset(path["failed"]), visited=frozenset(path["visited"]))

    assert path["failed"] == {"Set pending secret", "Rotation step failed"}
    assert path["current"] == set()
    assert 'class="state kind-task visited failed" data-state="Set pending secret"' in drawn
    assert 'class="state kind-task" data-state="Create pending secret"' in drawn


def test_a_task_that_failed_then_succeeded_on_retry_is_not_failed() -> None:
    events = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Test pending secret"}},
        {"type": "TaskFailed", "taskFailedEventDetails": {"error": "DatabaseUnavailableError"}},
        {"type": "TaskSucceeded", "taskSucceededEventDetails": {}},
    ]
    path = path_of(events, set(), "RUNNING")
    assert path["failed"] == set() and path["current"] == {"Test pending secret"}


def test_state_names_are_escaped_in_the_picture() -> None:
    from rotator.console.layout import lay_out
    from rotator.graph import Graph

    graph = Graph(start="<script>x</script>", nodes={"<script>x</script>": "Task"})
    drawn = svg(lay_out(graph))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
