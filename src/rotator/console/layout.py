"""The state machine drawn as SVG on the server: no script from elsewhere, no Graphviz needed.

A small layered ("Sugiyama") layout of :mod:`rotator.graph`'s nodes and edges: cycles broken
by a depth-first search from the start, layers by longest path, long edges cut into dummy
points so that the ordering sees them, a few barycentre sweeps to reduce crossings, then x
positions pulled towards the neighbours' and pushed apart. Good enough for a 60-state machine
to be read; the layout of a machine is computed once and kept.

The highlighted picture of one execution is the same drawing with classes on the states and
transitions it took (``visited``, ``taken``), the states whose last task failed (``failed``),
the states running now (``current``), and the ones it never reached left plain.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from rotator.graph import END, Graph, build, load

START = "((start))"
NODE_W, NODE_H = 168, 38
GAP_X, GAP_Y = 26, 34
MARGIN = 24
LINE_CHARS = 26


@dataclass
class Layout:
    width: int
    height: int
    #: state name -> (x, y) of its box's top-left corner
    boxes: dict[str, tuple[float, float]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # member -> its Parallel state
    #: (source, target, label, error) -> the points the edge passes through
    edges: list[tuple[str, str, str, bool, list[tuple[float, float]]]] = field(default_factory=list)


@functools.cache
def machine_layout(machine: str) -> Layout:
    """The layout of ``statemachine/<machine>.asl.json`` (computed once per process)."""
    return lay_out(build(load(machine)))


def lay_out(graph: Graph) -> Layout:
    names = [START, *graph.nodes, END]
    edges = [(START, graph.start, "", False)] + [
        (e.source, e.target, e.label, e.error) for e in graph.edges
    ]
    succ: dict[str, list[str]] = {n: [] for n in names}
    for source, target, _label, _error in edges:
        succ[source].append(target)

    # 1. break cycles: an edge into a node still on the DFS stack points back
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}

    def visit(root: str) -> None:
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))

    for name in names:
        if name not in state:
            visit(name)
    forward = [
        (t, s) if (s, t) in back else (s, t)
        for s, t, _l, _e in edges
        if s != t  # a state that retries into itself needs no layer of its own
    ]

    # 2. layers by longest path from the sources (the start first)
    layer = dict.fromkeys(names, 0)
    for _ in range(len(names)):
        changed = False
        for s, t in forward:
            if layer[t] < layer[s] + 1:
                layer[t] = layer[s] + 1
                changed = True
        if not changed:
            break
    layer[END] = max(layer.values()) + 1 if len(names) > 1 else 0

    # 3. long edges through dummy points, one per layer crossed
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(layer[name], []).append(name)
    chains: list[list[str]] = []
    for index, (s, t) in enumerate(forward):
        chain = [s]
        for depth in range(layer[s] + 1, layer[t]):
            dummy = f"\0{index}:{depth}"
            layer[dummy] = depth
            rows.setdefault(depth, []).append(dummy)
            chain.append(dummy)
        chain.append(t)
        chains.append(chain)
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)

    # 4. order within layers: barycentre sweeps, down then up
    depth_max = max(rows)
    order = {n: i for row in rows.values() for i, n in enumerate(row)}
    for sweep in range(8):
        sequence = range(1, depth_max + 1) if sweep % 2 == 0 else range(depth_max - 1, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for depth in sequence:
            row = rows.get(depth, [])

            def centre(node: str, _n: dict[str, list[str]] = neighbours) -> float:
                linked = _n.get(node, [])
                return sum(order[m] for m in linked) / len(linked) if linked else order[node]

            row.sort(key=centre)
            for i, node in enumerate(row):
                order[node] = i

    # 5. x positions: towards the neighbours' centres, then pushed apart in order
    def width_of(node: str) -> float:
        return 10.0 if node.startswith("\0") else float(NODE_W)

    x = {n: float(order[n]) * (NODE_W + GAP_X) for n in order}
    for sweep in range(6):
        neighbours = up if sweep % 2 == 0 else down
        for row in rows.values():
            for node in row:
                linked = neighbours.get(node, [])
                if linked:
                    wanted = sum(x[m] + width_of(m) / 2 for m in linked) / len(linked)
                    x[node] = (x[node] + wanted - width_of(node) / 2) / 2
            for left, right in itertools.pairwise(row):
                floor = x[left] + width_of(left) + (GAP_X if not right.startswith("\0") else 8)
                x[right] = max(x[right], floor)
    shift = MARGIN - min(x.values())
    result = Layout(width=0, height=0)
    result.kinds = {START: "Start", END: "End", **graph.nodes}
    result.groups = {m: group for group, members in graph.groups.items() for m in members}
    for node, offset in x.items():
        top = MARGIN + layer[node] * (NODE_H + GAP_Y)
        if not node.startswith("\0"):
            result.boxes[node] = (offset + shift, float(top))
        x[node] = offset + shift
    result.width = int(max(x[n] + width_of(n) for n in x) + MARGIN)
    result.height = int(MARGIN * 2 + (depth_max + 1) * (NODE_H + GAP_Y))

    for (s, t, label, error), chain in zip(
        ((s, t, lb, e) for s, t, lb, e in edges if s != t), chains, strict=True
    ):
        reversed_edge = (s, t) in back
        points = []
        for node in chain:
            top = MARGIN + layer[node] * (NODE_H + GAP_Y)
            if node.startswith("\0"):
                points.append((x[node] + 5, top + NODE_H / 2))
            else:
                points.append((x[node] + NODE_W / 2, float(top)))
        # leave from the bottom of the upper box, arrive at the top of the lower one
        points[0] = (points[0][0], points[0][1] + NODE_H)
        if reversed_edge:
            points.reverse()
        result.edges.append((s, t, label, error, points))
    return result


def _wrap(text: str) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > LINE_CHARS:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
    if len(lines[-1]) > LINE_CHARS:
        lines[-1] = lines[-1][: LINE_CHARS - 1] + "\u2026"
    return lines


def _path(points: list[tuple[float, float]]) -> str:
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for (xa, ya), (xb, yb) in zip([points[0], *rest], rest, strict=False):
        middle = (ya + yb) / 2
        parts.append(f"C{xa:.1f},{middle:.1f} {xb:.1f},{middle:.1f} {xb:.1f},{yb:.1f}")
    return " ".join(parts)


def svg(
    layout: Layout,
    *,
    visited: frozenset[str] = frozenset(),
    failed: frozenset[str] = frozenset(),
    current: frozenset[str] = frozenset(),
    taken: frozenset[tuple[str, str]] = frozenset(),
) -> str:
    """The drawing, with an execution's path, failures and running states as classes.

    Every text is escaped: state names come from the ASL, but nothing here trusts that.
    """
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine" width="{layout.width}" '
        f'height="{layout.height}" viewBox="0 0 {layout.width} {layout.height}" '
        'role="img" aria-label="state machine">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    for source, target, label, error, points in layout.edges:
        classes = ["edge"]
        if error:
            classes.append("catch")
        if (source, target) in taken:
            classes.append("taken")
        title = f"{source} \u2192 {target}" + (f" ({label})" if label else "")
        out.append(
            f'<path class="{" ".join(classes)}" d="{_path(points)}" marker-end="url(#arrow)">'
            f"<title>{escape(title)}</title></path>"
        )
    for name, (left, top) in layout.boxes.items():
        kind = layout.kinds.get(name, "")
        classes = ["state", f"kind-{kind.lower()}"]
        if name in layout.groups:
            classes.append("in-branch")
        for flag, members in (("visited", visited), ("failed", failed), ("current", current)):
            if name in members:
                classes.append(flag)
        shown = {START: "start", END: "end"}.get(name, name)
        out.append(
            f'<g class="{" ".join(classes)}" data-state={quoteattr(shown)} '
            f'transform="translate({left:.1f},{top:.1f})">'
        )
        tip = f"{kind}: {shown}" + (
            f" (branch of {layout.groups[name]})" if name in layout.groups else ""
        )
        out.append(f"<title>{escape(tip)}</title>")
        radius = 19 if kind in ("Start", "End", "Succeed") else 4 if kind != "Choice" else 12
        out.append(f'<rect width="{NODE_W}" height="{NODE_H}" rx="{radius}" ry="{radius}"></rect>')
        lines = _wrap(shown)
        first = NODE_H / 2 - (len(lines) - 1) * 6.5 + 4
        for i, line in enumerate(lines):
            out.append(
                f'<text x="{NODE_W / 2}" y="{first + i * 13:.1f}" '
                f'text-anchor="middle">{escape(line)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
