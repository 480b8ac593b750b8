"""What a report says, as data: built once from results.json, rendered as HTML (plots) or Markdown
(tables).

Every number keeps its unit and its source. Two sections need more than results.json: the per-layer
bars re-estimate the winner's ONNX file (when it is still on disk) and the iteration tax rebuilds
the target's plan (when the target still loads); each says why when it cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from edgefit import _format as fmt
from edgefit.report._checklist import Item, checklist
from edgefit.report._repro import environment_record

TOP_KERNELS = 15
ACCURACY_NAME = {"top1": "top-1 accuracy", "agreement": "top-1 agreement with the original"}
SHORT_ACCURACY = {
    "top1": "top-1 accuracy (measured)",
    "agreement": "top-1 agreement with the original (measured)",
    "sqnr": "output SQNR vs the original, dB (measured)",
}
UNIT_FMT = {"s": fmt.seconds, "B": fmt.nbytes, "W": fmt.watts, "J": fmt.joules}


@dataclass(frozen=True)
class Point:
    """One finished candidate on the frontier plots."""

    key: str
    label: str
    accuracy: float
    latency_s: float
    latency_source: str
    energy_j: float
    fits: bool
    frontier: bool
    energy_frontier: bool
    winner: bool
    baseline: bool


@dataclass(frozen=True)
class Kernel:
    name: str
    kclass: str
    dtype: str
    latency_s: float
    energy_j: float
    bound: str


@dataclass(frozen=True)
class Layers:
    """Per-kernel estimate of one candidate's ONNX file (estimated, never measured)."""

    candidate: str
    path: str
    source: str
    source_detail: str
    latency_s: float
    energy_j: float
    kernels: tuple[Kernel, ...]
    other: Kernel | None  # the kernels past the top ones, summed


@dataclass(frozen=True)
class EnvelopeRow:
    constraint: str
    unit: str
    limit: float
    winner: float | None
    fits: bool | None
    baseline: float | None
    source: str


@dataclass(frozen=True)
class Report:
    title: str
    headline: str
    res: dict
    summary: list[tuple[str, str, str, str, str]]  # metric, baseline, chosen, change, source
    chosen_heading: str  # "chosen", or "best found" when nothing qualified
    points: list[Point]
    accuracy_label: str
    floor: float
    budget_s: float | None
    budget_label: str
    layers: Layers | None
    layers_note: str
    envelope: list[EnvelopeRow]
    iteration: dict | None
    iteration_note: str
    repro: list[tuple[str, str, str]]
    checklist: list[Item]
    notes: list[str] = field(default_factory=list)
    protocol: list[str] = field(
        default_factory=list
    )  # the final re-measurement and the tie rule, in sentences


def _estimate_notes(done: list[dict]) -> list[str]:
    """Where each estimated latency came from, once per distinct source: a candidate calibrated on
    published measurements is ranked on a different footing from a datasheet one, and the report
    says which candidates stand on which (with the points by name)."""
    groups: dict[str, list[str]] = {}
    for c in done:
        est = c.get("estimate") or {}
        if c["latency"]["source"] == "estimated" and est.get("source_detail"):
            groups.setdefault(est["source_detail"], []).append(c["label"])
    notes = []
    for detail, labels in groups.items():
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        notes.append(f"estimated latency of {shown}: {detail}")
    return notes


def accuracy_text(c: dict) -> str:
    acc = c["accuracy"]
    return f"{acc['value']:.2f} dB" if acc["kind"] == "sqnr" else f"{acc['value']:.4f}"


def latency_source(c: dict) -> str:
    lat = c["latency"]
    if lat["source"] == "measured":
        threads = lat.get("threads")
        return f"measured, {lat.get('runtime', '?')}" + (
            f", {threads} thread{'s' * (threads != 1)}" if threads else ""
        )
    return f"estimated, {lat.get('estimate_source', '?')}, ±{lat.get('error', 0):.0%}"


