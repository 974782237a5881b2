"""The pure matcher: contract, ranking on real briefs, filters, incremental changes, rules,
explanations. No servers needed."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import orjson
import pytest

from matcher import SIGNALS, Match, Matcher, Rules, RulesError
from matcher.text import TOKEN_RE, canonical, is_anywhere, norm_org
from matcher.tokenize import tokenize_docs
from models.types import Brief, CaseStudy, Seller
from tests.conftest import BRIEFS_JSONL

BRIEFS_FILE = BRIEFS_JSONL


def _lines(text: str | None) -> list[str]:
    return [x.strip("• ").strip() for x in (text or "").split("\n") if x.strip("• ").strip()]


def real_brief(brief_id: int) -> Brief:
    """One of the real Digital Marketplace briefs (the vendored slice), as a Brief."""
    for line in BRIEFS_FILE.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d["id"] == brief_id:
            rate = re.search(r"£\s*([0-9][0-9,]*)", d.get("Maximum day rate") or "")
            return Brief(
                id=d["id"], title=d["title"], summary=d.get("Summary of the work", ""),
                organisation=d.get("Organisation the work is for", ""),
                location=d.get("Location", ""), role=d.get("Specialist role", ""),
                category="digital-specialists" if d.get("Specialist role") else "digital-outcomes",
                essential_skills=_lines(d.get("Essential skills and experience")),
                nice_to_have_skills=_lines(d.get("Nice-to-have skills and experience")),
                max_day_rate=float(rate[1].replace(",", "")) if rate else None,
            )
    raise KeyError(brief_id)


SELLERS = [
    Seller(1, "Inclusive Web Co", "Accessibility audits of websites against WCAG 2.1, assistive "
           "technology testing with screen readers, accessibility statements and reports.",
           categories=["digital-outcomes"],
           skills=["Accessibility audit", "WCAG", "Screen readers"],
           locations=["London"], sme=True),
    Seller(2, "Red Team Security", "Penetration testing, IT health checks, CHECK and CREST "
           "certified testers, vulnerability assessment and cyber security consultancy.",
           categories=["digital-specialists", "digital-outcomes"],
           skills=["Penetration testing", "CREST", "Cyber security"],
           locations=["Northern Ireland", "London"], day_rate=700.0),
    Seller(3, "Dynamics Devs", "Microsoft Dynamics 365 CRM developers: plugins, C#, .NET, "
           "Power Platform integration and data migration.",
           categories=["digital-specialists"], skills=["Microsoft Dynamics 365", "C#", ".NET"],
           locations=["Scotland"], day_rate=600.0),
    Seller(4, "Catering Plus", "Office catering, sandwiches and event food.",
           categories=["digital-outcomes"], locations=["London"]),
    Seller(5, "Generalist Digital", "Digital transformation, agile delivery, user research, "
           "service design and software development for the public sector.",
           categories=["digital-outcomes", "digital-specialists"], locations=["London"]),
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher().fit(SELLERS)


def test_minimal_seller_and_brief_are_enough() -> None:
    m = Matcher().fit([Seller(id=1, name="A", summary="python web development"),
                       Seller(id=2, name="B", summary="catering")])
    assert len(m) == 2
    result = m.match(Brief(id=1, title="Python developer", summary="web development"))
    assert [x.seller_id for x in result] == [1]
    assert isinstance(result[0], Match)
    assert 0.0 < result[0].score <= 1.0 and result[0].rank == 1


def test_fit_returns_self_and_params_unchanged() -> None:
    rules = Rules()
    m = Matcher(rules)
    assert m.fit(SELLERS) is m
    assert m.rules is rules
    assert hasattr(m, "index_")
    assert Matcher().rules is None  # defaults are not written back into the parameter


@pytest.mark.parametrize(("brief_id", "expected"), [(12479, 1), (12968, 2), (12531, 3)])
def test_real_briefs_rank_the_right_seller_first(matcher: Matcher, brief_id: int,
                                                 expected: int) -> None:
    result = matcher.match(real_brief(brief_id), top_k=5)
    assert result, "nobody matched"
    assert result[0].seller_id == expected
    assert 4 not in [x.seller_id for x in result[:2]]  # the caterer is never near the top
    scores = [x.score for x in result]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert [x.rank for x in result] == list(range(1, len(result) + 1))


def test_explanations_are_complete_and_json_serialisable(matcher: Matcher) -> None:
    brief = real_brief(12968)
    brief.essential_skills.append("Penetration testing of web applications")
    result = matcher.match(brief, top_k=3)
    top = result[0].explanation
    assert set(top) >= {"summary", "text", "skills", "filters", "boosts", "signals"}
    assert isinstance(top["summary"], str) and top["summary"].endswith(".")
    assert {"score", "top_terms"} <= set(top["text"])
    assert any(t["term"] in ("penetration", "testing") for t in top["text"]["top_terms"])
    assert any(s["matched"] == "Penetration testing" for s in top["skills"])
    assert all({"criterion", "matched", "similarity"} == set(s) for s in top["skills"])
    assert all(top["filters"].values())
    assert set(top["signals"]) == set(SIGNALS)
    again = orjson.loads(orjson.dumps([x.explanation for x in result]))
    assert again[0] == top


def test_hard_filters_exclude() -> None:
    sellers = [
        Seller(1, "Active", "cloud hosting kubernetes", categories=["digital-outcomes"],
               locations=["Wales"], day_rate=500),
        Seller(2, "Inactive", "cloud hosting kubernetes", active=False),
        Seller(3, "Wrong lot", "cloud hosting kubernetes", categories=["user-research-studios"]),
        Seller(4, "Far away", "cloud hosting kubernetes", locations=["Scotland"]),
        Seller(5, "Expensive", "cloud hosting kubernetes", day_rate=1500),
        Seller(6, "Unknowns", "cloud hosting kubernetes"),  # nothing to filter on: passes
        Seller(7, "Remote", "cloud hosting kubernetes", locations=["Remote"]),
    ]
    rules = Rules.from_dict({"require_location": True})
    m = Matcher(rules).fit(sellers)
    brief = Brief(1, "Cloud hosting", "kubernetes", category="digital-outcomes",
                  location="Wales", max_day_rate=900)
    assert sorted(x.seller_id for x in m.match(brief)) == [1, 6, 7]
    # Off-site briefs need no local seller; filters off let everyone active through.
    offsite = Brief(2, "Cloud hosting", "kubernetes", location="Offsite")
    assert 4 in [x.seller_id for x in m.match(offsite)]
    lax = m.with_rules(Rules.from_dict({"require_category": False, "require_day_rate": False,
                                        "require_location": False}))
    assert sorted(x.seller_id for x in lax.match(brief)) == [1, 3, 4, 5, 6, 7]


def test_top_k_is_exact_when_filtered_sellers_match_far_better() -> None:
    """The pool is chosen among the sellers that pass the filters: many better-matching
    sellers outside the brief's location must not crowd out the few that serve it."""
    text = "kubernetes cloud hosting platform migration"
    wins = [CaseStudy("Kubernetes hosting", text, organisation="HMRC", category="cloud",
                      won_at=date(2026, 1, day)) for day in range(1, 9)]
    far = [Seller(100 + i, f"Far {i}", text, locations=["Scotland"], categories=["cloud"],
                  skills=["kubernetes", "cloud hosting"], case_studies=wins)
           for i in range(40)]
    near = [Seller(i, f"Near {i}", "some kubernetes work among many other things: catering, "
                   "payroll, translation, printing, removals, cleaning", locations=["Wales"])
            for i in (1, 2, 3)]
    m = Matcher(Rules.from_dict({"require_location": True})).fit(far + near)
    brief = Brief(1, "Kubernetes cloud hosting", text, organisation="HMRC", location="Wales",
                  essential_skills=["kubernetes", "cloud hosting"],
                  published_at=datetime(2026, 2, 1, tzinfo=UTC))
    assert sorted(x.seller_id for x in m.match(brief, top_k=3)) == [1, 2, 3]


