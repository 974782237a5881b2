"""Digital Marketplace opportunity data: parsing and evaluation sets. Pure: reads one file, no
database, no event loop.

The public `opportunity-data.csv` export lists every Digital Outcomes and Specialists
opportunity with its lot, specialist role, buyer, location, publication date, status and, for
awarded ones, the winning supplier. A seller's profile is what it won before; later awards say
who really won, which is what ranking quality is measured against (see `build_eval_set`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from models.names import name_key
from models.types import Brief, CaseStudy, Seller

STATUSES = frozenset({"closed", "awarded", "cancelled", "unsuccessful"})
# Sizes the export uses; the first three are SMEs under the UK definition.
SME_SIZES = frozenset({"micro", "small", "medium"})
SIZES = SME_SIZES | {"large"}

# Columns without which a file is not an opportunity export at all.
REQUIRED_COLUMNS = ("ID", "Opportunity", "Category", "Published At", "Status")


class OutcomesFileError(ValueError):
    """The file cannot be read as an opportunity export (missing, unreadable, wrong header)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # physical line in the file; the header is line 1
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class Opportunity:
    line: int
    id: str
    title: str
    category: str
    role: str  # specialist role in words ("delivery manager"); "" for outcomes
    organisation: str
    location: str
    published_at: date | None
    status: str
    winner: str = ""
    winner_size: str = ""  # micro / small / medium / large / ""
    framework: str = ""
    buyer_domain: str = ""
    link: str = ""
    open_for: str = ""
    contract_length: str = ""
    sme_applications: int | None = None
    large_applications: int | None = None
    total_applications: int | None = None
    contract_amount: float | None = None
    contract_start: date | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def awarded(self) -> bool:
        return self.status == "awarded" and bool(self.winner)

    @property
    def winner_key(self) -> str:
        return name_key(self.winner) if self.winner else ""

    @property
    def brief_id(self) -> int:
        """A numeric id for the brief: the export's ID (always numeric there), else the line."""
        return int(self.id) if self.id.isdigit() else self.line


def role_words(role: str) -> str:
    """'deliveryManager' -> 'delivery manager'; 'userResearcher' -> 'user researcher'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", role.strip())
    return re.sub(r"[\s_-]+", " ", spaced).strip().lower()


def _date(text: str) -> date:
    """ISO dates, also the export's unpadded '2016-7-29' and a trailing time."""
    text = text.strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?", text)
    if not m:
        raise ValueError(f"not a date: {text!r}")
    return date(int(m[1]), int(m[2]), int(m[3]))


def _number(text: str) -> float | None:
    text = text.strip().replace(",", "").lstrip("£")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None  # an optional figure we only display; never worth rejecting the row


def _count(text: str) -> int | None:
    value = _number(text)
    return int(value) if value is not None else None


def _parse_row(line: int, row: dict[str, str]) -> Opportunity:
    """One CSV row -> Opportunity; raises ValueError with a human message on a bad row."""

    def get(name: str) -> str:
        return (row.get(name) or "").strip()

    opp_id = get("ID")
    if not opp_id:
        raise ValueError("missing ID")
    title = get("Opportunity")
    if not title:
        raise ValueError("missing title (Opportunity)")
    status = get("Status").lower()
    if status not in STATUSES:
        raise ValueError(
            f"unknown status {get('Status')!r} (expected one of {', '.join(sorted(STATUSES))})"
        )
    published_text = get("Published At")
    if not published_text:
        raise ValueError("missing Published At")
    try:
        published = _date(published_text)
    except ValueError as exc:
        raise ValueError(f"bad Published At date {published_text!r}") from exc
    size = get("Size of supplier").lower()
    contract_start: date | None = None
    if get("Contract start date"):
        try:
            contract_start = _date(get("Contract start date"))
        except ValueError:
            contract_start = None  # informational only
    return Opportunity(
        line=line,
        id=opp_id,
        title=title,
        category=get("Category"),
        role=role_words(get("Specialist")),
        organisation=get("Organisation Name"),
        location=get("Location Of The Work"),
        published_at=published,
        status=status,
        winner=re.sub(r"\s+", " ", get("Winning supplier")),
        winner_size=size if size in SIZES else "",
        framework=get("Framework"),
        buyer_domain=get("Buyer Domain"),
        link=get("Link"),
        open_for=get("Open For"),
        contract_length=get("Expected Contract Length"),
        sme_applications=_count(get("Applications from SMEs")),
        large_applications=_count(get("Applications from Large Organisations")),
        total_applications=_count(get("Total Organisations")),
        contract_amount=_number(get("Contract amount")),
        contract_start=contract_start,
    )


