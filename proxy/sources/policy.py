"""Which source addresses may be fetched. Pure functions over values.

Loopback is refused by default from day one: a proxy that fetches
`http://127.0.0.1:…` for strangers exposes every service on its own host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from proxy.errors import SourceForbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allow_loopback: bool = False


def parse_address(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 on the wire
    return address


def is_loopback(address: IPAddress) -> bool:
    # 0.0.0.0 and :: reach the local host when connected to, so they count too.
    return address.is_loopback or address.is_unspecified


def check_address(text: str, policy: AddressPolicy) -> None:
    """Raise SourceForbidden when the policy does not allow connecting to `text`."""
    try:
        address = parse_address(text)
    except ValueError:
        raise SourceForbidden("source address is not an IP address") from None
    if is_loopback(address) and not policy.allow_loopback:
        raise SourceForbidden("source address is not allowed (loopback)")
