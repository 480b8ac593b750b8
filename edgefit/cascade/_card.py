"""A Markdown model card per tier: what the tier is for in the cascade, on what data it was
measured, its metrics with their sources, its calibration, its envelope on its target, what
changing it costs, and where it came from.

A tier is not a model that stands alone: its threshold, its share and the accuracy on what it
answers all depend on the tiers around it, so the card says so, and says what must be re-run when
it changes. What edgefit cannot know (whether a new calibrator triggers the device's
recertification) is written as such, next to what the target profile does state.

The number formatters here (:func:`quantity_text`, :func:`pct`) are shared with the report section.
"""

from __future__ import annotations

from pathlib import Path

from edgefit import _format as fmt
from edgefit._version import __version__
from edgefit.cascade._config import objective_words
from edgefit.cascade._fold import CONFIDENCE, describe
from edgefit.cascade._types import CascadeResult, Quantity, TierResult
from edgefit.errors import EdgefitError
from edgefit.iteration import as_loop
from edgefit.report._md import table


def pct(x: float | None, digits: int = 2) -> str:
    """``pct(0.9083) == '90.83%'``; None (nothing to measure) is an en dash."""
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def value_text(value: float, unit: str) -> str:
    """A number in its unit at a readable scale: ``4.2 ms``, ``1.83 mJ``, ``$0.0004``."""
    if unit.startswith("USD"):  # "USD" or "USD/request"
        per = unit[3:].lstrip("/ ")
        return f"${value:.4g}" + (f"/{per}" if per else "")
    if value == 0:
        return f"0 {unit}"
    if unit == "s":
        return fmt.seconds(value)
    if unit == "J":
        return fmt.joules(value)
    return f"{value:.4g} {unit}"


def quantity_text(q: Quantity | None, *, source: bool = True) -> str:
    """``4.2 ms ± 25% (estimate: …)``: the value, its error bar where it has one, and where it came
    from."""
    if q is None:
        return "not known (nothing states or estimates it)"
    text = value_text(q.value, q.unit)
    if q.interval is not None:
        text += f" ± {100 * q.interval:.3g}%"
    return f"{text} ({q.source})" if source else text


def _intended_use(result: CascadeResult, k: int) -> list[str]:
    tier, n = result.tiers[k], len(result.tiers)
    order = " → ".join(t.spec.name for t in result.tiers)
    model = Path(tier.spec.model).name if tier.spec.model else "a remote model (stated accuracy)"
    rep, sel = result.reported, result.chosen
    lines = [
        f"{tier.spec.name} runs {model} on **{tier.spec.target}** as tier {k + 1} of {n} in a "
        f"confidence-routed cascade ({order}); the cascade's objective: "
        f"{objective_words(result.objective)}."
    ]
    if tier.threshold is not None:
        lines.append(
            f"It answers a request when its calibrated confidence is ≥ **{tier.threshold:.4g}**, "
            "else the "
            f"request goes to {result.tiers[k + 1].spec.name}."
        )
    else:
        lines.append("As the last tier it answers every request the tiers before it pass on.")
    lines.append(
        f"It answers **{pct(rep.shares[k])}** of all requests on the report split ({rep.samples} "
        "samples; "
        f"{pct(sel.shares[k])} on the select split the thresholds were chosen on)."
    )
    if tier.threshold is not None:
        lines.append(
            "It is not meant to answer alone: its threshold assumes the tiers after it. Alone it "
            "is "
            f"{pct(tier.accuracy_alone)} accurate, the cascade {pct(rep.accuracy)} (report split)."
        )
    else:
        lines.append(
            f"It sees only the requests the tiers before it were not confident on: it is "
            f"{pct(rep.tier_accuracy[k])} accurate on those and {pct(tier.accuracy_alone)} on all "
            "requests "
            f"(report split)."
        )
    return [" ".join(lines)]


def _data(result: CascadeResult) -> list[str]:
    fit = "fits each calibrator and picks the method by cross-validated ECE"
    roles = {
        "calibration": fit,
        "calibrate": fit,
        "select": "the threshold search",
        "report": "every figure in this card unless stated",
    }
    rows = [[name, f"{count:,}", roles.get(name, "")] for name, count in result.splits.items()]
    return [
        f"Source: {result.data_source}; seed {result.seed}. Each split is used for one purpose "
        "only.",
        "",
        *table(["split", "samples", "used for"], rows),
    ]


