"""Matching rules: weights, thresholds, hard filters, synonyms, aliases, per-category overrides.

Rules are plain data. `Rules.from_dict` is the only way untrusted input (the rules API, a JSON
file proposed by `marketplace eval --fit`) becomes a `Rules`; it rejects unknown keys and wrong
types with a `RulesError` whose `.field` is the dotted path of the offending value, so the API
can answer 422 naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .calibration import Knots, validate_knots

# One weight per signal; every signal is in 0..1 (see matcher/signals.py for their meaning).
SIGNALS: tuple[str, ...] = (
    "text",  # TF-IDF cosine of brief text vs seller text
    "skills",  # fuzzy overlap of the brief's skill criteria with the seller's skills
    "category",  # seller has won / declared the brief's category
    "role",  # seller has done the brief's specialist role before
    "location",  # seller serves (has worked in) the brief's location
    "buyer",  # past work for the same buyer organisation
    "wins",  # number of past wins, log-scaled
    "recency",  # how recent the seller's last win is
    "sme",  # small or medium enterprise
)

# Defaults from first principles, checked (not fitted) on every time split of both dev sets
# (the 2016-17 Digital Marketplace outcomes and the 2020 UK OCDS awards, bench/signal_study.py):
# the brief's words say most about who wins; past work for the same (or a closely named) buyer
# and the track record reorder those that match; category, role, location and recency add
# little on their own. `marketplace eval --fit` proposes weights learned from outcomes instead.
DEFAULT_WEIGHTS: dict[str, float] = {
    "text": 4.5,
    "skills": 1.0,
    "category": 1.0,
    "role": 0.5,
    "location": 0.5,
    "buyer": 1.5,
    "wins": 1.5,
    "recency": 0.5,
    "sme": 0.0,
}


# Fitted on the Digital Marketplace's 2016-17 awards by `python -m bench.signal_study
# --calibrate` (the default weights' raw scores of the real winners; see matcher/calibration.py
# for what a calibrated score means). Refit with `marketplace eval --fit` for other data.
DEFAULT_CALIBRATION: Knots = (
    (0.0, 0.0),
    (0.261391, 0.0),
    (0.274581, 0.05),
    (0.279937, 0.1),
    (0.282147, 0.15),
    (0.285898, 0.2),
    (0.290571, 0.25),
    (0.303924, 0.3),
    (0.317337, 0.35),
    (0.322191, 0.4),
    (0.324613, 0.45),
    (0.330592, 0.5),
    (0.348275, 0.55),
    (0.385809, 0.6),
    (0.38758, 0.65),
    (0.412398, 0.7),
    (0.43918, 0.75),
    (0.446843, 0.8),
    (0.543952, 0.85),
    (0.576585, 0.9),
    (0.593126, 0.95),
    (0.641959, 1.0),
    (1.0, 1.0),
)


class RulesError(ValueError):
    """Invalid rules; `field` is the dotted path of the bad value (e.g. "weights.text")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Rules:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    # Calibrated scores (matcher/calibration.py): the share of past winners a match reaches.
    # 0: every seller with evidence of the work who passes the hard filters is matched. 0.05:
    # about 95 % of matched past winners reach it; on the alert curve of `marketplace eval` it
    # is the threshold that reaches the most winners while alerting at most 15 % of the
    # candidates on every time split of the 2016-17 outcomes (0 alerts 18-20 %).
    shortlist_threshold: float = 0.0
    alert_threshold: float = 0.05
    # The stored shortlist a buyer reads: the best matches, at most this many. 20 holds the
    # winner in about 60 % of the 2016-17 briefs where the top 10 hold about 47 %.
    shortlist_size: int = 20
    calibration: Knots = DEFAULT_CALIBRATION
    max_alerts_per_brief: int = 500
    # A match needs evidence of the work (the brief's words, a skill, the role): priors alone
    # (past wins, buyer, category, location, SME) never make one.
    require_evidence: bool = True
    require_active: bool = True
    require_category: bool = True
    require_location: bool = False
    require_day_rate: bool = True
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    skill_aliases: dict[str, str] = field(default_factory=dict)
    category_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Days for the recency signal to fall to 1/e.
    recency_days: float = 365.0

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = _copy(value)
            elif f.name == "calibration":
                value = [list(knot) for knot in value]  # JSON arrays, as from_dict takes them
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, *, _path: str = "", _partial: bool = False) -> Rules:
        if not isinstance(data, dict):
            raise RulesError(_path, "must be an object")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            path = f"{_path}.{key}" if _path else str(key)
            if key not in known:
                raise RulesError(path, "unknown field")
            kwargs[key] = _validate_field(key, value, path)
        if "weights" in kwargs and not _partial:
            merged = dict(DEFAULT_WEIGHTS)
            merged.update(kwargs["weights"])
            kwargs["weights"] = merged
        rules = cls(**kwargs)
        if sum(rules.weights.values()) <= 0 and not _partial:
            raise RulesError(f"{_path}.weights" if _path else "weights", "at least one > 0")
        if rules.alert_threshold < rules.shortlist_threshold and not _partial:
            # Alerts go to shortlisted sellers only, so a lower alert threshold is a mistake.
            raise RulesError(
                f"{_path}.alert_threshold" if _path else "alert_threshold",
                "must be >= shortlist_threshold",
            )
        return rules

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        number01 = {"type": "number", "minimum": 0, "maximum": 1}
        str_list = {"type": "array", "items": {"type": "string", "minLength": 1}}
        props: dict[str, Any] = {
            "weights": {
                "type": "object",
                "properties": {s: {"type": "number", "minimum": 0} for s in SIGNALS},
                "additionalProperties": False,
            },
            "shortlist_threshold": number01,
            "alert_threshold": number01,
            "max_alerts_per_brief": {"type": "integer", "minimum": 0},
            "shortlist_size": {"type": "integer", "minimum": 1, "maximum": 1000},
            "calibration": {
                "type": "array", "minItems": 2,
                "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": number01},
                "description": "[raw score, calibrated score] knots; raw scores increase",
            },
            "require_evidence": {"type": "boolean"},
            "require_active": {"type": "boolean"},
            "require_category": {"type": "boolean"},
            "require_location": {"type": "boolean"},
            "require_day_rate": {"type": "boolean"},
            "synonyms": {"type": "object", "additionalProperties": str_list},
            "skill_aliases": {"type": "object", "additionalProperties": {"type": "string"}},
            "recency_days": {"type": "number", "minimum": 1, "maximum": 36500},
        }
        override = {
            "type": "object",
            "properties": {k: v for k, v in props.items()},
            "additionalProperties": False,
        }
        props["category_overrides"] = {"type": "object", "additionalProperties": override}
        return {
            "title": "Rules",
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }

    # -- derived rules -----------------------------------------------------------------------
    def for_category(self, category: str) -> Rules:
        """These rules with the override for `category` merged in (weights merge per key)."""
        override = self.category_overrides.get(category)
        if not override:
            return self
        changes = dict(override)
        if "weights" in changes:
            weights = dict(self.weights)
            weights.update(changes["weights"])
            changes["weights"] = weights
        return replace(self, **changes)

    def normalised_weights(self) -> dict[str, float]:
        total = sum(max(0.0, self.weights.get(s, 0.0)) for s in SIGNALS)
        return {s: max(0.0, self.weights.get(s, 0.0)) / total for s in SIGNALS}

    def key(self) -> tuple[Any, ...]:
        """Hashable identity, for caches keyed by rules."""
        return tuple(sorted((k, repr(v)) for k, v in self.to_dict().items()))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _number(value: Any, path: str, lo: float = 0.0, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(path, "must be a number")
    number = float(value)
    if not math.isfinite(number) or number < lo or (hi is not None and number > hi):
        bound = f"between {lo:g} and {hi:g}" if hi is not None else f">= {lo:g}"
        raise RulesError(path, f"must be {bound}")
    return number


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RulesError(path, "must be a non-empty string")
    return value.strip()


def _validate_field(key: str, value: Any, path: str) -> Any:
    if key == "weights":
        if not isinstance(value, dict):
            raise RulesError(path, "must be an object")
        out: dict[str, float] = {}
        for name, w in value.items():
            if name not in SIGNALS:
                raise RulesError(f"{path}.{name}", f"unknown signal (one of {', '.join(SIGNALS)})")
            out[name] = _number(w, f"{path}.{name}")
        return out
    if key in ("shortlist_threshold", "alert_threshold"):
        return _number(value, path, 0.0, 1.0)
    if key == "recency_days":
        # Below a day the recency signal is a step function (and float32 overflows).
        return _number(value, path, 1.0, 36500.0)
    if key == "max_alerts_per_brief":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RulesError(path, "must be an integer >= 0")
        return value
    if key == "shortlist_size":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise RulesError(path, "must be an integer between 1 and 1000")
        return value
    if key == "calibration":
        try:
            return validate_knots(value)
        except ValueError as exc:
            raise RulesError(path, str(exc)) from None
    if key.startswith("require_"):
        if not isinstance(value, bool):
            raise RulesError(path, "must be true or false")
        return value
    if key == "synonyms":
        if not isinstance(value, dict):
            raise RulesError(path, "must be an object of term -> list of terms")
        syn: dict[str, list[str]] = {}
        for term, alts in value.items():
            tpath = f"{path}.{term}"
            _string(term, tpath)
            if not isinstance(alts, list):
                raise RulesError(tpath, "must be a list of strings")
            syn[term.strip().lower()] = [
                _string(a, f"{tpath}[{i}]").lower() for i, a in enumerate(alts)
            ]
        return syn
    if key == "skill_aliases":
        if not isinstance(value, dict):
            raise RulesError(path, "must be an object of alias -> skill")
        return {
            _string(a, f"{path}.{a}").lower(): _string(s, f"{path}.{a}").lower()
            for a, s in value.items()
        }
    if key == "category_overrides":
        if not isinstance(value, dict):
            raise RulesError(path, "must be an object of category -> partial rules")
        overrides: dict[str, dict[str, Any]] = {}
        for cat, body in value.items():
            cpath = f"{path}.{cat}"
            _string(cat, cpath)
            if not isinstance(body, dict):
                raise RulesError(cpath, "must be an object")
            if "category_overrides" in body:
                raise RulesError(f"{cpath}.category_overrides", "overrides cannot nest")
            Rules.from_dict(body, _path=cpath, _partial=True)  # validates, names the field
            overrides[cat] = {
                k: _validate_field(k, v, f"{cpath}.{k}") for k, v in body.items()
            }
        return overrides
    raise RulesError(path, "unknown field")  # pragma: no cover - guarded by from_dict
