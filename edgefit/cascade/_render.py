"""The cascade's report section: cascade.html (standalone: inline CSS and SVG, no script, no
network) and cascade.md (the same tables for a pull request, with tables where the HTML has plots).

It answers the questions a reviewer of a tiered deployment asks, in order: how does the cascade
compare with each tier alone, which tier answers how much and how well, is each tier's confidence
calibrated (reliability before and after), and what other threshold choices would have cost (the
Pareto curve). Every figure carries its unit and split; estimated latencies their ± interval and
source. The page reuses report.html's style and plotting helpers so both read alike.
"""

from __future__ import annotations

from edgefit.cascade._card import pct, quantity_text, value_text
from edgefit.cascade._config import objective_words, routing_words
from edgefit.cascade._types import CascadeResult, OperatingPoint, ReliabilityBin, TierResult
from edgefit.report import _svg
from edgefit.report._md import table
from edgefit.report._page import CSP, CSS, html_table
from edgefit.report._svg import BASELINE, FRONTIER, INK, OTHER, WINNER, Axis, Frame, esc


def _title(result: CascadeResult) -> str:
    return "edgefit cascade: " + " → ".join(t.spec.name for t in result.tiers)


def _ms(v: float) -> str:
    return value_text(v, "s")


def _usd(v: float) -> str:
    return f"${v:.4g}"


def _headline(result: CascadeResult) -> str:
    rep = result.reported
    return (
        f"Cascade accuracy {pct(rep.accuracy)} at an expected latency of "
        f"{_ms(rep.expected_latency_s)}"
        f"{spread(result.tiers)} (p99 {_ms(rep.p99_latency_s)}), cloud share "
        f"{pct(rep.cloud_share)}, "
        f"{_usd(rep.usd_per_1000)} per 1,000 requests — report split, {rep.samples} samples. "
        f"Objective: {objective_words(result.objective)}."
    )


def _ece(tier: TierResult) -> str:
    cal = tier.calibration
    return (
        "– (no calibrator)"
        if cal is None
        else f"{cal.ece_before:.4f} → {cal.ece_after:.4f} ({cal.calibrator.method})"
    )


def tier_rows(result: CascadeResult) -> list[list[str]]:
    """Per tier: threshold, share answered, accuracy on them and alone, latency, energy, ECE
    (report split)."""
    rep = result.reported
    return [
        [
            t.spec.name,
            t.spec.target,
            "always answers" if t.threshold is None else f"≥ {t.threshold:.4g}",
            pct(rep.shares[k]),
            pct(rep.tier_accuracy[k]),
            pct(t.accuracy_alone),
            quantity_text(t.cost.latency_p50),
            quantity_text(t.cost.energy),
            _ece(t),
        ]
        for k, t in enumerate(result.tiers)
    ]


TIER_HEAD = [
    "tier",
    "target",
    "threshold (calibrated confidence)",
    "share answered",
    "accuracy on them",
    "accuracy alone",
    "latency p50 (source)",
    "energy per inference (source)",
    "ECE before → after",
]
COMPARE_HEAD = [
    "configuration",
    "accuracy",
    "expected latency",
    "p99 latency",
    "cloud share",
    "USD per 1,000 requests",
    "expected energy per request",
]


def spread(tiers: tuple[TierResult, ...] | list[TierResult]) -> str:
    """' ± up to 30%' when any of ``tiers``' p50 latencies is an estimate with an error bar, else
    ''."""
    bars = [t.cost.latency_p50.interval for t in tiers if t.cost.latency_p50.interval is not None]
    return f" ± up to {100 * max(bars):.3g}%" if bars else ""


def _compare_row(label: str, p: OperatingPoint, tiers: tuple[TierResult, ...]) -> list[str]:
    energy = "–" if p.expected_energy_j is None else value_text(p.expected_energy_j, "J")
    return [
        label,
        pct(p.accuracy),
        _ms(p.expected_latency_s) + spread(tiers),
        _ms(p.p99_latency_s) + spread(tiers),
        pct(p.cloud_share),
        _usd(p.usd_per_1000),
        energy,
    ]


def compare_rows(result: CascadeResult) -> list[list[str]]:
    """The chosen cascade, then each tier answering everything by itself (report split); a latency
    carries the widest error bar of the tiers it can pass through."""
    rows = [_compare_row("cascade (chosen thresholds)", result.reported, result.tiers)]
    return rows + [
        _compare_row(f"{t.spec.name} alone", p, (t,)) for t, p in zip(result.tiers, result.alone)
    ]


def _latency_note(result: CascadeResult) -> str:
    sources = "; ".join(
        f"{t.spec.name}: {t.cost.latency_p50.source}"
        + (
            ""
            if t.cost.latency_p50.interval is None
            else f" ± {100 * t.cost.latency_p50.interval:.3g}%"
        )
        for t in result.tiers
    )
    return (
        "A request that stops at tier k pays the latency of tiers 1..k; expected latency is the "
        "share-weighted "
        f"sum, so it carries the tiers' sources and error bars: {sources}."
    )