def test_category_filter_past_the_tracked_categories() -> None:
    """A market with more categories than the index tracks by bit (CPV codes, say): a brief in
    an untracked category keeps the sellers who declared it and drops those who declared only
    others; a seller with only untracked categories is no longer let into every category."""
    many = [f"cpv-{i:02d}" for i in range(24)]
    sellers = [Seller(100 + i, f"Filler {i}", "unrelated catering", categories=[c])
               for i, c in enumerate(many[:20])]  # the first 20 codes are taken in this order
    sellers += [
        Seller(1, "Tracked and late", "cloud hosting kubernetes", categories=[many[0], many[21]]),
        Seller(2, "Tracked only", "cloud hosting kubernetes", categories=[many[0]]),
        Seller(3, "Undeclared", "cloud hosting kubernetes"),
        Seller(4, "Late only", "cloud hosting kubernetes", categories=[many[22]]),
        Seller(5, "Past work there", "cloud hosting kubernetes",
               case_studies=[CaseStudy("Hosting", "kubernetes", category=many[21])]),
    ]
    m = Matcher().fit(sellers)
    late = Brief(1, "Cloud hosting", "kubernetes", category=many[21])
    assert sorted(x.seller_id for x in m.match(late)) == [1, 3, 4, 5]
    early = Brief(2, "Cloud hosting", "kubernetes", category=many[0])
    assert sorted(x.seller_id for x in m.match(early)) == [1, 2, 3]


