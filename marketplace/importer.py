"""`marketplace import-dm FILE`: Digital Marketplace opportunity data into briefs and sellers.

Every opportunity becomes a brief (deduplicated on its ID as `external_id`). An awarded one
also becomes past work (a case study) of its winning seller, found by normalised company name
or created, and sets the brief's winner. Rows are applied oldest first, each in its own
transaction, and only real differences are written: re-importing a file changes nothing, and
a row the database rejects is reported and skipped without stopping the import.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from tqdm import tqdm

from matcher.ocds import ReleaseError
from matcher.outcomes import (
    SME_SIZES,
    Opportunity,
    OutcomesFileError,
    RowError,
    case_study,
    read_opportunities,
)
from models import audit, imports, sellers
from models.names import name_key
from models.sellers import case_study_json

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Parsed = TypeVar("Parsed")
_ACTOR = None  # imports are not done by an account


# A row (or release) the import skipped: `str()` of it says where and why.
SkippedRow = RowError | ReleaseError


@dataclass
class ImportReport:
    rows: int = 0
    briefs_created: int = 0
    briefs_updated: int = 0
    briefs_unchanged: int = 0
    sellers_created: int = 0
    sellers_updated: int = 0
    sellers_unchanged: int = 0
    errors: list[SkippedRow] = field(default_factory=list)
    unit: str = "rows"  # what `rows` counts
    categories_created: int = 0

    @property
    def created(self) -> int:
        return self.briefs_created + self.sellers_created

    @property
    def updated(self) -> int:
        return self.briefs_updated + self.sellers_updated

    @property
    def unchanged(self) -> int:
        return self.briefs_unchanged + self.sellers_unchanged

    def counts(self) -> tuple[int, ...]:
        return (self.briefs_created, self.briefs_updated, self.briefs_unchanged,
                self.sellers_created, self.sellers_updated, self.sellers_unchanged,
                self.categories_created)

    def restore(self, counts: tuple[int, ...]) -> None:
        (self.briefs_created, self.briefs_updated, self.briefs_unchanged,
         self.sellers_created, self.sellers_updated, self.sellers_unchanged,
         self.categories_created) = counts

    def summary(self) -> str:
        categories = (f" categories {self.categories_created} created;"
                      if self.unit != "rows" else "")
        return (
            f"{self.rows} {self.unit}: briefs {self.briefs_created} created, {self.briefs_updated}"
            f" updated, {self.briefs_unchanged} unchanged; sellers {self.sellers_created}"
            f" created, {self.sellers_updated} updated, {self.sellers_unchanged} unchanged;"
            f"{categories} {len(self.errors)} errors"
        )


def _closes_at(opp: Opportunity) -> date | None:
    """'2 weeks' / '1 week' / '10 days' open from publication -> closing date."""
    m = re.fullmatch(r"(\d+)\s*(day|week)s?", opp.open_for.strip().lower())
    if not m or opp.published_at is None:
        return None
    days = int(m[1]) * (7 if m[2] == "week" else 1)
    return opp.published_at + timedelta(days=days)


def _brief_fields(opp: Opportunity, winner_id: int | None) -> dict[str, Any]:
    published = opp.published_at
    return {
        "title": opp.title,
        "organisation": opp.organisation,
        "category": opp.category,
        "role": opp.role,
        "location": opp.location,
        "status": opp.status,
        "published_at": (
            datetime(published.year, published.month, published.day, tzinfo=UTC)
            if published
            else None
        ),
        "closes_at": _closes_at(opp),
        "budget": opp.contract_amount if opp.status == "awarded" else None,
        "winner_seller_id": winner_id,
    }


def _diff(row: asyncpg.Record, wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wanted.items() if row[k] != v}


def _latest_win(case_studies: list[dict[str, Any]]) -> str:
    return max((str(c.get("won_at") or "") for c in case_studies), default="")


def win_changes(
    row: asyncpg.Record,
    study: dict[str, Any],
    *,
    category: str = "",
    location: str = "",
    sme: bool | None = None,
) -> dict[str, Any]:
    """What one win (`study`, a case study's JSON with its brief_id) adds to an existing
    seller; empty when it is already there. `sme` None: the source does not say."""
    changes: dict[str, Any] = {}
    studies: list[dict[str, Any]] = list(row["case_studies"] or [])
    brief_id = study["brief_id"]
    position = next((i for i, c in enumerate(studies) if c.get("brief_id") == brief_id), None)
    if position is None:
        studies.append(study)
        changes["case_studies"] = studies
    elif studies[position] != study:
        studies[position] = study
        changes["case_studies"] = studies
    if category and category not in row["categories"]:
        changes["categories"] = [*row["categories"], category]
    if location and location not in row["locations"]:
        changes["locations"] = [*row["locations"], location]
    # Size comes from the most recent win only, so row order never flips it back and forth.
    won = str(study.get("won_at") or "")
    if sme is not None and won >= _latest_win(list(row["case_studies"] or [])):
        if sme != row["sme"]:
            changes["sme"] = sme
    return changes


def _seller_changes(
    row: asyncpg.Record, opp: Opportunity, brief_id: int
) -> dict[str, Any]:
    """What this win adds to an existing seller (empty when it is already there)."""
    study = case_study_json(case_study(opp))
    study["brief_id"] = brief_id
    return win_changes(
        row, study, category=opp.category, location=opp.location,
        sme=(opp.winner_size in SME_SIZES) if opp.winner_size else None,
    )


async def _import_seller(
    conn: asyncpg.Connection, opp: Opportunity, brief_id: int, report: ImportReport
) -> int:
    key = name_key(opp.winner)
    row = await imports.seller_by_name_key(conn, key)
    if row is None:
        study = case_study_json(case_study(opp))
        study["brief_id"] = brief_id
        fields = {
            "name": opp.winner,
            "categories": [opp.category] if opp.category else [],
            "locations": [opp.location] if opp.location else [],
            "sme": opp.winner_size in SME_SIZES,
            "case_studies": [study],
        }
        created = await imports.insert_seller(conn, key, fields)
        if created is not None:
            report.sellers_created += 1
            await audit.record(
                conn, actor_id=_ACTOR, action="seller.imported", entity="seller",
                entity_id=created["id"],
                data={"name": opp.winner, "source_id": opp.id, "line": opp.line},
            )
            return int(created["id"])
        row = await imports.seller_by_name_key(conn, key)  # created meanwhile by another import
        assert row is not None
    changes = _seller_changes(row, opp, brief_id)
    if not changes:
        report.sellers_unchanged += 1
        return int(row["id"])
    await sellers.update(conn, row["id"], changes)
    report.sellers_updated += 1
    await audit.record(
        conn, actor_id=_ACTOR, action="seller.import_updated", entity="seller",
        entity_id=row["id"],
        data={"changed": sorted(changes), "source_id": opp.id, "line": opp.line},
    )
    return int(row["id"])


async def _import_one(conn: asyncpg.Connection, opp: Opportunity, report: ImportReport) -> None:
    existing = await imports.brief_by_external_id(conn, opp.id)
    created = False
    if existing is None:
        existing = await imports.insert_brief(conn, opp.id, _brief_fields(opp, None))
        if existing is None:  # another import inserted it between our read and write
            existing = await imports.brief_by_external_id(conn, opp.id)
            assert existing is not None
        else:
            created = True
    brief_id = int(existing["id"])
    winner_id = await _import_seller(conn, opp, brief_id, report) if opp.awarded else None
    changes = _diff(existing, _brief_fields(opp, winner_id))
    if changes:
        await imports.update_brief(conn, brief_id, changes)
    if created:
        report.briefs_created += 1
        await audit.record(
            conn, actor_id=_ACTOR, action="brief.imported", entity="brief", entity_id=brief_id,
            data={"source_id": opp.id, "line": opp.line, "status": opp.status},
        )
    elif changes:
        report.briefs_updated += 1
        await audit.record(
            conn, actor_id=_ACTOR, action="brief.import_updated", entity="brief",
            entity_id=brief_id,
            data={"changed": sorted(changes), "source_id": opp.id, "line": opp.line},
        )
    else:
        report.briefs_unchanged += 1


async def import_opportunities(
    conn: asyncpg.Connection, path: str | Path, *, progress: bool = True
) -> ImportReport:
    """Import one opportunity-data CSV. Raises OutcomesFileError only when the file cannot be
    read at all; bad rows (parse or database) end up in `report.errors` with their line."""
    opps, parse_errors = read_opportunities(path)
    return await import_parsed(conn, opps, parse_errors, progress=progress)


async def import_parsed(
    conn: asyncpg.Connection,
    opps: list[Opportunity],
    parse_errors: list[RowError],
    *,
    progress: bool = True,
) -> ImportReport:
    """Import already parsed rows (see `import_opportunities`)."""
    report = ImportReport(rows=len(opps) + len(parse_errors), errors=list(parse_errors))
    # Oldest first: a seller's name is its first spelling, and its size the latest one.
    ordered = sorted(opps, key=lambda o: (o.published_at or date.min, o.line))
    await apply_each(
        conn, ordered, _import_one, report,
        skipped=lambda opp, exc: RowError(opp.line, f"not imported: {exc}"),
        progress=progress, unit="row",
    )
    report.errors.sort(key=lambda e: e.line if isinstance(e, RowError) else e.position)
    return report


async def apply_each(
    conn: asyncpg.Connection,
    items: list[T],
    apply: Callable[[asyncpg.Connection, T, ImportReport], Awaitable[None]],
    report: ImportReport,
    *,
    skipped: Callable[[T, Exception], SkippedRow],
    progress: bool,
    unit: str,
) -> None:
    """`apply` each item in its own transaction, under a progress bar. An item the database
    rejects rolls back alone: its counts are undone, it is reported, the import goes on."""
    bar = tqdm(
        items, desc="importing", unit=unit, file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )
    for item in bar:
        counts = report.counts()
        try:
            async with conn.transaction():
                await apply(conn, item, report)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            report.restore(counts)
            report.errors.append(skipped(item, exc))
    bar.close()


async def with_database(work: Callable[[asyncpg.Connection], Awaitable[R]]) -> R:
    """Run `work` on a migrated database: MARKETPLACE_DATABASE_URL, else the embedded one
    under MARKETPLACE_DATA_DIR (started for the job and stopped after it)."""
    from config.settings import Settings
    from marketplace.embedded import EmbeddedServices
    from models.db import connect
    from models.migrate import migrate

    settings = Settings.from_env()
    services = None
    url = settings.database_url
    if url is None:
        services = EmbeddedServices(settings.data_dir)
        url, _ = await asyncio.to_thread(services.start)
    assert url is not None
    try:
        conn = await connect(url)
        try:
            await migrate(conn)
            return await work(conn)
        finally:
            await conn.close()
    finally:
        if services is not None:
            await asyncio.to_thread(services.stop)


def print_report(path: Path, report: ImportReport) -> None:
    for error in report.errors:
        print(str(error), file=sys.stderr)
    print(
        f"imported {path}: {report.created} created, {report.updated} updated,"
        f" {report.unchanged} unchanged, {len(report.errors)} errors"
    )
    print(report.summary())


def run_file_import(
    command: str,
    args: argparse.Namespace,
    read: Callable[[Path], tuple[Parsed, list[Any]]],
    load: Callable[[asyncpg.Connection, Parsed, list[Any], bool], Awaitable[ImportReport]],
) -> int:
    """A CLI import: read the whole file first (an unreadable or foreign file fails fast, exit
    1, before anything starts), then load it row by row, each row its own transaction, so a
    database failure (exit 2) leaves what was imported and nothing half-done."""
    path = Path(args.file)
    quiet = bool(getattr(args, "quiet", False))

    async def run() -> int:
        parsed, errors = read(path)
        report = await with_database(lambda conn: load(conn, parsed, errors, not quiet))
        print_report(path, report)
        return 0

    try:
        return asyncio.run(run())
    except OutcomesFileError as exc:
        print(f"marketplace {command}: {exc}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError, asyncpg.PostgresError) as exc:
        # Unreachable, refused, or the embedded server did not start.
        print(f"marketplace {command}: database error: {exc}", file=sys.stderr)
        return 2


def run_import(args: argparse.Namespace) -> int:
    return run_file_import(
        "import-dm", args, read_opportunities,
        lambda conn, opps, errors, progress: import_parsed(conn, opps, errors, progress=progress),
    )