# --- plots ---------------------------------------------------------------------------------------


def _reliability_plot(tier: TierResult) -> str:
    cal = tier.calibration
    assert cal is not None  # only calibrated tiers are plotted (see render_cascade_html)
    unit = Axis(
        0.0,
        1.0,
        "mean confidence in the bin (raw before, calibrated after)",
        fmt=lambda v: f"{v:.1f}",
    )
    f = Frame(
        f"reliability-{tier.spec.name}",
        f"{tier.spec.name}: reliability before and after calibration",
        unit,
        Axis(0.0, 1.0, "accuracy in the bin", fmt=lambda v: f"{v:.1f}"),
        width=420,
        height=340,
    )
    f.polyline([(0.0, 0.0), (1.0, 1.0)], color=INK, width=1, dash="4 3", cls="diagonal")

    def curve(bins: tuple[ReliabilityBin, ...], color: str, label: str, hollow: bool) -> None:
        used = [b for b in bins if b.count > 0]
        f.polyline(
            [(b.mean_confidence, b.accuracy) for b in used],
            color=color,
            cls=f"reliability-{label}",
        )
        for b in used:
            f.point(
                b.mean_confidence,
                b.accuracy,
                f"{label}: confidence [{b.lo:.2f}, {b.hi:.2f}), {b.count} samples, "
                f"mean confidence {b.mean_confidence:.3f}, accuracy {b.accuracy:.3f}",
                color=color,
                size=4,
                hollow=hollow,
                cls=f"pt {label}",
            )

    curve(cal.reliability_before, OTHER, "before", True)
    curve(cal.reliability_after, FRONTIER, "after", False)
    f.legend(
        [
            (f"before (ECE {cal.ece_before:.3f})", OTHER, "hollow"),
            (f"after (ECE {cal.ece_after:.3f})", FRONTIER, "dot"),
            ("perfect", INK, "dash"),
        ]
    )
    width = (cal.reliability_after or cal.reliability_before)[0]
    shown = round(1 / (width.hi - width.lo)) if width.hi > width.lo else cal.bins
    caption = (
        f"{tier.spec.name}, report split, {shown} equal-width bins (ECE uses {cal.bins}); "
        f"calibrated by {cal.calibrator.method} "
        f"on the calibration split ({cal.calibration_samples} samples). On the diagonal, "
        "confidence is "
        "accuracy."
    )
    return f"<figure>{f.svg()}<figcaption>{esc(caption)}</figcaption></figure>"


def _pareto_plot(result: CascadeResult) -> str:
    pts, rep_pts, chosen = result.pareto, result.pareto_report, result.chosen
    lat = [p.expected_latency_s for p in (*pts, *rep_pts, chosen)]
    budget = result.objective.latency_budget_s
    xs = lat + ([budget] if budget else [])
    log = min(xs) > 0 and max(xs) / min(xs) > 50  # µs-scale device tiers next to a cloud tier
    x = Axis.fit(
        xs,
        "expected latency per request (from the tiers' p50)" + (", log scale" if log else ""),
        fmt=_ms,
        log=log,
    )
    y = Axis.fit(
        [p.accuracy for p in (*pts, *rep_pts, chosen)]
        + [f for f in (result.objective.accuracy_floor,) if f is not None],
        "accuracy",
        fmt=lambda v: f"{100 * v:.1f}%",
        floor=0.002,
    )
    f = Frame("pareto-plot", "threshold choices: expected latency vs accuracy", x, y)
    front = sorted(pts, key=lambda p: p.expected_latency_s)
    f.polyline(
        [(p.expected_latency_s, p.accuracy) for p in front],
        color=FRONTIER,
        cls="frontier-line",
        step=True,
    )
    for split, group, hollow in (("select", front, False), ("report", rep_pts, True)):
        for p in group:
            tip = (
                f"thresholds {', '.join(f'{t:.3g}' for t in p.thresholds)} ({split} split): "
                "accuracy "
                f"{pct(p.accuracy)}, expected latency {_ms(p.expected_latency_s)}, cloud share "
                f"{pct(p.cloud_share)}"
            )
            f.point(
                p.expected_latency_s,
                p.accuracy,
                tip,
                color=FRONTIER if not hollow else BASELINE,
                hollow=hollow,
                cls=f"pt {split}",
            )
    if budget:
        f.rule(x=budget, label=f"budget {_ms(budget)}", color=FRONTIER)
    if result.objective.accuracy_floor is not None:
        f.rule(
            y=result.objective.accuracy_floor,
            label=f"floor {pct(result.objective.accuracy_floor)}",
            color="#52606d",
        )
    f.point(
        chosen.expected_latency_s,
        chosen.accuracy,
        f"chosen: thresholds {', '.join(f'{t:.3g}' for t in chosen.thresholds)}, accuracy "
        f"{pct(chosen.accuracy)}, "
        f"expected latency {_ms(chosen.expected_latency_s)} (select split)",
        shape="star",
        color=WINNER,
        size=11,
        cls="pt winner",
    )
    f.legend(
        [
            ("Pareto front (select split)", FRONTIER, "dot"),
            ("same thresholds (report split)", BASELINE, "hollow"),
            ("chosen", WINNER, "star"),
        ]
    )
    caption = (
        "Each point is one set of thresholds: chosen on the select split, re-measured on the "
        "report split. " + _off_front(result) + _latency_note(result)
    )
    return f"<figure>{f.svg()}<figcaption>{esc(caption)}</figcaption></figure>"


