"""Parsing Digital Marketplace opportunity CSVs and building time-split evaluation sets."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from matcher.outcomes import (
    OutcomesFileError,
    build_eval_set,
    profile_text,
    read_opportunities,
    role_words,
)
from tests.conftest import OPPORTUNITIES_CSV

HEADER = (
    "ID,Opportunity,Link,Framework,Category,Specialist,Organisation Name,Buyer Domain,"
    "Location Of The Work,Published At,Open For,Expected Contract Length,"
    "Applications from SMEs,Applications from Large Organisations,Total Organisations,Status,"
    "Winning supplier,Size of supplier,Contract amount,Contract start date"
)


def row(
    id_: str,
    title: str,
    published: str,
    status: str = "awarded",
    winner: str = "",
    size: str = "",
    category: str = "digital-specialists",
    role: str = "developer",
    org: str = "Home Office",
    location: str = "London",
) -> str:
    return (
        f"{id_},{title},https://x/{id_},digital-outcomes-and-specialists,{category},{role},"
        f"{org},example.gov.uk,{location},{published},2 weeks,1 year,3,2,5,{status},"
        f"{winner},{size},1000.0,2016-7-29"
    )


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "opps.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_role_words() -> None:
    assert role_words("deliveryManager") == "delivery manager"
    assert role_words("userResearcher") == "user researcher"
    assert role_words("developer") == "developer"
    assert role_words("") == ""


def test_bad_rows_become_errors_with_physical_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            row("1", "Good one", "2016-05-01", winner="Acme Ltd", size="small"),  # line 2
            row("2", "Bad date", "2016-13-45"),  # line 3
            row("3", "", "2016-05-01"),  # line 4: missing title
            row("4", "Odd status", "2016-05-01", status="pending"),  # line 5
            # line 6-7: a quoted title spanning two physical lines, valid
            row("5", '"Two\nlines"', "2016-06-01", status="closed"),
            row("6", "Short", "2016-05-01").rsplit(",", 3)[0],  # line 8: too few fields
            row("1", "Duplicate", "2016-05-01"),  # line 9: ID seen on line 2
            row("7", "After multi-line", "2016-05-02", status="cancelled"),  # line 10
        ],
    )
    opps, errors = read_opportunities(path)
    assert [(o.id, o.line) for o in opps] == [("1", 2), ("5", 6), ("7", 10)]
    assert [e.line for e in errors] == [3, 4, 5, 8, 9]
    assert "Published At" in errors[0].message
    assert "title" in errors[1].message
    assert "status" in errors[2].message
    assert "fields" in errors[3].message
    assert "duplicate" in errors[4].message
    first = opps[0]
    assert first.title == "Good one"
    assert first.role == "developer"
    assert first.published_at == date(2016, 5, 1)
    assert first.winner == "Acme Ltd" and first.winner_size == "small"
    assert first.contract_start == date(2016, 7, 29)  # unpadded date in the export
    assert opps[1].title == "Two\nlines"


def test_unreadable_files_raise(tmp_path: Path) -> None:
    with pytest.raises(OutcomesFileError):
        read_opportunities(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(OutcomesFileError, match="missing columns"):
        read_opportunities(wrong)


def test_eval_set_respects_the_split(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            row("1", "Alpha build", "2017-01-10", winner="Acme Ltd", size="small"),
            row("2", "Beta build", "2017-02-10", winner="ACME Limited", size="large",
                location="Wales", category="digital-outcomes", role=""),
            row("3", "Data platform", "2017-03-10", winner="Bravo LLP"),
            row("4", "Closed one", "2017-03-11", status="closed"),
            row("5", "Later Acme", "2017-07-01", winner="acme ltd"),  # on the split: query
            row("6", "Later new", "2017-07-05", winner="Newcomer Ltd"),  # no earlier win
            row("7", "Later Bravo", "2017-08-01", winner="Bravo LLP"),
            row("8", "Much later", "2017-10-01", winner="Bravo LLP"),
        ],
    )
    opps, errors = read_opportunities(path)
    assert errors == []
    split = date(2017, 7, 1)
    es = build_eval_set(opps, split)
    assert [s.name for s in es.sellers] == ["Acme Ltd", "Bravo LLP"]  # one seller per company
    acme = es.sellers[0]
    assert len(acme.case_studies) == 2
    assert acme.categories == ["digital-specialists", "digital-outcomes"]
    assert acme.locations == ["London", "Wales"]
    assert acme.sme is False  # latest known size: large
    for seller in es.sellers:
        assert all(cs.won_at is not None and cs.won_at < split for cs in seller.case_studies)
    assert [(q.brief.id, q.relevant) for q in es.queries] == [(5, 1), (7, 2), (8, 2)]
    assert es.queries[0].brief.role == "developer"
    assert es.queries[0].brief.organisation == "Home Office"
    bounded = build_eval_set(opps, split, until=date(2017, 9, 1))
    assert [q.brief.id for q in bounded.queries] == [5, 7]
    assert "Alpha build" in profile_text(acme) and "Later Acme" not in profile_text(acme)


def test_dev_data_parses_cleanly() -> None:
    opps, errors = read_opportunities(OPPORTUNITIES_CSV)
    assert errors == []
    # The slice keeps every awarded row (434, of which 427 name a winner) and every tenth
    # other row (121 of 1,205): 555 rows; see tests/data/PROVENANCE.md.
    assert len(opps) == 555
    assert sum(o.awarded for o in opps) == 427
    es = build_eval_set(opps, date(2017, 7, 1))
    assert es.queries and es.sellers
    split = date(2017, 7, 1)
    for seller in es.sellers:
        for cs in seller.case_studies:
            assert cs.won_at is not None and cs.won_at < split
    assert all(q.brief.published_at and q.brief.published_at.date() >= split for q in es.queries)


def test_later_rows_not_in_the_dev_data_work_the_same(tmp_path: Path) -> None:
    """Dev data plus awards from 2018 that the dev data never saw: split at 2018-01-01, the
    new rows are the queries and every 2016-2017 winner is a candidate."""
    dev = (OPPORTUNITIES_CSV).read_text(encoding="utf-8")
    later = [
        row("90001", "New platform", "2018-02-01", winner="Kainos Software Limited"),
        row("90002", "New research", "2018-03-01", winner="Methods Business and Digital "
            "Technology Ltd"),
        row("90003", "Unknown winner", "2018-03-02", winner="Never Seen Before Ltd"),
    ]
    path = tmp_path / "later.csv"
    path.write_text(dev.rstrip("\n") + "\n" + "\n".join(later) + "\n", encoding="utf-8")
    opps, errors = read_opportunities(path)
    assert errors == []
    es = build_eval_set(opps, date(2018, 1, 1))
    assert [q.brief.id for q in es.queries] == [90001, 90002]
    names = {s.id: s.name for s in es.sellers}
    assert [names[q.relevant] for q in es.queries] == [
        "Kainos Software Ltd", "Methods Business and Digital Technology Limited"]
