"""Keep the state machine pictures in the docs true: ``make docs`` rewrites them from the ASL.

A document marks where a picture goes with ``<!-- graph:<machine> -->`` and
``<!-- /graph:<machine> -->``; everything between is replaced by ``rotator graph``'s Mermaid.
``--check`` exits 1 when a document is out of date (CI runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rotator.graph import MACHINES, build, load, mermaid

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "docs" / "architecture.md", ROOT / "README.md"]
_BLOCK = re.compile(r"(<!-- graph:(\w+) -->\n)(.*?)(<!-- /graph:\2 -->)", re.S)


def refreshed(text: str) -> str:
    def fill(match: re.Match[str]) -> str:
        machine = match.group(2)
        if machine not in MACHINES:
            raise SystemExit(f"unknown state machine {machine!r} in a graph marker")
        picture = mermaid(build(load(machine)))
        return f"{match.group(1)}```mermaid\n{picture}```\n{match.group(4)}"

    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a picture is stale")
    args = parser.parse_args(argv)
    stale = []
    for document in DOCUMENTS:
        text = document.read_text("utf-8")
        new = refreshed(text)
        if new != text:
            stale.append(document)
            if not args.check:
                document.write_text(new, "utf-8")
    if args.check and stale:
        names = ", ".join(str(d.relative_to(ROOT)) for d in stale)
        print(f"state machine pictures out of date in {names}: run make docs")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
