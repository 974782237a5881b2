"""Open Contracting Data Standard (OCDS 1.1) awards: parsing and evaluation sets. Pure: reads
one file, no database, no event loop.

Governments publish tenders and awards as OCDS release packages (`{"releases": [...]}`),
record packages (`{"records": [...]}`, each record with a `compiledRelease` or the releases
themselves) or JSON lines of releases. Each active award becomes an `Award`: who bought
what (tender title and description, buyer, CPV codes of the items), when (the award's date),
for how much, and from whom (the suppliers, each by its OCDS party id, with the party's
`details.scale`). A supplier is its party id, never its name: two companies with one name stay
two, and one company is one seller however its name is spelt in a notice.

A release that cannot give an award (not an object, no ocid, no date, a supplier without an
id ...) is a `ReleaseError` with its place in the file and is skipped; only a file that is
not OCDS at all raises `OutcomesFileError`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from matcher.outcomes import EvalSet, OutcomesFileError, Query
from models.types import Brief, CaseStudy, Seller

# Award statuses (OCDS awardStatus codelist) that are not a contract won: a pending award may
# still fall through, a cancelled or unsuccessful one never happened.
NOT_WON = frozenset({"pending", "cancelled", "unsuccessful"})
# partyScale codelist: 'micro' and 'sme' are both small or medium-sized enterprises.
SME_SCALES = frozenset({"micro", "sme"})
# TED writes CPV codes with their check digit ("72000000-5"), Contracts Finder without
# ("72000000"): both are the same category.
_CPV = re.compile(r"(\d{8})(?:-\d)?")


@dataclass(frozen=True, slots=True)
class ReleaseError:
    """A release (or record, or JSON line) that was skipped, and why."""

    position: int  # 1-based place of the release in the package, or its line in JSON lines
    message: str
    unit: str = "release"  # "release", "record" or "line": what `position` counts

    def __str__(self) -> str:
        return f"{self.unit} {self.position}: {self.message}"


@dataclass(frozen=True, slots=True)
class Supplier:
    id: str  # the OCDS party id: the seller's identity
    name: str
    scale: str = ""  # the party's details.scale: micro / sme / large / "" (unknown)

    @property
    def sme(self) -> bool | None:
        """True for an SME, False for a large company, None when the release does not say."""
        if not self.scale:
            return None
        return self.scale in SME_SCALES


@dataclass(slots=True)
class Award:
    position: int  # where its release is in the file (see ReleaseError)
    unit: str
    ocid: str
    award_id: str
    date: date  # the award's date (the release's date when the award has none)
    title: str
    description: str = ""
    buyer_name: str = ""
    buyer_id: str = ""
    # CPV codes of the items (8 digits, no check digit), main one first, with their labels
    # as the release gave them ("" when it gave none).
    cpv: list[tuple[str, str]] = field(default_factory=list)
    value: float | None = None
    currency: str = ""
    suppliers: list[Supplier] = field(default_factory=list)
    release_date: datetime | None = None

    @property
    def category(self) -> str:
        """The main CPV code, "" when the release classifies no item."""
        return self.cpv[0][0] if self.cpv else ""

    @property
    def external_id(self) -> str:
        """Unique per award across publishers: the ocid is globally unique, the award id is
        unique within its contracting process."""
        return f"{self.ocid}/{self.award_id}"


# -- reading -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return re.sub(r"\s+", " ", value).strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _datetime(value: Any) -> datetime | None:
    """OCDS dates are RFC 3339 date-times; a bare date is accepted too."""
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cpv_codes(items: Iterable[Any]) -> list[tuple[str, str]]:
    codes: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in items:
        item = _obj(item)
        classes = [item.get("classification"), *_list(item.get("additionalClassifications"))]
        for cls in classes:
            cls = _obj(cls)
            if _text(cls.get("scheme")).upper() != "CPV":
                continue
            m = _CPV.fullmatch(_text(cls.get("id")))
            if m and m[1] not in seen:
                seen.add(m[1])
                codes.append((m[1], _text(cls.get("description"))))
    return codes


def _value(award: dict[str, Any]) -> tuple[float | None, str]:
    value = _obj(award.get("value"))
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None, ""
    return float(amount), _text(value.get("currency"))


def release_awards(release: Any, position: int, unit: str = "release") -> list[Award]:
    """The won awards of one release; raises ValueError (a human message) on a release that
    cannot give them."""
    if not isinstance(release, dict):
        raise ValueError("not a JSON object")
    ocid = _text(release.get("ocid"))
    if not ocid and "url" in release:
        raise ValueError("a linked release (a url only): its data is not in this file")
    if not ocid:
        raise ValueError("missing ocid")
    release_date = _datetime(release.get("date"))
    if release.get("date") is not None and release_date is None:
        raise ValueError(f"bad release date {release.get('date')!r}")
    parties = {_text(p.get("id")): p for p in map(_obj, _list(release.get("parties")))
               if _text(p.get("id"))}
    tender = _obj(release.get("tender"))
    buyer = _obj(release.get("buyer"))
    buyer_id = _text(buyer.get("id"))
    buyer_name = _text(buyer.get("name")) or _text(_obj(parties.get(buyer_id)).get("name"))
    if not buyer_id and not buyer_name:  # OCDS 1.0 style: the buyer only as a party role
        for party_id, party in parties.items():
            if "buyer" in _list(party.get("roles")):
                buyer_id, buyer_name = party_id, _text(party.get("name"))
                break
    awards: list[Award] = []
    for number, raw in enumerate(_list(release.get("awards")), start=1):
        award = _obj(raw)
        if _text(award.get("status")).lower() in NOT_WON:
            continue
        award_id = _text(award.get("id"))
        if not award_id:
            raise ValueError(f"award {number} has no id")
        won = _datetime(award.get("date"))
        if award.get("date") is not None and won is None:
            raise ValueError(f"award {award_id}: bad date {award.get('date')!r}")
        won = won or release_date
        if won is None:
            raise ValueError(f"award {award_id}: no award date and no release date")
        title = _text(tender.get("title")) or _text(award.get("title"))
        if not title:
            raise ValueError(f"award {award_id}: no tender or award title")
        suppliers: list[Supplier] = []
        for ref in map(_obj, _list(award.get("suppliers"))):
            party_id = _text(ref.get("id"))
            if not party_id:
                raise ValueError(f"award {award_id}: a supplier without a party id"
                                 f" ({_text(ref.get('name')) or 'no name either'})")
            if any(s.id == party_id for s in suppliers):
                continue
            party = _obj(parties.get(party_id))
            suppliers.append(Supplier(
                id=party_id,
                name=_text(ref.get("name")) or _text(party.get("name")) or party_id,
                scale=_text(_obj(party.get("details")).get("scale")).lower(),
            ))
        amount, currency = _value(award)
        awards.append(Award(
            position=position,
            unit=unit,
            ocid=ocid,
            award_id=award_id,
            date=won.date(),
            title=title,
            description=_text(tender.get("description")) or _text(award.get("description")),
            buyer_name=buyer_name,
            buyer_id=buyer_id,
            # The award's own items when it has them (a lot of the tender), else the tender's.
            cpv=_cpv_codes(_list(award.get("items")) or _list(tender.get("items"))),
            value=amount,
            currency=currency,
            suppliers=suppliers,
            release_date=release_date,
        ))
    return awards


# (release, position, unit, prefix): where a release is in the file; `prefix` places it inside
# a package that sits on one line of a JSON-lines file ("release 3: ").
Located = tuple[Any, int, str, str]


def _package_releases(package: dict[str, Any]) -> Iterator[Located]:
    """The releases of a release package, a record package or a single release."""
    if isinstance(package.get("releases"), list):
        for i, release in enumerate(package["releases"], start=1):
            yield release, i, "release", ""
    elif isinstance(package.get("records"), list):
        for i, record in enumerate(package["records"], start=1):
            record = _obj(record)
            if isinstance(record.get("compiledRelease"), dict):
                yield record["compiledRelease"], i, "record", ""
            else:
                # The record's releases in full; linked releases ({url, date, tag}) carry no
                # data and are reported by release_awards.
                releases = _list(record.get("releases"))
                if not releases:
                    yield None, i, "record", ""
                for release in releases:
                    yield release, i, "record", ""
    elif "ocid" in package:
        yield package, 1, "release", ""


def _is_package(value: Any) -> bool:
    return isinstance(value, dict) and (
        isinstance(value.get("releases"), list) or isinstance(value.get("records"), list)
    )


def _parse_releases(releases: Iterable[Located]) -> tuple[list[Award], list[ReleaseError]]:
    # The same award in several releases (updates of one contracting process, or the releases
    # of a record) is one award: the latest release's version of it counts.
    latest: dict[tuple[str, str], Award] = {}
    errors: list[ReleaseError] = []
    for release, position, unit, prefix in releases:
        if release is None:
            errors.append(ReleaseError(
                position, f"{prefix}record without compiledRelease or releases", unit))
            continue
        if isinstance(release, ReleaseError):  # a line that is not JSON
            errors.append(release)
            continue
        try:
            awards = release_awards(release, position, unit)
        except ValueError as exc:
            errors.append(ReleaseError(position, f"{prefix}{exc}", unit))
            continue
        for award in awards:
            key = (award.ocid, award.award_id)
            old = latest.get(key)
            if old is None or _newer(award, old):
                latest[key] = award
    return sorted(latest.values(), key=award_order), errors


def _newer(new: Award, old: Award) -> bool:
    if new.release_date and old.release_date and new.release_date != old.release_date:
        return new.release_date > old.release_date
    return True  # same or unknown release date: the later one in the file


def award_order(award: Award) -> tuple[date, int, str, str]:
    """Oldest first; ties in file order, so ids built from it are deterministic."""
    return (award.date, award.position, award.ocid, award.award_id)


_NOT_OCDS = (
    "not OCDS: expected a release package ('releases'), a record package ('records'),"
    " a release or JSON lines of releases"
)


def _parse_document(data: bytes) -> tuple[list[Award], list[ReleaseError]]:
    """One JSON document: a package, a single release or an array of releases."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise OutcomesFileError(f"not JSON: {exc}") from exc
    if isinstance(document, list):
        return _parse_releases((r, i, "release", "") for i, r in enumerate(document, start=1))
    if not (_is_package(document) or (isinstance(document, dict) and "ocid" in document)):
        raise OutcomesFileError(_NOT_OCDS)
    return _parse_releases(_package_releases(document))


