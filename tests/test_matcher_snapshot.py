"""Index snapshots are mapped, not read: a loaded index matches exactly as the fitted one did,
takes changes without touching the file, and every large array is a view of the mapping (what
lets the processes of a host share one copy). Also: the build that fits the text in a second
process gives the same index as the one-process build, and the row tables behave as dicts."""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import matcher.index as matcher_index
from matcher import Matcher
from matcher import snapshot as snapshots
from matcher.rows import KeyedRows, RowLists, RowMap, RowNames
from models.types import Brief, CaseStudy, Seller

WORDS = ("python kubernetes accessibility audit cloud migration data pipelines security "
         "penetration testing user research service design agile delivery dynamics crm "
         "analytics dashboards machine learning devops terraform aws azure java react").split()
ORGS = ["Home Office", "HM Revenue & Customs", "Ministry of Justice", "Government Digital Service",
        "Department for Education"]
ROLES = ["developer", "user researcher", "delivery manager", "data scientist"]
PLACES = ["London", "Scotland", "Wales", "North West England", "Offsite"]
WHEN = datetime(2024, 6, 1)
BRIEFS = [
    Brief(1, "Python data pipelines on AWS", "Build data pipelines and dashboards", category="c1",
          location="London", organisation="Home Office", role="developer",
          essential_skills=["Python", "AWS"], nice_to_have_skills=["Terraform"],
          published_at=WHEN),
    Brief(2, "Accessibility audit", "WCAG accessibility audit of a service", category="c2",
          essential_skills=["Accessibility audit"], published_at=WHEN),
    Brief(3, "Kubernetes security", "Penetration testing of a kubernetes platform",
          organisation="Ministry of Justice", published_at=WHEN, max_day_rate=700),
]


def _seller(i: int, rng: random.Random) -> Seller:
    words = rng.sample(WORDS, 8)
    cases = [CaseStudy(title=" ".join(rng.sample(WORDS, 3)), summary=" ".join(rng.sample(WORDS, 6)),
                       organisation=rng.choice(ORGS), category=rng.choice(["c1", "c2"]),
                       role=rng.choice(ROLES), location=rng.choice(PLACES),
                       won_at=date(2020 + rng.randrange(4), 1, 1) if rng.random() < 0.5 else None)
             for _ in range(rng.randrange(3))]
    return Seller(id=1000 + 7 * i, name=f"Seller {i}", summary=" ".join(words),
                  categories=[rng.choice(["c1", "c2", "c3"])],
                  skills=[w.title() for w in words[:3]],
                  locations=[rng.choice(PLACES)], day_rate=float(rng.randrange(300, 900)),
                  sme=rng.random() < 0.5, case_studies=cases)


def _sellers(n: int, seed: int = 7) -> list[Seller]:
    rng = random.Random(seed)
    return [_seller(i, rng) for i in range(n)]


def _ranked(m: Matcher) -> list[list[tuple[int, float, Any]]]:
    return [[(x.seller_id, x.score, x.explanation) for x in m.match(b, 30)] for b in BRIEFS]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_mapped_snapshot_matches_as_the_fitted_index(tmp_path: Path) -> None:
    sellers = _sellers(400)
    fitted = Matcher().fit(sellers)
    path = tmp_path / "sellers.idx"
    snapshots.save(fitted.index_, path, {"note": "x"}, {"ids": np.arange(3)})
    index, meta, extra = snapshots.load(path)
    assert meta == {"note": "x"} and extra["ids"].tolist() == [0, 1, 2]
    loaded = Matcher()
    loaded.index_ = index
    assert _ranked(loaded) == _ranked(fitted)
    assert any(r for r in _ranked(loaded)), "the briefs must match someone"
    # The big arrays are views of the file mapping, not copies in this process's heap.
    for arr in (index.postings.lo, index.postings.tf, index.ids.data, index.alive.data,
                index.entry_sid.data, index.row_of.base_ids, index.row_orgs.refs):
        assert not arr.flags.owndata
    assert len(loaded) == len(fitted) == 400


