"""Pure rules about who gets an alert and when the next try is: no I/O, easy to test."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from models.types import Brief


def channel_for(prefs: Mapping[str, Any]) -> str | None:
    """Where an alert goes: a daily digest, a webhook, an e-mail, or nowhere."""
    if prefs.get("frequency") == "daily":
        return "digest" if prefs.get("email") else None
    if prefs.get("webhook_url"):
        return "webhook"
    if prefs.get("email"):
        return "email"
    return None


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9+#]+", " ", text.lower()) + " "


def brief_text(brief: Brief) -> str:
    parts = [brief.title, brief.summary, brief.role, brief.organisation]
    parts += brief.essential_skills + brief.nice_to_have_skills
    return _words(" ".join(p for p in parts if p))


def _mentions(text: str, phrase: str) -> bool:
    words = _words(phrase).strip()
    return bool(words) and f" {words} " in text


def _norm(value: str) -> str:
    return value.strip().lower()


def allows(prefs: Mapping[str, Any] | None, brief: Brief, score: float) -> bool:
    """Whether the seller asked to hear about this brief. No preferences: no alert."""
    if not prefs or prefs.get("frequency", "off") == "off" or prefs.get("paused"):
        return False
    if channel_for(prefs) is None:
        return False
    if score < float(prefs.get("min_score") or 0.0):
        return False
    categories = {_norm(c) for c in prefs.get("categories") or []}
    if categories and _norm(brief.category) not in categories:
        return False
    locations = {_norm(c) for c in prefs.get("locations") or []}
    # A brief without a location (or a remote one) can be done from anywhere.
    brief_loc = _norm(brief.location)
    if locations and brief_loc and brief_loc not in {"remote", "anywhere"}:
        if not any(loc == brief_loc or loc in brief_loc for loc in locations):
            return False
    # An unknown budget or rate never hides a brief: only a known, too-small one does.
    min_budget = prefs.get("min_budget")
    if min_budget is not None and brief.budget is not None and brief.budget < min_budget:
        return False
    min_rate = prefs.get("min_day_rate")
    if min_rate is not None and brief.max_day_rate is not None and brief.max_day_rate < min_rate:
        return False
    keywords = prefs.get("keywords") or []
    excludes = prefs.get("exclude_keywords") or []
    if keywords or excludes:
        text = brief_text(brief)
        if keywords and not any(_mentions(text, k) for k in keywords):
            return False
        if any(_mentions(text, k) for k in excludes):
            return False
    return True


def retry_delay(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter after the given (1-based) failed attempt: a random delay
    between half and all of min(cap, base * 2**(attempt-1)), so that a receiver coming back is
    not hit by every retry in the same second."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    r = (rng or random).random()
    return ceiling * (0.5 + 0.5 * r)
