"""Benchmark corpus: synthetic seller profiles composed from ESCO texts, and the 89 real briefs.

Sellers are generated deterministically from a seed, as a stream (a generator), so that 100,000
take a few seconds and 1,000,000 need no more memory than the caller keeps. Each seller gets a
few ESCO occupations and skills; the summary is composed from their descriptions and trimmed to
a word count drawn from [150, 400]. A share of the occupations is drawn from the digital ones so
that the briefs (all digital work) find plausible candidates, as in a real digital marketplace.

The ESCO files hold one text per row: the preferred label, the alternative labels, then the
description, with no separator. The description starts at the first capitalised word; the
preferred label is recovered with a heuristic (see `_short_label`).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TypeVar

from models.types import CATEGORIES, Brief, CaseStudy, Seller

T = TypeVar("T")
# The real data the benchmarks compose their corpus from (ESCO texts, the Digital Marketplace
# briefs). It is not in the repository: by default the `shared/data` folder beside the
# checkout; BENCH_DATA_DIR names another folder (the tests point it at their small slices).
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR")
                or Path(__file__).resolve().parents[2] / "shared" / "data")
BRIEFS_FILE = "dos-briefs-2019-2020.jsonl"
DEFAULT_SEED = 20240501

# UK regions as the Digital Marketplace names them ("Offsite" = no specific location).
REGIONS: tuple[str, ...] = (
    "London", "South East England", "South West England", "East of England", "East Midlands",
    "West Midlands", "North East England", "North West England", "Yorkshire and the Humber",
    "Scotland", "Wales", "Northern Ireland",
)
OFFSITE = "Offsite"
# Buyers for case studies: real DOS buyer organisations.
ORGANISATIONS: tuple[str, ...] = (
    "Government Digital Service", "Ministry of Justice", "Home Office", "HM Revenue and Customs",
    "Department for Work and Pensions", "Department for Education", "Ministry of Defence",
    "Cabinet Office", "Department of Health and Social Care", "NHS Digital", "Met Office",
    "Environment Agency", "Greater London Authority", "Companies House", "Land Registry",
    "Office for National Statistics", "Crown Commercial Service", "Food Standards Agency",
    "Department for Transport", "Driver and Vehicle Licensing Agency", "Ofsted", "Ofgem",
    "British Council", "National Archives", "Scottish Government", "Welsh Government",
)
_NAME_FIRST = (
    "Northgate", "Bluefin", "Redkite", "Oakridge", "Silverline", "Ironbridge", "Clearwater",
    "Brightpath", "Kestrel", "Harbour", "Meridian", "Thistle", "Beacon", "Fernhill", "Granite",
    "Lighthouse", "Pennine", "Riverside", "Skyward", "Wessex", "Cobalt", "Juniper", "Quarry",
)
_NAME_SECOND = (
    "Digital", "Consulting", "Technology", "Data", "Design", "Systems", "Labs", "Partners",
    "Solutions", "Works", "Analytics", "Studio", "Services", "Associates",
)
_NAME_SUFFIX = ("Ltd", "Limited", "LLP", "plc", "Ltd")
_DIGITAL = re.compile(
    r"\b(ICT|software|digital|web|computer|cyber|network|database|cloud|agile|programming|"
    r"user experience|data|systems?|applications?|security|analytics)\b"
)
_STOP_END = {"of", "and", "in", "to", "for", "the", "a", "an", "with", "on", "or", "at", "by"}


@dataclass(frozen=True, slots=True)
class EscoEntry:
    label: str  # short preferred label
    text: str  # the description
    words: tuple[str, ...]  # the description, split on whitespace


def _short_label(blob: list[str]) -> str:
    """The preferred label from the leading label words.

    The preferred label comes first and alternative labels usually start with the same word
    ("manage musical staff manage staff of music ..."), so the label ends where its first word
    recurs; otherwise take three words, extended past a dangling preposition.
    """
    if not blob:
        return ""
    for k in range(1, min(6, len(blob))):
        if blob[k] == blob[0]:
            return " ".join(blob[:k])
    k = min(3, len(blob))
    while k < min(6, len(blob)) and blob[k - 1] in _STOP_END:
        k += 1
    return " ".join(blob[:k])


def _parse_esco(text: str) -> EscoEntry | None:
    text = " ".join(text.split())
    match = re.search(r"(?:^|\s)([A-Z][a-z])", text)
    if match is None:
        return None
    start = match.start(1)
    blob = text[:start].split()
    description = text[start:].split()
    label = _short_label(blob) or " ".join(description[:2])
    if len(description) < 5:
        return None
    return EscoEntry(label=label, text=" ".join(description), words=tuple(description))


def need(path: Path) -> Path:
    """`path`, or exit 2 saying which file the benchmarks need and where to put it."""
    if not path.is_file():
        print(f"error: the benchmarks need {path.name}, real data that is not in the "
              f"repository, in {path.parent}; put it there or set BENCH_DATA_DIR to a folder "
              "that holds it", file=sys.stderr)
        raise SystemExit(2)
    return path


@cache
def load_esco(name: str, data_dir: Path = DATA_DIR) -> tuple[EscoEntry, ...]:
    with need(data_dir / name).open(encoding="utf-8", newline="") as f:
        entries = (_parse_esco(row["description"]) for row in csv.DictReader(f))
        return tuple(e for e in entries if e is not None)


@cache
def _pools(data_dir: Path) -> tuple[list[EscoEntry], ...]:
    """(digital occupations, all occupations, digital skills, all skills)."""
    pools: list[list[EscoEntry]] = []
    for name in ("esco-occupations.csv", "esco-skills.csv"):
        entries = load_esco(name, data_dir)
        pools.append([e for e in entries if _DIGITAL.search(e.text)])
        pools.append(list(entries))
    return tuple(pools)


def generate_sellers(
    n: int, *, seed: int = DEFAULT_SEED, start_id: int = 1, data_dir: Path = DATA_DIR
) -> Iterator[Seller]:
    """Yield `n` sellers, ids start_id.. ; the same seed gives the same stream (and prefix)."""
    occ_digital, occ_all, skill_digital, skill_all = _pools(data_dir)
    # random.choice/randint cost ~1 µs each; indexing with random() keeps 100,000 sellers at a
    # few seconds. The stream stays a pure function of the seed.
    rand = random.Random(seed).random

    def pick(seq: Sequence[T]) -> T:
        return seq[int(rand() * len(seq))]

    def between(lo: int, hi: int) -> int:
        return lo + int(rand() * (hi - lo + 1))

    n_regions = len(REGIONS)
    for i in range(n):
        seller_id = start_id + i
        digital = rand() < 0.7
        occ_pool = occ_digital if digital else occ_all
        skill_pool = skill_digital if digital else skill_all
        occs = [pick(occ_pool) for _ in range(between(1, 3))]
        sks = [pick(skill_pool) for _ in range(between(4, 8))]
        target = between(150, 400)
        texts: list[str] = []
        count = 0
        parts = occs + sks
        j = 0
        while count < target:
            if j >= len(parts):  # descriptions exhausted: draw more skills
                parts.append(pick(skill_pool))
            entry = parts[j]
            if count + len(entry.words) <= target:
                texts.append(entry.text)
            else:
                texts.append(" ".join(entry.words[: target - count]))
            count += len(entry.words)
            j += 1
        summary = " ".join(texts)
        if not summary.endswith("."):
            summary += "."
        roll = rand()
        if roll < 0.55:
            categories = [CATEGORIES[0]]
        elif roll < 0.8:
            categories = [CATEGORIES[1]]
        elif roll < 0.95:
            categories = [CATEGORIES[0], CATEGORIES[1]]
        else:
            categories = [CATEGORIES[between(2, 3)]]
        first = int(rand() * n_regions)
        locations = sorted({REGIONS[(first + k * 5) % n_regions] for k in range(between(1, 4))})
        if rand() < 0.35:
            locations.append(OFFSITE)
        sme = rand() < 0.75
        day_rate = float(between(12, 48) * 25) if rand() < 0.9 else None
        name = f"{pick(_NAME_FIRST)} {pick(_NAME_SECOND)} {seller_id} {pick(_NAME_SUFFIX)}"
        case_studies = []
        for _ in range(between(1, 3)):
            occ = pick(occs)
            case_studies.append(
                CaseStudy(
                    title=f"{occ.label.capitalize()} for {pick(ORGANISATIONS)}",
                    summary=" ".join(occ.words[: between(20, 45)]),
                    organisation=pick(ORGANISATIONS),
                    category=categories[0],
                    location=pick(locations),
                    won_at=date(between(2015, 2019), between(1, 12), between(1, 28)),
                )
            )
        yield Seller(
            id=seller_id,
            name=name,
            summary=summary,
            categories=categories,
            skills=sorted({s.label for s in sks}),
            locations=locations,
            day_rate=day_rate,
            sme=sme,
            active=rand() >= 0.02,
            case_studies=case_studies,
        )


def seller_text(seller: Seller) -> str:
    """The text the peer engines index: what our matcher also reads (summary, skills, cases)."""
    cases = " ".join(f"{c.title} {c.summary}" for c in seller.case_studies)
    return f"{seller.summary} {' '.join(seller.skills)} {cases}"


def brief_text(brief: Brief) -> str:
    """The query text the peers receive: title, summary and every skill line."""
    return " ".join(
        [brief.title, brief.summary, *brief.essential_skills, *brief.nice_to_have_skills]
    )


# ---------------------------------------------------------------- briefs

_BULLET = re.compile(r"^[\s•\-*·–]+")
_MONEY = re.compile(r"£\s*(\d[\d,]*(?:\.\d+)?)\s*([kKmM]\b)?")


def _bullets(text: str) -> list[str]:
    lines = (_BULLET.sub("", line).strip() for line in (text or "").splitlines())
    return [line for line in lines if line]


def _amounts(text: str) -> list[float]:
    values = []
    for number, suffix in _MONEY.findall(text or ""):
        value = float(number.replace(",", ""))
        if suffix:
            value *= 1_000 if suffix.lower() == "k" else 1_000_000
        values.append(value)
    return values


def parse_day_rate(text: str) -> float | None:
    """The first amount that looks like a day rate; None when the buyer set none."""
    for value in _amounts(text):
        if 100 <= value <= 5_000:
            return value
    return None


def parse_budget(text: str) -> float | None:
    values = [v for v in _amounts(text) if v >= 1_000]
    return max(values) if values else None


def parse_location(text: str) -> str:
    # The 2019 pages say "No specific location, eg they can work remotely"; the opportunity
    # data (and our sellers) call the same thing "Offsite".
    return OFFSITE if text.lower().startswith("no specific location") else text.strip()


def _published(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%A %d %B %Y")
    except ValueError:
        return None


def brief_from_page(row: dict[str, str]) -> Brief:
    role = (row.get("Specialist role") or "").strip()
    return Brief(
        id=int(row["id"]),
        title=row["title"].strip(),
        summary=(row.get("Summary of the work") or "").strip(),
        category="digital-specialists" if role else "digital-outcomes",
        role=role.lower(),
        organisation=(row.get("Organisation the work is for") or "").strip(),
        location=parse_location(row.get("Location") or ""),
        essential_skills=_bullets(row.get("Essential skills and experience", "")),
        nice_to_have_skills=_bullets(row.get("Nice-to-have skills and experience", "")),
        max_day_rate=parse_day_rate(row.get("Maximum day rate", "")),
        budget=parse_budget(row.get("Budget range", "")),
        published_at=_published(row.get("Published", "")),
        status="published",
    )


def load_briefs(data_dir: Path = DATA_DIR) -> list[Brief]:
    """The real Digital Marketplace briefs (89 in the full file), as `Brief` objects."""
    with need(data_dir / BRIEFS_FILE).open(encoding="utf-8") as f:
        return [brief_from_page(json.loads(line)) for line in f if line.strip()]
