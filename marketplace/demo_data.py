"""The demo that `marketplace up` loads on first start: real sellers and briefs from the
Digital Marketplace (marketplace/demo/, see PROVENANCE.md there).

Sellers: every winning supplier of the awarded 2016-2017 opportunities, its wins as case
studies; summary and skills are derived from the wins so the matcher has text to work on.
Briefs: 30 full 2019-2020 briefs owned by a demo buyer; 20 published (with outbox rows so the
worker computes their shortlists), 10 drafts. Accounts: a demo buyer and a demo seller.

Idempotent: when any seller exists the loader does nothing, so a restart never duplicates and
never touches an operator's own data. Everything is written in one transaction.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from models import audit, outbox
from models import briefs as briefs_repo
from models import sellers as sellers_repo
from models.sellers import name_key

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent / "demo"
OPPORTUNITIES_FILE = "opportunities-awarded-2016-2017.csv"
BRIEFS_FILE = "briefs-2019-2020.jsonl"
PUBLISHED_BRIEFS = 20  # the rest stay drafts, so the buyer has something to edit

# Digital Marketplace role codes -> the words a buyer writes.
_ROLES = {
    "developer": "software development",
    "businessAnalyst": "business analysis",
    "technicalArchitect": "technical architecture",
    "deliveryManager": "agile delivery management",
    "programmeManager": "programme management",
    "securityConsultant": "cyber security",
    "webOperations": "web operations (DevOps)",
    "designer": "service design",
    "userResearcher": "user research",
    "productManager": "product management",
    "serviceManager": "service management",
    "contentDesigner": "content design",
    "agileCoach": "agile coaching",
    "communicationsManager": "digital communications",
    "portfolioManager": "portfolio management",
    "qualityAssurance": "quality assurance and testing",
}
_CATEGORY_SKILLS = {
    "digital-outcomes": "digital service delivery",
    "digital-specialists": "digital specialists",
    "user-research-participants": "user research participant recruitment",
}
# Phrases in opportunity titles -> a skill. Titles are short, so a small vocabulary covers them.
_TITLE_SKILLS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.I), s)
    for p, s in [
        (r"\bdiscovery\b", "discovery"),
        (r"\balpha\b", "alpha"),
        (r"\bbeta\b", "beta"),
        (r"\buser research|usability|\bux\b", "user research"),
        (r"\bagile\b|scrum", "agile"),
        (r"\bdata\b|database|analytics|\bbi\b", "data"),
        (r"\bcloud\b|\baws\b|azure", "cloud hosting"),
        (r"devops|web ?op", "DevOps"),
        (r"\bapi", "APIs"),
        (r"website|web site|\bweb\b|intranet", "websites"),
        (r"content", "content design"),
        (r"\bdesign", "service design"),
        (r"security|cyber", "cyber security"),
        (r"\bcrm\b|dynamics|salesforce", "CRM"),
        (r"test", "testing"),
        (r"\bapp\b|mobile|\bios\b|android", "mobile apps"),
        (r"transformation", "digital transformation"),
        (r"architect", "technical architecture"),
        (r"gov\.uk|gds", "GOV.UK"),
        (r"migration", "data migration"),
        (r"digital service|service standard", "digital services"),
        (r"support|maintenance", "support and maintenance"),
        (r"training|coach", "training and coaching"),
        (r"\bdrupal\b", "Drupal"),
        (r"wordpress", "WordPress"),
        (r"\bjava\b", "Java"),
        (r"python", "Python"),
        (r"\.net\b|c#", ".NET"),
        (r"accessib", "accessibility"),
        (r"performance", "performance analysis"),
        (r"\bgis\b|mapping|geospatial", "GIS and mapping"),
    ]
]
_REMOTE = re.compile(r"no specific location|remote", re.I)
_MONEY = re.compile(r"£\s*([0-9][0-9,]*(?:\.[0-9]+)?)")
_SME_SIZES = {"micro", "small", "medium"}


@dataclass
class DemoReport:
    """What the loader did; `skipped` means the database already had sellers."""

    skipped: bool = False
    sellers: int = 0
    briefs: int = 0
    published: int = 0
    buyer_account_id: int | None = None
    seller_account_id: int | None = None
    seller_id: int | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token (shown once)
    outbox: list[tuple[int, str, list[Any]]] = field(default_factory=list)  # to enqueue


# ---- sellers ---------------------------------------------------------------------------------


def read_awarded(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if (r.get("Winning supplier") or "").strip()]


def _win(row: dict[str, str]) -> dict[str, Any]:
    published = (row.get("Published At") or "").strip()
    try:
        won_at = date.fromisoformat(published[:10]).isoformat() if published else None
    except ValueError:
        won_at = None
    return {
        "title": row["Opportunity"].strip(),
        "summary": "",
        "organisation": row["Organisation Name"].strip(),
        "category": row["Category"].strip(),
        "role": row["Specialist"].strip(),
        "location": row["Location Of The Work"].strip(),
        "won_at": won_at,
        "brief_id": None,
    }


def sellers_from_rows(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One seller per normalised winner name, its wins as case studies (used when the EVAL
    importer is not available)."""
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[name_key(row["Winning supplier"])].append(row)
    result = []
    for group in groups.values():
        spelling = Counter(r["Winning supplier"].strip() for r in group).most_common(1)[0][0]
        sizes = Counter((r.get("Size of supplier") or "").strip().lower() for r in group)
        fields: dict[str, Any] = {
            "name": spelling,
            "case_studies": [_win(r) for r in group],
            "sme": sizes.most_common(1)[0][0] in _SME_SIZES,
        }
        fields.update(derived_profile(fields["case_studies"]))
        result.append(fields)
    return result


