"""`marketplace import-ocds FILE`: Open Contracting Data Standard awards into briefs and sellers.

Every won award (see `matcher.ocds`) becomes an awarded brief, deduplicated on
`<ocid>/<award id>` as its `external_id`: tender title and description, buyer, main CPV code
as category, award date, value. Each supplier is a seller keyed by its OCDS party id (stored
in `sellers.party_id`), and the award becomes past work (a case study) of each of them; the
party's `details.scale` sets SME status (the latest award's says). The brief's winner is set
only when the award has exactly one supplier. CPV codes met are added to the `categories`
list (an admin's label is never overwritten).

A supplier whose normalised name belongs to a seller without a party id (imported from the
Digital Marketplace, or created through the API) is that seller: one company, one seller. Two
party ids with one normalised name stay two sellers, as the data says.

Awards are applied oldest first, each in its own transaction, and only real differences are
written: re-importing a file changes nothing; a release that cannot be read, or an award the
database rejects, is reported with its place in the file and skipped.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from marketplace.importer import ImportReport, apply_each, run_file_import, win_changes
from matcher.ocds import Award, ReleaseError, Supplier, award_order, case_study, read_ocds
from models import audit, imports, sellers
from models.names import name_key
from models.sellers import case_study_json

_ACTOR = None  # imports are not done by an account
# Amounts are stored as the marketplace's budgets, which are pounds: a value in another
# currency is left out rather than shown as pounds.
CURRENCIES = frozenset({"", "GBP"})


def _midnight(day: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _brief_fields(award: Award, winner_id: int | None) -> dict[str, Any]:
    return {
        "title": award.title,
        "summary": award.description,
        "organisation": award.buyer_name,
        "category": award.category,
        "status": "awarded",
        # When the award was made public: the release's date (the award's when it has none).
        "published_at": award.release_date or _midnight(award.date),
        "awarded_at": _midnight(award.date),
        "budget": award.value if award.currency in CURRENCIES else None,
        "winner_seller_id": winner_id,
    }


def _where(award: Award) -> dict[str, Any]:
    return {"source_id": award.external_id, award.unit: award.position}


async def _seller_row(
    conn: asyncpg.Connection, supplier: Supplier, fields: dict[str, Any], award: Award,
    report: ImportReport,
) -> tuple[asyncpg.Record | None, int | None]:
    """(existing row to update, None) or (None, id of a seller created for this supplier)."""
    row = await imports.seller_by_party_id(conn, supplier.id)
    if row is not None:
        return row, None
    key = name_key(supplier.name)
    created = await imports.insert_party_seller(conn, supplier.id, key, fields)
    if created is None:
        row = await imports.seller_by_party_id(conn, supplier.id)
        if row is not None:  # created meanwhile by another import
            return row, None
        same_name = await imports.seller_by_name_key(conn, key)
        if same_name is not None and same_name["party_id"] is None:
            row = await imports.claim_party_id(conn, same_name["id"], supplier.id)
            assert row is not None
            await audit.record(
                conn, actor_id=_ACTOR, action="seller.party_linked", entity="seller",
                entity_id=row["id"], data={"party_id": supplier.id, **_where(award)},
            )
            return row, None
        # Another party id has this normalised name: a different company, as the data says.
        created = await imports.insert_party_seller(
            conn, supplier.id, f"{key}|{supplier.id}", fields
        )
        assert created is not None
    report.sellers_created += 1
    await audit.record(
        conn, actor_id=_ACTOR, action="seller.imported", entity="seller",
        entity_id=created["id"],
        data={"name": supplier.name, "party_id": supplier.id, **_where(award)},
    )
    return None, int(created["id"])


async def _import_supplier(
    conn: asyncpg.Connection, award: Award, supplier: Supplier, brief_id: int,
    report: ImportReport,
) -> int:
    study = case_study_json(case_study(award, brief_id))
    fields = {
        "name": supplier.name,
        "categories": [award.category] if award.category else [],
        "sme": bool(supplier.sme),
        "case_studies": [study],
    }
    row, created_id = await _seller_row(conn, supplier, fields, award, report)
    if row is None:
        assert created_id is not None
        return created_id
    changes = win_changes(row, study, category=award.category, sme=supplier.sme)
    if not changes:
        report.sellers_unchanged += 1
        return int(row["id"])
    await sellers.update(conn, row["id"], changes)
    report.sellers_updated += 1
    await audit.record(
        conn, actor_id=_ACTOR, action="seller.import_updated", entity="seller",
        entity_id=row["id"], data={"changed": sorted(changes), **_where(award)},
    )
    return int(row["id"])


async def _import_award(conn: asyncpg.Connection, award: Award, report: ImportReport) -> None:
    for code, label in award.cpv:
        if await imports.add_category(conn, code, label or code):
            report.categories_created += 1
            await audit.record(
                conn, actor_id=_ACTOR, action="category.imported", entity="category",
                entity_id=code, data={"label": label or code, **_where(award)},
            )
    existing = await imports.brief_by_external_id(conn, award.external_id)
    created = False
    if existing is None:
        existing = await imports.insert_brief(conn, award.external_id, _brief_fields(award, None))
        if existing is None:  # another import inserted it between our read and write
            existing = await imports.brief_by_external_id(conn, award.external_id)
            assert existing is not None
        else:
            created = True
    brief_id = int(existing["id"])
    seller_ids = [
        await _import_supplier(conn, award, supplier, brief_id, report)
        for supplier in award.suppliers
    ]
    winner = seller_ids[0] if len(seller_ids) == 1 else None
    changes = {k: v for k, v in _brief_fields(award, winner).items() if existing[k] != v}
    if changes:
        await imports.update_brief(conn, brief_id, changes)
    if created:
        report.briefs_created += 1
        await audit.record(
            conn, actor_id=_ACTOR, action="brief.imported", entity="brief", entity_id=brief_id,
            data={"suppliers": [s.id for s in award.suppliers], **_where(award)},
        )
    elif changes:
        report.briefs_updated += 1
        await audit.record(
            conn, actor_id=_ACTOR, action="brief.import_updated", entity="brief",
            entity_id=brief_id, data={"changed": sorted(changes), **_where(award)},
        )
    else:
        report.briefs_unchanged += 1


async def import_awards(
    conn: asyncpg.Connection,
    awards: list[Award],
    release_errors: list[ReleaseError],
    *,
    progress: bool = True,
) -> ImportReport:
    """Import already read awards (see `import_ocds`)."""
    report = ImportReport(rows=len(awards), errors=list(release_errors), unit="awards")
    await apply_each(
        conn, sorted(awards, key=award_order), _import_award, report,
        skipped=lambda award, exc: ReleaseError(
            award.position, f"award {award.award_id} not imported: {exc}", award.unit),
        progress=progress, unit="award",
    )
    report.errors.sort(key=lambda e: e.position if isinstance(e, ReleaseError) else e.line)
    return report


async def import_ocds(
    conn: asyncpg.Connection, path: str | Path, *, progress: bool = True
) -> ImportReport:
    """Import one OCDS file. Raises OutcomesFileError only when the file cannot be read or is
    not OCDS; bad releases (read or database) end up in `report.errors` with their place."""
    awards, errors = read_ocds(path)
    return await import_awards(conn, awards, errors, progress=progress)


def run_import_ocds(args: argparse.Namespace) -> int:
    return run_file_import(
        "import-ocds", args, read_ocds,
        lambda conn, awards, errors, progress: import_awards(conn, awards, errors,
                                                             progress=progress),
    )
