"""Jinja filters for the pages: scores, dates, explanation parts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any


def pct(value: Any) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "–"


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return "–" if value in (None, "") else str(value)


def matched_skills(explanation: Any) -> list[dict[str, Any]]:
    """The brief criteria the seller matched, best first."""
    skills = explanation.get("skills") if isinstance(explanation, dict) else None
    if not isinstance(skills, list):
        return []
    out = [s for s in skills if isinstance(s, dict) and s.get("matched")]
    return sorted(out, key=lambda s: -float(s.get("similarity") or 0))


def signals(explanation: Any) -> list[tuple[str, float]]:
    """Non-zero signals, strongest first."""
    raw = explanation.get("signals") if isinstance(explanation, dict) else None
    if not isinstance(raw, dict):
        return []
    items: list[tuple[str, float]] = []
    for name, value in raw.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if number:
            items.append((str(name), number))
    return sorted(items, key=lambda kv: -kv[1])


def summary(explanation: Any) -> str:
    text = explanation.get("summary") if isinstance(explanation, dict) else None
    return text if isinstance(text, str) else ""


def top_terms(explanation: Any) -> list[str]:
    text = explanation.get("text") if isinstance(explanation, dict) else None
    terms = text.get("top_terms") if isinstance(text, dict) else None
    if not isinstance(terms, list):
        return []
    out: list[str] = []
    for t in terms[:8]:
        if isinstance(t, str):
            out.append(t)
        elif isinstance(t, list | tuple) and t and isinstance(t[0], str):
            out.append(t[0])
        elif isinstance(t, dict) and isinstance(t.get("term"), str):
            out.append(t["term"])
    return out


def duration(seconds: Any) -> str:
    """A median time in words a reader can compare: 0.4 s, 12 s, 3.5 min, 2.0 h, 1.5 days."""
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def share(value: Any) -> str:
    """A share (0..1) as a percentage with one decimal; "–" when there is nothing to divide."""
    if value is None:
        return "–"
    return f"{float(value) * 100:.1f}%"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


FILTERS: dict[str, Callable[..., Any]] = {
    "pct": pct,
    "when": when,
    "matched_skills": matched_skills,
    "signals": signals,
    "summary": summary,
    "top_terms": top_terms,
    "pretty": pretty,
    "duration": duration,
    "share": share,
}
