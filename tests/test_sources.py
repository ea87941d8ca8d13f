from __future__ import annotations

import asyncio
import os

import pytest

from proxy.errors import SourceForbidden, SourceNotFound, SourceTooLarge
from proxy.sources.local import LocalSource
from proxy.sources.policy import AddressPolicy, check_address


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
