from __future__ import annotations

from pathlib import Path

from proxy.docs import render

README = Path(__file__).parent.parent / "README.md"


def test_readme_tables_match_the_declarations() -> None:
    text = README.read_text()
    assert render(text) == text, "run `make docs` to refresh the README tables"
