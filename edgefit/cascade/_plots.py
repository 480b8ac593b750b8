"""The cascade section's plots (inline SVG): reliability before and after calibration per tier,
threshold choices as expected latency against accuracy (the Pareto front), and the routing mix.

They use report.html's plotting helpers and colours, so both pages read alike.
"""

from __future__ import annotations

from edgefit.cascade._card import pct
from edgefit.cascade._config import objective_words
from edgefit.cascade._tables import latency_note, ms
from edgefit.cascade._types import CascadeResult, ReliabilityBin, TierResult
from edgefit.report import _svg
from edgefit.report._svg import BASELINE, FRONTIER, INK, OTHER, WINNER, Axis, Frame, esc


def reliability_plot(tier: TierResult) -> str:
    """``tier``'s reliability diagram, raw confidence before calibration and calibrated after,
    against the diagonal (a calibrated tier's thresholds mean what they say)."""
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


def pareto_plot(result: CascadeResult) -> str:
    """Every threshold choice on the front (select split) and re-measured (report split), the
    chosen one starred, with the budget and the accuracy floor as rules."""
    pts, rep_pts, chosen = result.pareto, result.pareto_report, result.chosen
    lat = [p.expected_latency_s for p in (*pts, *rep_pts, chosen)]
    budget = result.objective.latency_budget_s
    xs = lat + ([budget] if budget else [])
    log = min(xs) > 0 and max(xs) / min(xs) > 50  # µs-scale device tiers next to a cloud tier
    x = Axis.fit(
        xs,
        "expected latency per request (from the tiers' p50)" + (", log scale" if log else ""),
        fmt=ms,
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
                f"{pct(p.accuracy)}, expected latency {ms(p.expected_latency_s)}, cloud share "
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
        f.rule(x=budget, label=f"budget {ms(budget)}", color=FRONTIER)
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
        f"expected latency {ms(chosen.expected_latency_s)} (select split)",
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
        "report split. " + _off_front(result) + latency_note(result)
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
        f"{pct(p.accuracy)} at {ms(p.expected_latency_s)} on the select split, the chosen "
        f"{pct(chosen.accuracy)} at {ms(chosen.expected_latency_s)}; the search's objective and "
        "tie rule "
        f"({objective_words(result.objective)}) picked them. "
    )


def mix_plot(result: CascadeResult) -> str:
    """Bars: the share of requests each tier answers at the chosen thresholds (report split)."""
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