def _parse_lines(lines: Iterable[bytes]) -> tuple[list[Award], list[ReleaseError]]:
    """JSON lines: a release (or a whole package) per line; blank lines are ignored. The first
    line must be a JSON object, else the file is not JSON lines of OCDS at all."""

    def releases() -> Iterator[Located]:
        first = True
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if first:
                    raise OutcomesFileError(f"not JSON: line {number}: {exc}") from exc
                yield ReleaseError(number, f"not JSON: {exc}", "line"), number, "line", ""
                continue
            if first and not isinstance(value, dict):
                raise OutcomesFileError(_NOT_OCDS)
            first = False
            if _is_package(value) and "ocid" not in value:
                for release, inner, unit, _ in _package_releases(value):
                    yield release, number, "line", f"{unit} {inner}: "
                continue
            yield value, number, "line", ""

    return _parse_releases(releases())


def parse_ocds(data: bytes) -> tuple[list[Award], list[ReleaseError]]:
    """Parse OCDS bytes: a release or record package (JSON), or JSON lines of releases (or of
    packages). Raises OutcomesFileError when the data is not OCDS at all."""
    if not data.strip():
        raise OutcomesFileError("empty file: no OCDS releases or records")
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            pass  # a document over several lines
        else:
            return _parse_lines(data.splitlines())
    return _parse_document(data)


