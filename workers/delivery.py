"""Delivery channels: HMAC-signed webhooks and SMTP e-mail.

Senders raise DeliveryError; `permanent=True` means no retry can help (a refused address, no
channel configured), anything else is retried with backoff by the caller.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import ipaddress
import logging
import time
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from config.settings import WorkerConfig
from models.netguard import is_public_address
from workers.http1 import Http1Client, HttpError, RefusedAddress
from workers.links import Links

log = logging.getLogger("workers.delivery")


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# ---------------------------------------------------------------------------------------------
# Payloads


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


EVENTS = {"match": "opportunity.matched", "invited": "opportunity.invited",
          "awarded": "opportunity.awarded"}


def kind_of(alert: Mapping[str, Any]) -> str:
    return str(alert.get("kind") or "match")


def event_of(alert: Mapping[str, Any]) -> str:
    return EVENTS.get(kind_of(alert), "opportunity.matched")


def shortlisted(alert: Mapping[str, Any]) -> bool:
    """Whether the seller is on the brief's stored shortlist (an invitation can go to a seller
    who is not): only then do a score and a "why you" exist."""
    return alert.get("rank") is not None


def why_you(alert: Mapping[str, Any]) -> str:
    explanation = alert.get("explanation") or {}
    summary = explanation.get("summary") if isinstance(explanation, dict) else None
    if summary:
        return str(summary)
    if not shortlisted(alert):
        return "The buyer chose you."
    return f"Your profile matches this brief (score {alert['score']:.2f})."


def accepts_responses(alert: Mapping[str, Any]) -> bool:
    """Response links go with matches and invitations; an award comes after the answers."""
    return kind_of(alert) in ("match", "invited")


def alert_payload(alert: Mapping[str, Any], links: Links) -> dict[str, Any]:
    """The JSON a webhook receives for one alert. `brief.url` is the seller's own page for the
    opportunity; `responses` (matches and invitations) are one-click links that record the
    seller's answer after a confirming POST."""
    seller_id, brief_id = int(alert["seller_id"]), int(alert["brief_id"])
    data: dict[str, Any] = {
        "type": event_of(alert),
        "kind": kind_of(alert),
        "alert_id": alert["id"],
        "seller_id": seller_id,
        "score": round(float(alert["score"]), 4) if shortlisted(alert) else None,
        "rank": alert.get("rank"),
        "why_you": why_you(alert),
        "explanation": alert.get("explanation") or {},
        "brief": {
            "id": brief_id,
            "title": alert["title"],
            "summary": alert.get("summary") or "",
            "organisation": alert.get("organisation") or "",
            "category": alert.get("category") or "",
            "role": alert.get("role") or "",
            "location": alert.get("location") or "",
            "budget": alert.get("budget"),
            "max_day_rate": alert.get("max_day_rate"),
            "closes_at": _iso(alert.get("closes_at")),
            "published_at": _iso(alert.get("published_at")),
            "url": links.opportunity_url(brief_id),
        },
    }
    if accepts_responses(alert):
        data["responses"] = links.response_urls(seller_id, brief_id)
    return data


# ---------------------------------------------------------------------------------------------
# Webhooks


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """`X-Marketplace-Signature` value: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: str | bytes, header: str, body: bytes, *, tolerance: float = 300.0
) -> bool:
    """What a receiver does (and what our tests do): check the MAC and the timestamp's age."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse what is never deliverable: other schemes, no host, literal private addresses,
    localhost. Names are checked again when they are resolved, at every connection."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise DeliveryError(f"invalid webhook URL: {exc}", permanent=True) from exc
    if parts.scheme not in ("http", "https") or not host:
        raise DeliveryError("webhook URL must be http(s)://host/...", permanent=True)
    if allow_private:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            raise DeliveryError("webhook host is loopback", permanent=True) from None
        return
    if not is_public_address(host):
        raise DeliveryError("webhook address is not public", permanent=True)


def make_http_client(config: WorkerConfig, *, allow_private: bool) -> Http1Client:
    """One client per worker: keep-alive connections are most of webhook throughput."""
    return Http1Client(
        allow_private=allow_private,
        timeout=config.http_timeout,
        connect_timeout=config.connect_timeout,
        max_response_bytes=config.max_response_bytes,
        max_idle_per_origin=config.concurrency,
    )


async def send_webhook(
    client: Http1Client,
    alert: Mapping[str, Any],
    body: bytes,
    *,
    config: WorkerConfig,
    allow_private: bool,
) -> None:
    url = alert.get("webhook_url")
    if not url:
        raise DeliveryError("seller has no webhook URL any more", permanent=True)
    check_webhook_url(url, allow_private=allow_private)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": str(alert["id"]),
        "X-Marketplace-Event": event_of(alert),
    }
    secret = alert.get("webhook_secret")
    # A secret is required when a webhook is saved; a row without one (saved before that rule)
    # gets no signature header at all rather than a MAC under an empty, guessable key.
    if secret:
        headers["X-Marketplace-Signature"] = sign(secret, body, int(time.time()))
    try:
        status = await client.post(url, body, headers)
    except RefusedAddress as exc:
        raise DeliveryError(str(exc), permanent=True) from exc
    except HttpError as exc:
        raise DeliveryError(str(exc)) from exc
    if not 200 <= status < 300:
        # 3xx included: redirects are never followed (they could point inside our network).
        raise DeliveryError(f"HTTP {status} from receiver")


# ---------------------------------------------------------------------------------------------
# E-mail


