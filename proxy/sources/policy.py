"""Which sources may be fetched: pure functions over addresses and URLs.

Every address a source connects to is classified, and only public addresses
pass unless a setting allows a class. The check runs on the address the
connection is actually made to (see `sources/network.py`), on every
redirect hop, so neither DNS rebinding nor a redirect can reach an internal
service. Special-purpose ranges that no image host uses are always refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from proxy.errors import SourceForbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressClass(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    PRIVATE = "private"
    MULTICAST = "multicast"
    RESERVED = "reserved"  # never allowed


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Order matters: the first matching row wins.
_CLASSES: tuple[
    tuple[AddressClass, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...
] = (
    (AddressClass.LOOPBACK, _networks("127.0.0.0/8", "::1/128", "0.0.0.0/32", "::/128")),
    (
        AddressClass.LINK_LOCAL,
        # Cloud metadata at 169.254.169.254 (AWS's IPv6 fd00:ec2::254 is private).
        _networks("169.254.0.0/16", "fe80::/10", "224.0.0.0/24", "ff02::/16"),
    ),
    (
        AddressClass.PRIVATE,
        _networks(
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fec0::/10",
        ),
    ),
    (AddressClass.MULTICAST, _networks("224.0.0.0/4", "ff00::/8")),
    (
        AddressClass.RESERVED,
        _networks(
            "0.0.0.0/8",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
            "255.255.255.255/32",
            "2001:db8::/32",
            "100::/64",
            "2001::/23",
        ),
    ),
)


# The setting that opens each class, named in the refusal so a user need not
# search the settings table for it.
OPENED_BY = {
    AddressClass.LOOPBACK: "ALLOW_LOOPBACK_SOURCE_ADDRESSES",
    AddressClass.LINK_LOCAL: "ALLOW_LINK_LOCAL_SOURCE_ADDRESSES",
    AddressClass.PRIVATE: "ALLOW_PRIVATE_SOURCE_ADDRESSES",
    AddressClass.MULTICAST: "ALLOW_MULTICAST_SOURCE_ADDRESSES",
}


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allow_loopback: bool = False
    allow_link_local: bool = False
    allow_private: bool = False
    allow_multicast: bool = False

    def allows(self, kind: AddressClass) -> bool:
        return {
            AddressClass.PUBLIC: True,
            AddressClass.LOOPBACK: self.allow_loopback,
            AddressClass.LINK_LOCAL: self.allow_link_local,
            AddressClass.PRIVATE: self.allow_private,
            AddressClass.MULTICAST: self.allow_multicast,
            AddressClass.RESERVED: False,
        }[kind]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to the wire, if any."""
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return address.ipv4_mapped
    if address.sixtofour is not None:  # 2002:aabb:ccdd::
        return address.sixtofour
    if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in ipaddress.ip_network("::/96") and int(address) > 1:  # deprecated ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> AddressClass:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
    for kind, networks in _CLASSES:
        if any(address in network for network in networks if network.version == address.version):
            return kind
    return AddressClass.PUBLIC


def parse_address(text: str) -> IPAddress | None:
    """An IP literal in any form a resolver would accept, or None for a name.

    Besides dotted quads this reads what inet_aton reads: `2130706433`,
    `0x7f000001`, `0177.0.0.1`, `127.1` are all 127.0.0.1 to a socket.
    """
    host = text.strip().strip("[]").split("%", 1)[0]  # brackets and an IPv6 zone id
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not re.fullmatch(r"[0-9a-fA-FxX.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_address(text: str, policy: AddressPolicy) -> IPAddress:
    """The parsed address, or SourceForbidden when the policy refuses it."""
    address = parse_address(text)
    if address is None:
        raise SourceForbidden("source address is not an IP address")
    kind = classify(address)
    if not policy.allows(kind):
        raise SourceForbidden(refusal_reason(kind))
    return address


def refusal_reason(kind: AddressClass) -> str:
    """`source address is not allowed (loopback; PIXELPIPE_ALLOW_…=true allows it)`."""
    setting = OPENED_BY.get(kind)
    if setting is None:
        return f"source address is not allowed ({kind.value})"
    return f"source address is not allowed ({kind.value}; PIXELPIPE_{setting}=true allows it)"


def allowed_addresses(addresses: Iterable[str], policy: AddressPolicy) -> list[str]:
    """The resolved addresses we may connect to; SourceForbidden when there are none."""
    allowed: list[str] = []
    refusal: SourceForbidden | None = None
    for text in addresses:
        try:
            allowed.append(str(check_address(text, policy)))
        except SourceForbidden as error:
            refusal = refusal or error
    if not allowed:
        raise refusal or SourceForbidden()
    return allowed


def compile_allowed_sources(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """imgproxy's IMGPROXY_ALLOWED_SOURCES: URL prefixes; `*` matches anything but `/`."""
    return tuple(
        re.compile("".join("[^/]*" if ch == "*" else re.escape(ch) for ch in pattern))
        for pattern in patterns
    )


def check_allowed_source(url: str, allowed: tuple[re.Pattern[str], ...]) -> None:
    if allowed and not any(pattern.match(url) for pattern in allowed):
        raise SourceForbidden(
            "source URL is not in the allowed sources (PIXELPIPE_ALLOWED_SOURCES)"
        )
