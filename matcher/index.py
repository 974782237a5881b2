"""The fitted seller index: TF-IDF postings plus compact per-seller arrays.

Memory layout (why it is fast and small):
- text: term-major postings (matcher/postings.py: 3 bytes each, weights recomputed exactly)
  for the sellers present at `fit`, so a query touches only its own terms; sellers added
  later live in a small row-wise "delta" (same vocabulary and IDF, transformed not refitted)
  that `compact` folds into the postings (automatically when it reaches COMPACT_MIN_ROWS /
  COMPACT_SHARE, or on demand).
- per-seller facts as numpy arrays indexed by row: alive, active, category bitmasks and win
  counts, location bitmasks, day rate, number of wins, last win day, SME.
- sparse facts (buyer organisations, specialist roles) as key -> rows lists; skills as flat
  (row, label id) entries into a vocabulary of distinct labels with an inverted index, so fuzzy
  matching runs on distinct short strings only and per-seller skill scores are numpy.
Rows are never reused: update = remove + add; removal clears `alive`. A full `fit` (cheap enough
to run in a background thread) builds a fresh index and drops dead rows.
"""

from __future__ import annotations

import gc
import os
import pickle
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import overload

import numpy as np
import scipy.sparse as sp

from models.types import CATEGORIES, Seller

from .orgs import OrgIndex
from .postings import BLOCK_BITS, TextPostings, l2_norms, tf_weights
from .rows import KeyedRows, RowMap, RowNames
from .skills import SkillVocab
from .text import (
    TOKEN_RE,
    canonical,
    is_anywhere,
    norm_location,
    norm_role,
    seller_text,
    term_of,
)
from .tokenize import term_counts, tokenize

MAX_CATEGORIES = 16  # category codes beyond this are not tracked: the bit below stands for them
MAX_LOCATIONS = 62  # bit 62 = "has untracked locations", bit 63 = "serves anywhere"
COMPACT_MIN_ROWS = 2048  # delta rows that trigger `compact` ...
COMPACT_SHARE = 0.02  # ... or this share of the main rows, whichever is larger
_UNTRACKED_LOC = np.uint64(1 << 62)
_ANYWHERE_LOC = np.uint64(1 << 63)
# "Has categories that are not tracked": a brief in an untracked category lets these sellers
# through (they may hold it), while sellers whose every category is tracked and other stay out.
_UNTRACKED_CAT = 1 << 31


def day_number(value: date | datetime | None) -> float:
    """Days since 0001-01-01 (float), or nan."""
    if value is None:
        return float("nan")
    if isinstance(value, datetime):
        return value.toordinal() + (value.hour * 3600 + value.minute * 60 + value.second) / 86400
    return float(value.toordinal())


@dataclass
class TextModel:
    """The fitted vocabulary and IDF; maps raw tokens to term ids (or -1 for stop words)."""

    vocab: dict[str, int]
    terms: list[str]
    idf: np.ndarray  # float32, one per term
    n_docs: int
    raw_to_term: dict[str, int] = field(default_factory=dict)

    def term_id(self, raw: str) -> int:
        tid = self.raw_to_term.get(raw)
        if tid is None:
            term = term_of(raw)
            tid = self.vocab.get(term, -1) if term else -1
            if (tid >= 0 or not term) and len(self.raw_to_term) < 1_000_000:
                self.raw_to_term[raw] = tid  # unknown words are not cached: add() may learn them
        return tid

    def learn_id(self, raw: str) -> int:
        """term_id, adding a word first seen in a seller added after fit to the vocabulary.

        Its IDF is that of a word in one document at fit time (rare, so informative); the
        IDF of known words is kept (the drift a background refit corrects).
        """
        tid = self.term_id(raw)
        if tid < 0:
            term = term_of(raw)
            if term:
                tid = self.vocab[term] = len(self.terms)
                self.terms.append(canonical(raw))
                rare = np.float32(np.log((1.0 + self.n_docs) / 2.0) + 1.0)
                self.idf = np.append(self.idf, rare)
                self.raw_to_term[raw] = tid
        return tid

    def vector(self, text: str) -> TextVector:
        """Term ids (ascending), counts, l2-normalised sublinear tf-idf weights and their norm
        of one seller text (the weights are what postings of these counts and norm give)."""
        counts = Counter(t for t in map(self.learn_id, TOKEN_RE.findall(text.lower())) if t >= 0)
        if not counts:
            return TextVector(np.empty(0, np.int32), np.empty(0, np.int64),
                              np.empty(0, np.float32), np.float32(1.0))
        ids = np.fromiter(counts.keys(), np.int32, len(counts))
        tf = np.fromiter(counts.values(), np.int64, len(counts))
        weights = tf_weights(int(tf.max()))[tf] * self.idf[ids]
        norm = np.float32(np.linalg.norm(weights)) or np.float32(1.0)
        weights /= norm
        order = np.argsort(ids)
        return TextVector(ids[order], tf[order], weights[order].astype(np.float32), norm)


