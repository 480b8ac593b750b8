"""The cascade's report section: cascade.html (standalone: inline CSS and SVG, no script, no
network) and cascade.md (the same tables for a pull request, with tables where the HTML has plots).

It answers the questions a reviewer of a tiered deployment asks, in order: how does the cascade
compare with each tier alone, which tier answers how much and how well, is each tier's confidence
calibrated (reliability before and after), and what other threshold choices would have cost (the
Pareto curve). Every figure carries its unit and split; estimated latencies their ± interval and
source. This module lays the two pages out: their rows and sentences come from :mod:`._tables`, the
plots from :mod:`._plots`, and the page frame is report.html's (:mod:`edgefit.report._page`), so
both read alike.
"""

from __future__ import annotations

from edgefit.cascade._card import pct
from edgefit.cascade._config import routing_words
from edgefit.cascade._plots import mix_plot, pareto_plot, reliability_plot
from edgefit.cascade._tables import (
    COMPARE_HEAD,
    TIER_HEAD,
    compare_rows,
    headline,
    latency_note,
    ms,
    page_title,
    provenance_rows,
    tier_rows,
)
from edgefit.cascade._types import CascadeResult, TierResult
from edgefit.report._md import table
from edgefit.report._page import html_table, page_head, sections_html
from edgefit.report._svg import esc


def render_cascade_html(result: CascadeResult) -> str:
    """cascade.html for ``result``: one self-contained page (see the module docstring)."""
    num = (3, 4, 5)  # the latency, energy and ECE cells wrap: they carry their sources
    reliability = (
        "".join(reliability_plot(t) for t in result.tiers if t.calibration is not None)
        or '<p class="note">No tier has a calibrator.</p>'
    )
    sections = [
        (
            "tiers",
            "Tiers (report split)",
            html_table(TIER_HEAD, [[esc(c) for c in r] for r in tier_rows(result)], num=num)
            + f'<p class="note">{esc(routing_words(result))}</p>',
        ),
        (
            "compare",
            "Cascade vs each tier alone (report split)",
            html_table(
                COMPARE_HEAD,
                [[esc(c) for c in r] for r in compare_rows(result)],
                num=tuple(range(1, 7)),
            )
            + f'<p class="note">{esc(latency_note(result))}</p>',
        ),
        (
            "mix",
            "Routing mix and threshold choices",
            f'<div class="plots"><figure>{mix_plot(result)}<figcaption>Share of requests each '
            "tier answers at the "
            "chosen thresholds (report split); the last tier is "
            "highlighted.</figcaption></figure>"
            f"{pareto_plot(result)}</div>",
        ),
        ("reliability", "Reliability per tier", f'<div class="plots">{reliability}</div>'),
        (
            "provenance",
            "Data and provenance",
            html_table(["field", "value"], [[esc(a), esc(b)] for a, b in provenance_rows(result)]),
        ),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    return (
        page_head(page_title(result))
        + f'<p class="headline">{esc(headline(result))}</p><nav>{nav}</nav></header>'
        + sections_html(sections)
        + f'<footer><p class="note">schema {esc(result.schema)}.</p></footer></body></html>\n'
    )


def _reliability_md(tier: TierResult) -> list[str]:
    """One row per confidence bin; before and after calibration the same request can sit in
    different bins, so each side gives its own count (a dash where that side has no request in the
    bin)."""
    cal = tier.calibration
    assert cal is not None  # only calibrated tiers get the table (see render_cascade_md)
    before = {round(b.lo, 6): b for b in cal.reliability_before}
    after = {round(a.lo, 6): a for a in cal.reliability_after}

    def side(b) -> list:
        return (
            ["–", "–", "–"]
            if b is None
            else [b.count, f"{b.mean_confidence:.3f}", f"{b.accuracy:.3f}"]
        )

    rows = [
        [
            f"[{lo:.2f}, {(before.get(lo) or after[lo]).hi:.2f})",
            *side(before.get(lo)),
            *side(after.get(lo)),
        ]
        for lo in sorted(set(before) | set(after))
    ]
    return [
        f"**{tier.spec.name}** ({cal.calibrator.method}; ECE {cal.ece_before:.4f} → "
        f"{cal.ece_after:.4f}, "
        f"report split):",
        "",
        *table(
            [
                "confidence bin",
                "samples before",
                "mean confidence before",
                "accuracy before",
                "samples after",
                "mean confidence after",
                "accuracy after",
            ],
            rows,
        ),
        "",
    ]


def render_cascade_md(result: CascadeResult) -> str:
    """cascade.md for ``result``: the same content as cascade.html, tables where the page has
    plots."""
    chosen = result.chosen
    pareto = [
        [
            ", ".join(f"{t:.3g}" for t in p.thresholds)
            + (" ← chosen" if p.thresholds == chosen.thresholds else ""),
            pct(p.accuracy),
            ms(p.expected_latency_s),
            pct(p.cloud_share),
            pct(r.accuracy),
            ms(r.expected_latency_s),
        ]
        for p, r in zip(result.pareto, result.pareto_report)
    ]
    mix = [
        [t.spec.name, pct(result.reported.shares[k]), pct(chosen.shares[k])]
        for k, t in enumerate(result.tiers)
    ]
    lines = [
        f"# {page_title(result)}",
        "",
        headline(result),
        "",
        "## Tiers (report split)",
        "",
        *table(TIER_HEAD, tier_rows(result)),
        "",
        routing_words(result),
        "",
        "## Cascade vs each tier alone (report split)",
        "",
        *table(COMPARE_HEAD, compare_rows(result)),
        "",
        latency_note(result),
        "",
        "## Routing mix",
        "",
        *table(["tier", "share answered (report split)", "share answered (select split)"], mix),
        "",
        "## Reliability per tier",
        "",
    ]
    for t in result.tiers:
        if t.calibration is not None:
            lines += _reliability_md(t)
    lines += [
        "## Threshold choices",
        "",
        "Chosen on the select split, re-measured on the report split.",
        "",
        *table(
            [
                "thresholds",
                "accuracy (select)",
                "expected latency (select)",
                "cloud share (select)",
                "accuracy (report)",
                "expected latency (report)",
            ],
            pareto,
        ),
        "",
        "## Data and provenance",
        "",
        *table(["field", "value"], [list(r) for r in provenance_rows(result)]),
    ]
    return "\n".join(lines) + "\n"
