"""Compare a pytest-benchmark JSON with bench/baseline.json by machine-independent ratios.

CI runners differ in speed, so absolute times cannot be compared with a committed baseline. Ratios of
two benchmarks timed on the same machine in the same run can: the Numba estimator's speed-up over its
NumPy reference, int8 over fp32 latency on onnxruntime. Each ratio in the baseline names either its
numerator and denominator benchmarks (divided by ``stat``, the minimum by default) or one benchmark's
``extra_info`` entry (a ratio the suite measured itself), which way is better, the recorded value and a
relative tolerance; a ratio worse than value × (1 ± tolerance) is a regression.

    python bench/compare.py .benchmarks/latest.json                  # table; exit 1 on a regression
    python bench/compare.py .benchmarks/latest.json --update         # re-record the values (same tolerances)

Exit codes: 0 every ratio within tolerance; 1 a regression or a benchmark missing from the run;
2 unreadable input. Failures also print as GitHub Actions annotations (``::error title=…::…``).
Standard library only: it runs without edgefit installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

BASELINE = Path(__file__).with_name("baseline.json")
SCHEMA = "edgefit-bench-baseline/1"


def load_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(_usage(f"cannot read the {what} {path}: {exc}"))


def _usage(message: str) -> int:
    sys.stderr.write(f"bench/compare.py: error: {message}\n")
    return 2


def find(run: dict, name: str) -> dict | None:
    """The benchmark whose fullname ends with ``name`` (``file.py::test[param]``)."""
    return next((b for b in run.get("benchmarks", []) if b.get("fullname", "").endswith(name)), None)


def stat_of(run: dict, name: str, stat: str) -> float | None:
    bench = find(run, name)
    return float(bench["stats"][stat]) if bench else None


def ratio_of(run: dict, spec: dict, stat: str) -> float | None:
    """The current ratio: ``extra_info[key]`` of one benchmark (a ratio the suite measured itself, e.g.
    from interleaved runs), or ``stat(numerator) / stat(denominator)`` of two benchmarks."""
    if "extra_info" in spec:
        bench = find(run, spec["benchmark"])
        value = (bench or {}).get("extra_info", {}).get(spec["extra_info"])
        return None if value is None else float(value)
    num, den = stat_of(run, spec["numerator"], stat), stat_of(run, spec["denominator"], stat)
    return num / den if num is not None and den else None


def missing_isa(run: dict, spec: dict) -> list[str]:
    """Instructions the ratio's baseline needs (``requires_isa``) that the benchmarked CPU lacks.

    The CPU's list comes from the benchmark's ``extra_info["isa"]``; without one, nothing is missing.
    """
    bench = find(run, spec.get("benchmark") or spec["numerator"]) or {}
    have = bench.get("extra_info", {}).get("isa")
    return [] if have is None else [i for i in spec.get("requires_isa", []) if i not in have]


def evaluate(run: dict, baseline: dict) -> list[dict]:
    """One row per ratio: current value, bounds, status (ok, regressed, improved, missing, skipped)."""
    stat = baseline.get("stat", "min")
    rows = []
    for name, spec in baseline["ratios"].items():
        cur = ratio_of(run, spec, stat)
        value, tol, higher = spec["value"], spec["tolerance"], spec["better"] == "higher"
        bound = value * (1 - tol) if higher else value * (1 + tol)
        row = {"name": name, "baseline": value, "tolerance": tol, "better": spec["better"], "bound": bound,
               "current": cur, "status": "missing", "description": spec.get("description", "")}
        lacking = missing_isa(run, spec)
        if cur is not None and lacking:
            row.update(status="skipped", description=f"this CPU lacks {', '.join(lacking)}, which the baseline "
                                                     "value assumes")
        elif cur is not None:
            worse = cur < bound if higher else cur > bound
            better = cur > value * (1 + tol) if higher else cur < value * (1 - tol)
            row["status"] = "regressed" if worse else "improved" if better else "ok"
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'ratio':40} {'baseline':>9} {'tolerance':>9} {'limit':>9} {'current':>9}  status"
    lines = [head, "-" * len(head)]
    for r in rows:
        cur = "-" if r["current"] is None else f"{r['current']:.3f}"
        limit = ("≥ " if r["better"] == "higher" else "≤ ") + f"{r['bound']:.3f}"
        lines.append(f"{r['name']:40} {r['baseline']:9.3f} {r['tolerance']:9.0%} {limit:>9} {cur:>9}  {r['status']}")
    return "\n".join(lines)


def annotations(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        if r["status"] == "regressed":
            out.append(f"::error title=bench ratio {r['name']}::{r['name']} = {r['current']:.3f}, baseline "
                       f"{r['baseline']:.3f} (limit {r['bound']:.3f}, {r['better']} is better). {r['description']}")
        elif r["status"] == "missing":
            out.append(f"::error title=bench ratio {r['name']}::a benchmark of {r['name']} is not in the run")
        elif r["status"] == "skipped":
            out.append(f"::warning title=bench ratio {r['name']}::not compared: {r['description']}")
        elif r["status"] == "improved":
            out.append(f"::notice title=bench ratio {r['name']}::{r['name']} = {r['current']:.3f}, better than the "
                       f"baseline {r['baseline']:.3f} beyond tolerance: re-record with bench/compare.py --update")
    return [line.replace("%", "%25") for line in out]


def update(baseline: dict, rows: list[dict], run: dict) -> dict:
    new = json.loads(json.dumps(baseline))
    for r in rows:
        if r["current"] is not None and r["status"] != "skipped":
            new["ratios"][r["name"]]["value"] = round(r["current"], 4)
    cpu = run.get("machine_info", {}).get("cpu", {})
    new["recorded_on"] = {"date": dt.date.today().isoformat(), "cpu": cpu.get("brand_raw") or platform.processor(),
                          "cores": cpu.get("count"), "python": run.get("machine_info", {}).get("python_version")}
    return new


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="pytest-benchmark JSON (pytest bench --benchmark-json=PATH)")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument("--update", action="store_true", help="write the current ratios into the baseline")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    run, baseline = load_json(args.run, "benchmark run"), load_json(args.baseline, "baseline")
    if baseline.get("schema") != SCHEMA:
        return _usage(f"{args.baseline} is not a {SCHEMA} file")
    rows = evaluate(run, baseline)
    if args.update:
        args.baseline.write_text(json.dumps(update(baseline, rows, run), indent=2, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
        for line in annotations(rows):
            print(line)
    failed = [r for r in rows if r["status"] in ("regressed", "missing")]
    return 1 if failed and not args.update else 0


if __name__ == "__main__":
    sys.exit(main())
