"""Keep the README's reference tables in step with the code that declares them.

`make docs` rewrites the text between `<!-- NAME -->` and `<!-- /NAME -->`
markers; the tests fail when the README and the declarations disagree.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from proxy.options.parse import options_table
from proxy.settings import settings_table

TABLES: dict[str, Callable[[], str]] = {
    "options-table": options_table,
    "settings-table": settings_table,
}


def render(readme: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.DOTALL)
        if not pattern.search(readme):
            raise ValueError(f"README has no {name} markers")
        start, end = pattern.search(readme).span()  # type: ignore[union-attr]
        opening, closing = f"<!-- {name} -->\n", f"\n<!-- /{name} -->"
        readme = readme[:start] + opening + make() + closing + readme[end:]
    return readme


def main(path: str = "README.md") -> int:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
