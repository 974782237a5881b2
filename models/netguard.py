"""Which network addresses a webhook may reach: the one address policy, used when a URL is
saved (api.netguard) and again at every connection the worker opens (workers.delivery), so a
name that resolves somewhere else later (DNS rebinding) is still refused.

Pure (no I/O). IPv6 forms that carry an IPv4 address are judged by that IPv4 address: mapped
(::ffff:a.b.c.d), translated (::ffff:0:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96
and the local-use 64:ff9b:1::/48), 6to4 (2002::/16), Teredo (2001::/32, both the server and
the client address) and ISATAP (an interface id of 0:5efe:a.b.c.d). Deprecated site-local
(fec0::/10) is private space and refused outright. A transition form whose IPv4 address is
public is public: a NAT64 gateway in front of a public IPv4 receiver is a legitimate target.
"""

from __future__ import annotations

import ipaddress

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_ISATAP_ID = 0x00005EFE  # bits 32..63 of an ISATAP address (RFC 5214), 0x0200_5efe when global


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address routes to or stands for (empty for plain IPv6)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _TRANSLATED or any(ip in net for net in _NAT64):
        found.append(low32)
    elif ip in _COMPATIBLE and int(ip) > 1:  # ::a.b.c.d (:: and ::1 are IPv6's own)
        found.append(low32)
    if (int(ip) >> 32) & 0xFDFFFFFF == _ISATAP_ID:
        found.append(low32)
    return found


def is_public_address(address: str) -> bool:
    """True when `address` (a literal IPv4 or IPv6 address, zone id allowed) is a public
    unicast address and so is every IPv4 address it carries."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _SITE_LOCAL:
            return False
        inner = embedded_ipv4(ip)
        if inner:
            return all(_public(v4) for v4 in inner)
    return _public(ip)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return bool(ip.is_global) and not ip.is_multicast