@dataclass(slots=True)
class TextVector:
    """One text added after fit: its terms and weights (scored from the delta until
    `compact`), and the counts and norm that compaction stores as postings."""

    ids: np.ndarray  # int32, ascending
    tf: np.ndarray  # int64 counts
    weights: np.ndarray  # float32
    norm: np.float32


def fit_text(docs: Sequence[str]) -> tuple[TextModel, TextPostings]:
    """Vocabulary, smoothed IDF and the l2-normalised sublinear TF-IDF postings of `docs`.

    Equivalent to scikit-learn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True) with our
    tokenizer and analyzer, but tokenises and counts the whole corpus in compiled loops
    (matcher/tokenize.py) and maps each distinct raw token to its term once.
    """
    n = len(docs)
    raws, parts, per_doc = tokenize(docs)
    vocab: dict[str, int] = {}
    raw_to_term: dict[str, int] = {}
    raw_term = np.full(len(raws), -1, np.int32)
    for rid in sorted(range(len(raws)), key=raws.__getitem__):  # ids independent of hashing
        raw = raws[rid]
        term = term_of(raw)
        tid = vocab.setdefault(term, len(vocab)) if term else -1
        raw_to_term[raw] = raw_term[rid] = tid
    n_terms = len(vocab)
    # Per term, its documents ascending (as row blocks and low bits) and the term's count in
    # each: the postings' own arrays, with no per-token or per-posting temporaries (fresh
    # memory costs more than the arithmetic on a VM, ~0.5-2 s a GB).
    indptr, lo, tf, blocks, max_tf = term_counts(parts, per_doc, raw_term, n_terms, BLOCK_BITS)
    del parts
    df = np.diff(indptr)
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    # Stored: counts and norms, not the weights (recomputed bit for bit when read).
    norms = l2_norms(indptr, lo, tf, blocks, max_tf, idf, n)
    postings = TextPostings.from_parts(indptr, lo, tf, blocks, norms, n, max_tf)
    # Explanations show a word as buyers write it (shortest surface form), not the stem.
    display = sorted(vocab, key=vocab.__getitem__)
    for raw in sorted(raw_to_term, key=len, reverse=True):
        tid = raw_to_term[raw]
        if tid >= 0:
            display[tid] = canonical(raw)
    model = TextModel(vocab, display, idf, n, raw_to_term)
    return model, postings


class SellerTexts(Sequence[str]):
    """The sellers' texts, each made when read (`fit_text` reads each once): never all held
    at once, so their memory is reused chunk after chunk instead of freshly committed."""

    def __init__(self, sellers: Sequence[Seller]) -> None:
        self.sellers = sellers

    def __len__(self) -> int:
        return len(self.sellers)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [seller_text(s) for s in self.sellers[i]]
        return seller_text(self.sellers[i])


PARALLEL_MIN_SELLERS = 20_000  # below this a second process costs more than it saves
_EMPTY_TEXT = TextModel({}, [], np.empty(0, np.float32), 0)
_EMPTY_POSTINGS = TextPostings.empty()