def _target(res: dict):
    from edgefit.targets import load_target

    try:
        return load_target(res["target"]["id"]), ""
    except Exception as exc:  # noqa: BLE001 - a user YAML that moved: the report goes on without it
        return None, f"target '{res['target']['id']}' does not load here ({str(exc)[:120]})"


def _pareto(done: list[dict], x) -> set[str]:
    pool = [c for c in done if c["fits"]] or done
    out = set()
    for c in pool:
        a, t = c["accuracy"]["value"], x(c)
        beaten = any(
            o["accuracy"]["value"] >= a and x(o) <= t and (o["accuracy"]["value"] > a or x(o) < t)
            for o in pool
        )
        if not beaten:
            out.add(c["key"])
    return out


def _points(res: dict, done: list[dict]) -> list[Point]:
    energy_front = _pareto(done, lambda c: c["estimate"]["energy_j"])
    return [
        Point(
            c["key"],
            c["label"],
            c["accuracy"]["value"],
            c["latency"]["p50_s"],
            c["latency"]["source"],
            c["estimate"]["energy_j"],
            c["fits"],
            c["key"] in res["frontier"],
            c["key"] in energy_front,
            c["key"] == res["selection"]["winner"],
            c["key"] == res["baseline"]["key"],
        )
        for c in done
    ]


def _ratio(new: float, old: float, *, faster: bool = False) -> str:
    if not old or not new or not (math.isfinite(new) and math.isfinite(old)):
        return "–"
    r = new / old
    return f"{r:.2f}×" + (f" ({1 / r:.2f}× faster)" if faster and r < 1 else "")


def _summary(base: dict | None, win: dict | None) -> list[tuple[str, str, str, str, str]]:
    if win is None:
        return []
    b = base or {}

    def cell(c, get, show):
        try:
            v = get(c)
        except (KeyError, TypeError):
            return "–", None
        return ("–", None) if v is None else (show(v), v)

    rows = []
    specs = [
        (
            ACCURACY_NAME.get(win["accuracy"]["kind"], "accuracy"),
            lambda c: c["accuracy"]["value"],
            lambda v: f"{v:.4f}",
            None,
            f"measured ({win['accuracy']['label']}; {win['accuracy'].get('data', '')})",
        ),
        (
            "latency p50",
            lambda c: c["latency"]["p50_s"],
            fmt.seconds,
            "faster",
            latency_source(win),
        ),
        (
            "latency, final (interleaved)",
            lambda c: c["latency"]["final"]["median_s"],
            fmt.seconds,
            "faster",
            _final_source(win),
        ),
        (
            "latency p99",
            lambda c: c["latency"]["p99_s"] if c["latency"]["source"] == "measured" else None,
            fmt.seconds,
            None,
            latency_source(win),
        ),
        (
            "jitter (p99 − p50)",
            lambda c: c["latency"].get("jitter_s"),
            fmt.seconds,
            None,
            latency_source(win),
        ),
        (
            "energy per inference",
            lambda c: c["estimate"]["energy_j"],
            fmt.joules,
            "",
            f"estimated, {win['estimate']['source']}, ±{win['estimate']['error']:.0%}",
        ),
        (
            "average power while running",
            lambda c: c["estimate"]["average_power_w"],
            fmt.watts,
            "",
            f"estimated, {win['estimate']['source']}, ±{win['estimate']['error']:.0%}",
        ),
        (
            "weights",
            lambda c: c["estimate"]["weight_bytes"],
            fmt.nbytes,
            "",
            "counted from the ONNX file",
        ),
        (
            "peak activations",
            lambda c: c["estimate"]["peak_activation_bytes"],
            fmt.nbytes,
            "",
            "counted (tensor liveness)",
        ),
        (
            "iteration cycle",
            lambda c: c["iteration"]["days"],
            lambda v: f"{v:g} days",
            "",
            "iteration tax (target's lifecycle and certification loop)",
        ),
        (
            "iteration cost",
            lambda c: c["iteration"]["usd"],
            lambda v: f"${v:,.0f}",
            "",
            "iteration tax (target's certification cost per change)",
        ),
    ]
    if win["accuracy"]["kind"] == "sqnr":
        specs[0] = (
            "SQNR vs the original",
            lambda c: c["accuracy"]["value"],
            lambda v: f"{v:.2f} dB",
            None,
            f"measured ({win['accuracy'].get('data', '')})",
        )
    for name, get, show, change, source in specs:
        wt, wv = cell(win, get, show)
        bt, bv = cell(b, get, show)
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


