"""Bar charts rendered on the server as inline SVG (no chart library, no script).

Python computes the geometry (`BarChart`: bars, ticks, legend, marker lines, all in SVG user
units); the markup is the Jinja macro `bar_chart` in templates/charts/bars.html, escaped by
Jinja's autoescape like every other page. Two kinds of chart use it: the score distribution of
one brief under two rule sets (admin what-if, with the thresholds as vertical lines) and the
monthly series of the public performance dashboard. Every chart's page shows its numbers in a
table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from matcher import Matcher
from models.types import Brief

BINS = 20
DEPTH = 1000  # scores of the best DEPTH sellers passing the hard filters
WIDTH, HEIGHT = 680, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 32, 48
ACTIVE_COLOUR = "#1d4f91"  # dark blue
CANDIDATE_COLOUR = "#b34700"  # dark orange: distinct from blue for colour-blind readers too
# Series colours of the dashboard, in order: blue, orange, green-teal; each has at least 4.5:1
# contrast against white, and neighbours differ in lightness too.
SERIES_COLOURS = (ACTIVE_COLOUR, CANDIDATE_COLOUR, "#00695c", "#6a1b9a")
_CHAR_W = 7.0  # approximate width of a 12-px label character, for laying out the legend
_MAX_X_LABELS = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # the bar's tooltip: what it counts and its value


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical line across the plot (a threshold)."""

    x: float
    colour: str
    dash: str
    label: str


@dataclass(frozen=True, slots=True)
class Key:
    x: float
    colour: str
    text: str
    swatch: bool = True  # False: a line of text only (e.g. how to read the marker lines)


@dataclass(frozen=True, slots=True)
class BarChart:
    id: str  # unique on the page: the title and description ids derive from it
    title: str
    description: str
    x_label: str
    y_label: str
    bars: tuple[Bar, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]  # each with a grid line at its y
    keys: tuple[Key, ...] = ()
    markers: tuple[Marker, ...] = ()
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM

    @property
    def base_y(self) -> float:
        return self.height - self.bottom

    @property
    def plot_right(self) -> float:
        return self.width - self.right


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no figure for that group (drawn as no bar)
    colour: str = ""


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value - 1e-12:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2g}"


def _keys(series: Sequence[Series], colours: Sequence[str], start: float) -> list[Key]:
    keys, x = [], start
    for s, colour in zip(series, colours, strict=True):
        keys.append(Key(x=x, colour=colour, text=s.name))
        x += 16 + _CHAR_W * len(s.name) + 18
    return keys


def grouped_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    groups: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: str = "{:g}",
    y_max: float | None = None,
) -> BarChart:
    """One cluster of bars per group (e.g. a month), one bar per series in each cluster."""
    colours = [s.colour or SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, s in enumerate(series)]
    peak = max([0.0, *(float(v) for s in series for v in s.values if v is not None)])
    top_value = y_max if y_max is not None else nice_ceiling(peak)
    plot_h = HEIGHT - TOP - BOTTOM
    base_y = TOP + plot_h
    n = max(1, len(groups))
    group_w = (WIDTH - LEFT - RIGHT) / n
    pad = min(group_w * 0.15, 12.0)
    bar_w = max(1.0, (group_w - 2 * pad) / max(1, len(series)))
    bars: list[Bar] = []
    for g, group in enumerate(groups):
        for j, (s, colour) in enumerate(zip(series, colours, strict=True)):
            value = s.values[g]
            if value is None or value <= 0:
                continue
            h = min(1.0, float(value) / top_value) * plot_h
            bars.append(Bar(
                x=round(LEFT + g * group_w + pad + j * bar_w, 1), y=round(base_y - h, 1),
                width=round(max(1.0, bar_w - 1), 1), height=round(h, 1), colour=colour,
                label=f"{group}, {s.name}: {fmt.format(value)}",
            ))
    step = max(1, math.ceil(n / _MAX_X_LABELS))
    x_ticks = [
        Tick(x=round(LEFT + (g + 0.5) * group_w, 1), y=base_y + 16, text=group)
        for g, group in enumerate(groups) if g % step == 0
    ]
    y_ticks = [
        Tick(x=LEFT - 6, y=round(base_y - frac * plot_h, 1), text=_number(top_value * frac))
        for frac in (0.5, 1.0)
    ]
    keys = _keys(series, colours, LEFT + 8) if len(series) > 1 else []
    return BarChart(
        id=chart_id, title=title, description=description, x_label=x_label, y_label=y_label,
        bars=tuple(bars), x_ticks=tuple(x_ticks), y_ticks=tuple(y_ticks), keys=tuple(keys),
    )


# The score distribution of the admin what-if preview.


