"""The README's "Using pixelpipe from your app" examples, run as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signing import UrlBuilder
from tests.conftest import KEY, SALT

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SECTION = README.split("## Using pixelpipe from your app", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, re.DOTALL)


def test_python_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELPIPE_KEY", KEY)
    monkeypatch.setenv("PIXELPIPE_SALT", SALT)
    code = blocks("python")
    assert len(code) == 3
    namespace: dict[str, object] = {}
    for block in code:  # one namespace: later examples use the builder made earlier
        exec(compile(block, "README.md", "exec"), namespace)


def test_command_line_example_matches_the_builder() -> None:
    (command,) = [line for block in blocks("sh") for line in block.splitlines() if line]
    words = shlex.split(command)
    assert words[:2] == ["pixelpipe", "url"]
    pixelpipe = shutil.which("pixelpipe", path=os.path.dirname(sys.executable)) or "pixelpipe"
    result = subprocess.run(
        [pixelpipe, *words[1:]],
        env=os.environ | {"PIXELPIPE_KEY": KEY, "PIXELPIPE_SALT": SALT},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = UrlBuilder("https://img.example.com", key=KEY, salt=SALT).url(
        "https://shop.example.com/cup.jpg", resize=("fill", 300, 200), quality=80, format="webp"
    )
    assert result.stdout.strip() == expected