def _final_source(c: dict) -> str:
    f = c["latency"].get("final")
    if not f:
        return ""
    return (
        "measured, interleaved with the other leaders after the search: median of "
        f"{len(f['round_medians_s'])} "
        f"round medians, spread {f['spread']:.1%}"
    )


def _protocol(res: dict, cands: dict) -> list[str]:
    """The final re-measurement and how the pick used it, in sentences (none for older results)."""
    p = res["selection"].get("protocol")
    if not p:
        return []

    def label(key: str) -> str:
        return cands[key]["label"] if key in cands else key

    def figures(t: dict) -> str:
        first = f"; first {fmt.seconds(t['first_p50_s'])}" if "first_p50_s" in t else ""
        return (
            f"{label(t['key'])} {fmt.seconds(t['median_s'])} (spread {t['spread']:.1%}, "
            f"{len(t['round_medians_s'])} rounds{first})"
        )

    wait = p.get("cpu_wait_fraction")
    threads = p["threads"]
    out = [
        "Final re-measurement: the fastest eligible candidates and the baseline timed again "
        "after the search, "
        f"interleaved (at least {p['rounds']} rounds of {fmt.seconds(p.get('round_s', 0))} each, "
        f"at {threads} "
        f"thread{'s' * (threads != 1)}"
        + (f"; this process waited for a CPU {wait:.1%} of the time" if wait is not None else "")
        + "): "
        + "; ".join(figures(t) for t in sorted(p["candidates"], key=lambda t: t["median_s"]))
        + ".",
        f"Rule: {p['rule']}.",
    ]
    for tie in p.get("ties", []):
        out.append(
            f"Tie: {label(tie['key'])} within {tie['difference']:.1%} of {label(tie['with'])} "
            "(noise "
            f"{tie['noise']:.1%}); chosen: {label(tie['winner'])}."
        )
    return out


def _headline(res: dict, cands: dict, win: dict | None, base: dict | None) -> str:
    sel = res["selection"]
    if win is None:
        best = cands.get(sel["best_found"] or "")
        return (
            f"No candidate qualified: {sel['reason']}. Best found: "
            f"{best['label'] if best else 'none'}."
        )
    parts = [f"Chosen: {win['label']}"]
    if base and base["key"] != win["key"] and base.get("status") == "done":
        final = "final" in win["latency"] and "final" in base["latency"]
        w, b = (
            (win["latency"]["final"]["median_s"], base["latency"]["final"]["median_s"])
            if final
            else (win["latency"]["p50_s"], base["latency"]["p50_s"])
        )
        speed = b / w if w else float("nan")
        how = "final interleaved re-measurement" if final else latency_source(win)
        parts.append(
            f"{speed:.2f}× the baseline's speed (p50 {fmt.seconds(w)} vs {fmt.seconds(b)}, {how})"
        )
    elif base and base["key"] == win["key"]:
        parts.append("the unchanged model (no variant was faster within the accuracy floor)")
    parts.append(
        f"{win['accuracy']['kind']} {accuracy_text(win)} vs baseline "
        f"{res['baseline']['accuracy']:.4f} "
        f"(floor {sel['accuracy_floor']:.4f})"
    )
    return " — ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "") + "."


