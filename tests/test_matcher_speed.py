"""The fast paths of the matcher keep the exact ranking: top_k is the prefix of the full
ranking (also for sellers updated or added after fit, also after `compact`)."""

from __future__ import annotations

import dataclasses

import pytest

from bench.corpus import brief_text, generate_sellers, load_briefs
from matcher import Matcher, Rules
from matcher.index import COMPACT_MIN_ROWS
from models.types import Brief, Seller


def _ranked(m: Matcher, brief: Brief, k: int) -> list[tuple[int, float]]:
    return [(x.seller_id, x.score) for x in m.match(brief, top_k=k)]


def test_a_seller_lifted_by_skills_is_in_the_top_k() -> None:
    # 100 sellers whose words match the brief best, without its skills; one seller with the
    # skills (and so a little less of the words). Skills lift it above all of them, so it
    # must be first in any top_k, however far down it is on the other signals.
    skills = ["Kafka streaming", "Terraform modules", "Python testing"]
    words = "Data platform build " + " ".join(skills)
    sellers = [Seller(i, f"S{i}", words, skills=["Catering"]) for i in range(1, 101)]
    sellers.append(Seller(500, "Skilled", words + " and other things", skills=skills))
    brief = Brief(1, "Data platform", "build it", essential_skills=skills)
    m = Matcher(Rules.from_dict({"weights": {"skills": 3.0}})).fit(sellers)
    full = _ranked(m, brief, 10_000)
    assert full[0][0] == 500
    for k in (1, 5, 50):
        assert _ranked(m, brief, k) == full[:k]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Seller], list[Brief]]:
    return list(generate_sellers(3000)), load_briefs()


def test_top_k_is_the_prefix_of_the_full_ranking_after_updates(
        corpus: tuple[list[Seller], list[Brief]]) -> None:
    sellers, briefs = corpus
    m = Matcher(Rules()).fit(sellers)
    step = len(sellers) // 6
    for trial in range(5):
        # BENCH's repro at small scale: a seller edited to describe a brief's work.
        seller, brief = sellers[step * (trial + 1) - 1], briefs[(trial * 17) % len(briefs)]
        m.update(dataclasses.replace(
            seller, summary=brief_text(brief), skills=(brief.essential_skills or [brief.title])[:8],
            categories=[brief.category] if brief.category else seller.categories,
            locations=sorted({brief.location or "London", "Offsite"}), day_rate=100.0,
            active=True))
        full = _ranked(m, brief, 10**6)
        assert seller.id in [i for i, _ in full[:50]]
        assert _ranked(m, brief, 50) == full[:50]
    m.add(dataclasses.replace(sellers[0], id=10**6, summary=brief_text(briefs[3])))
    for brief in briefs[:30]:
        full = _ranked(m, brief, 10**6)
        for k in (1, 10, 50):
            assert _ranked(m, brief, k) == full[:k]


def test_compact_keeps_results_and_empties_the_side_table(
        corpus: tuple[list[Seller], list[Brief]]) -> None:
    sellers, briefs = corpus
    m = Matcher(Rules()).fit(sellers[:2000])
    for s in sellers[2000:2300]:
        m.add(s)
    for i in range(0, 300, 7):
        s = sellers[i]
        m.update(dataclasses.replace(s, summary=brief_text(briefs[i % len(briefs)]),
                                     skills=briefs[i % len(briefs)].essential_skills[:5]))
    m.remove(sellers[2001].id)
    before = {b.id: m.match(b, top_k=50) for b in briefs}
    index = m.index_
    assert index.delta_rows
    m.compact()
    assert not index.delta_rows and index.n_main == index.n_rows
    assert index.drift() > 0  # compaction keeps the IDF: a refit is still due
    for b in briefs:
        after = m.match(b, top_k=50)
        # Same ranking; float32 sums in another order may move the 6th decimal.
        assert [x.seller_id for x in after] == [x.seller_id for x in before[b.id]]
        assert [x.score for x in after] == pytest.approx([x.score for x in before[b.id]],
                                                         abs=1e-5)
    assert len(m) == 2299


def test_the_side_table_is_compacted_automatically(
        corpus: tuple[list[Seller], list[Brief]]) -> None:
    sellers, _ = corpus
    m = Matcher(Rules()).fit(sellers[:100])
    for i in range(COMPACT_MIN_ROWS + 10):
        s = sellers[100 + i % 2800]
        m.upsert(dataclasses.replace(s, id=10**6 + i))
    assert len(m.index_.delta_rows) < COMPACT_MIN_ROWS
    assert len(m) == 100 + COMPACT_MIN_ROWS + 10


def test_remembered_skill_scores_give_what_a_fresh_matcher_gives(
        corpus: tuple[list[Seller], list[Brief]]) -> None:
    """Skill scores are remembered per criteria list (a draft re-scored as the buyer types):
    each of these drafts, scored after the others filled that memory, ranks and explains
    exactly as on a matcher that never scored anything; a seller added since is found."""
    sellers = corpus[0]
    # Skills the sellers list (the real briefs' skill lines are sentences few labels match).
    skills = [sellers[0].skills[0], sellers[1].skills[0], sellers[2].skills[-1]]
    base = Brief(1, "Specialist work", ". ".join(skills), essential_skills=skills)
    drafts = [
        base,
        dataclasses.replace(base, summary=base.summary + " accessibility audit"),
        dataclasses.replace(base, essential_skills=list(reversed(skills))),
        dataclasses.replace(base, essential_skills=skills[:1], nice_to_have_skills=skills[1:]),
        dataclasses.replace(base, essential_skills=[s.upper() for s in skills]),
    ]

    def scored(m: Matcher, brief: Brief) -> list[tuple[int, float, object]]:
        return [(x.seller_id, x.score, x.explanation["skills"]) for x in m.match(brief, 30)]

    warm = Matcher(Rules()).fit(sellers)
    assert sum(bool(e) for _, _, e in scored(warm, base)) >= 3  # skills count here
    for draft in drafts:
        scored(warm, draft)
    for draft in drafts:
        assert scored(warm, draft) == scored(Matcher(Rules()).fit(sellers), draft)
    warm.add(dataclasses.replace(sellers[0], id=10**6, summary=brief_text(base),
                                 skills=list(skills), categories=[base.category or "x"],
                                 locations=["Offsite"], active=True))
    assert 10**6 in [x.seller_id for x in warm.match(base, 30)]
