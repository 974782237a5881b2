"""What a score means: the raw weighted sum of signals mapped onto past outcomes.

The raw score (the weighted mean of the signals, 0..1) has no meaning of its own: a text-heavy
brief and a title-only brief put the same seller at different raw values. So every score the
product shows is calibrated on real outcomes: **a score of s means that this seller matches the
brief at least as well as a share s of the past winners the engine matched did on the briefs
they won**. A threshold
t is then a trade-off an admin can read: on the outcomes the calibration was fitted on, about
(1 - t) of the winners score t or more (a threshold of 0.15 would have reached about 85 % of
winners), and `marketplace eval` shows how many sellers that reaches (`alert_volume`).

The mapping is monotone (the order of sellers never changes) and piecewise linear between
knots (raw score, share of winners at or below it), fitted from the raw scores of real winners.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Knots = tuple[tuple[float, float], ...]

IDENTITY: Knots = ((0.0, 0.0), (1.0, 1.0))
N_KNOTS = 21  # the 0th, 5th, ..., 100th percentiles of the winners' raw scores


def calibrate(raw: np.ndarray, knots: Knots) -> np.ndarray:
    """Raw scores -> calibrated scores in 0..1 (monotone; clamped outside the knots)."""
    xs = np.fromiter((k[0] for k in knots), np.float64, len(knots))
    ys = np.fromiter((k[1] for k in knots), np.float64, len(knots))
    return np.interp(np.asarray(raw, np.float64), xs, ys)


def fit_calibration(winner_raw: Sequence[float], n_knots: int = N_KNOTS) -> Knots:
    """Knots from the raw scores of real winners (one per past brief). A raw score at the
    q-th percentile of the winners' maps to q. Winners the engine did not match at all (raw
    0: no evidence, or a hard filter) are left out: the share is of the matched winners, and
    `marketplace eval` reports how many winners are matched at all."""
    values = np.sort(np.asarray([v for v in winner_raw if np.isfinite(v) and v > 0], np.float64))
    if len(values) < 2:
        return IDENTITY
    levels = np.linspace(0.0, 1.0, n_knots)
    raws = np.quantile(values, levels)
    knots: list[tuple[float, float]] = [(0.0, 0.0)]
    for raw, level in zip(raws.tolist(), levels.tolist(), strict=True):
        raw = round(raw, 6)
        if raw <= knots[-1][0]:
            # Ties (many winners at one raw score) keep the highest share for that score.
            knots[-1] = (knots[-1][0], round(level, 4)) if raw == knots[-1][0] else knots[-1]
            continue
        knots.append((raw, round(level, 4)))
    if knots[-1][0] < 1.0:
        knots.append((1.0, 1.0))
    return tuple(knots)


def validate_knots(value: object) -> Knots:
    """Knots from untrusted input; raises ValueError with a message naming the problem."""
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise ValueError("must be a list of at least 2 [raw, score] pairs")
    out: list[tuple[float, float]] = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, int | float) for v in pair)):
            raise ValueError(f"[{i}] must be a [raw, score] pair of numbers")
        raw, score = float(pair[0]), float(pair[1])
        if not (0.0 <= raw <= 1.0 and 0.0 <= score <= 1.0):
            raise ValueError(f"[{i}] both numbers must be between 0 and 1")
        if out and (raw <= out[-1][0] or score < out[-1][1]):
            raise ValueError(f"[{i}] raw scores must increase and scores never decrease")
        out.append((raw, score))
    return tuple(out)