class _TextFitProcess:
    """`fit_text` in a forked child while the parent builds the sellers' facts.

    A build is two parts: the text (compiled loops, and the sellers' texts to make) and the
    per-seller facts (Python, under the GIL, so a thread would not help). The child inherits
    the sellers by fork (no copy), makes their texts, fits, and hands back the result through a
    pickle file in shared memory (/dev/shm when there is one). Whatever goes wrong in the child
    (no fork, no memory, a signal), the parent fits the text itself: the result is the same
    either way.
    """

    def __init__(self, pid: int, path: str, sellers: list[Seller]) -> None:
        self.pid, self.path, self.sellers = pid, path, sellers

    @classmethod
    def start(cls, sellers: list[Seller]) -> _TextFitProcess | None:
        if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
            return None
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        try:
            fd, path = tempfile.mkstemp(prefix="matcher-fit-", suffix=".pickle", dir=folder)
        except OSError:
            return None
        os.close(fd)
        try:
            pid = os.fork()
        except OSError:
            os.unlink(path)
            return None
        if pid == 0:  # the child: fit, write, leave without running any of the parent's cleanup
            status = 1
            try:
                # The texts are made here, not before the fork: a million of them are ~3 GB of
                # fresh memory, which costs the parent far more than their CPU time on a VM.
                fitted = fit_text(SellerTexts(sellers))
                with open(path, "wb") as f:
                    pickle.dump(fitted, f, protocol=pickle.HIGHEST_PROTOCOL)
                status = 0
            finally:
                os._exit(status)
        return cls(pid, path, sellers)

    def result(self) -> tuple[TextModel, TextPostings]:
        try:
            _, status = os.waitpid(self.pid, 0)
            if status == 0:
                with open(self.path, "rb") as f:
                    text, postings = pickle.load(f)
                return text, postings
        finally:
            with suppress(OSError):
                os.unlink(self.path)
        return fit_text(SellerTexts(self.sellers))


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Without Python's cyclic garbage collector for a while. A build allocates millions of
    small objects (token strings, facts, row maps) and makes no reference cycles, yet each
    time the collector's thresholds trip it walks every live object, the sellers included:
    about 0.7 s of a 100,000-seller fit. Process-wide; switched back on (if it was) after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _day_rate(seller: Seller) -> float:
    return seller.day_rate if seller.day_rate is not None and seller.day_rate > 0 else np.nan


class _Grow:
    """A numpy array that grows by doubling (rows appended by `add`)."""

    def __init__(self, dtype: type | np.dtype, capacity: int, fill: float | int = 0) -> None:
        self.fill = fill
        self.data = np.full(max(capacity, 16), fill, dtype=dtype)

    def ensure(self, size: int, exact: bool = False) -> None:
        """Room for `size` items: doubling (one seller at a time), or exactly `size` (a
        batch, e.g. a fit: doubling past a fit's ~6 skills a seller would leave up to half
        of the array unused)."""
        if size > len(self.data):
            grown = size if exact else max(size, 2 * len(self.data))
            bigger = np.full(grown, self.fill, dtype=self.data.dtype)
            bigger[: len(self.data)] = self.data
            self.data = bigger