@dataclass(frozen=True)
class Distribution:
    counts_active: list[int]
    counts_candidate: list[int]
    shortlist_active: float
    shortlist_candidate: float
    alert_active: float
    alert_candidate: float
    n_active: int
    n_candidate: int


def _scores(matcher: Matcher, brief: Brief) -> list[float]:
    # Threshold 0: the distribution shows every seller passing the hard filters, so the
    # threshold line has something on both sides.
    everyone = matcher.with_rules(replace(matcher.rules_, shortlist_threshold=0.0))
    return [m.score for m in everyone.match(brief, top_k=DEPTH)]


def _histogram(scores: list[float]) -> list[int]:
    counts = [0] * BINS
    for s in scores:
        counts[min(BINS - 1, max(0, int(s * BINS)))] += 1
    return counts


def distribution(active: Matcher, candidate: Matcher, brief: Brief) -> Distribution:
    ra = active.rules_.for_category(brief.category)
    rc = candidate.rules_.for_category(brief.category)
    sa, sc = _scores(active, brief), _scores(candidate, brief)
    return Distribution(
        counts_active=_histogram(sa),
        counts_candidate=_histogram(sc),
        shortlist_active=ra.shortlist_threshold,
        shortlist_candidate=rc.shortlist_threshold,
        alert_active=ra.alert_threshold,
        alert_candidate=rc.alert_threshold,
        n_active=len(sa),
        n_candidate=len(sc),
    )


def _x(score: float) -> float:
    return LEFT + score * (WIDTH - LEFT - RIGHT)


def histogram(d: Distribution, title: str) -> BarChart:
    """The score histogram: bins of 0.05 on a 0..1 axis, thresholds as dashed/dotted lines."""
    peak = max([1, *d.counts_active, *d.counts_candidate])
    plot_h = HEIGHT - TOP - BOTTOM
    base_y = TOP + plot_h
    bin_w = (WIDTH - LEFT - RIGHT) / BINS
    bar_w = bin_w / 2 - 1
    bars: list[Bar] = []
    for i in range(BINS):
        for j, (counts, colour, name) in enumerate((
            (d.counts_active, ACTIVE_COLOUR, "active"),
            (d.counts_candidate, CANDIDATE_COLOUR, "candidate"),
        )):
            if counts[i] == 0:
                continue
            h = counts[i] / peak * plot_h
            bars.append(Bar(
                x=round(LEFT + i * bin_w + 1 + j * bar_w, 1), y=round(base_y - h, 1),
                width=round(bar_w, 1), height=round(h, 1), colour=colour,
                label=f"{i / BINS:.2f}–{(i + 1) / BINS:.2f}, {name}: {counts[i]} sellers",
            ))
    markers = tuple(
        Marker(x=round(_x(value), 1), colour=colour, dash=dash, label=f"{label} {value:.2f}")
        for value, colour, dash, label in (
            (d.shortlist_active, ACTIVE_COLOUR, "6 4", "shortlist (active)"),
            (d.shortlist_candidate, CANDIDATE_COLOUR, "6 4", "shortlist (candidate)"),
            (d.alert_active, ACTIVE_COLOUR, "2 3", "alert (active)"),
            (d.alert_candidate, CANDIDATE_COLOUR, "2 3", "alert (candidate)"),
        )
    )
    return BarChart(
        id="chart",
        title=title,
        description="Histogram of seller scores from 0 to 1 under the active rules (blue) and "
        "the candidate rules (orange); vertical lines mark the shortlist threshold (dashed) and "
        "the alert threshold (dotted) of each. The table below gives the same numbers.",
        x_label="score",
        y_label="sellers",
        bars=tuple(bars),
        x_ticks=tuple(Tick(x=round(_x(i / 10), 1), y=base_y + 16, text=f"{i / 10:.1f}")
                      for i in range(0, 11, 2)),
        y_ticks=tuple(Tick(x=LEFT - 6, y=round(base_y - frac * plot_h, 1),
                           text=str(round(peak * frac))) for frac in (0.5, 1.0)),
        keys=(
            Key(x=LEFT + 8, colour=ACTIVE_COLOUR, text=f"active rules ({d.n_active} sellers)"),
            Key(x=LEFT + 210, colour=CANDIDATE_COLOUR, text=f"candidate ({d.n_candidate} sellers)"),
            Key(x=LEFT + 402, colour="#222", text="- - shortlist   ··· alert threshold",
                swatch=False),
        ),
        markers=markers,
    )


def bins_table(d: Distribution) -> list[dict[str, object]]:
    """The chart's numbers, for the accessible table beside it."""
    return [
        {
            "range": f"{i / BINS:.2f}–{(i + 1) / BINS:.2f}",
            "active": d.counts_active[i],
            "candidate": d.counts_candidate[i],
        }
        for i in range(BINS)
        if d.counts_active[i] or d.counts_candidate[i]
    ]
