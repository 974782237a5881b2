"""Domain types shared by every layer. Pure data: no I/O.

`Seller(id=..., name=..., summary=...)` and `Brief(id=..., title=..., summary=...)` are enough
to build either; every other field has a default (tests, benchmarks and clients build them
that way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

# The Digital Outcomes and Specialists lots; briefs name one, sellers are eligible for some.
CATEGORIES: tuple[str, ...] = (
    "digital-outcomes",
    "digital-specialists",
    "user-research-participants",
    "user-research-studios",
)

BriefStatus = Literal["draft", "published", "closed", "awarded", "cancelled", "unsuccessful"]
Role = Literal["admin", "buyer", "seller"]


@dataclass(slots=True)
class CaseStudy:
    """Past work of a seller: a won brief (imported) or a case study the seller wrote."""

    title: str
    summary: str = ""
    organisation: str = ""  # the buyer the work was for
    category: str = ""
    role: str = ""  # specialist role, when the work was a specialist brief
    location: str = ""
    won_at: date | None = None
    brief_id: int | None = None


@dataclass(slots=True)
class Seller:
    id: int
    name: str
    summary: str = ""
    categories: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    day_rate: float | None = None
    sme: bool = False
    active: bool = True
    case_studies: list[CaseStudy] = field(default_factory=list)


@dataclass(slots=True)
class Brief:
    id: int
    title: str
    summary: str = ""
    category: str = ""
    role: str = ""  # specialist role, e.g. "developer"; empty for outcomes
    organisation: str = ""  # the buyer organisation
    location: str = ""
    essential_skills: list[str] = field(default_factory=list)
    nice_to_have_skills: list[str] = field(default_factory=list)
    max_day_rate: float | None = None
    budget: float | None = None
    closes_at: date | None = None
    published_at: datetime | None = None
    status: str = "draft"