def _layers(
    res: dict, cand: dict | None, target, results_dir: Path | None
) -> tuple[Layers | None, str]:
    if cand is None:
        return None, "no candidate finished, so there is no model to break down"
    if target is None:
        return None, "the target does not load here, so the model cannot be re-estimated"
    paths = []
    if results_dir is not None and cand["key"] == res["selection"]["winner"]:
        paths.append(
            results_dir / "model.onnx"
        )  # the exported winner, which travels with results.json
    paths.append(Path(cand["onnx"]))
    if results_dir is not None:
        parts = Path(cand["onnx"]).parts
        if "candidates" in parts:
            paths.append(results_dir.joinpath(*parts[parts.index("candidates") :]))
    existing = [p for p in dict.fromkeys(paths) if p.is_file()]
    if not existing:
        return None, f"the model file of '{cand['label']}' is no longer on disk ({cand['onnx']})"
    from edgefit.errors import EdgefitError
    from edgefit.estimate import Estimator
    from edgefit.graph import load_graph

    problems = []
    for path in existing:
        try:
            est = Estimator(
                load_graph(path), target, power_mode=res["target"].get("power_mode")
            ).estimate()
            break
        except EdgefitError as exc:  # a damaged file: try the next copy, then say why
            problems.append(exc.what)
    else:
        return (
            None,
            f"the model of '{cand['label']}' could not be re-estimated: {'; '.join(problems)}",
        )
    ks = sorted(est.kernels, key=lambda k: -k.latency_s)
    top = tuple(
        Kernel(k.name, k.kclass, k.dtype, k.latency_s, k.energy_j, k.bound)
        for k in ks[:TOP_KERNELS]
    )
    rest = ks[TOP_KERNELS:]
    other = (
        Kernel(
            f"other ({len(rest)} kernels)",
            "-",
            "-",
            sum(k.latency_s for k in rest),
            sum(k.energy_j for k in rest),
            "-",
        )
        if rest
        else None
    )
    return Layers(
        cand["label"],
        str(path),
        est.source,
        est.source_detail,
        est.latency_s,
        est.energy_j,
        top,
        other,
    ), ""


def _envelope(win: dict | None, base: dict | None, target) -> list[EnvelopeRow]:
    if win is None:
        return []
    base_checks = {c["constraint"].split(" (")[0]: c for c in (base or {}).get("checks", [])}
    rows = []
    for c in win["checks"]:
        b = base_checks.get(c["constraint"].split(" (")[0])
        rows.append(
            EnvelopeRow(
                c["constraint"],
                c["unit"],
                c["limit"],
                c["value"],
                c["fits"],
                b["value"] if b else None,
                c["source"],
            )
        )
    env = getattr(target, "envelope", None)
    if env is not None and env.jitter_s is not None:
        jit = win["latency"].get("jitter_s")
        rows.append(
            EnvelopeRow(
                "jitter (p99 − p50)",
                "s",
                env.jitter_s.value,
                jit,
                None if jit is None else jit <= env.jitter_s.value,
                (base or {}).get("latency", {}).get("jitter_s"),
                "measured" if jit is not None else "needs a measurement on the device",
            )
        )
    return rows


def _iteration(res: dict, cand: dict | None, target) -> tuple[dict | None, str]:
    if target is None:
        return None, "the target does not load here"
    from edgefit.iteration import IterationPlan, build_plan, loop_for

    acc = cand["accuracy"] if cand else None
    fraction = acc is not None and acc["kind"] != "sqnr" and 0 <= acc["value"] <= 1
    kinds = tuple(cand.get("change_kinds") or ()) if cand else ()
    try:
        plan = IterationPlan(
            deadline_days=res["config"].get("deadline_days"),
            change_kinds=kinds or ("weights",),
            accuracy_now=min(acc["value"], 0.9999) if fraction and acc else None,
            accuracy_ceiling=1.0 if fraction and acc and acc["value"] >= 0.99 else None,
        )
        return build_plan(loop_for(target), plan), ""
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands without this section
        return None, f"the iteration plan could not be built ({str(exc)[:160]})"