class SellerIndex:
    """All fitted state of a Matcher. Built by `SellerIndex.build(sellers)`."""

    def __init__(self, text: TextModel, postings: TextPostings, capacity: int) -> None:
        self.text = text
        self.postings = postings  # rows 0..n_main-1
        self.n_main = postings.n_rows
        self.n_rows = 0
        self.row_of = RowMap()  # seller id -> row
        self.ids = _Grow(np.int64, capacity, -1)
        self.alive = _Grow(np.bool_, capacity, False)
        self.active = _Grow(np.bool_, capacity, True)
        self.sme = _Grow(np.bool_, capacity, False)
        self.day_rate = _Grow(np.float32, capacity, np.nan)
        self.n_wins = _Grow(np.float32, capacity, 0)
        self.last_win = _Grow(np.float32, capacity, np.nan)
        self.cat_declared = _Grow(np.uint32, capacity, 0)  # bit per category code
        self.loc_mask = _Grow(np.uint64, capacity, 0)  # bit per location code (+ 2 flags)
        self.has_locations = _Grow(np.bool_, capacity, False)
        self.cat_wins = np.zeros((max(capacity, 16), MAX_CATEGORIES), np.uint16)
        self.category_code: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
        self.location_code: dict[str, int] = {}
        self._loc_bit: dict[str, int] = {}  # raw location -> its bit (cache)
        self._skill_raw: dict[str, int] = {}  # raw skill -> skill id (cache)
        self.orgs = OrgIndex()  # buyer organisations -> rows (once per piece of work)
        self.role_rows = KeyedRows()  # normalised role -> rows (once per job)
        self.skills = SkillVocab()  # distinct skill labels
        # Skills of every row as flat "entries" (row, label id) in row order; row r owns
        # entries skill_start[r] .. skill_start[r] + skill_count[r].
        self.skill_start = _Grow(np.int64, capacity, 0)
        self.skill_count = _Grow(np.int32, capacity, 0)
        self.entry_sid = _Grow(np.int32, 0, 0)  # sized by the first batch of sellers
        self.entry_row = _Grow(np.int32, 0, 0)
        self.n_entries = 0
        # Inverted skill index (label id -> entries) over the first _inv_n entries; later
        # entries (sellers added since) are scanned, until `compact` folds them in.
        self._inv_n = 0
        self._inv_order = np.empty(0, np.int32)
        self._inv_ptr = np.zeros(1, np.int64)
        self.row_orgs = RowNames()  # per row, its buyers' names (for explanations)
        # Delta: text rows of sellers added after fit (row >= n_main), until `compact`.
        self.delta_rows: list[int] = []
        self.delta_vectors: list[TextVector] = []
        self._delta_csr: sp.csr_matrix | None = None
        self.n_transformed = 0  # rows whose text used an IDF fitted without them (drift)
        self.version = 0  # bumped on every change (caches key on it)

    # -- building --------------------------------------------------------------------------
    @classmethod
    def build(cls, sellers: list[Seller]) -> SellerIndex:
        with _no_cyclic_gc():
            parallel = len(sellers) >= PARALLEL_MIN_SELLERS
            job = _TextFitProcess.start(sellers) if parallel else None
            if job is None:
                text, postings = fit_text(SellerTexts(sellers))
            # Meanwhile (with a job) the other core fits the text: the facts are Python work.
            index = cls(_EMPTY_TEXT, _EMPTY_POSTINGS, len(sellers))
            index._append_all(sellers)
            index._build_skill_postings()
            index.freeze_rows()
            if job is not None:
                text, postings = job.result()
            index.text, index.postings, index.n_main = text, postings, postings.n_rows
        index.version += 1
        return index

    def _code(self, table: dict[str, int], key: str, limit: int) -> int:
        code = table.get(key)
        if code is None:
            if len(table) >= limit:
                return -1
            code = table[key] = len(table)
        return code

    def _grow_rows(self, n_rows: int) -> None:
        for arr in (self.ids, self.alive, self.active, self.sme, self.day_rate, self.n_wins,
                    self.last_win, self.cat_declared, self.loc_mask, self.has_locations,
                    self.skill_start, self.skill_count):
            arr.ensure(n_rows)
        if n_rows > len(self.cat_wins):
            bigger = np.zeros((max(n_rows, 2 * len(self.cat_wins)), MAX_CATEGORIES), np.uint16)
            bigger[: len(self.cat_wins)] = self.cat_wins
            self.cat_wins = bigger

    def _append_all(self, sellers: list[Seller]) -> None:
        """Every seller's facts in the next rows: the per-seller Python work in `_row_facts`,
        then each column written once (numpy scalar writes cost ~100 ns each, a second per
        100,000 sellers at `build`)."""
        first, count = self.n_rows, len(sellers)
        end = first + count
        ids = [s.id for s in sellers]
        if not len(self.row_of) and not self.n_rows:
            self.row_of = RowMap.build(np.asarray(ids, np.int64), first)
        else:
            seen: set[int] = set()
            for seller_id in ids:
                if seller_id in seen or seller_id in self.row_of:
                    raise ValueError(f"duplicate seller id {seller_id}")
                seen.add(seller_id)
            for row, seller_id in enumerate(ids, first):
                self.row_of[seller_id] = row
        self.n_rows = end
        self._grow_rows(end)
        rows = slice(first, end)
        self.ids.data[rows] = ids
        self.alive.data[rows] = True
        self.active.data[rows] = [bool(s.active) for s in sellers]
        self.sme.data[rows] = [bool(s.sme) for s in sellers]
        self.day_rate.data[rows] = [_day_rate(s) for s in sellers]
        facts = [self._row_facts(s, row) for row, s in enumerate(sellers, first)]
        cats, loc_bits, located, wins, last, sids = zip(*facts, strict=True) if facts else (
            (), (), (), (), (), ())
        self.cat_declared.data[rows] = cats
        self.loc_mask.data[rows] = np.array(loc_bits, np.uint64)
        self.has_locations.data[rows] = located
        self.n_wins.data[rows] = wins
        self.last_win.data[rows] = last
        counts = np.fromiter(map(len, sids), np.int64, count)
        starts = self.n_entries + np.cumsum(counts) - counts
        self.n_entries += int(counts.sum())
        batch = count > 1
        self.entry_sid.ensure(self.n_entries, exact=batch)
        self.entry_row.ensure(self.n_entries, exact=batch)
        entries = slice(self.n_entries - int(counts.sum()), self.n_entries)
        self.entry_sid.data[entries] = [sid for row_sids in sids for sid in row_sids]
        self.entry_row.data[entries] = np.repeat(np.arange(first, end, dtype=np.int32), counts)
        self.skill_start.data[rows] = starts
        self.skill_count.data[rows] = counts

    def _row_facts(self, seller: Seller, row: int,
                   ) -> tuple[int, int, bool, int, float, list[int]]:
        """(category bits, location bits, has locations, wins, last win day, skill ids) of a
        seller; registers its buyers, roles, per-category wins and names for `row`."""
        cats = 0
        for cat in seller.categories:
            code = self._code(self.category_code, cat, MAX_CATEGORIES)
            cats |= (1 << code) if code >= 0 else _UNTRACKED_CAT
        loc_bits = 0
        located = False

        def add_location(loc: str) -> None:
            nonlocal loc_bits, located
            bit = self._loc_bit.get(loc)
            if bit is None:
                bit = self._loc_bit[loc] = self._location_bit(loc)
            if bit:
                located = True
                loc_bits |= bit

        for loc in seller.locations:
            add_location(loc)
        wins = 0
        last = float("nan")
        orgs: list[str] = []
        for cs in seller.case_studies:
            is_win = cs.won_at is not None or cs.brief_id is not None
            if cs.category:
                code = self._code(self.category_code, cs.category, MAX_CATEGORIES)
                if code < 0:
                    cats |= _UNTRACKED_CAT
                else:
                    cats |= 1 << code  # past work in a category shows eligibility for it
                    if is_win:
                        self.cat_wins[row, code] = min(65535, int(self.cat_wins[row, code]) + 1)
            if cs.location:
                add_location(cs.location)
            if cs.organisation.strip():
                self.orgs.add(cs.organisation, row)
                orgs.append(cs.organisation.strip())
            if cs.role:
                role = norm_role(cs.role)
                if role:
                    self.role_rows.add(role, row)
            if is_win:
                wins += 1
                day = day_number(cs.won_at)
                if day == day and not (last >= day):
                    last = day
        self.row_orgs.append(dict.fromkeys(orgs))
        sids = [self._skill_id(s) for s in seller.skills if s]
        return cats, loc_bits, located, wins, last, sids

    def row_skills(self, row: int) -> list[int]:
        start = int(self.skill_start.data[row])
        return self.entry_sid.data[start: start + int(self.skill_count.data[row])].tolist()

    def _location_bit(self, loc: str) -> int:
        if not loc.strip():
            return 0
        if is_anywhere(loc):
            return 1 << 63
        code = self._code(self.location_code, norm_location(loc), MAX_LOCATIONS)
        return (1 << code) if code >= 0 else (1 << 62)

    def _skill_id(self, skill: str) -> int:
        sid = self._skill_raw.get(skill)
        if sid is None:
            sid = self._skill_raw[skill] = self._new_skill_id(skill)
        return sid

    def _new_skill_id(self, skill: str) -> int:
        return self.skills.add(" ".join(skill.lower().split()), skill.strip())

    def _build_skill_postings(self) -> None:
        """Label id -> entries, over all entries so far (at build and compact)."""
        n = self.n_entries
        sids = self.entry_sid.data[:n]
        self._inv_order = np.argsort(sids, kind="stable").astype(np.int32)
        self._inv_ptr = np.zeros(len(self.skills) + 1, np.int64)
        np.cumsum(np.bincount(sids, minlength=len(self.skills)), out=self._inv_ptr[1:])
        self._inv_n = n

    def skill_entries(self, sids: np.ndarray) -> np.ndarray:
        """Entries (positions in entry_sid / entry_row) whose label is one of `sids`."""
        parts: list[np.ndarray] = []
        ptr = self._inv_ptr
        known = sids[sids < len(ptr) - 1]
        if len(known):
            starts, ends = ptr[known], ptr[known + 1]
            lengths = ends - starts
            total = int(lengths.sum())
            if total:
                offsets = np.cumsum(lengths) - lengths
                take = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)
                parts.append(self._inv_order[take].astype(np.int64))
        if self.n_entries > self._inv_n:  # entries of sellers added since the last build
            tail = self.entry_sid.data[self._inv_n: self.n_entries]
            parts.append(np.flatnonzero(np.isin(tail, sids)) + self._inv_n)
        if not parts:
            return np.empty(0, np.int64)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    # -- incremental changes ---------------------------------------------------------------
    def add(self, seller: Seller) -> None:
        if seller.id in self.row_of:
            raise ValueError(f"seller {seller.id} is already indexed; use update")
        self._append_all([seller])
        self.delta_rows.append(self.n_rows - 1)
        self.delta_vectors.append(self.text.vector(seller_text(seller)))
        self._delta_csr = None
        self.n_transformed += 1
        self.version += 1
        if len(self.delta_rows) >= max(COMPACT_MIN_ROWS, COMPACT_SHARE * self.n_main):
            self.compact()

    def compact(self) -> None:
        """Fold the delta (sellers added or updated since fit) into the main postings and
        the skills added since into the inverted skill index.

        Matching cost grows with the delta (a row-wise product over all its rows, a scan of
        its skills), so `add` calls this when the delta reaches COMPACT_MIN_ROWS rows or
        COMPACT_SHARE of the main rows; callers may call it at any time (e.g. when idle).
        It keeps the IDF (unlike a refit): O(non-zeros) numpy copying, ~0.1-0.3 s at 100k.
        Dead rows (removed / updated sellers) stay until the next `fit`.
        """
        if self.delta_rows:
            n_terms = len(self.text.terms)
            main = self.postings
            n_rows = self.n_rows  # delta rows are n_main .. n_rows-1 (rows are never reused)
            local = np.asarray(self.delta_rows, np.int64) - self.n_main
            lengths = np.fromiter((len(v.ids) for v in self.delta_vectors), np.int64,
                                  len(self.delta_vectors))
            delta = sp.csr_matrix(
                (np.concatenate([v.tf for v in self.delta_vectors]).astype(np.int32),
                 (np.repeat(local, lengths),
                  np.concatenate([v.ids for v in self.delta_vectors]))),
                shape=(n_rows - self.n_main, n_terms), dtype=np.int32,
            ).tocsc()
            norms = np.ones(n_rows, np.float32)
            norms[: self.n_main] = main.norms[: self.n_main]
            norms[self.n_main + local] = [v.norm for v in self.delta_vectors]
            main_ptr = np.zeros(n_terms + 1, np.int64)
            main_ptr[: len(main.indptr)] = main.indptr
            main_ptr[len(main.indptr):] = main.indptr[-1]
            d_ptr = delta.indptr.astype(np.int64)
            indptr = main_ptr + d_ptr
            nnz = int(indptr[-1])
            rows = np.empty(nnz, np.int32)
            tf = np.empty(nnz, np.int32)
            # Each column: its main entries, then its delta entries (rows above all main rows,
            # so rows stay sorted within the column).
            main_len = np.diff(main_ptr)
            d_len = np.diff(d_ptr)
            col_main = np.repeat(np.arange(n_terms), main_len)
            shift = indptr[:-1] - main_ptr[:-1]
            dest_main = np.arange(main.nnz, dtype=np.int64) + shift[col_main]
            rows[dest_main] = main.rows()
            tf[dest_main] = main.tf
            col_d = np.repeat(np.arange(n_terms), d_len)
            dest_d = (np.arange(len(delta.indices), dtype=np.int64) - d_ptr[:-1][col_d]
                      + indptr[:-1][col_d] + main_len[col_d])
            rows[dest_d] = delta.indices.astype(np.int32) + self.n_main
            tf[dest_d] = delta.data
            self.postings = TextPostings.build(indptr, rows, tf, norms, n_rows)
            self.n_main = n_rows
            self.delta_rows, self.delta_vectors, self._delta_csr = [], [], None
        if self.n_entries > self._inv_n or len(self._inv_ptr) <= len(self.skills):
            self._build_skill_postings()
        self.freeze_rows()
        self.version += 1

    def remove(self, seller_id: int) -> bool:
        row = self.row_of.pop(seller_id, None)
        if row is None:
            return False
        self.alive.data[row] = False
        self.version += 1
        return True

    def update(self, seller: Seller) -> None:
        self.remove(seller.id)
        self.add(seller)

    def delta_matrix(self) -> sp.csr_matrix:
        """Text rows of sellers added since fit, as CSR (one row per entry of delta_rows)."""
        if self._delta_csr is None:
            n_terms = len(self.text.terms)
            if self.delta_vectors:
                indptr = np.zeros(len(self.delta_vectors) + 1, np.int64)
                np.cumsum([len(v.ids) for v in self.delta_vectors], out=indptr[1:])
                indices = np.concatenate([v.ids for v in self.delta_vectors])
                data = np.concatenate([v.weights for v in self.delta_vectors])
            else:
                indptr, indices, data = np.zeros(1, np.int64), np.empty(0, np.int32), np.empty(
                    0, np.float32)
            self._delta_csr = sp.csr_matrix(
                (data, indices, indptr), shape=(len(self.delta_vectors), n_terms)
            )
        return self._delta_csr

    # -- views -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.row_of)

    def org_rows(self, oid: int) -> np.ndarray:
        """Rows of organisation `oid`'s work as an array (cached until its list grows)."""
        cache: dict[int, np.ndarray] = self.__dict__.setdefault("_org_arrays", {})
        arr = cache.get(oid)
        if arr is None or len(arr) != self.orgs.rows.count(oid):
            arr = cache[oid] = self.orgs.rows[oid].astype(np.int64)
        return arr

    def rows_for(self, table: KeyedRows, key: str) -> np.ndarray:
        rows = table.get(key)
        return rows.astype(np.int64) if rows is not None and len(rows) else np.empty(0, np.int64)

    def freeze_rows(self) -> None:
        """Fold the row tables' recent changes into their arrays (at build and compaction)."""
        self.row_of.freeze()
        self.role_rows.lists.freeze()
        self.orgs.rows.freeze()
        self.row_orgs.freeze()
        self.__dict__.pop("_org_arrays", None)

    def drift(self) -> float:
        """Share of indexed sellers whose text was transformed with an IDF fitted without them.

        The live index owner refits (in the background) when this grows, e.g. above 0.2.
        """
        return self.n_transformed / max(1, len(self.row_of))

    def memory_bytes(self) -> int:
        """Bytes of the index's arrays (its Python dicts and lists are not counted)."""
        total = self.postings.nbytes + self.cat_wins.nbytes
        total += self._inv_order.nbytes + self._inv_ptr.nbytes + self.text.idf.nbytes
        total += self.row_of.base_ids.nbytes + self.row_of.base_rows.nbytes
        for lists in (self.role_rows.lists, self.orgs.rows):
            total += lists.ptr.nbytes + lists.flat.nbytes
        total += self.row_orgs.ptr.nbytes + self.row_orgs.refs.nbytes
        for arr in (self.ids, self.alive, self.active, self.sme, self.day_rate, self.n_wins,
                    self.last_win, self.cat_declared, self.loc_mask, self.has_locations,
                    self.skill_start, self.skill_count, self.entry_sid, self.entry_row):
            total += arr.data.nbytes
        return total


def iter_rows(index: SellerIndex, ids: Iterable[int]) -> list[int]:
    return [index.row_of[i] for i in ids if i in index.row_of]
