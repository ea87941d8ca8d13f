"""The Dockerfile, built and run for real by podman (Debian's), as a registry-less machine can.

No image registry is reachable here, so the `python:3.11-slim-bookworm` base is
replaced by one made locally: `debootstrap --variant=minbase` of bookworm with
python3, python3-venv and ca-certificates, imported into podman, and passed as
the Dockerfile's PYTHON_IMAGE build argument. Everything else is the
Dockerfile as shipped: its first stages run docker/install-runtime.sh, its
final stage installs libjemalloc2 and runs as uid 10001.

The image then runs read-only with one tmpfs (as `docker run --read-only
--tmpfs /tmp`), on the host's network so it reaches the loopback origin, and
must serve a WebP, run its workers on jemalloc as uid 10001, and pass its own
HEALTHCHECK. podman runs with runc and cgroupfs, and with the overlay storage
driver in a store of its own under ~/.cache/pixelpipe-test where the kernel
mounts overlayfs (a whole build from nothing took 75 s, where vfs, which
copies every layer whole, took 165-230 s to rebuild after a code change), else
with vfs in podman's default store. The base is kept in ~/.cache/pixelpipe-test
and podman keeps its layers, so only the first run pays for debootstrap and
pip; and an image already built from the same context and base is used as it
is.
Skipped, loudly, where podman or debootstrap cannot run (not root, not installed).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import KEY, SALT, signed
from tests.images import decode, encode, photo_like, solid
from tests.ports import free_port
from tests.servers import Origin, json_log_problems

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pixelpipe-test"
BASE_IMAGE = "localhost/pixelpipe-test-base:bookworm"
IMAGE = "localhost/pixelpipe:test"
MIRROR = "http://deb.debian.org/debian"


def runs_here() -> bool:
    """Whether this module can build and run the image (tests/test_container.py's
    fresh virtual environment stands in for it where it cannot)."""
    return os.geteuid() == 0 and bool(shutil.which("podman")) and bool(shutil.which("debootstrap"))


pytestmark = pytest.mark.skipif(
    not runs_here(),
    reason="podman image test SKIPPED: needs root, podman and debootstrap "
    "(make test installs them with apt-get)",
)


def overlay_mounts() -> bool:
    """Whether the kernel mounts overlayfs here (not on every file system, nor
    in every sandbox): a trial mount in a scratch folder, taken down at once."""
    scratch = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=CACHE))
    try:
        for part in ("lower", "upper", "work", "merged"):
            (scratch / part).mkdir()
        layers = f"lowerdir={scratch}/lower,upperdir={scratch}/upper,workdir={scratch}/work"
        mount = ["mount", "-t", "overlay", "overlay", "-o", layers, str(scratch / "merged")]
        if subprocess.run(mount, capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", str(scratch / "merged")], capture_output=True)
        return True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@functools.cache
def storage_options() -> tuple[str, ...]:
    CACHE.mkdir(parents=True, exist_ok=True)
    if overlay_mounts():
        # A store of its own: podman refuses to open a store made by another driver.
        return (
            "--storage-driver", "overlay",
            "--root", str(CACHE / "overlay-storage"),
            "--runroot", str(CACHE / "overlay-run"),
        )  # fmt: skip
    return ("--storage-driver", "vfs")


def podman(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    config = CACHE / "containers.conf"
    env = os.environ | {"CONTAINERS_CONF": str(config)}
    command = [
        "podman",
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        *storage_options(),
        *args,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def ensure_base() -> None:
    """The registry-less stand-in for python:3.11-slim-bookworm, made once and kept."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # No per-container ulimits: the sandbox does not let runc raise them.
    (CACHE / "containers.conf").write_text("[containers]\ndefault_ulimits = []\n")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    tarball = CACHE / "base-bookworm.tar"
    if not tarball.exists():
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "bookworm", str(rootfs), MIRROR],
            check=True, capture_output=True, timeout=1200,
        )  # fmt: skip
        # The machine's CA bundle, so pip inside verifies TLS as pip here does.
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        shutil.rmtree(rootfs, ignore_errors=True)
    podman("import", str(tarball), BASE_IMAGE)


CONTEXT_LABEL = "org.pixelpipe.test.context"


