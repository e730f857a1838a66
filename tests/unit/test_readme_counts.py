"""The README's numbers about the test corpus are the corpus's own."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.corpus import CORPUS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_counts_the_bad_input_corpus_as_it_is() -> None:
    found = re.search(r"bad-input corpus\*\* \(`[^`]+`\): (\d+) malformed", README.read_text())
    assert found, "the README no longer describes the bad-input corpus"
    assert int(found.group(1)) == len(CORPUS)