def derived_profile(case_studies: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary, skills, categories and locations from a seller's wins."""
    categories = sorted({c["category"] for c in case_studies if c.get("category")})
    locations = sorted({c["location"] for c in case_studies if c.get("location")})
    skills: Counter[str] = Counter()
    for cs in case_studies:
        if cs.get("role") in _ROLES:
            skills[_ROLES[cs["role"]]] += 2
        if cs.get("category") in _CATEGORY_SKILLS:
            skills[_CATEGORY_SKILLS[cs["category"]]] += 1
        for pattern, skill in _TITLE_SKILLS:
            if pattern.search(cs.get("title", "")):
                skills[skill] += 1
    buyers = Counter(c["organisation"] for c in case_studies if c.get("organisation"))
    titles = "; ".join(c["title"] for c in case_studies[:5])
    n = len(case_studies)
    summary = (
        f"Won {n} Digital Marketplace contract{'s' if n != 1 else ''}"
        f" for {', '.join(b for b, _ in buyers.most_common(3))}: {titles}."
    )
    top_skills = [s for s, _ in skills.most_common(12)]
    if top_skills:
        summary += " Skills: " + ", ".join(top_skills) + "."
    return {
        "summary": summary,
        "skills": top_skills,
        "categories": categories,
        "locations": locations,
    }


async def _import_sellers(conn: asyncpg.Connection, path: Path) -> None:
    """Sellers from the awarded rows: the EVAL importer when present (it also records the
    awarded briefs), else our own builder. Either way every seller then gets a derived profile."""
    try:
        from marketplace.importer import import_opportunities
    except ImportError:
        import_opportunities = None  # type: ignore[assignment]
    if import_opportunities is not None:
        report = await import_opportunities(conn, path, progress=False)
        log.info("demo: imported opportunities with marketplace.importer: %s", report)
    else:
        for fields in sellers_from_rows(read_awarded(path)):
            await sellers_repo.create(conn, fields)
    # Give every seller without a summary (the importer's) text derived from its wins.
    rows = await conn.fetch(
        "SELECT id, case_studies, categories, locations FROM sellers WHERE summary = ''"
    )
    for row in rows:
        profile = derived_profile(list(row["case_studies"] or []))
        profile["categories"] = sorted(set(row["categories"]) | set(profile["categories"]))
        profile["locations"] = sorted(set(row["locations"]) | set(profile["locations"]))
        await sellers_repo.update(conn, row["id"], profile)


# ---- briefs ----------------------------------------------------------------------------------


def _bullets(text: str) -> list[str]:
    items = []
    for line in (text or "").splitlines():
        line = line.strip().lstrip("•·*-–").strip()
        if line:
            items.append(line)
    return items


def _money(text: str) -> float | None:
    m = _MONEY.search(text or "")
    return float(m.group(1).replace(",", "")) if m else None


def brief_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """A recorded Digital Marketplace brief page -> our brief columns."""
    role = (raw.get("Specialist role") or "").strip()
    location = (raw.get("Location") or "").strip()
    if _REMOTE.search(location):
        location = "Offsite"  # the term the opportunity export (and so sellers' wins) uses
    return {
        "title": raw["title"].strip(),
        "organisation": (raw.get("Organisation the work is for") or "").strip(),
        "summary": (raw.get("Summary of the work") or "").strip(),
        "category": "digital-specialists" if role else "digital-outcomes",
        "role": role.lower(),
        "location": location,
        "essential_skills": _bullets(raw.get("Essential skills and experience", "")),
        "nice_to_have_skills": _bullets(raw.get("Nice-to-have skills and experience", "")),
        "max_day_rate": _money(raw.get("Maximum day rate", "")),
        "budget": _money(raw.get("Budget range", "")),
    }


def read_briefs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [brief_fields(json.loads(line)) for line in f if line.strip()]


async def _insert_brief(
    conn: asyncpg.Connection, buyer_id: int, fields: dict[str, Any], publish: bool
) -> int:
    row = await briefs_repo.create(conn, fields, buyer_account_id=buyer_id)
    brief_id = int(row["id"])
    if publish:
        await briefs_repo.publish(conn, brief_id)
    await audit.record(
        conn, actor_id=buyer_id, action="brief.created", entity="brief", entity_id=brief_id,
        data={"source": "demo"},
    )
    if publish:
        await audit.record(
            conn, actor_id=buyer_id, action="brief.published", entity="brief",
            entity_id=brief_id, data={"source": "demo"},
        )
    return brief_id


# ---- the loader ------------------------------------------------------------------------------


async def load_demo(conn: asyncpg.Connection, demo_dir: Path = DEMO_DIR) -> DemoReport:
    """Load the demo unless the database already has sellers. Returns what was created,
    including the demo accounts' tokens (shown once) and the outbox rows to enqueue after
    the caller's commit (the relay cron picks them up anyway if nobody enqueues them)."""
    from models import accounts  # API's module: imported late so the loader module imports alone

    report = DemoReport()
    async with conn.transaction():
        # Serialise concurrent first starts (two `up`s on one database): the second waits,
        # then sees the sellers and skips.
        await conn.execute("SELECT pg_advisory_xact_lock(7231002)")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sellers)"):
            report.skipped = True
            return report
        await _import_sellers(conn, demo_dir / OPPORTUNITIES_FILE)
        report.sellers = int(await conn.fetchval("SELECT count(*) FROM sellers"))

        # The demo seller account manages the seller with the most wins.
        seller_id = int(
            await conn.fetchval(
                "SELECT id FROM sellers ORDER BY jsonb_array_length(case_studies) DESC, id"
                " LIMIT 1"
            )
        )
        buyer_id = await accounts.create_account(
            conn, role="buyer", name="Demo Buyer", organisation="Demo Digital Service"
        )
        seller_account = await accounts.create_account(
            conn, role="seller", name="Demo Seller", seller_id=seller_id
        )
        report.tokens["buyer"] = await accounts.issue_token(conn, buyer_id)
        report.tokens["seller"] = await accounts.issue_token(conn, seller_account)
        report.buyer_account_id, report.seller_account_id = buyer_id, seller_account
        report.seller_id = seller_id

        for i, fields in enumerate(read_briefs(demo_dir / BRIEFS_FILE)):
            publish = i % 3 != 2 and report.published < PUBLISHED_BRIEFS
            brief_id = await _insert_brief(conn, buyer_id, fields, publish)
            report.briefs += 1
            if publish:
                report.published += 1
                args: list[Any] = [brief_id]
                outbox_id = await outbox.add(conn, "match_brief", args)
                report.outbox.append((outbox_id, "match_brief", args))
    log.info(
        "demo loaded: %d sellers, %d briefs (%d published)",
        report.sellers, report.briefs, report.published,
    )
    return report
