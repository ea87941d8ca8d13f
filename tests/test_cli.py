"""The commands a user types: `pixelpipe serve`, `python -m proxy`, `pixelpipe sign`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import KEY, SALT, signed
from tests.images import decode, encode, quadrants
from tests.ports import free_port
from tests.servers import Origin, wait_until_serving

PIXELPIPE = shutil.which("pixelpipe", path=os.path.dirname(sys.executable)) or "pixelpipe"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIXELPIPE_", "IMGPROXY_"))}
    return env | extra


def serve_env(**extra: str) -> dict[str, str]:
    """clean_env() for a `pixelpipe serve` the tests sign for and feed from loopback."""
    return clean_env(
        PIXELPIPE_KEY=KEY,
        PIXELPIPE_SALT=SALT,
        PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        **extra,
    )


def test_sign_prints_the_signed_path() -> None:
    out = subprocess.run(
        [
            PIXELPIPE,
            "sign",
            "--key",
            "736563726574",
            "--salt",
            "68656C6C6F",
            "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out.startswith("/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/")


@pytest.mark.parametrize("prefix", ["PIXELPIPE", "IMGPROXY"])
def test_sign_takes_the_key_and_salt_from_the_environment(prefix: str) -> None:
    path = "/rs:fill:300:200/plain/local:///kite.jpg"
    from_env = subprocess.run(
        [PIXELPIPE, "sign", path],
        env=clean_env(**{f"{prefix}_KEY": KEY, f"{prefix}_SALT": SALT}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert from_env.stdout.strip() == signed(path)


def test_sign_without_a_key_says_where_to_give_one() -> None:
    result = subprocess.run(
        [PIXELPIPE, "sign", "/w:1/plain/x"], env=clean_env(), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "PIXELPIPE_KEY" in result.stderr


def test_sign_rejects_a_non_hex_key() -> None:
    result = subprocess.run(
        [PIXELPIPE, "sign", "--key", "zz", "--salt", "00", "/w:1/plain/x"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PIXELPIPE_TTL", "forever"), ("IMGPROXY_KEY", "not-hex"), ("PIXELPIPE_PORT", "0")],
)
def test_bad_setting_stops_start_up_with_one_line(variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "serve"],
        env=clean_env(**{variable: value, "IMGPROXY_SALT": "00"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0]


@pytest.fixture()
def served(origin: Origin) -> Iterator[str]:
    """`pixelpipe serve` as a user starts it, in its own process."""
    port = free_port()
    env = serve_env()
    process = subprocess.Popen(
        [PIXELPIPE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_removes_its_metrics_directory_when_stopped(workers: str, tmp_path: Path) -> None:
    """SIGTERM, as Kubernetes and the tests stop a server: the directory its
    workers' metrics were written to goes, once serving and while starting."""
    for wait in (True, False):
        port = free_port()
        process = subprocess.Popen(
            [PIXELPIPE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=serve_env(PIXELPIPE_WORKERS=workers, TMPDIR=str(tmp_path)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if wait:
                wait_until_serving(f"http://127.0.0.1:{port}", process)
                assert [p.name[:18] for p in tmp_path.iterdir()] == ["pixelpipe-metrics-"]
        finally:
            process.terminate()
            returncode = process.wait(timeout=30)
        assert returncode in (0, -15), process.stderr.read() if process.stderr else ""
        assert list(tmp_path.iterdir()) == []


def test_serve_answers_a_signed_request(served: str, origin: Origin) -> None:
    url = origin.add("/cli/cup.png", encode(quadrants(300, 300), "png"), "image/png")
    with httpx.Client(timeout=30) as client:
        response = client.get(served + signed(f"/rs:fill:100:50/q:80/f:webp/plain/{url}"))
        assert response.status_code == 200
        image = decode(response.content)
        assert (image.width, image.height) == (100, 50)
        assert response.headers["content-type"] == "image/webp"
        assert client.get(served + "/insecure/w:10/plain/" + url).status_code == 403


def test_python_dash_m_proxy_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in result.stdout and "sign" in result.stdout