def read_ocds(path: str | Path) -> tuple[list[Award], list[ReleaseError]]:
    """Read an OCDS file. Bad releases come back as ReleaseErrors (never raised); a file that
    cannot be read or is not OCDS raises OutcomesFileError. JSON lines are read a line at a
    time, so a large export never has to fit in memory as text."""
    try:
        with open(path, "rb") as handle:
            head: list[bytes] = []  # up to and including the first two non-blank lines
            for line in handle:
                head.append(line)
                if sum(1 for h in head if h.strip()) == 2:
                    break
            first = next((h for h in head if h.strip()), b"")
            one_line_json = True
            try:
                orjson.loads(first)
            except orjson.JSONDecodeError:
                one_line_json = False
            if one_line_json and sum(1 for h in head if h.strip()) == 2:
                return _parse_lines(itertools.chain(head, handle))
            return parse_ocds(b"".join(head) + handle.read())
    except OSError as exc:
        raise OutcomesFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


# -- evaluation sets ---------------------------------------------------------------------------


def case_study(award: Award, brief_id: int | None = None) -> CaseStudy:
    """The past work an award gives each of its suppliers."""
    return CaseStudy(
        title=award.title,
        summary=award.description,
        organisation=award.buyer_name,
        category=award.category,
        won_at=award.date,
        brief_id=brief_id,
    )


