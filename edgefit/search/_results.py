"""results.json (every candidate and where each number came from) and report.md for a run."""

from __future__ import annotations

import datetime as _dt
import platform
import shutil
import sys
from pathlib import Path

from edgefit._io import to_json, write_atomic
from edgefit._version import __version__
from edgefit.search._select import Pick, frontier, latency_of

RESULTS_SCHEMA = "edgefit-results/1"


def results_dict(run, pick: Pick, base_key: str, base_accuracy: float) -> dict:
    cands = list(run.candidates.values())
    rejected = [{"label": s.choice.label, "choice": s.choice.to_dict(), "status": "rejected at estimate",
                 "reasons": list(s.reasons), "estimate": {"latency_s": s.estimate.latency_s,
                                                          "energy_j": s.estimate.energy_j,
                                                          "source": s.estimate.source, "error": s.estimate.error}}
                for s in run.screened if not s.feasible]
    cfg = run.config
    return {
        "schema": RESULTS_SCHEMA,
        "edgefit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["edgefit", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("edgefit") else None,
        "environment": {"python": platform.python_version(), "machine": platform.machine(),
                        "platform": platform.platform()},
        "target": {"id": cfg.target, "power_mode": cfg.power_mode},
        "model": {"kind": run.base.kind, "name": run.base.name, "input_shape": list(run.base.input_shape)},
        "data": {"evaluation": run.base.eval_source, "labels": run.base.eval_y is not None,
                 "training": "given" if run.base.train is not None else None},
        "config": {"max_drop": cfg.max_drop, "relative_drop": cfg.relative_drop, "select": cfg.select,
                   "budget_s": cfg.budget_s, "trials": cfg.trials, "seed": cfg.seed, "threads": cfg.threads,
                   "recover_epochs": cfg.recover_epochs, "deadline_days": cfg.deadline_days},
        "baseline": {"key": base_key, "accuracy": base_accuracy},
        "selection": {"rule": cfg.select, "accuracy_floor": pick.floor, "eligible": pick.eligible,
                      "winner": pick.winner["key"] if pick.winner else None, "reason": pick.reason,
                      "best_found": pick.best_found["key"] if pick.best_found else None},
        "frontier": [c["key"] for c in frontier(cands)],
        "counts": {"screened": len(run.screened), "could_fit": sum(s.feasible for s in run.screened),
                   "materialized": len(cands), "reused": run.reused,
                   "failed": sum(c.get("status") == "failed" for c in cands)},
        "interrupted": run.interrupted,
        "notes": run.notes,
        "candidates": cands,
        "rejected_at_estimate": rejected,
    }


def _fmt_latency(c: dict) -> str:
    lat = c["latency"]
    if lat["source"] == "measured":
        return f"{lat['p50_s'] * 1e3:.3f} ms p50 / {lat['p99_s'] * 1e3:.3f} ms p99 (measured, {lat['runtime']})"
    return f"{lat['p50_s'] * 1e3:.3f} ms ±{lat.get('error', 0):.0%} (estimated, {lat.get('estimate_source')})"


def report_md(res: dict) -> str:
    cands = {c["key"]: c for c in res["candidates"] if "key" in c}
    lines = [f"# edgefit optimize: {res['model']['name']} on {res['target']['id']}", ""]
    sel = res["selection"]
    base = cands.get(res["baseline"]["key"])
    if sel["winner"]:
        w = cands[sel["winner"]]
        speed = latency_of(base) / latency_of(w) if base and latency_of(w) else float("nan")
        lines += [f"**Chosen:** {w['label']} — {w['accuracy']['kind']} {w['accuracy']['value']:.4f} "
                  f"(baseline {res['baseline']['accuracy']:.4f}), {_fmt_latency(w)}, {speed:.2f}× the baseline's "
                  f"latency; energy {w['estimate']['energy_j'] * 1e6:.3g} µJ/inference (estimated, "
                  f"{w['estimate']['source']}).", ""]
    else:
        lines += [f"**No candidate qualified:** {sel['reason']}. Best found: "
                  f"{cands[sel['best_found']]['label'] if sel['best_found'] else 'none'}.", ""]
    lines += [f"Accuracy: {res['data']['evaluation']}. Selection: {sel['rule']}, accuracy floor "
              f"{sel['accuracy_floor']:.4f}.", "",
              "| candidate | accuracy | latency | energy (est.) | fits | frontier | iteration (days, $) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in sorted(res["candidates"], key=lambda c: c.get("latency", {}).get("p50_s", 1e9)):
        if c.get("status") != "done":
            lines.append(f"| {c['label']} | failed: {c.get('error', '')[:80]} | | | | | |")
            continue
        it = c["iteration"]
        lines.append(f"| {c['label']} | {c['accuracy']['value']:.4f} | {_fmt_latency(c)} | "
                     f"{c['estimate']['energy_j'] * 1e6:.3g} µJ | {'yes' if c['fits'] else 'no'} | "
                     f"{'★' if c['key'] in res['frontier'] else ''} | {it['days']:g} d, ${it['usd']:,.0f} |")
    if res["rejected_at_estimate"]:
        lines += ["", f"{len(res['rejected_at_estimate'])} choices were rejected at estimate time, e.g.:"]
        for r in res["rejected_at_estimate"][:5]:
            lines.append(f"- {r['label']}: {'; '.join(r['reasons'])}")
    lines += ["", f"Counts: {res['counts']}. " + " ".join(res["notes"])]
    return "\n".join(lines) + "\n"


def write_outputs(out_dir: Path, res: dict) -> dict[str, str]:
    """results.json, report.md and the chosen model (model.onnx); each written atomically."""
    files = {"results": str(write_atomic(out_dir / "results.json", to_json(res) + "\n")),
             "report": str(write_atomic(out_dir / "report.md", report_md(res)))}
    winner = res["selection"]["winner"]
    if winner:
        src = Path(next(c["onnx"] for c in res["candidates"] if c.get("key") == winner))
        tmp = out_dir / ".model.onnx.tmp"
        shutil.copyfile(src, tmp)
        tmp.replace(out_dir / "model.onnx")
        files["model"] = str(out_dir / "model.onnx")
    return files
