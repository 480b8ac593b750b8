"""The chosen model against the baseline: the headline sentence, the summary table (metric,
baseline, chosen, change, source) and the final re-measurement's protocol in sentences.

Every value keeps its unit and every row names where its number came from (measured, estimated
with its source and error bar, counted, or the iteration-tax model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgefit import _format as fmt
from edgefit.report._candidates import accuracy_text, latency_source

if TYPE_CHECKING:
    from edgefit.records import DoneCandidate, FailedCandidate, Results, TimingRecord

ACCURACY_NAME = {"top1": "top-1 accuracy", "agreement": "top-1 agreement with the original"}

# metric, value of a candidate, how to show it, change ("faster", "" a plain ratio, None a
# difference or nothing), source
Spec = tuple[str, Callable[["DoneCandidate"], Any], Callable[[Any], str], str | None, str]


def _ratio(new: float, old: float, *, faster: bool = False) -> str:
    if not old or not new or not (math.isfinite(new) and math.isfinite(old)):
        return "–"
    r = new / old
    return f"{r:.2f}×" + (f" ({1 / r:.2f}× faster)" if faster and r < 1 else "")


def _specs(win: DoneCandidate) -> list[Spec]:
    est_source = f"estimated, {win.estimate.source}, ±{win.estimate.error:.0%}"
    acc = win.accuracy
    specs: list[Spec] = [
        (
            ACCURACY_NAME.get(acc.kind, "accuracy"),
            lambda c: c.accuracy.value,
            lambda v: f"{v:.4f}",
            None,
            f"measured ({acc.label}; {acc.data or ''})",
        ),
        (
            "latency p50",
            lambda c: c.latency.p50_s,
            fmt.seconds,
            "faster",
            latency_source(win),
        ),
        (
            "latency, final (interleaved)",
            lambda c: None if c.latency.final is None else c.latency.final.median_s,
            fmt.seconds,
            "faster",
            _final_source(win),
        ),
        (
            "latency p99",
            lambda c: c.latency.p99_s if c.latency.source == "measured" else None,
            fmt.seconds,
            None,
            latency_source(win),
        ),
        (
            "jitter (p99 − p50)",
            lambda c: c.latency.jitter_s if c.latency.source == "measured" else None,
            fmt.seconds,
            None,
            latency_source(win),
        ),
        ("energy per inference", lambda c: c.estimate.energy_j, fmt.joules, "", est_source),
        (
            "average power while running",
            lambda c: c.estimate.average_power_w,
            fmt.watts,
            "",
            est_source,
        ),
        (
            "weights",
            lambda c: c.estimate.weight_bytes,
            fmt.nbytes,
            "",
            "counted from the ONNX file",
        ),
        (
            "peak activations",
            lambda c: c.estimate.peak_activation_bytes,
            fmt.nbytes,
            "",
            "counted (tensor liveness)",
        ),
        (
            "iteration cycle",
            lambda c: c.iteration.days,
            lambda v: f"{v:g} days",
            "",
            "iteration tax (target's lifecycle and certification loop)",
        ),
        (
            "iteration cost",
            lambda c: c.iteration.usd,
            lambda v: f"${v:,.0f}",
            "",
            "iteration tax (target's certification cost per change)",
        ),
    ]
    if acc.kind == "sqnr":
        specs[0] = (
            "SQNR vs the original",
            lambda c: c.accuracy.value,
            lambda v: f"{v:.2f} dB",
            None,
            f"measured ({acc.data or ''})",
        )
    return specs


def summary_rows(
    base: DoneCandidate | None, win: DoneCandidate | None
) -> list[tuple[str, str, str, str, str]]:
    """(metric, baseline, chosen, change, source) for every metric either model has; the
    accuracy's change is a difference, a cost's a ratio (latency's also as 'faster')."""
    if win is None:
        return []

    def cell(
        c: DoneCandidate | None, get: Callable[[DoneCandidate], Any], show: Callable[[Any], str]
    ) -> tuple[str, Any]:
        v = None if c is None else get(c)
        return ("–", None) if v is None else (show(v), v)

    rows = []
    specs = _specs(win)
    for name, get, show, change, source in specs:
        wt, wv = cell(win, get, show)
        bt, bv = cell(base, get, show)
        if wv is None and bv is None:
            continue
        if change is None and get is specs[0][1] and wv is not None and bv is not None:
            delta = f"{wv - bv:+.4f}"
        elif change is not None and wv is not None and bv is not None:
            delta = _ratio(wv, bv, faster=change == "faster")
        else:
            delta = "–"
        rows.append((name, bt, wt, delta, source))
    return rows


def _final_source(c: DoneCandidate) -> str:
    f = c.latency.final
    if f is None:
        return ""
    return (
        "measured, interleaved with the other leaders after the search: median of "
        f"{len(f.round_medians_s)} "
        f"round medians, spread {f.spread:.1%}"
    )


def protocol_lines(res: Results, cands: dict[str, DoneCandidate | FailedCandidate]) -> list[str]:
    """The final re-measurement and how the pick used it, in sentences (none for older results)."""
    p = res.selection.protocol
    if p is None:
        return []

    def label(key: str) -> str:
        return cands[key].label if key in cands else key

    def figures(t: TimingRecord) -> str:
        first = f"; first {fmt.seconds(t.first_p50_s)}" if t.first_p50_s is not None else ""
        return (
            f"{label(t.key)} {fmt.seconds(t.median_s)} (spread {t.spread:.1%}, "
            f"{len(t.round_medians_s)} rounds{first})"
        )

    wait = p.cpu_wait_fraction
    threads = p.threads
    out = [
        "Final re-measurement: the fastest eligible candidates and the baseline timed again "
        "after the search, "
        f"interleaved (at least {p.rounds} rounds of {fmt.seconds(p.round_s or 0)} each, "
        f"at {threads} "
        f"thread{'s' * (threads != 1)}"
        + (f"; this process waited for a CPU {wait:.1%} of the time" if wait is not None else "")
        + "): "
        + "; ".join(figures(t) for t in sorted(p.candidates, key=lambda t: t.median_s))
        + ".",
        f"Rule: {p.rule}.",
    ]
    for tie in p.ties:
        out.append(
            f"Tie: {label(tie.key)} within {tie.difference:.1%} of {label(tie.with_)} "
            "(noise "
            f"{tie.noise:.1%}); chosen: {label(tie.winner)}."
        )
    return out


def headline(
    res: Results,
    cands: dict[str, DoneCandidate | FailedCandidate],
    win: DoneCandidate | None,
    base: DoneCandidate | None,
) -> str:
    """One sentence: what was chosen, how much faster than the baseline and by which measurement,
    and its accuracy against the floor (or why nothing qualified)."""
    sel = res.selection
    if win is None:
        best = cands.get(sel.best_found or "")
        return (
            f"No candidate qualified: {sel.reason}. Best found: {best.label if best else 'none'}."
        )
    parts = [f"Chosen: {win.label}"]
    if base and base.key != win.key:
        wf, bf = win.latency.final, base.latency.final
        w, b = (
            (wf.median_s, bf.median_s)
            if wf is not None and bf is not None
            else (win.latency.p50_s, base.latency.p50_s)
        )
        speed = b / w if w else float("nan")
        final = wf is not None and bf is not None
        how = "final interleaved re-measurement" if final else latency_source(win)
        parts.append(
            f"{speed:.2f}× the baseline's speed (p50 {fmt.seconds(w)} vs {fmt.seconds(b)}, {how})"
        )
    elif base and base.key == win.key:
        parts.append("the unchanged model (no variant was faster within the accuracy floor)")
    parts.append(
        f"{win.accuracy.kind} {accuracy_text(win)} vs baseline "
        f"{res.baseline.accuracy:.4f} "
        f"(floor {sel.accuracy_floor:.4f})"
    )
    return " — ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "") + "."