def to_brief(award: Award, brief_id: int, *, status: str = "published") -> Brief:
    return Brief(
        id=brief_id,
        title=award.title,
        summary=award.description,
        category=award.category,
        organisation=award.buyer_name,
        budget=award.value,
        published_at=datetime(award.date.year, award.date.month, award.date.day, tzinfo=UTC),
        status=status,
    )


def sellers_from_awards(awards: Iterable[tuple[int, Award]]) -> dict[str, Seller]:
    """One seller per supplier party id, in order of first award (ids 1, 2, ...), from
    (brief id, award) pairs. Its categories are the CPV codes of its work; SME status is
    the latest scale a release gave."""
    by_party: dict[str, Seller] = {}
    for brief_id, award in sorted(awards, key=lambda pair: award_order(pair[1])):
        for supplier in award.suppliers:
            seller = by_party.get(supplier.id)
            if seller is None:
                seller = Seller(id=len(by_party) + 1, name=supplier.name)
                by_party[supplier.id] = seller
            seller.case_studies.append(case_study(award, brief_id))
            if award.category and award.category not in seller.categories:
                seller.categories.append(award.category)
            if supplier.sme is not None:
                seller.sme = supplier.sme
    return by_party


def build_ocds_eval_set(
    awards: Iterable[Award], split_date: date, until: date | None = None
) -> EvalSet:
    """Profiles from awards dated before `split_date` (the award's date); queries are the
    awards dated on or after it (and before `until`) with exactly one supplier who has an
    earlier award; candidates are every supplier with an earlier award."""
    numbered = list(enumerate(sorted(awards, key=award_order), start=1))
    by_party = sellers_from_awards((i, a) for i, a in numbered if a.date < split_date)
    queries: list[Query] = []
    for brief_id, award in numbered:
        if award.date < split_date or (until is not None and award.date >= until):
            continue
        if len(award.suppliers) != 1:
            continue  # a shared award has no single winner to rank
        seller = by_party.get(award.suppliers[0].id)
        if seller is not None:
            queries.append(Query(brief=to_brief(award, brief_id), relevant=seller.id))
    return EvalSet(sellers=list(by_party.values()), queries=queries)
