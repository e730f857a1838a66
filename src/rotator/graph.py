"""``rotator graph``: the state machines drawn from their ASL (statemachine/*.asl.json).

Mermaid for the README and the docs (GitHub renders it), Graphviz DOT, and SVG or PNG through
Graphviz's ``dot`` when it is installed (Debian: ``apt-get install graphviz``). Every state is a
node and every transition an edge: ``Next``, ``Default``, each Choice rule, and each ``Catch``
(dashed, labelled with the errors it catches). Parallel states are drawn as boxes holding
their branches. Nothing is run: the definition is read with its ``${...}`` substitutions left
as placeholders.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MACHINES = {
    "rotation": ROOT / "statemachine" / "rotation.asl.json",
    "retirement": ROOT / "statemachine" / "retirement.asl.json",
}
END = "((end))"


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    error: bool = False


@dataclass
class Graph:
    start: str
    nodes: dict[str, str] = field(default_factory=dict)  # state name -> type
    groups: dict[str, list[str]] = field(default_factory=dict)  # Parallel name -> its states
    edges: list[Edge] = field(default_factory=list)


def load(machine: str) -> dict[str, Any]:
    """A definition with its placeholders made JSON-safe (numbers where a number stands)."""
    text = MACHINES[machine].read_text("utf-8")
    # a bare placeholder where a JSON value stands (a number after substitution) becomes text
    text = re.sub(r'("\s*:\s*)\$\{([A-Za-z0-9_]+)\}', r'\1"${\2}"', text)
    definition: dict[str, Any] = json.loads(text)
    return definition


def build(definition: dict[str, Any]) -> Graph:
    graph = Graph(start=definition["StartAt"])
    _add_states(graph, definition["States"], group=None)
    return graph


def _add_states(graph: Graph, states: dict[str, Any], group: str | None) -> None:
    for name, state in states.items():
        kind = str(state.get("Type"))
        graph.nodes[name] = kind
        if group is not None:
            graph.groups.setdefault(group, []).append(name)
        if state.get("Next"):
            graph.edges.append(Edge(name, state["Next"]))
        if (state.get("End") or kind in ("Succeed", "Fail")) and group is None:
            graph.edges.append(Edge(name, END))
        for rule in state.get("Choices", []):
            graph.edges.append(Edge(name, rule["Next"], _rule_label(rule)))
        if state.get("Default"):
            graph.edges.append(Edge(name, state["Default"], "otherwise"))
        for catch in state.get("Catch", []):
            errors = catch.get("ErrorEquals", [])
            label = "any error" if "States.ALL" in errors else f"{len(errors)} errors"
            graph.edges.append(Edge(name, catch["Next"], label, error=True))
        for branch in state.get("Branches", []):
            graph.edges.append(Edge(name, branch["StartAt"], "runs"))
            _add_states(graph, branch["States"], group=name)


def _rule_label(rule: dict[str, Any]) -> str:
    for key, value in rule.items():
        if key in ("Next", "Variable"):
            continue
        if key in ("And", "Or", "Not"):
            return key.lower()
        text = f"{key.replace('Equals', ' =').replace('Path', '')} {value}"
        return text if len(text) <= 40 else text[:37] + "..."
    return ""


def _ident(name: str) -> str:
    return "s" + re.sub(r"[^A-Za-z0-9]", "_", name)


def _quote(text: str) -> str:
    return text.replace('"', "'")


def mermaid(graph: Graph) -> str:
    lines = ["flowchart TD", f'  start(("start")) --> {_ident(graph.start)}']
    grouped = {member for members in graph.groups.values() for member in members}
    shapes = {"Choice": ("{", "}"), "Fail": ("[/", "/]"), "Succeed": ("([", "])")}
    for name, kind in graph.nodes.items():
        if name in grouped:
            continue
        left, right = shapes.get(kind, ("[", "]"))
        lines.append(f'  {_ident(name)}{left}"{_quote(name)}"{right}')
    for group, members in graph.groups.items():
        lines.append(f'  subgraph {_ident(group)}_box["{_quote(group)}"]')
        for member in members:
            lines.append(f'    {_ident(member)}["{_quote(member)}"]')
        lines.append("  end")
    lines.append('  stop(("end"))')
    for edge in graph.edges:
        target = "stop" if edge.target == END else _ident(edge.target)
        arrow = "-.->" if edge.error else "-->"
        label = f"|{_quote(edge.label)}|" if edge.label else ""
        lines.append(f"  {_ident(edge.source)} {arrow}{label} {target}")
    return "\n".join(lines) + "\n"


def dot(graph: Graph, title: str) -> str:
    lines = [f'digraph "{title}" {{', "  rankdir=TB; node [fontname=Helvetica fontsize=10];"]
    shapes = {"Choice": "diamond", "Fail": "octagon", "Succeed": "doublecircle", "Wait": "ellipse"}
    grouped = {member for members in graph.groups.values() for member in members}
    lines.append('  start [shape=circle label="start"]; stop [shape=doublecircle label="end"];')
    for name, kind in graph.nodes.items():
        if name not in grouped:
            lines.append(
                f'  {_ident(name)} [shape={shapes.get(kind, "box")} label="{_quote(name)}"];'
            )
    for group, members in graph.groups.items():
        lines.append(f'  subgraph cluster_{_ident(group)} {{ label="{_quote(group)}";')
        lines += [f'    {_ident(m)} [shape=box label="{_quote(m)}"];' for m in members]
        lines.append("  }")
    lines.append(f"  start -> {_ident(graph.start)};")
    for edge in graph.edges:
        target = "stop" if edge.target == END else _ident(edge.target)
        style = " style=dashed color=firebrick" if edge.error else ""
        label = f' label="{_quote(edge.label)}"' if edge.label else ""
        lines.append(f"  {_ident(edge.source)} -> {target} [{label}{style}];".replace("[ ", "["))
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(machine: str, fmt: str) -> bytes:
    """The picture of one state machine as ``mermaid``, ``dot``, ``svg`` or ``png``."""
    graph = build(load(machine))
    if fmt == "mermaid":
        return mermaid(graph).encode()
    source = dot(graph, machine)
    if fmt == "dot":
        return source.encode()
    binary = shutil.which("dot")
    if binary is None:
        raise RuntimeError("drawing svg or png needs Graphviz's dot (apt-get install graphviz)")
    done = subprocess.run(
        [binary, f"-T{fmt}"], input=source.encode(), capture_output=True, check=True, timeout=60
    )
    return done.stdout
