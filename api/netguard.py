"""Webhook URLs cannot be turned against our own network (SSRF), checked when they are saved.

The worker checks again when it sends (workers.delivery: a resolver that drops non-public
addresses, so DNS rebinding after the save still cannot reach us; no redirects; a capped
response; a total timeout). Here, at save time, the seller gets a clear 422 at once instead of
alerts that fail later:

- only http and https, a host, no credentials in the URL, a valid port;
- a literal address must be public (not loopback, private, link-local, multicast, reserved,
  unspecified; IPv4-mapped IPv6 is unwrapped first);
- a name is resolved and refused if ANY of its addresses is not public (`localhost`, `127.1`,
  `2130706433` and names pointing at 10.x all resolve to something private). A name that does
  not resolve right now is accepted: DNS may be down or the receiver not yet live, and the
  send-time resolver refuses it then if it turns out private.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

RESOLVE_TIMEOUT = 2.0


class UnsafeUrl(ValueError):
    """The URL must not be used as a webhook target; the message says why."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast


def _parse(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"invalid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeUrl("the URL must be http(s)://host/...")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed; use the webhook secret")
    return host, port or (443 if parts.scheme == "https" else 80)


async def _resolve(host: str, port: int, wait: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), wait
        )
    except (OSError, TimeoutError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check_webhook_target(
    url: str, *, allow_private: bool, resolve_timeout: float = RESOLVE_TIMEOUT
) -> None:
    """Raise UnsafeUrl unless `url` is an acceptable webhook target (see the module doc).
    `allow_private` (settings.webhook_allow_private: tests and local demos) skips the address
    checks but not the URL shape checks."""
    host, port = _parse(url)
    if allow_private:
        return
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
        raise UnsafeUrl(f"the webhook host {host} is loopback")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        addresses = await _resolve(host, port, resolve_timeout)
    else:
        addresses = [host]
    private = [a for a in addresses if not is_public_address(a)]
    if private:
        raise UnsafeUrl(
            f"the webhook host {host} resolves to a non-public address ({private[0]}): "
            "loopback, private and link-local targets are refused"
        )