def _off_front(result: CascadeResult) -> str:
    """Say so when the chosen thresholds are not on the front (the search's tie rule or a budget
    other than latency can pick a point another choice dominates in latency and accuracy), with the
    figures."""
    chosen = result.chosen
    better = [
        p
        for p in result.pareto
        if p.thresholds != chosen.thresholds
        and p.accuracy >= chosen.accuracy
        and p.expected_latency_s < chosen.expected_latency_s
    ]
    if not better or any(p.thresholds == chosen.thresholds for p in result.pareto):
        return ""
    p = min(better, key=lambda p: p.expected_latency_s)
    return (
        f"The chosen thresholds lie off the front: {', '.join(f'{t:.3g}' for t in p.thresholds)} "
        "reach "
        f"{pct(p.accuracy)} at {_ms(p.expected_latency_s)} on the select split, the chosen "
        f"{pct(chosen.accuracy)} at {_ms(chosen.expected_latency_s)}; the search's objective and "
        "tie rule "
        f"({objective_words(result.objective)}) picked them. "
    )


def _mix_plot(result: CascadeResult) -> str:
    rep, sel = result.reported, result.chosen
    rows = [
        (
            t.spec.name,
            rep.shares[k],
            f"{t.spec.name}: {pct(rep.shares[k])} of requests on the report split "
            f"({pct(sel.shares[k])} on the select split), accuracy on them "
            f"{pct(rep.tier_accuracy[k])}",
        )
        for k, t in enumerate(result.tiers)
    ]
    return _svg.hbars(
        "routing-mix",
        "share of requests each tier answers (report split)",
        rows,
        fmt=pct,
        highlight=result.tiers[-1].spec.name,
    )


# --- pages ---------------------------------------------------------------------------------------


def render_cascade_html(result: CascadeResult) -> str:
    """cascade.html for ``result``: one self-contained page (see the module docstring)."""
    num = (3, 4, 5)  # the latency, energy and ECE cells wrap: they carry their sources
    reliability = (
        "".join(_reliability_plot(t) for t in result.tiers if t.calibration is not None)
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
            + f'<p class="note">{esc(_latency_note(result))}</p>',
        ),
        (
            "mix",
            "Routing mix and threshold choices",
            f'<div class="plots"><figure>{_mix_plot(result)}<figcaption>Share of requests each '
            "tier answers at the "
            "chosen thresholds (report split); the last tier is "
            "highlighted.</figcaption></figure>"
            f"{_pareto_plot(result)}</div>",
        ),
        ("reliability", "Reliability per tier", f'<div class="plots">{reliability}</div>'),
        (
            "provenance",
            "Data and provenance",
            html_table(["field", "value"], [[esc(a), esc(b)] for a, b in _provenance(result)]),
        ),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{html}</section>'
        for sid, title, html in sections
    )
    title = _title(result)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><header><h1>{esc(title)}</h1>"
        f'<p class="headline">{esc(_headline(result))}</p><nav>{nav}</nav></header>{body}'
        f'<footer><p class="note">schema {esc(result.schema)}.</p></footer></body></html>\n'
    )


def _provenance(result: CascadeResult) -> list[tuple[str, str]]:
    rows = [("data", result.data_source), ("seed", str(result.seed))]
    rows += [(f"split: {name}", f"{count:,} samples") for name, count in result.splits.items()]
    for key, value in result.provenance.items():
        if key == "seed":
            continue
        if isinstance(value, dict):
            rows += [(f"{key}: {k}", str(v)) for k, v in value.items()]
        else:
            rows.append((key, str(value)))
    return rows


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
            _ms(p.expected_latency_s),
            pct(p.cloud_share),
            pct(r.accuracy),
            _ms(r.expected_latency_s),
        ]
        for p, r in zip(result.pareto, result.pareto_report)
    ]
    mix = [
        [t.spec.name, pct(result.reported.shares[k]), pct(chosen.shares[k])]
        for k, t in enumerate(result.tiers)
    ]
    lines = [
        f"# {_title(result)}",
        "",
        _headline(result),
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
        _latency_note(result),
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
        *table(["field", "value"], [list(r) for r in _provenance(result)]),
    ]
    return "\n".join(lines) + "\n"