def _repro(res: dict, win: dict | None) -> list[tuple[str, str, str]]:
    cfg, env = res["config"], res["environment"]
    rows = [
        ("edgefit", res["edgefit_version"], "results.json"),
        ("run finished", res["created"], "results.json"),
        ("command line", res.get("command") or "(Python API)", "results.json"),
        ("seed", str(cfg.get("seed")), "results.json"),
        (
            "settings",
            f"select {cfg.get('select')}, max drop {cfg.get('max_drop')}"
            f"{' (relative)' if cfg.get('relative_drop') else ''}, trials {cfg.get('trials')}, "
            f"budget {cfg.get('budget_s')} s, threads {cfg.get('threads')}, "
            f"deadline {cfg.get('deadline_days')} days",
            "results.json",
        ),
        (
            "target",
            f"{res['target']['id']}"
            + (
                f", power mode {res['target']['power_mode']}"
                if res["target"].get("power_mode")
                else ""
            ),
            "results.json",
        ),
        (
            "model",
            f"{res['model']['name']} ({res['model']['kind']}), input "
            f"{res['model']['input_shape']}",
            "results.json",
        ),
        ("evaluation data", res["data"]["evaluation"], "results.json"),
        (
            "python / OS",
            f"Python {env['python']} on {env['platform']} ({env['machine']})",
            "results.json",
        ),
    ]
    here = None if "versions" in env and "cpu" in env else environment_record()
    src = (
        "results.json"
        if here is None
        else "the machine rendering this report (results.json predates the record)"
    )
    rec = env if here is None else here
    rows.append(
        (
            "CPU",
            f"{rec.get('cpu')} ({rec.get('cpu_count')} CPUs usable"
            + (f"; {' '.join(rec['isa'])}" if rec.get("isa") else "")
            + ")",
            src,
        )
    )
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in rec.get("versions", {}).items())
    rows.append(("versions", versions, src))
    if win is not None:
        mat = win.get("materialize") or {}
        digest = str(mat.get("content_hash", "?"))[:16]
        rows.append(
            ("chosen model", f"{win['onnx']} (plan + base model hash {digest}…)", "results.json")
        )
    return rows


def build_report(res: dict, *, results_dir: str | Path | None = None) -> Report:
    """Everything a report shows, from a loaded results.json (see
    :func:`~edgefit.report.load_results`).

    ``results_dir`` is the folder results.json sits in: the exported model.onnx is looked up there.

    >>> rep = build_report(load_results("out/results.json"), results_dir="out")   # doctest: +SKIP
    >>> rep.headline                                                             # doctest: +SKIP
    """
    results_dir = Path(results_dir) if results_dir is not None else None
    cands = {c["key"]: c for c in res["candidates"]}
    done = [c for c in res["candidates"] if c.get("status") == "done"]
    sel = res["selection"]
    win = cands.get(sel["winner"] or "")
    base = cands.get(res["baseline"]["key"])
    focus = win or cands.get(sel["best_found"] or "")
    target, target_note = _target(res)
    layers, layers_note = _layers(res, focus, target, results_dir)
    iteration, iteration_note = _iteration(res, focus, target)
    env = getattr(target, "envelope", None)
    kind = done[0]["accuracy"]["kind"] if done else ""
    acc_label = SHORT_ACCURACY.get(kind, f"{kind or 'accuracy'} (measured)")
    notes = (
        list(res.get("notes", [])) + ([target_note] if target_note else []) + _estimate_notes(done)
    )
    return Report(
        title=f"edgefit: {res['model']['name']} on {res['target']['id']}",
        headline=_headline(res, cands, win, base),
        res=res,
        summary=_summary(base, focus),
        chosen_heading=f"chosen: {win['label']}"
        if win
        else f"best found: {focus['label']}"
        if focus
        else "none",
        points=_points(res, done),
        accuracy_label=acc_label,
        floor=sel["accuracy_floor"],
        budget_s=env.latency_budget_s.value if env is not None else None,
        budget_label=f"p{env.latency_percentile:g} budget "
        f"{fmt.seconds(env.latency_budget_s.value)}"
        if env
        else "",
        layers=layers,
        layers_note=layers_note,
        envelope=_envelope(win or focus, base, target),
        iteration=iteration,
        iteration_note=iteration_note,
        repro=_repro(res, win),
        checklist=checklist(res, win, base, target, results_dir),
        notes=notes,
        protocol=_protocol(res, cands),
    )
