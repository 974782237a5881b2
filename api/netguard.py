"""Webhook URLs cannot be turned against our own network (SSRF), checked when they are saved.

The worker checks again when it sends (workers.delivery: a resolver that drops non-public
addresses, so DNS rebinding after the save still cannot reach us; no redirects; a capped
response; a total timeout). Here, at save time, the seller gets a clear 422 at once instead of
alerts that fail later:

- only http and https, a host, no credentials in the URL, a valid port;
- printable ASCII only: a space, a control or line separator, or a non-ASCII character would
  make every send fail, so the seller is told the encoded form to use instead (IDNA for the
  host, percent-encoding for the rest);
- a literal address must be public (not loopback, private, link-local, multicast, reserved,
  unspecified; IPv6 forms that carry an IPv4 address are judged by it: models.netguard);
- a name is resolved and refused if ANY of its addresses is not public (`localhost`, `127.1`,
  `2130706433` and names pointing at 10.x all resolve to something private). A name that does
  not resolve right now is accepted: DNS may be down or the receiver not yet live, and the
  send-time resolver refuses it then if it turns out private.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import unicodedata
from urllib.parse import urlsplit

from yarl import URL

from models.netguard import is_public_address

__all__ = ["WEBHOOK_SECRET_NEEDED", "UnsafeUrl", "check_webhook_target", "is_public_address"]

RESOLVE_TIMEOUT = 2.0
# A webhook is saved only with a secret: every delivery is signed with it, and a receiver
# could not tell an unsigned delivery from a forgery.
WEBHOOK_SECRET_NEEDED = (
    "give a webhook secret (16 characters or more): every delivery is signed with it"
)


class UnsafeUrl(ValueError):
    """The URL must not be used as a webhook target; the message says why."""


def _printable_ascii(url: str) -> None:
    if all("\x21" <= c <= "\x7e" for c in url):
        return
    if any(unicodedata.category(c)[0] == "C" or c in "\u2028\u2029\x85" for c in url):
        raise UnsafeUrl("the URL has control characters or line separators")
    try:
        suggestion = str(URL(url.strip()))
    except (ValueError, UnicodeError):
        suggestion = ""
    if suggestion and all("\x21" <= c <= "\x7e" for c in suggestion):
        raise UnsafeUrl(
            "the URL has spaces or characters outside printable ASCII; "
            f"use its encoded form: {suggestion}"
        )
    raise UnsafeUrl("the URL has spaces, control characters or characters it cannot encode")


def _parse(url: str) -> tuple[str, int]:
    _printable_ascii(url)
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