def _metrics(result: CascadeResult, k: int) -> list[str]:
    tier, rep = result.tiers[k], result.reported
    split = f"report ({rep.samples} samples)"
    stated = tier.spec.model is None
    measured = "measured on labelled data"
    rows = [
        [
            "accuracy alone (answers every request)",
            pct(tier.accuracy_alone),
            split,
            f"stated: --tier {tier.spec.name}:accuracy" if stated else measured,
        ],
        [
            "accuracy on the requests it answers in the cascade",
            pct(rep.tier_accuracy[k]),
            split,
            "stated accuracy, assumed the same on the requests it answers" if stated else measured,
        ],
        [
            "share of requests it answers",
            pct(rep.shares[k]),
            split,
            "measured: routing at the chosen thresholds",
        ],
    ]
    cal = tier.calibration
    if cal is not None:
        how = f"{cal.bins} equal-width bins"
        rows += [
            ["ECE before calibration", f"{cal.ece_before:.4f}", split, f"measured, {how}"],
            [
                f"ECE after calibration ({cal.calibrator.method})",
                f"{cal.ece_after:.4f}",
                split,
                f"measured, {how}",
            ],
        ]
    return table(["metric", "value", "split", "source"], rows)


def _calibration(tier: TierResult) -> list[str]:
    cal = tier.calibration
    if cal is None:
        return [
            "No calibrator: a remote tier with stated accuracy has no confidence output; it "
            "answers every "
            "request that reaches it."
        ]
    c = cal.calibrator
    params = {
        "temperature": f"temperature T = {c.temperature:.4g}",
        "isotonic": f"{len(c.knots_x)} knots, x from {c.knots_x[0]:.4g} to {c.knots_x[-1]:.4g}"
        if c.knots_x
        else "no knots",
        "none": "no parameters (the raw top-1 probability)",
    }[c.method]
    if tier.calibrated_model:
        applied = f"folded into `{Path(tier.calibrated_model).name}` (graph output `{CONFIDENCE}`)"
    elif tier.calibrator_sidecar:
        applied = (
            f"in the JSON sidecar `{Path(tier.calibrator_sidecar).name}` (the graph could "
            "not take it)"
        )
    else:
        applied = "not written to a file in this run (the app applies the rule below)"
    rows = [
        [m, f"{e:.4f}", "chosen" if m == c.method else ""] for m, e in sorted(cal.cv_ece.items())
    ]
    return [
        f"Method **{c.method}** ({params}), chosen by cross-validated ECE on the calibration "
        "split "
        f"({cal.calibration_samples} samples); outputs read as {c.output_kind} "
        f"({cal.output_kind_source}).",
        f"Applied: {applied}. Confidence = {describe(c)}.",
        "",
        *table(["method", "cross-validated ECE (calibration split)", ""], rows),
    ]


def _envelope(result: CascadeResult, k: int) -> list[str]:
    tier = result.tiers[k]
    cost = tier.cost
    paid = sum(t.cost.latency_p50.value for t in result.tiers[: k + 1])
    rows = [
        ["latency p50", quantity_text(cost.latency_p50)],
        ["latency p99", quantity_text(cost.latency_p99)],
        ["energy per inference", quantity_text(cost.energy)],
        ["cost per request", quantity_text(cost.usd)],
    ]
    waited = (
        "this tier alone" if k == 0 else f"tiers 1–{k + 1}, {value_text(paid, 's')} at p50 summed"
    )
    return [
        *table(["quantity", "value (source)"], rows),
        "",
        f"A request this tier answers has waited for {waited}.",
    ]