def test_add_update_remove_are_visible_without_refit(matcher: Matcher) -> None:
    m = Matcher().fit(SELLERS)
    brief = Brief(1, "Quantum widget calibration", "quantum widgets")
    assert m.match(brief) == []
    m.add(Seller(99, "Quantum Ltd", "quantum widget calibration services"))
    assert len(m) == len(SELLERS) + 1
    found = m.match(brief)
    assert [x.seller_id for x in found] == [99]
    assert found[0].explanation["text"]["top_terms"]
    m.update(Seller(99, "Quantum Ltd", "catering only"))
    assert m.match(brief) == []
    m.update(Seller(4, "Catering Plus", "now quantum widget calibration too"))
    assert [x.seller_id for x in m.match(brief)] == [4]
    assert m.remove(4) is True
    assert m.match(brief) == []
    assert m.remove(4) is False
    assert len(m) == len(SELLERS)
    with pytest.raises(ValueError):
        m.add(SELLERS[0])


def test_unfitted_matcher_accepts_adds() -> None:
    m = Matcher()
    assert len(m) == 0 and m.match(Brief(1, "anything")) == []
    m.add(Seller(1, "A", "data engineering pipelines"))
    assert [x.seller_id for x in m.match(Brief(1, "Data engineering"))] == [1]


def test_with_rules_shares_index_and_changes_thresholds(matcher: Matcher) -> None:
    brief = real_brief(12968)
    before = matcher.match(brief)
    strict = matcher.with_rules(Rules.from_dict({"shortlist_threshold": 0.99,
                                                 "alert_threshold": 0.99}))
    assert strict.index_ is matcher.index_
    assert strict.match(brief) == []
    assert [x.seller_id for x in matcher.match(brief)] == [x.seller_id for x in before]


def test_weights_change_the_order() -> None:
    sellers = [
        Seller(1, "Words", "border force immigration case working system developers"),
        # Some evidence of the work ("developers"): priors reorder only sellers that match.
        Seller(2, "Buyer's friend", "software developers",
               case_studies=[CaseStudy("Something else", organisation="Home Office",
                                       won_at=date(2020, 1, 1))]),
    ]
    m = Matcher().fit(sellers)
    brief = Brief(1, "Immigration case working developers", organisation="Home Office",
                  published_at=datetime(2020, 2, 1, tzinfo=UTC))
    text_only = m.with_rules(Rules.from_dict({"weights": dict.fromkeys(SIGNALS, 0) | {"text": 1}}))
    buyer_only = m.with_rules(Rules.from_dict({"weights": dict.fromkeys(SIGNALS, 0)
                                               | {"buyer": 1}}))
    assert text_only.match(brief)[0].seller_id == 1
    assert buyer_only.match(brief)[0].seller_id == 2
    expl = buyer_only.match(brief)[0].explanation
    assert "worked for you before" in expl["summary"]  # the same organisation
    assert expl["boosts"]["buyer"] > 0


