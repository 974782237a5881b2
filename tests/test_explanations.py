"""Every sentence of an explanation is literally true: buyers named as they are, and the
words shown are the ones that carried the match."""

from __future__ import annotations

from datetime import date

import pytest

from matcher import Matcher, Rules
from matcher.orgs import acronyms, same_org
from models.types import Brief, CaseStudy, Seller


def _seller(sid: int, buyer: str, summary: str = "agile delivery of case management") -> Seller:
    return Seller(sid, f"S{sid}", summary, case_studies=[
        CaseStudy("Case management", organisation=buyer, won_at=date(2019, 1, 1))])


def _summary(buyer_of_work: str, brief_buyer: str) -> str:
    m = Matcher(Rules(shortlist_threshold=0.0)).fit([_seller(1, buyer_of_work)])
    got = m.match(Brief(1, "Agile case management", organisation=brief_buyer))
    assert got, "the seller does the work: it must be matched"
    return str(got[0].explanation["summary"])


def test_same_buyer_is_you_similar_buyer_is_named() -> None:
    assert "worked for you before" in _summary("Home Office", "Home Office")
    assert "worked for you before" in _summary("The Home Office", "home office.")
    # One organisation written two ways is the same buyer ...
    assert "worked for you before" in _summary("HM Courts and Tribunals Service",
                                               "HM Courts & Tribunal Service (HMCTS)")
    # ... a part of it, or a larger body, is a buyer like yours, named as it is.
    similar = _summary("Home Office Digital", "Home Office")
    assert "worked for Home Office Digital (a buyer like yours)" in similar
    assert "worked for you" not in similar


@pytest.mark.parametrize(("history", "brief_buyer"), [
    ("Government Digital Service", "Demo Digital Service"),  # unknown word + generic words
    ("Department for Education", "Department of Education"),  # for vs of: not the same body
    ("Department for Education", "Department for Transport"),  # shared generic words only
])
def test_never_claims_a_history_it_does_not_have(history: str, brief_buyer: str) -> None:
    summary = _summary(history, brief_buyer)
    assert "worked for you" not in summary
    assert f"worked for {brief_buyer}" not in summary
    if "worked for" in summary:  # a similar buyer, named as what it really is
        assert f"worked for {history} (a buyer like yours)" in summary


def test_unknown_words_keep_names_apart() -> None:
    """A word no known buyer uses still makes the name different: "Demo Digital Service" is
    less like "Government Digital Service" than "Digital Service" is."""
    m = Matcher().fit([_seller(1, "Government Digital Service"), _seller(2, "NHS Digital"),
                       _seller(3, "Crown Commercial Service")])

    def buyer_signal(org: str) -> float:
        got = m.match(Brief(1, "Agile case management", organisation=org))
        return float(next(x for x in got if x.seller_id == 1).explanation["signals"]["buyer"])

    assert buyer_signal("Demo Digital Service") < buyer_signal("Digital Service")
    assert buyer_signal("Government Digital Service") > buyer_signal("Digital Service")


@pytest.mark.parametrize(("short", "long"), [
    ("DWP", "Department for Work and Pensions"),
    ("MoJ", "Ministry of Justice"),
    ("HMRC", "HM Revenue and Customs"),
])
def test_abbreviations_are_the_same_buyer(short: str, long: str) -> None:
    assert same_org(short, long) and same_org(long, short)
    assert "worked for you before" in _summary(long, short)
    assert "worked for you before" in _summary(short, long)


def test_acronyms_do_not_join_different_bodies() -> None:
    assert not same_org("DfT", "Department for Education")
    assert not same_org("Department for Education", "Department of Education")
    assert acronyms("single") == set()


def test_terms_shown_carried_the_score_and_are_not_generic() -> None:
    sellers = [Seller(1, "A", "experience team service digital end to end accessibility audit")]
    brief = Brief(1, "Accessibility audit", summary="experienced team, end-to-end digital "
                  "service experience on GOV.UK")
    got = Matcher(Rules(shortlist_threshold=0.0)).fit(sellers).match(brief)
    shown = [t["term"] for t in got[0].explanation["text"]["top_terms"]]
    assert shown and set(shown) <= {"accessibility", "audit"}
    assert "experience" not in got[0].explanation["summary"]


def test_generic_words_alone_give_no_text_reason() -> None:
    sellers = [Seller(1, "A", "digital service team experience")]
    brief = Brief(1, "Digital service team", summary="experience")
    got = Matcher(Rules(shortlist_threshold=0.0)).fit(sellers).match(brief)
    assert got  # the words are shared, so it is a (weak) match ...
    assert got[0].explanation["text"]["top_terms"] == []  # ... but none is a reason to show
    assert "profile matches" not in got[0].explanation["summary"]
