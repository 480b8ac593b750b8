"""What the cascade's report section says, as rows and sentences: the tier table, the cascade
against each tier alone, the headline, the latency note and the provenance; cascade.html and
cascade.md format the same rows.

Every figure carries its unit and split (select or report); a latency that is an estimate carries
its ± interval and source, and a cascade's expected latency the widest interval of the tiers it
passes through.
"""

from __future__ import annotations

from edgefit.cascade._card import pct, quantity_text, value_text
from edgefit.cascade._config import objective_words
from edgefit.cascade._types import CascadeResult, OperatingPoint, TierResult


def page_title(result: CascadeResult) -> str:
    """The tiers in order: 'edgefit cascade: small → large → cloud'."""
    return "edgefit cascade: " + " → ".join(t.spec.name for t in result.tiers)


def ms(v: float) -> str:
    """A duration in seconds at a readable scale, with its unit ("0 s" for zero)."""
    return value_text(v, "s")


def usd(v: float) -> str:
    """Dollars to four significant digits: per-request cloud costs are fractions of a cent."""
    return f"${v:.4g}"


def headline(result: CascadeResult) -> str:
    """The cascade on the report split in one sentence: accuracy, expected and p99 latency, cloud
    share and cost, and the objective the thresholds were chosen for."""
    rep = result.reported
    return (
        f"Cascade accuracy {pct(rep.accuracy)} at an expected latency of "
        f"{ms(rep.expected_latency_s)}"
        f"{spread(result.tiers)} (p99 {ms(rep.p99_latency_s)}), cloud share "
        f"{pct(rep.cloud_share)}, "
        f"{usd(rep.usd_per_1000)} per 1,000 requests — report split, {rep.samples} samples. "
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
        ms(p.expected_latency_s) + spread(tiers),
        ms(p.p99_latency_s) + spread(tiers),
        pct(p.cloud_share),
        usd(p.usd_per_1000),
        energy,
    ]


def compare_rows(result: CascadeResult) -> list[list[str]]:
    """The chosen cascade, then each tier answering everything by itself (report split); a latency
    carries the widest error bar of the tiers it can pass through."""
    rows = [_compare_row("cascade (chosen thresholds)", result.reported, result.tiers)]
    return rows + [
        _compare_row(f"{t.spec.name} alone", p, (t,)) for t, p in zip(result.tiers, result.alone)
    ]


def latency_note(result: CascadeResult) -> str:
    """How expected latency is summed, with each tier's latency source and error bar."""
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


def provenance_rows(result: CascadeResult) -> list[tuple[str, str]]:
    """(field, value): the data, the seed, the splits' sizes and the run's provenance record."""
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