def context_digest() -> str:
    """What the image is made of: the base image, the Dockerfile, .dockerignore
    and every file that .dockerignore lets into the build context."""
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    roots = [ROOT / line[1:] for line in ignore if line.startswith("!")]
    files = {ROOT / "Dockerfile", ROOT / ".dockerignore"}
    for root in roots:
        found = root.rglob("*") if root.is_dir() else [root]
        files.update(f for f in found if f.is_file() and "__pycache__" not in f.parts)
    base = podman("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).stdout.strip()
    digest = hashlib.sha256(base.encode())
    for path in sorted(files):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(ROOT)}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    ensure_base()
    context = context_digest()
    built = podman(
        "image", "inspect", "--format", f'{{{{ index .Labels "{CONTEXT_LABEL}" }}}}', IMAGE,
        check=False,
    )  # fmt: skip
    if built.returncode != 0 or built.stdout.strip() != context:
        podman(
            "build", "--format", "docker", "--network", "host",
            "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--label", f"{CONTEXT_LABEL}={context}",
            "-t", IMAGE, str(ROOT),
            timeout=1800,
        )  # fmt: skip
    yield IMAGE
    # Builds an hour old and older are no longer any build's cache, and would
    # fill the disk run after run (vfs keeps a full copy of every layer).
    podman("image", "prune", "--force", "--filter", "until=1h", check=False)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    name = f"pixelpipe-test-{port}"
    podman(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "-e", f"PIXELPIPE_KEY={KEY}", "-e", f"PIXELPIPE_SALT={SALT}",
        "-e", f"PIXELPIPE_PORT={port}", "-e", "PIXELPIPE_HOST=127.0.0.1",
        "-e", "PIXELPIPE_WORKERS=2", "-e", "PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES=true",
        image,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            logs = podman("logs", name, check=False)
            raise AssertionError(f"container did not become ready:\n{logs.stdout}{logs.stderr}")
        yield base, name
    finally:
        # Killed at once: a graceful stop would wait out the image's
        # PIXELPIPE_SHUTDOWN_DELAY (5 s), which no test here looks at.
        podman("rm", "-f", "--time", "0", name, check=False)


def test_image_serves_webp_read_only_as_10001(container: tuple[str, str], origin: Origin) -> None:
    base, name = container
    url = origin.add("/container/photo.jpg", encode(photo_like(640, 480), "jpg"))
    answer = httpx.get(base + signed(f"/rs:fit:200:0/plain/{url}@webp"), timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp"
    assert decode(answer.content).width == 200
    # Every process in the container runs as 10001, the workers on jemalloc.
    script = (
        "for p in /proc/[0-9]*; do "
        "grep -q \"^Uid:\" $p/status && awk '/^Uid:/{print $2}' $p/status; done | sort -u; "
        "grep -l libjemalloc /proc/[0-9]*/maps 2>/dev/null | wc -l"
    )
    out = podman("exec", name, "sh", "-c", script).stdout.split()
    assert out[:-1] == ["10001"], out
    assert int(out[-1]) >= 2, out  # both workers (and the supervisor) map jemalloc
    # The root file system is read-only; /tmp is not.
    assert podman("exec", name, "sh", "-c", "touch /opt/x", check=False).returncode != 0
    podman("exec", name, "sh", "-c", "touch /tmp/x")


def test_image_writes_nothing_outside_tmp(container: tuple[str, str], origin: Origin) -> None:
    """AVIF results small and large (libvips' temporary files) and the metrics
    files of two workers, all on a read-only root: no error logged."""
    base, name = container
    url = origin.add("/container/ro.jpg", encode(photo_like(1200, 800), "jpg"))
    for size in (60, 600):
        answer = httpx.get(base + signed(f"/rs:fit:{size}:{size}/f:avif/plain/{url}"), timeout=60)
        assert answer.status_code == 200 and decode(answer.content).width == size
    assert "pixelpipe_requests_total" in httpx.get(base + "/metrics", timeout=30).text
    printed = podman("logs", name)
    logs = printed.stdout + printed.stderr
    records, problems = json_log_problems(logs)
    assert records, logs
    assert problems == [], problems
    assert "Read-only file system" not in logs


def test_image_healthcheck_passes(container: tuple[str, str]) -> None:
    _base, name = container
    inspect = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    test = inspect["Healthcheck"]["Test"]  # the Dockerfile's HEALTHCHECK survived the build
    assert test[:2] == ["CMD", "python"] and "/health" in test[-1]
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    # And it fails when nothing answers: the same command against a port nobody serves.
    command = test[1:]
    failing = podman("exec", "-e", "PIXELPIPE_PORT=1", name, *command, check=False)
    assert failing.returncode != 0


def test_image_reads_heic_and_jpeg_xl(
    container: tuple[str, str], origin: Origin, tmp_path: Path
) -> None:
    """The image carries the decoders the wheel's libvips lacks (pillow-heif, pylibjxl)."""
    if shutil.which("heif-enc") is None or shutil.which("cjxl") is None:
        pytest.skip("heif-enc/cjxl not installed (make test installs them): SKIPPING")
    base, _name = container
    source = tmp_path / "photo.png"
    photo_like(320, 240).pngsave(str(source))
    subprocess.run(
        ["heif-enc", "-q", "80", str(source), "-o", str(tmp_path / "p.heic")], check=True
    )
    subprocess.run(["cjxl", str(source), str(tmp_path / "p.jxl")], check=True, capture_output=True)
    for name in ("p.heic", "p.jxl"):
        url = origin.add(f"/container/{name}", (tmp_path / name).read_bytes())
        answer = httpx.get(base + signed(f"/rs:fit:100:0/plain/{url}@png"), timeout=60)
        assert answer.status_code == 200, (name, answer.text)
        assert decode(answer.content).width == 100


def test_image_draws_text_watermarks(container: tuple[str, str], origin: Origin) -> None:
    """The image carries a font: watermark_text draws letters (red ones here), not nothing."""
    base, _name = container
    url = origin.add("/container/grey.png", encode(solid(300, 100, (128, 128, 128)), "png"))
    markup = '<span foreground="#ff0000" size="30pt">Text</span>'
    text = base64.urlsafe_b64encode(markup.encode()).rstrip(b"=").decode()
    answer = httpx.get(base + signed(f"/wmt:{text}/plain/{url}@png"), timeout=60)
    assert answer.status_code == 200, answer.text
    image = decode(answer.content)
    red = (image[0] > 180) & (image[1] < 90) & (image[2] < 90)
    assert red.avg() > 0  # some pixels of the letters
