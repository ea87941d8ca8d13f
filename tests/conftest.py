from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace

import httpx
import pytest

from proxy.settings import Settings
from signing import sign_path
from tests.ports import free_port
from tests.servers import Origin, RedisServer, serve_pixelpipe

# Clearly fake key/salt pairs, for tests only (imgproxy's documentation pair first).
KEY = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881"
SALT = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5"
OLD_KEY = "736563726574"  # "secret"
OLD_SALT = "68656c6c6f"  # "hello"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): one worker more than the cores. The suite
    waits on servers, emulators and browsers much of the time, and the extra
    worker fills those waits: on 2 cores 279 s against 356 s with two workers."""
    return len(os.sched_getaffinity(0)) + 1


def make_settings(**overrides: object) -> Settings:
    base = Settings(
        keys=(bytes.fromhex(KEY),),
        salts=(bytes.fromhex(SALT),),
        allow_loopback_source_addresses=True,
        workers=1,
        concurrency=2,
        download_timeout=3.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def signed(path: str, key: str = KEY, salt: str = SALT) -> str:
    return sign_path(path, key, salt)


@pytest.fixture(scope="session")
def origin() -> Iterator[Origin]:
    server = Origin().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pixelpipe() -> Iterator[str]:
    """The default server: signing on, loopback sources allowed (tests only)."""
    with serve_pixelpipe(make_settings()) as base:
        yield base


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as session:
        yield session


ServerFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture()
def pixelpipe_with() -> ServerFactory:
    """A server with other settings: `with pixelpipe_with(ttl=60) as base: ...`."""

    def start(**overrides: object) -> AbstractContextManager[str]:
        return serve_pixelpipe(make_settings(**overrides))

    return start


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, for the shared-tier tests."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (make test installs it): SKIPPING Redis tests")
    with (
        tempfile.TemporaryDirectory() as workdir,
        RedisServer(server, free_port(), workdir) as redis_server,
    ):
        yield redis_server.url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium, driven by Playwright (which downloads no browser of its own)."""
    from tests.test_gallery_browser import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (make test installs Debian's chromium): SKIPPING")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