def header_text(value: str, limit: int = 200) -> str:
    """Text for a mail header: str.split() breaks on every Unicode line and paragraph separator
    (U+2028, U+2029, NEL) as well as on CR, LF and other whitespace, and the email package
    refuses a header holding any of them, so they become single spaces; other control
    characters are dropped. Non-ASCII text is then RFC 2047-encoded by the email policy."""
    text = " ".join(value.split())
    return "".join(c for c in text if unicodedata.category(c) != "Cc")[:limit]


def _money(value: Any) -> str:
    return f"£{float(value):,.0f}" if value is not None else "not stated"


_RESPONSE_LABELS = {"interested": "Interested", "not_for_me": "Not for me", "applied": "Applied"}


def _brief_block(alert: Mapping[str, Any], links: Links) -> str:
    lines = [
        f"{alert['title']}",
        f"  Buyer: {alert.get('organisation') or 'not stated'}",
        f"  Category: {alert.get('category') or 'not stated'}"
        + (f" ({alert['role']})" if alert.get("role") else ""),
        f"  Location: {alert.get('location') or 'not stated'}",
        f"  Budget: {_money(alert.get('budget'))}; max day rate: "
        f"{_money(alert.get('max_day_rate'))}",
        f"  Closes: {_iso(alert.get('closes_at')) or 'not stated'}",
    ]
    if shortlisted(alert):
        lines.append(f"  Match score: {float(alert['score']):.2f}")
    lines += [
        f"  Why you: {why_you(alert)}",
        f"  Details: {links.opportunity_url(int(alert['brief_id']))}",
    ]
    if accepts_responses(alert):
        urls = links.response_urls(int(alert["seller_id"]), int(alert["brief_id"]))
        lines.append("  Tell the buyer (each link asks you to confirm):")
        lines += [f"    {_RESPONSE_LABELS[r]}: {url}" for r, url in urls.items()]
    summary = (alert.get("summary") or "").strip()
    if summary:
        lines.insert(1, "  " + summary[:1200].replace("\n", "\n  "))
    return "\n".join(lines)


_SUBJECTS = {
    "match": "New opportunity: {title}",
    "invited": "You are invited to apply: {title}",
    "awarded": "You won: {title}",
}
_INTROS = {
    "match": "A new opportunity matches your profile:",
    "invited": "A buyer invited you to apply for this opportunity:",
    "awarded": "The buyer awarded you this opportunity:",
}


def build_email(
    alerts: Sequence[Mapping[str, Any]],
    *,
    to: str,
    mail_from: str,
    links: Links,
    digest: bool,
) -> EmailMessage:
    """One alert (instant) or every pending alert of a seller (digest), plain text, with a
    signed one-click unsubscribe link (RFC 8058) and, per opportunity, signed response links."""
    first = alerts[0]
    seller_id = int(first["seller_id"])
    unsubscribe = links.unsubscribe_url(seller_id)
    # No folding of long headers: a folded List-Unsubscribe URL would be mangled by clients.
    msg = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    msg["From"] = mail_from
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="marketplace.invalid")
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Lets a receiving system dedupe a message sent again after a worker crash.
    msg["X-Alert-Ids"] = ",".join(str(a["id"]) for a in alerts)
    if digest:
        msg["Subject"] = f"{len(alerts)} new opportunit{'y' if len(alerts) == 1 else 'ies'} for you"
        intro = f"Hello {first['seller_name']},\n\nThese opportunities match your profile:\n"
    else:
        kind = kind_of(first)
        msg["Subject"] = header_text(
            _SUBJECTS.get(kind, _SUBJECTS["match"]).format(title=first["title"])[:200])
        intro = f"Hello {first['seller_name']},\n\n{_INTROS.get(kind, _INTROS['match'])}\n"
    blocks = "\n\n".join(_brief_block(a, links) for a in alerts)
    footer = (
        "\n\n--\nYou receive this because you asked for opportunity alerts."
        f"\nUnsubscribe with one click: {unsubscribe}\n"
    )
    msg.set_content(intro + "\n" + blocks + footer)
    return msg


_SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)


class Mailer:
    """SMTP client for MARKETPLACE_SMTP_URL (smtp:// or smtps://user:pass@host:port). Without a
    URL (the demo) messages are logged instead of sent."""

    def __init__(self, smtp_url: str | None, *, timeout: float = 15.0) -> None:
        self.url = smtp_url
        self.timeout = timeout
        self.sent_to_log = 0
        if smtp_url:
            parts = urlsplit(smtp_url)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("SMTP URL must look like smtp://user:pass@host:port")
            self.host = parts.hostname
            self.use_tls = parts.scheme == "smtps"
            self.port = parts.port or (465 if self.use_tls else 25)
            self.username = unquote(parts.username) if parts.username else None
            self.password = unquote(parts.password) if parts.password else None

    async def send(self, msg: EmailMessage) -> None:
        if not self.url:
            self.sent_to_log += 1
            log.info(
                "e-mail (no SMTP_URL set, logged instead of sent)",
                extra={"to": msg["To"], "subject": msg["Subject"], "body": msg.get_content()},
            )
            return
        try:
            # Flattened here, not by aiosmtplib (which folds at 78 columns): headers such as
            # List-Unsubscribe stay on one line, which some mail clients need.
            await aiosmtplib.send(
                msg.as_bytes(policy=_SMTP_POLICY),
                sender=parseaddr(str(msg["From"]))[1],
                recipients=[parseaddr(str(msg["To"]))[1]],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from exc