def test_changes_after_loading_stay_in_the_process(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshots, "HEADROOM_MIN", 16)  # the loop below outgrows the headroom
    sellers = _sellers(300)
    path = tmp_path / "sellers.idx"
    snapshots.save(Matcher().fit(sellers).index_, path, {})
    before = _digest(path)
    loaded = Matcher()
    loaded.index_ = snapshots.load(path)[0]
    fitted = Matcher().fit(sellers)
    rng = random.Random(3)
    changes = [_seller(1000 + i, rng) for i in range(40)]
    for m in (loaded, fitted):
        for s in changes:
            m.add(s)
        m.update(Seller(id=sellers[0].id, name="Renamed", summary="kubernetes security "
                        "penetration testing", locations=["London"], skills=["Kubernetes"]))
        assert m.remove(sellers[1].id) and not m.remove(sellers[1].id)
    assert _ranked(loaded) == _ranked(fitted)
    assert len(loaded) == len(fitted) == 339
    assert sellers[1].id not in loaded and changes[-1].id in loaded
    for m in (loaded, fitted):  # folding the changes in: on the mapping as in the heap
        m.compact()
    assert _ranked(loaded) == _ranked(fitted)
    assert _digest(path) == before  # copy-on-write: the file (and other processes) unchanged
    again = Matcher()
    again.index_ = snapshots.load(path)[0]
    assert len(again) == 300 and sellers[1].id in again


def test_a_truncated_or_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sellers.idx"
    snapshots.save(Matcher().fit(_sellers(50)).index_, path, {})
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(snapshots.SnapshotError, match="truncated"):
        snapshots.load(path)
    path.write_bytes(b"PK\x03\x04 an old zip snapshot")
    with pytest.raises(snapshots.SnapshotError):
        snapshots.load(path)
    with pytest.raises(FileNotFoundError):
        snapshots.load(tmp_path / "none")


def test_the_text_fitted_in_a_second_process_gives_the_same_index(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sellers = _sellers(500)
    monkeypatch.setattr(matcher_index, "PARALLEL_MIN_SELLERS", 10**9)
    serial = Matcher().fit(sellers)
    monkeypatch.setattr(matcher_index, "PARALLEL_MIN_SELLERS", 1)
    forked: list[int] = []
    start = matcher_index._TextFitProcess.start

    def spy(sellers: list[Seller]) -> Any:
        job = start(sellers)
        forked.append(job.pid if job is not None else 0)
        return job

    monkeypatch.setattr(matcher_index._TextFitProcess, "start", staticmethod(spy))
    parallel = Matcher().fit(sellers)
    assert forked and forked[0] > 0
    assert _ranked(parallel) == _ranked(serial)
    a, b = parallel.index_.postings, serial.index_.postings
    for name in ("indptr", "lo", "tf", "blocks", "norms"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert parallel.index_.text.terms == serial.index_.text.terms


def test_row_map_behaves_as_a_dict() -> None:
    ids = np.array([50, 10, 30], np.int64)
    m = RowMap.build(ids, first_row=5)
    assert dict((i, m[i]) for i in m) == {10: 6, 30: 7, 50: 5} and len(m) == 3
    assert 30 in m and 31 not in m and "30" not in m and m.get(31) is None
    assert m.pop(30) == 7 and 30 not in m and m.pop(30) is None and len(m) == 2
    m[30] = 9
    m[70] = 10
    assert m[30] == 9 and len(m) == 4 and sorted(m) == [10, 30, 50, 70]
    m.freeze()
    assert m[30] == 9 and m[70] == 10 and len(m) == 4 and not m.added and not m.removed
    with pytest.raises(ValueError, match="duplicate seller id 4"):
        RowMap.build(np.array([4, 2, 4]))


def test_row_lists_and_names_merge_their_tails() -> None:
    lists = RowLists()
    a, b = lists.new_key(), lists.new_key()
    lists.append(b, 3)
    lists.append(a, 1)
    lists.append(b, 4)
    lists.freeze()
    lists.append(a, 9)
    assert lists[a].tolist() == [1, 9] and lists[b].tolist() == [3, 4] and lists.count(a) == 2
    roles = KeyedRows()
    roles.add("developer", 2)
    roles.add("developer", 5)
    assert roles.get("developer") is not None and roles.get("nobody") is None
    names = RowNames()
    names.append(["Home Office", "GDS"])
    names.append([])
    names.freeze()
    names.append(["GDS"])
    assert [names[i] for i in range(3)] == [("Home Office", "GDS"), (), ("GDS",)]