def _loop_text(target: str) -> str:
    """What the target profile states about one change's loop, or plainly that edgefit cannot
    know."""
    if target == "cloud":
        return (
            "A cloud tier has no device loop in edgefit: redeploying the remote model follows the "
            "provider's "
            "process, whose time and cost edgefit cannot know."
        )
    try:
        loop = as_loop(target)
    except EdgefitError as exc:
        return (
            f"edgefit has no iteration loop for target '{target}' ({exc.what}); recertifying the "
            "device is this "
            "target's iteration cost, which edgefit cannot know."
        )
    cert = loop.certification
    days, usd = loop.cycle_days(["weights"]), loop.usd_per_iteration(["weights"])
    triggers = ", ".join(cert.triggers) or "no change"
    return (
        f'On {loop.target_name}: "{cert.name}" takes {cert.days:g} days and ${cert.usd:,.0f} per '
        "change "
        f"({cert.days_provenance}); {triggers} trigger it. One iteration of a weights change is "
        f"{days:g} days "
        f"and ${usd:,.0f} (`edgefit plan --target {target}`). Whether a new calibrator alone "
        "(same weights, new "
        "folded nodes or sidecar) triggers it is the target owner's rule, which edgefit cannot "
        "know."
    )


def _iteration(result: CascadeResult, k: int) -> list[str]:
    tier = result.tiers[k]
    after = [t.spec.name for t in result.tiers[k + 1 :]]
    if tier.calibration is None:
        return [
            f"- **Change {tier.spec.name}** (its model, or its stated accuracy, latency or cost): "
            "re-run the "
            "threshold search (every tier's share depends on what the last tier costs and how "
            "well it "
            "answers), rewrite cascade-config.json, and re-issue every model card.",
            f"- **On the target**: {_loop_text(tier.spec.target)}",
        ]
    return [
        f"- **Recalibrate {tier.spec.name}** (new calibration data, same model): re-fit its "
        "calibrator, re-run "
        "the threshold search for every tier (a tier's confidence sets the share every later tier "
        "sees"
        + (f": {', '.join(after)}" if after else "")
        + "), rewrite cascade-config.json and this tier's "
        "calibrated model or sidecar, and re-issue every model card.",
        f"- **Retrain or replace {tier.spec.name}**: all of the above, and its envelope "
        "re-measured or "
        "re-estimated on its target.",
        f"- **On the target**: {_loop_text(tier.spec.target)}",
    ]


def _provenance(result: CascadeResult, command: str) -> list[str]:
    """The run's own record (versions may be nested under ``versions``); this edgefit's version
    where the record has none."""
    flat: dict[str, object] = {}
    for key, value in result.provenance.items():
        if isinstance(value, dict):  # versions: package -> version; machine: cpu, cores, …
            flat.update(
                {(str(k) if key == "versions" else f"{key}.{k}"): v for k, v in value.items()}
            )
        elif key not in ("command", "seed"):
            flat[str(key)] = value
    flat.setdefault("edgefit", __version__)
    rows = [["command", f"`{command}`"], ["seed", str(result.seed)]]
    rows += [[key, str(value)] for key, value in flat.items() if value is not None]
    return table(["field", "value"], rows)


def model_card(result: CascadeResult, tier_index: int, *, command: str) -> str:
    """The Markdown model card of tier ``tier_index`` (0-based) of a finished cascade run.

    >>> print(model_card(result, 0, command="edgefit cascade --example digits"))  # doctest: +SKIP
    # Model card: tier1 (tier 1 of 3, glasses-npu)
    …
    """
    if not 0 <= tier_index < len(result.tiers):
        raise EdgefitError(
            f"tier index {tier_index} is outside the cascade's {len(result.tiers)} tiers",
            where="model_card",
            fix=f"pass 0 to {len(result.tiers) - 1}",
        )
    tier = result.tiers[tier_index]
    sections = [
        ("Intended use", _intended_use(result, tier_index)),
        ("Data and splits", _data(result)),
        ("Metrics", _metrics(result, tier_index)),
        ("Calibration", _calibration(tier)),
        (f"Envelope on {tier.spec.target}", _envelope(result, tier_index)),
        ("Iteration cost of changing it", _iteration(result, tier_index)),
        ("Provenance", _provenance(result, command)),
    ]
    lines = [
        f"# Model card: {tier.spec.name} (tier {tier_index + 1} of {len(result.tiers)}, "
        f"{tier.spec.target})",
        "",
        f"Written by edgefit {__version__} (`{command}`). Every figure names its split and its "
        "source.",
    ]
    for title, body in sections:
        lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"