def test_similar_buyer_names_count_as_the_same_buyer() -> None:
    assert norm_org("Her Majesty's Passport Office.") == norm_org("Her Majesty’s Passport Office")
    # Both do the work (the brief's words); only the buyer history tells them apart.
    sellers = [Seller(1, "A", "agile delivery", case_studies=[CaseStudy(
        "Work", organisation="HM Courts and Tribunals Service", won_at=date(2017, 1, 1))]),
        Seller(2, "B", "agile delivery", case_studies=[CaseStudy(
            "Work", organisation="Met Office", won_at=date(2017, 1, 1))])]
    m = Matcher().fit(sellers)
    brief = Brief(1, "Agile delivery", organisation="HM Courts and Tribunal Service (HMCTS) & "
                  "Crown Prosecution Service (CPS)")
    result = m.match(brief)
    assert result[0].seller_id == 1
    assert result[0].explanation["signals"]["buyer"] > 0.3


def test_synonyms_and_skill_aliases_apply_without_refit() -> None:
    m = Matcher().fit([Seller(1, "Kube", "kubernetes platform engineering"),
                       Seller(2, "Front", "frontend javascript react")])
    k8s = Brief(1, "k8s cluster", essential_skills=["k8s"])
    assert m.match(k8s) == []
    aliased = m.with_rules(Rules.from_dict({"skill_aliases": {"k8s": "kubernetes"}}))
    assert [x.seller_id for x in aliased.match(k8s)] == [1]
    ui = Brief(2, "User interface work")
    syn = m.with_rules(Rules.from_dict({"synonyms": {"user interface": ["frontend", "react"]}}))
    assert 2 not in [x.seller_id for x in m.match(ui)]
    assert [x.seller_id for x in syn.match(ui)] == [2]


def test_category_overrides_merge_for_that_category() -> None:
    rules = Rules.from_dict({"category_overrides": {
        "digital-specialists": {"shortlist_threshold": 0.99, "alert_threshold": 0.99}}})
    assert rules.for_category("digital-specialists").shortlist_threshold == 0.99
    assert rules.for_category("digital-outcomes").shortlist_threshold == rules.shortlist_threshold
    m = Matcher(rules).fit(SELLERS)
    assert m.match(Brief(1, "Penetration testing", category="digital-specialists")) == []
    assert m.match(Brief(1, "Penetration testing", category="digital-outcomes"))


def test_rules_round_trip_and_schema() -> None:
    rules = Rules.from_dict({"weights": {"text": 2.5}, "synonyms": {"UI": ["frontend"]},
                             "skill_aliases": {"k8s": "kubernetes"},
                             "category_overrides": {"digital-outcomes": {"weights": {"sme": 1}}}})
    body = rules.to_dict()
    assert orjson.loads(orjson.dumps(body)) == body
    assert Rules.from_dict(body) == rules
    assert Rules.from_dict(Rules().to_dict()) == Rules()
    assert rules.weights["text"] == 2.5 and rules.weights["buyer"] == Rules().weights["buyer"]
    schema = Rules.json_schema()
    assert schema["type"] == "object" and "weights" in schema["properties"]


