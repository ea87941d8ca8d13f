"""Access lines cannot be forged or coloured from a URL (proxy/logs.py)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from proxy.logs import AccessLog
from tests.conftest import KEY, SALT
from tests.ports import free_port
from tests.servers import wait_until_serving
from tests.test_cli import PIXELPIPE, clean_env

# Raw paths as an attacker sends them: CR LF, NEL, ESC, U+2028, a quote and
# spaces that would pose as more fields, bytes that are not UTF-8.
HOSTILE = [
    "/x/%0d%0a2026-01-01T00:00:00.000Z%20INFO%20pixelpipe.access%20forged",
    "/x/%C2%85forged",
    "/x/%1b%5b31mred%1b%5b0m",
    "/x/%E2%80%A8forged%E2%80%A9",
    "/x/a%22%20status=200%20x=%5c",
    "/x/%ff%fe",
]
LINE_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_every_field_stays_on_its_line(log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog(log_format)
    values = ["/a\r\nb", "/a\x85b", "/a\x1b[31m", "/a\u2028b\u2029", 'a" x=\\', "\x7f\x9b"]
    for value in values:
        log.write(value, value, value, 404, 1, 0.5, value, value, None, None, value)
    log.flush()
    lines = capsys.readouterr().err.splitlines()  # splitlines breaks at NEL and U+2028 too
    assert len(lines) == len(values)
    for line, value in zip(lines, values, strict=True):
        assert "\x1b" not in line and "\r" not in line
        if log_format == "json":
            entry = json.loads(line)
            assert entry["path"] == value and entry["error"] == value  # intact when read back
        else:
            assert line.count(" status=") == 1 and line.count(" path=") == 1


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_hostile_paths_give_one_line_each_from_the_server(log_format: str, tmp_path: Path) -> None:
    port = free_port()
    errors = tmp_path / "stderr"
    with errors.open("w") as sink:
        env = clean_env(PIXELPIPE_KEY=KEY, PIXELPIPE_SALT=SALT, PIXELPIPE_LOG_FORMAT=log_format)
        process = subprocess.Popen(
            [PIXELPIPE, "serve", "--port", str(port), "--workers", "1"], env=env, stderr=sink
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process)
            with httpx.Client(timeout=10) as client:
                for path in HOSTILE:
                    # Refused (bad signature, bad URL): refused requests are logged too.
                    assert client.get(base + path).status_code in (400, 403, 404)
                assert client.get(base + "/health").status_code == 200
            time.sleep(0.5)  # access lines are flushed within 0.1 s
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = errors.read_text(encoding="utf-8", errors="replace")
    assert "\x1b" not in text
    lines = text.splitlines()
    access = [line for line in lines if "pixelpipe.access" in line]
    assert len(access) == len(HOSTILE)
    assert all(LINE_START.match(line) or line.startswith("{") for line in lines)
    if log_format == "json":
        assert all(json.loads(line)["status"] in (400, 403, 404) for line in access)
