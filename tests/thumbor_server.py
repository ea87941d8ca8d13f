"""thumbor 7.8 on loopback, for cross-checking pixelpipe's thumbor dialect.

`make test` installs thumbor into .venv/thumbor (its own pins); it loads
sources over HTTP from the tests' origin on 127.0.0.1. Without `detectors`
it runs no detector, so `smart` falls back to the alignment there; with them,
thumbor's face and feature detectors (OpenCV 4.x, which `make test` installs
into thumbor's environment).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.emulators import running, wait_for
from tests.ports import free_port

THUMBOR = Path(__file__).resolve().parent.parent / ".venv" / "thumbor" / "bin" / "thumbor"
THUMBOR_KEY = "fake-thumbor-test-key"  # tests only


@contextmanager
def thumbor_server(detectors: bool = False) -> Iterator[str]:
    if not THUMBOR.exists():
        pytest.skip("thumbor is not installed (make test installs it): SKIPPING thumbor checks")
    python = THUMBOR.parent / "python"
    if detectors and subprocess.run([str(python), "-c", "import cv2"]).returncode != 0:
        pytest.skip("OpenCV is not installed for thumbor (make test does): SKIPPING its detectors")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        config = Path(workdir) / "thumbor.conf"
        config.write_text(
            f"SECURITY_KEY = {THUMBOR_KEY!r}\n"
            "ALLOW_UNSAFE_URL = False\n"
            "LOADER = 'thumbor.loaders.http_loader'\n"
            "STORAGE = 'thumbor.storages.no_storage'\n"
            "RESULT_STORAGE = 'thumbor.result_storages.no_storage'\n"
            "QUALITY = 80\n"
            "RESPECT_ORIENTATION = True\n"
        )
        if detectors:
            with config.open("a") as written:
                written.write(
                    "DETECTORS = ['thumbor.detectors.face_detector',"
                    " 'thumbor.detectors.feature_detector']\n"
                )
        command = [str(THUMBOR), "-p", str(port), "-i", "127.0.0.1", "-c", str(config),
                   "-l", "error"]  # fmt: skip
        with running(command) as process:
            base = f"http://127.0.0.1:{port}"
            wait_for(
                lambda: httpx.get(base + "/healthcheck").status_code == 200, process, "thumbor"
            )
            yield base
