"""The README's "First signed request", run as written, and its table of first errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.images import decode, loader_format, mean_abs_difference
from tests.servers import Origin
from tests.test_cli import clean_env

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECTION = README.split("## First signed request", 1)[1].split("\n## ", 1)[0]
BASE = "http://127.0.0.1:8081"  # the port the quick start uses


@pytest.fixture(scope="module")
def quick_start() -> Iterator[tuple[subprocess.CompletedProcess[str], dict[str, str]]]:
    """The shell block in a fresh shell at the clone's root; its server stopped after."""
    (block,) = re.findall(r"```sh\n(.*?)```", SECTION, re.DOTALL)
    result_file = ROOT / "kite.webp"
    result_file.unlink(missing_ok=True)
    # The block exports the key and salt; printing them afterwards lets the
    # tests below sign as the user's shell would.
    script = block + '\necho "KEY=$PIXELPIPE_KEY SALT=$PIXELPIPE_SALT"\n'
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the server it starts in the background shares its group
    )
    try:
        # The server in the background keeps the pipes open: read up to the last line.
        assert shell.stdout is not None
        lines = []
        for line in shell.stdout:
            lines.append(line)
            if line.startswith("KEY="):
                break
        shell.wait(timeout=180)
        pair = dict(item.split("=", 1) for item in lines[-1].split())
        yield subprocess.CompletedProcess(shell.args, shell.returncode, "".join(lines), ""), pair
    finally:
        os.killpg(shell.pid, signal.SIGTERM)  # the shell's group: the server it started
        result_file.unlink(missing_ok=True)


def test_the_quick_start_makes_the_image(
    quick_start: tuple[subprocess.CompletedProcess[str], dict[str, str]],
) -> None:
    result, _pair = quick_start
    assert result.returncode == 0
    assert "image/webp" in result.stdout  # the Content-Type line the README promises
    made = decode((ROOT / "kite.webp").read_bytes())
    assert (made.width, made.height, loader_format(made)) == (300, 300, "webp")
    expected = pyvips.Image.thumbnail(
        str(ROOT / "proxy/samples/kite.jpg"), 300, height=300, crop="centre"
    )
    assert mean_abs_difference(made, expected) < 4


def first_errors() -> list[tuple[int, str]]:
    table = SECTION.split("<!-- first-errors -->")[1].split("<!-- /first-errors -->")[0]
    return [
        (int(status), reason)
        for status, reason in re.findall(r"^\| `(\d{3}) ([^`]+)` \|", table, re.MULTILINE)
    ]


def test_the_first_errors_table_says_what_the_server_says(
    quick_start: tuple[subprocess.CompletedProcess[str], dict[str, str]],
    origin: Origin,
    pixelpipe: str,
) -> None:
    from signing import sign_path
    from tests.conftest import signed

    _result, pair = quick_start

    def sign(path: str) -> str:
        return sign_path(path, pair["KEY"], pair["SALT"])

    origin.add("/quickstart/cup.jpg", (ROOT / "proxy/samples/kite.jpg").read_bytes())
    provoke = {
        "source address is not allowed": (
            BASE,
            sign(f"/w:100/plain/{origin.base}/quickstart/cup.jpg"),
        ),
        "invalid signature": (BASE, "/c2lnbmVk/w:100/plain/local:///kite.jpg"),
        # Asked of the test server, whose resolver answers for localhost only:
        # the quick start's would ask a real DNS server, off this machine.
        "source host not found": (pixelpipe, signed("/w:100/plain/http://cups.example/a.jpg")),
        "source image not found": (BASE, sign("/w:100/plain/local:///no-such-file.jpg")),
    }
    rows = first_errors()
    assert len(rows) == len(provoke)
    with httpx.Client(timeout=30) as client:
        for status, reason in rows:
            ((base, path),) = [
                found for start, found in provoke.items() if reason.startswith(start)
            ]
            answer = client.get(base + path)
            assert (answer.status_code, answer.text) == (status, reason + "\n")
