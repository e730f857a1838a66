"""rotator graph: the pictures hold every state and every transition of the committed ASL."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from rotator import cli
from rotator.graph import END, build, load


def _transitions(states: dict[str, Any]) -> set[tuple[str, str]]:
    """(from, to) for Next, Default, Choice rules and Catch, nested branches included."""
    found: set[tuple[str, str]] = set()
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule.get("Next") for rule in state.get("Choices", [])]
        targets += [catch.get("Next") for catch in state.get("Catch", [])]
        found |= {(name, target) for target in targets if target}
        for branch in state.get("Branches", []):
            found.add((name, branch["StartAt"]))  # a Parallel state runs its branches
            found |= _transitions(branch["States"])
    return found


@pytest.mark.parametrize("machine", ["rotation", "retirement"])
def test_the_graph_has_every_transition_of_the_asl(machine: str) -> None:
    definition = load(machine)
    graph = build(definition)
    edges = {(e.source, e.target) for e in graph.edges if e.target != END}
    assert _transitions(definition["States"]) <= edges
    assert edges <= _transitions(definition["States"])  # and nothing the ASL does not have


@pytest.mark.parametrize("machine", ["rotation", "retirement"])
def test_svg_without_graphviz_draws_every_state(
    machine: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    out = tmp_path / "machine.svg"
    assert cli.main(["graph", "--machine", machine, "--format", "svg", "--output", str(out)]) == 0
    drawing = out.read_text()
    assert drawing.startswith("<svg") and "<style>" in drawing
    for name in build(load(machine)).nodes:
        assert escape(name.split()[0]) in drawing, name