def parse_opportunities(lines: Iterable[str]) -> tuple[list[Opportunity], list[RowError]]:
    """Parse CSV text (an iterable of lines, header first). Raises OutcomesFileError only when
    the header is unusable; every bad row becomes a RowError and parsing goes on."""
    reader = csv.reader(iter(lines))
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise OutcomesFileError("empty file: no header line") from None
    except csv.Error as exc:
        raise OutcomesFileError(f"unreadable header: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise OutcomesFileError(
            f"not a Digital Marketplace opportunity export: missing columns {', '.join(missing)}"
        )
    opportunities: list[Opportunity] = []
    errors: list[RowError] = []
    first_line_of: dict[str, int] = {}
    last_line = reader.line_num
    while True:
        start = last_line + 1  # a quoted field may span lines: report where the row starts
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(start, f"malformed CSV: {exc}"))
            if reader.line_num == last_line:  # the reader made no progress: give up cleanly
                break
            last_line = reader.line_num
            continue
        last_line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            errors.append(
                RowError(start, f"expected {len(header)} fields, found {len(values)}")
            )
            continue
        try:
            opp = _parse_row(start, dict(zip(header, values, strict=True)))
        except ValueError as exc:
            errors.append(RowError(start, str(exc)))
            continue
        if opp.id in first_line_of:
            errors.append(
                RowError(start, f"duplicate ID {opp.id} (first on line {first_line_of[opp.id]})")
            )
            continue
        first_line_of[opp.id] = start
        opportunities.append(opp)
    return opportunities, errors


def read_opportunities(path: str | Path) -> tuple[list[Opportunity], list[RowError]]:
    """Read an opportunity-data CSV. Bad rows come back as RowErrors (never raised); an
    unreadable file raises OutcomesFileError."""
    try:
        # newline="" lets the csv module see line breaks inside quoted fields itself;
        # undecodable bytes are replaced rather than failing the whole file.
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            return parse_opportunities(handle)
    except OSError as exc:
        raise OutcomesFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


# -- evaluation sets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    brief: Brief
    relevant: int  # seller id of the real winner


@dataclass(slots=True)
class EvalSet:
    sellers: list[Seller]
    queries: list[Query]


def case_study(opp: Opportunity) -> CaseStudy:
    """The past work an award gives its winner."""
    return CaseStudy(
        title=opp.title,
        organisation=opp.organisation,
        category=opp.category,
        role=opp.role,
        location=opp.location,
        won_at=opp.published_at,
        brief_id=opp.brief_id,
    )


def to_brief(opp: Opportunity, *, status: str = "published") -> Brief:
    published = (
        datetime(opp.published_at.year, opp.published_at.month, opp.published_at.day, tzinfo=UTC)
        if opp.published_at
        else None
    )
    return Brief(
        id=opp.brief_id,
        title=opp.title,
        category=opp.category,
        role=opp.role,
        organisation=opp.organisation,
        location=opp.location,
        published_at=published,
        status=status,
    )


def _sort_key(opp: Opportunity) -> tuple[date, int, str]:
    return (opp.published_at or date.min, opp.brief_id, opp.id)


def sellers_from_wins(opps: Iterable[Opportunity]) -> list[Seller]:
    """One seller per normalised winner name, in order of first win (ids 1, 2, ...).

    Categories and locations are those of the wins; SME status is the latest known size."""
    by_key: dict[str, Seller] = {}
    for opp in sorted((o for o in opps if o.awarded), key=_sort_key):
        key = opp.winner_key
        seller = by_key.get(key)
        if seller is None:
            seller = Seller(id=len(by_key) + 1, name=opp.winner)
            by_key[key] = seller
        seller.case_studies.append(case_study(opp))
        if opp.category and opp.category not in seller.categories:
            seller.categories.append(opp.category)
        if opp.location and opp.location not in seller.locations:
            seller.locations.append(opp.location)
        if opp.winner_size:
            seller.sme = opp.winner_size in SME_SIZES
    return list(by_key.values())


def build_eval_set(
    opps: Iterable[Opportunity], split_date: date, until: date | None = None
) -> EvalSet:
    """Profiles from awards published before `split_date`; queries are the awards published on
    or after it (and before `until`) whose winner already had a win before the split."""
    opps = [o for o in opps if o.awarded and o.published_at is not None]
    before = [o for o in opps if o.published_at is not None and o.published_at < split_date]
    sellers = sellers_from_wins(before)
    id_of = {name_key(s.name): s.id for s in sellers}
    queries: list[Query] = []
    for opp in sorted(opps, key=_sort_key):
        assert opp.published_at is not None
        if opp.published_at < split_date or (until is not None and opp.published_at >= until):
            continue
        seller_id = id_of.get(opp.winner_key)
        if seller_id is not None:
            queries.append(Query(brief=to_brief(opp), relevant=seller_id))
    return EvalSet(sellers=sellers, queries=queries)


def profile_text(seller: Seller) -> str:
    """The text the peers (BM25, PostgreSQL full-text) index for a seller: everything a
    keyword engine could know about it — its name, summary, skills and each past win (title,
    role, buyer, location, lot). On the dev data this gives BM25 MRR ~0.26."""
    parts = [seller.name, seller.summary, " ".join(seller.skills)]
    for cs in seller.case_studies:
        parts.extend([cs.title, cs.summary, cs.role, cs.organisation, cs.location, cs.category])
    return "\n".join(p for p in parts if p)


def brief_text(brief: Brief) -> str:
    """The query text the peers search with for a brief."""
    parts = [
        brief.title,
        brief.summary,
        brief.role,
        brief.organisation,
        brief.location,
        brief.category,
        " ".join(brief.essential_skills),
        " ".join(brief.nice_to_have_skills),
    ]
    return "\n".join(p for p in parts if p)
