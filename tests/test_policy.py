"""The address policy as a table: what may be connected to, under which settings."""

from __future__ import annotations

import pytest

from proxy.errors import SourceForbidden
from proxy.sources.policy import (
    AddressClass,
    AddressPolicy,
    allowed_addresses,
    check_address,
    check_allowed_source,
    classify,
    compile_allowed_sources,
    parse_address,
)

L, LL, P, M, R, PUB = (
    AddressClass.LOOPBACK,
    AddressClass.LINK_LOCAL,
    AddressClass.PRIVATE,
    AddressClass.MULTICAST,
    AddressClass.RESERVED,
    AddressClass.PUBLIC,
)

ADDRESSES = [
    # loopback, in every spelling a socket accepts
    ("127.0.0.1", L),
    ("127.255.255.254", L),
    ("2130706433", L),  # decimal
    ("0x7f000001", L),  # hex
    ("0177.0.0.1", L),  # octal
    ("127.1", L),  # short form
    ("0x7f.1", L),
    ("::1", L),
    ("[::1]", L),
    ("0:0:0:0:0:0:0:1", L),
    ("::ffff:127.0.0.1", L),  # IPv4-mapped
    ("::ffff:7f00:1", L),
    ("0.0.0.0", L),  # reaches the local host
    ("::", L),
    # link-local, cloud metadata among them
    ("169.254.169.254", LL),
    ("169.254.0.1", LL),
    ("0xa9fea9fe", LL),  # 169.254.169.254 in hex
    ("2852039166", LL),  # 169.254.169.254 in decimal
    ("::ffff:169.254.169.254", LL),
    ("fe80::1", LL),
    ("fe80::1%eth0", LL),
    ("224.0.0.251", LL),  # link-local multicast (mDNS)
    ("ff02::1", LL),
    # private
    ("10.0.0.1", P),
    ("10.255.255.255", P),
    ("012.0.0.1", P),  # octal 10.0.0.1
    ("172.16.0.1", P),
    ("172.31.255.255", P),
    ("192.168.1.1", P),
    ("100.64.0.1", P),  # carrier-grade NAT
    ("fc00::1", P),  # unique local
    ("fd00:ec2::254", P),  # AWS IPv6 metadata
    ("::ffff:10.0.0.1", P),
    ("::ffff:192.168.0.1", P),
    ("2002:c0a8:0101::1", P),  # 6to4 wrapping 192.168.1.1
    ("64:ff9b::a00:1", P),  # NAT64 wrapping 10.0.0.1
    # multicast
    ("239.255.255.250", M),
    ("ff05::2", M),
    # reserved: never a source
    ("0.1.2.3", R),
    ("240.0.0.1", R),
    ("255.255.255.255", R),
    ("192.0.2.1", R),
    ("2001:db8::1", R),
    # public
    ("93.184.216.34", PUB),
    ("8.8.8.8", PUB),
    ("172.32.0.1", PUB),  # just outside 172.16/12
    ("2606:4700:4700::1111", PUB),
    ("::ffff:8.8.8.8", PUB),
]


def test_table_is_at_least_thirty_addresses() -> None:
    assert len(ADDRESSES) >= 30


@pytest.mark.parametrize(("text", "kind"), ADDRESSES)
def test_classify(text: str, kind: AddressClass) -> None:
    address = parse_address(text)
    assert address is not None
    assert classify(address) is kind


@pytest.mark.parametrize(("text", "kind"), ADDRESSES)
def test_default_policy_refuses_all_but_public(text: str, kind: AddressClass) -> None:
    if kind is PUB:
        check_address(text, AddressPolicy())
    else:
        with pytest.raises(SourceForbidden) as caught:
            check_address(text, AddressPolicy())
        assert kind.value in caught.value.reason


@pytest.mark.parametrize(
    ("policy", "allowed_kind"),
    [
        (AddressPolicy(allow_loopback=True), L),
        (AddressPolicy(allow_link_local=True), LL),
        (AddressPolicy(allow_private=True), P),
        (AddressPolicy(allow_multicast=True), M),
    ],
)
def test_each_setting_allows_exactly_its_class(
    policy: AddressPolicy, allowed_kind: AddressClass
) -> None:
    for text, kind in ADDRESSES:
        if kind in (allowed_kind, PUB):
            check_address(text, policy)
        else:
            with pytest.raises(SourceForbidden):
                check_address(text, policy)


def test_reserved_is_refused_whatever_is_allowed() -> None:
    everything = AddressPolicy(True, True, True, True)
    with pytest.raises(SourceForbidden):
        check_address("240.0.0.1", everything)


@pytest.mark.parametrize(
    "name", ["example.com", "localhost", "", "1.2.3.4.5", "0x", "127.0.0.1.nip.io"]
)
def test_names_are_not_addresses(name: str) -> None:
    assert parse_address(name) is None


def test_only_allowed_resolved_addresses_are_kept() -> None:
    policy = AddressPolicy(allow_loopback=True)
    assert allowed_addresses(["10.0.0.1", "127.0.0.1"], policy) == ["127.0.0.1"]
    with pytest.raises(SourceForbidden) as caught:
        allowed_addresses(["10.0.0.1", "169.254.169.254"], policy)
    assert "private" in caught.value.reason


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://img.example.com/a.jpg", True),
        ("https://cdn.example.com/x/y.png", True),
        ("https://example.com/a.jpg", False),
        ("https://img.example.com.evil.net/a.jpg", False),
        ("https://img.example.com@evil.net/a.jpg", False),
        ("http://img.example.com/a.jpg", False),
        ("local:///shop/a.jpg", True),
        ("s3://bucket/a.jpg", False),
    ],
)
def test_allowed_sources(url: str, allowed: bool) -> None:
    patterns = compile_allowed_sources(["https://*.example.com/", "local://"])
    if allowed:
        check_allowed_source(url, patterns)
    else:
        with pytest.raises(SourceForbidden):
            check_allowed_source(url, patterns)


def test_no_allowed_sources_means_any() -> None:
    check_allowed_source("https://anything.example/x", ())
