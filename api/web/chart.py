"""Score distribution of one brief under two rule sets, as inline SVG rendered on the server
(no chart library, no script): a histogram per rule set with the thresholds as vertical lines.

The markup is built with explicit escaping (markupsafe) and returned as Markup for Jinja."""

from __future__ import annotations

from dataclasses import dataclass, replace

from markupsafe import Markup, escape

from matcher import Matcher
from models.types import Brief

BINS = 20
DEPTH = 1000  # scores of the best DEPTH sellers passing the hard filters
WIDTH, HEIGHT = 680, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 44
ACTIVE_COLOUR = "#1d4f91"  # dark blue
CANDIDATE_COLOUR = "#b34700"  # dark orange: distinct from blue for colour-blind readers too


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


def svg(d: Distribution, title: str) -> Markup:
    peak = max([1, *d.counts_active, *d.counts_candidate])
    plot_h = HEIGHT - TOP - BOTTOM
    bin_w = (WIDTH - LEFT - RIGHT) / BINS
    bar_w = bin_w / 2 - 1
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="chart-title chart-desc" class="chart">',
        f'<title id="chart-title">{escape(title)}</title>',
        '<desc id="chart-desc">Histogram of seller scores from 0 to 1 under the active rules '
        "(blue) and the candidate rules (orange); vertical lines mark the shortlist threshold "
        "(dashed) and the alert threshold (dotted) of each. The table below gives the same "
        "numbers.</desc>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    # Axes and ticks.
    base_y = TOP + plot_h
    parts.append(
        f'<line x1="{LEFT}" y1="{base_y}" x2="{WIDTH - RIGHT}" y2="{base_y}" stroke="#222"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base_y}" stroke="#222"/>'
    )
    for i in range(0, 11, 2):
        x = _x(i / 10)
        parts.append(
            f'<text x="{x:.1f}" y="{base_y + 16}" font-size="12" text-anchor="middle" '
            f'fill="#222">{i / 10:.1f}</text>'
        )
    for frac in (0.5, 1.0):
        y = base_y - frac * plot_h
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="#222">{round(peak * frac)}</text>'
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
        )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" font-size="12" '
        'text-anchor="middle" fill="#222">score</text>'
        f'<text x="12" y="{TOP + plot_h / 2}" font-size="12" text-anchor="middle" fill="#222" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2})">sellers</text>'
    )
    # Bars.
    for i in range(BINS):
        for j, (counts, colour) in enumerate(
            ((d.counts_active, ACTIVE_COLOUR), (d.counts_candidate, CANDIDATE_COLOUR))
        ):
            h = counts[i] / peak * plot_h
            if counts[i] == 0:
                continue
            x = LEFT + i * bin_w + 1 + j * (bar_w + 0)
            parts.append(
                f'<rect x="{x:.1f}" y="{base_y - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"/>'
            )
    # Threshold lines.
    for value, colour, dash, label in (
        (d.shortlist_active, ACTIVE_COLOUR, "6 4", "shortlist (active)"),
        (d.shortlist_candidate, CANDIDATE_COLOUR, "6 4", "shortlist (candidate)"),
        (d.alert_active, ACTIVE_COLOUR, "2 3", "alert (active)"),
        (d.alert_candidate, CANDIDATE_COLOUR, "2 3", "alert (candidate)"),
    ):
        x = _x(value)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{base_y}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="{dash}"><title>{escape(label)} '
            f"{value:.2f}</title></line>"
        )
    # Legend.
    parts.append(
        f'<rect x="{LEFT + 8}" y="6" width="12" height="12" fill="{ACTIVE_COLOUR}"/>'
        f'<text x="{LEFT + 24}" y="16" font-size="12" fill="#222">active rules '
        f"({d.n_active} sellers)</text>"
        f'<rect x="{LEFT + 210}" y="6" width="12" height="12" fill="{CANDIDATE_COLOUR}"/>'
        f'<text x="{LEFT + 226}" y="16" font-size="12" fill="#222">candidate '
        f"({d.n_candidate} sellers)</text>"
        f'<text x="{LEFT + 410}" y="16" font-size="12" fill="#222">- - shortlist   '
        "··· alert threshold</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


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