@pytest.mark.parametrize(("body", "field"), [
    ({"weights": {"text": -1}}, "weights.text"),
    ({"weights": {"nonsense": 1}}, "weights.nonsense"),
    ({"weights": {"text": "high"}}, "weights.text"),
    ({"shortlist_threshold": 1.5}, "shortlist_threshold"),
    ({"alert_threshold": 0.01, "shortlist_threshold": 0.5}, "alert_threshold"),
    ({"require_location": "yes"}, "require_location"),
    ({"max_alerts_per_brief": -3}, "max_alerts_per_brief"),
    ({"synonyms": {"ui": "frontend"}}, "synonyms.ui"),
    ({"skill_aliases": {"k8s": 3}}, "skill_aliases.k8s"),
    ({"category_overrides": {"digital-outcomes": {"weights": {"txt": 1}}}},
     "category_overrides.digital-outcomes.weights.txt"),
    ({"bogus": 1}, "bogus"),
    ({"weights": dict.fromkeys(SIGNALS, 0)}, "weights"),
])
def test_rules_errors_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(RulesError) as info:
        Rules.from_dict(body)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_rules_reject_non_objects() -> None:
    with pytest.raises(RulesError):
        Rules.from_dict([1, 2])


def test_corpus_tokenizer_matches_the_query_tokenizer() -> None:
    docs = ["Hello WP1448 c++ and C# node.js user-centred café 3D x", "", "++ +a #b a+b 12 7",
            "Ünïcödé ÀB mixed123abc 2016-17", "tab\tnew\nline\x00nul", "a1" * 5000]
    raws, ids, doc = tokenize_docs(docs)
    got = [[raws[i] for i, d in zip(ids, doc, strict=True) if d == k] for k in range(len(docs))]
    assert got == [TOKEN_RE.findall(d.lower()) for d in docs]
    assert canonical("++") == "" and canonical("c++") == "c++"


def test_corpus_tokenizer_on_long_and_look_alike_tokens() -> None:
    # Tokens are hashed and then compared byte for byte: long tokens, 8/16-byte boundaries and
    # words sharing long prefixes must still come out as themselves, in many chunks and documents.
    words = ["manage", "manager", "management", "managements", "telecommunication",
             "telecommunications", "abcdefgh", "abcdefghi", "abcdefghijklmnop",
             "abcdefghijklmnopq", "x" * 40, "x" * 41, "ab12cd34", "Zz9", "a+b#c"]
    docs = [" ".join(words[i % len(words):] + words[: i % len(words)]) * (1 + i % 5)
            for i in range(3000)] + ["", "\x00".join(words)]
    raws, ids, doc = tokenize_docs(docs)
    assert len(set(raws)) == len(raws)
    got = [[raws[i] for i, d in zip(ids, doc, strict=True) if d == k] for k in (0, 1, 2999, 3001)]
    assert got == [TOKEN_RE.findall(docs[k].lower()) for k in (0, 1, 2999, 3001)]
    assert sorted(raws) == sorted(set(TOKEN_RE.findall(" ".join(docs).lower())))


def test_anywhere_locations() -> None:
    assert is_anywhere("Offsite")
    assert is_anywhere("No specific location, eg they can work remotely")
    assert not is_anywhere("London")


def test_a_duplicate_seller_id_is_refused_by_fit() -> None:
    with pytest.raises(ValueError, match="duplicate seller id 2"):
        Matcher().fit([Seller(1, "A", "x"), Seller(2, "B", "y"), Seller(2, "C", "z")])


def test_fit_text_is_scikit_learns_sublinear_tfidf() -> None:
    """The vectorised fit (numpy tokenizer, column-major counting) gives scikit-learn's
    TfidfVectorizer(sublinear_tf=True) with our analyzer, to float32 precision."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from bench.corpus import generate_sellers
    from matcher.index import fit_text
    from matcher.text import seller_text, terms

    docs = [seller_text(s) for s in generate_sellers(300, seed=3)]
    docs += ["", "the and of", "Python python PYTHON c++ c# 2024 developers' developer"]
    model, postings = fit_text(docs)
    matrix = postings.to_csc(model.idf)
    ref = TfidfVectorizer(analyzer=terms, sublinear_tf=True, smooth_idf=True)
    expected = ref.fit_transform(docs).toarray()
    assert set(model.vocab) == set(ref.vocabulary_)
    cols = [ref.vocabulary_[t] for t in sorted(model.vocab, key=model.vocab.__getitem__)]
    assert matrix.shape == expected.shape
    np.testing.assert_allclose(matrix.toarray(), expected[:, cols], atol=1e-6)
