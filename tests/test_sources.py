from __future__ import annotations

import asyncio
import os
import sys

import pytest
import uvloop

from proxy.app import build_client, build_sources
from proxy.errors import SourceForbidden, SourceNotFound, SourceTooLarge
from proxy.sources.local import LocalSource
from proxy.sources.policy import AddressPolicy, check_address
from tests.conftest import make_settings
from tests.servers import Origin


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::1%lo"],
)
def test_loopback_is_refused_by_default(address: str) -> None:
    with pytest.raises(SourceForbidden):
        check_address(address, AddressPolicy())


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_when_configured(address: str) -> None:
    check_address(address, AddressPolicy(allow_loopback=True))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    check_address(address, AddressPolicy())


def test_non_addresses_are_refused() -> None:
    with pytest.raises(SourceForbidden):
        check_address("example.com", AddressPolicy())


@pytest.mark.parametrize("host", ["a" * 64 + ".test", "images..test", "x" * 300])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_host_that_is_no_dns_name_is_not_found(host: str, loop: str) -> None:
    """With the server's own resolver: such a name fails in the IDNA codec,
    before any lookup leaves the machine (it answered 500 "internal error")."""
    settings = make_settings()

    async def fetch() -> None:
        async with build_client(settings) as client:
            with pytest.raises(SourceNotFound, match="source host not found"):
                await build_sources(settings, client).fetch(f"http://{host}/cup.jpg")

    uvloop.run(fetch()) if loop == "uvloop" else asyncio.run(fetch())


def test_local_source_reads_inside_the_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.png").write_bytes(b"abc")
    source = LocalSource(str(tmp_path), max_bytes=10)
    assert asyncio.run(source.fetch("local:///a.png")).data == b"abc"


@pytest.mark.parametrize(
    "url",
    ["local:///../secret", "local:///a/../../secret", "local:///%2e%2e/secret", "local:///link/x"],
)
def test_local_source_refuses_escapes(tmp_path, url: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_bytes(b"s")
    os.symlink(tmp_path, root / "link")
    with pytest.raises(SourceForbidden):
        LocalSource(str(root), max_bytes=0).resolve(url)


def test_local_source_missing_and_too_large(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "big").write_bytes(b"x" * 100)
    source = LocalSource(str(tmp_path), max_bytes=10)
    with pytest.raises(SourceNotFound):
        asyncio.run(source.fetch("local:///nothing"))
    with pytest.raises(SourceTooLarge):
        asyncio.run(source.fetch("local:///big"))
    with pytest.raises(SourceNotFound):
        asyncio.run(source.fetch("local:///"))


class _CountingFinder:
    """A meta-path finder that only counts: every import the interpreter looks for."""

    def __init__(self) -> None:
        self.looked_for: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.looked_for.append(name)


def test_fetching_sources_looks_for_no_module(origin: Origin) -> None:
    """A failed import scans sys.path every time: httpcore tried `import sniffio`
    on every lock it set up (0.4 ms of CPU per fetch) until sniffio became a
    dependency. After the first fetch, fetching imports nothing."""
    url = origin.add("/imports/source.bin", os.urandom(300_000), "application/octet-stream")
    settings = make_settings()

    async def fetch_some(finder: _CountingFinder) -> None:
        async with build_client(settings) as client:
            sources = build_sources(settings, client)
            await sources.fetch(url)  # the first fetch may import what it needs once
            sys.meta_path.insert(0, finder)
            try:
                for _ in range(5):
                    fetched = await sources.fetch(url)
                    assert len(fetched.data) == 300_000
            finally:
                sys.meta_path.remove(finder)

    finder = _CountingFinder()
    asyncio.run(fetch_some(finder))
    assert finder.looked_for == []
