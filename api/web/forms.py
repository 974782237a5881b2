"""Form parsing for the pages through the API's own body models (api.briefs, api.alerts), so a
page stores nothing the JSON API would refuse. Errors are {field name: message}."""

from __future__ import annotations

import math
from typing import Any

from pydantic import TypeAdapter, ValidationError

from api.validation import Tag
from models.types import Brief

_TAG: TypeAdapter[str] = TypeAdapter(Tag)
MAX_LINES = 100

Errors = dict[str, str]


def text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    if isinstance(value, list):  # a repeated single-value field: keep the first
        value = value[0] if value else ""
    return str(value).replace("\r\n", "\n").strip()


def values(form: dict[str, Any], name: str) -> list[str]:
    value = form.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def lines(form: dict[str, Any], name: str, errors: Errors) -> list[str]:
    """One entry per line (commas also split, as people paste lists both ways)."""
    raw = text(form, name)
    items: list[str] = []
    for line in raw.split("\n"):
        for part in line.split(","):
            part = part.strip()
            if part and part.lower() not in {i.lower() for i in items}:
                items.append(part)
    if len(items) > MAX_LINES:
        errors[name] = f"at most {MAX_LINES} entries"
    for item in items:
        try:
            _TAG.validate_python(item)
        except ValidationError:
            errors[name] = f"entry too long or has control characters: {item[:40]!r}"
            break
    return items


def number(
    form: dict[str, Any], name: str, errors: Errors, *, lo: float = 0.0, hi: float = 1e9
) -> float | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = "must be a number"
        return None
    if not math.isfinite(value) or not lo <= value <= hi:
        errors[name] = f"must be between {lo:g} and {hi:g}"
        return None
    return value


def _pydantic_errors(exc: ValidationError, errors: Errors) -> None:
    for e in exc.errors(include_url=False, include_input=False):
        field = str(e["loc"][0]) if e["loc"] else "form"
        errors.setdefault(field, e["msg"])


def brief_fields(
    form: dict[str, Any], *, strict: bool, preview: bool = False
) -> tuple[dict[str, Any], Errors]:
    """Brief form -> models.briefs fields, validated with the API's own body model; drafts
    validate loosely (a title is enough), publishing with the API's `publish_problems`."""
    from api.services.briefs import BriefDraft, BriefPreviewIn, publish_problems

    errors: Errors = {}
    raw: dict[str, Any] = {
        "title": text(form, "title"),
        "summary": text(form, "summary"),
        "category": text(form, "category"),
        "location": text(form, "location"),
        "essential_skills": lines(form, "essential_skills", errors),
        "nice_to_have_skills": lines(form, "nice_to_have_skills", errors),
        "max_day_rate": number(form, "max_day_rate", errors),
    }
    fields = dict(raw)
    try:
        model = (BriefPreviewIn if preview else BriefDraft).model_validate(raw)
        fields = model.model_dump(include=set(raw))
    except ValidationError as exc:
        _pydantic_errors(exc, errors)
    if strict and not errors:
        brief = Brief(id=0, **fields)
        for problem in publish_problems(brief):
            errors.setdefault(problem["field"], problem["message"])
    return fields, errors


def preference_fields(form: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """Alert settings form -> models.preferences columns, validated with the API's model."""
    from api.services.alerts import PreferencesIn

    errors: Errors = {}
    raw: dict[str, Any] = {
        "frequency": text(form, "frequency"),
        "email": text(form, "email") or None,
        "webhook_url": text(form, "webhook_url") or None,
        "categories": values(form, "categories"),
        "locations": lines(form, "locations", errors),
        "keywords": lines(form, "keywords", errors),
        "exclude_keywords": lines(form, "exclude_keywords", errors),
        "min_score": number(form, "min_score", errors, hi=1.0) or 0.0,
        "paused": text(form, "paused") == "on",
    }
    secret = text(form, "webhook_secret")
    if secret:  # blank keeps the stored secret: it is never shown back
        raw["webhook_secret"] = secret
    fields = dict(raw)
    try:
        fields = PreferencesIn.model_validate(raw).model_dump(include=set(raw))
    except ValidationError as exc:
        _pydantic_errors(exc, errors)
    return fields, errors
