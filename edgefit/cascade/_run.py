"""`edgefit.cascade(...)`: plan a confidence-routed cascade of tiers, end to end.

The flow, in order (each step in its own module):

1. tiers are read and their models loaded and checked against each other (:mod:`._tiers`);
2. the labelled data is split three ways, stratified by label and seeded: **calibrate** (fit each
   tier's calibrator), **select** (search thresholds), **report** (every figure a user reads);
3. each model tier runs once on all of it; its calibrator is chosen and fitted
   (:mod:`._calibration`);
4. each tier's per-request cost is measured here or estimated (:mod:`._tiers`);
5. thresholds are searched under the objective (:mod:`._thresholds`), and the choice re-evaluated
   on the report split next to every tier alone;
6. with ``out_dir``, calibrators are folded into copies of the models and the config, report and
   model cards written (:mod:`._fold`, :mod:`._write`).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefit._io import ensure_dir
from edgefit._lazy import lazy_import
from edgefit._version import __version__
from edgefit.cascade._calibration import calibrate_tier, confidence
from edgefit.cascade._fold import fold_or_sidecar
from edgefit.cascade._thresholds import TierOutcomes, alone, search
from edgefit.cascade._tiers import (
    LoadedTier,
    check_compatible,
    load_tier,
    name_tiers,
    parse_tier,
    tier_costs,
    tier_outputs,
)
from edgefit.cascade._types import (
    CalibrationReport,
    CascadeResult,
    Objective,
    OutputKind,
    TierCost,
    TierResult,
    TierSpec,
)
from edgefit.errors import EdgefitError
from edgefit.evaluate import EvalData, check_data, load_npz

if TYPE_CHECKING:  # pydantic (the target profiles) loads when the host is probed
    from edgefit.cascade import _write
    from edgefit.targets import _host
else:
    _host = lazy_import("edgefit.targets._host")
    # the writer brings edgefit.report (cards, HTML): loaded when a run writes its files
    _write = lazy_import("edgefit.cascade._write")

SPLIT_NAMES = ("calibrate", "select", "report")
DEFAULT_SPLITS = (0.4, 0.3, 0.3)


def split_indices(
    labels: np.ndarray, fractions: Sequence[float], seed: int
) -> dict[str, np.ndarray]:
    """Stratified, seeded split of sample indices into calibrate / select / report."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise EdgefitError(
            f"splits {tuple(fractions)} are not three positive fractions summing to 1",
            where="--splits",
            fix="e.g. --splits 0.4,0.3,0.3 (calibrate, select, report)",
        )
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in SPLIT_NAMES}
    bounds = np.cumsum(fractions)[:2]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(bounds * len(idx)).astype(int)
        for name, chunk in zip(SPLIT_NAMES, np.split(idx, cuts)):
            parts[name].append(chunk)
    return {n: np.sort(np.concatenate(c)) for n, c in parts.items()}


def _outcomes(
    tier: LoadedTier,
    outputs: np.ndarray | None,
    calib: CalibrationReport | None,
    labels: np.ndarray,
    cost: TierCost,
    routes: bool,
) -> TierOutcomes:
    if (
        outputs is None
    ):  # a cloud tier with a stated accuracy: every request it gets is right that often
        assert tier.spec.accuracy is not None  # a tier without outputs states its accuracy
        correct = np.full(len(labels), float(tier.spec.accuracy))
        conf = expected = None
    else:
        assert calib is not None  # a tier with outputs is calibrated
        correct = (outputs.argmax(axis=1) == labels).astype(float)
        expected = confidence(outputs, calib.calibrator)
        conf = expected if routes else None
    return TierOutcomes(
        conf,
        correct,
        cost.latency_p50.value,
        cost.latency_p99.value,
        None if cost.energy is None else cost.energy.value,
        cost.usd.value,
        tier.spec.is_cloud,
        expected,
    )


def cascade(
    tiers: Sequence[str | TierSpec],
    data,
    objective: Objective,
    *,
    splits: Sequence[float] = DEFAULT_SPLITS,
    seed: int = 0,
    output_kind: OutputKind | None = None,
    threads: int = 1,
    out_dir: str | Path | None = None,
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> CascadeResult:
    """Calibrate every tier, search the thresholds under ``objective`` and report the cascade.

    ``tiers`` are ``--tier`` strings or :class:`TierSpec` s in routing order; ``data`` is an .npz
    path or an :class:`edgefit.evaluate.EvalData` with labels. Raises :class:`EdgefitError` (one
    line) for bad input and :class:`NoFeasibleCascade` (exit code 3) when no thresholds meet the
    objective.
    """
    say = progress or (lambda _msg: None)
    specs = name_tiers(
        [t if isinstance(t, TierSpec) else parse_tier(t, i) for i, t in enumerate(tiers)]
    )
    if len(specs) < 2:
        raise EdgefitError(
            f"a cascade needs at least two tiers, got {len(specs)}",
            where="--tier",
            fix="pass --tier once per tier, in routing order",
        )
    for spec in specs[:-1]:
        if spec.model is None:
            raise EdgefitError(
                f"{spec.name} has no model, so it has no confidence to route on; only the last "
                "tier "
                "may be a stated-accuracy cloud",
                where="--tier",
                fix="move it last, or give model=FILE",
            )
    data = data if isinstance(data, EvalData) else load_npz(data)
    if data.y is None:
        raise EdgefitError(
            f"{data.source} has no labels; calibration and threshold search need them",
            where="--data",
            fix="save the labels as y (numpy.savez(path, x=inputs, y=labels))",
        )
    say("loading tiers")
    loaded = [load_tier(s, where=f"--tier {s.name}") for s in specs]
    check_compatible(loaded)
    first = next(t for t in loaded if t.session is not None)
    data = check_data(data, (1, *first.input_shape), first.input_dtype, first.output_shape[0])
    index = split_indices(data.y, splits, seed)
    outputs = []
    for t in loaded:
        say(f"running {t.spec.name} on {len(data)} samples")
        outputs.append(None if t.session is None else tier_outputs(t, data.x))
    labels = {n: data.y[i] for n, i in index.items()}
    calibs = []
    for t, out in zip(loaded, outputs):
        say(f"calibrating {t.spec.name}")
        calibs.append(
            None
            if out is None
            else calibrate_tier(
                out[index["calibrate"]],
                labels["calibrate"],
                out[index["report"]],
                labels["report"],
                output_kind=output_kind,
                seed=seed,
                where=f"--tier {t.spec.name}",
            )
        )
    costs = tier_costs(loaded, threads=threads, progress=say)
    last = len(loaded) - 1
    per_split = {
        n: [
            _outcomes(t, None if o is None else o[index[n]], c, labels[n], cost, k < last)
            for k, (t, o, c, cost) in enumerate(zip(loaded, outputs, calibs, costs))
        ]
        for n in ("select", "report")
    }
    say("searching thresholds")
    chosen, reported, pareto, pareto_report = search(
        per_split["select"], per_split["report"], objective
    )
    singles = alone(per_split["report"], "report")
    results = tuple(
        TierResult(
            t.spec,
            t.output_shape,
            t.input_shape,
            singles[k].accuracy,
            c,
            cost,
            chosen.thresholds[k] if k < last else None,
        )
        for k, (t, c, cost) in enumerate(zip(loaded, calibs, costs))
    )
    result = CascadeResult(
        results,
        objective,
        chosen,
        reported,
        pareto,
        pareto_report,
        singles,
        {n: int(len(i)) for n, i in index.items()},
        seed,
        data.source,
        _provenance(command, seed),
    )
    if out_dir is not None:
        result = write(result, Path(out_dir), command=command, progress=say)
    return result


def _provenance(command: str, seed: int) -> dict:
    versions = {"edgefit": __version__, "python": platform.python_version()}
    for mod in ("numpy", "onnx", "onnxruntime", "sklearn", "scipy"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    host = _host.probe_host()
    return {
        "command": command,
        "seed": seed,
        "versions": versions,
        "machine": {"cpu": host.model, "cores": host.cores, "arch": platform.machine()},
    }


def write(result: CascadeResult, out_dir: Path, *, command: str, progress=None) -> CascadeResult:
    """Fold each tier's calibrator into a copy of its model (a JSON sidecar where it cannot be
    folded), then write the config, report, model cards and cascade.json."""
    models = ensure_dir(out_dir / "models")
    tiers = []
    for t in result.tiers:
        if t.calibration is None or t.spec.model is None:
            tiers.append(t)
            continue
        if progress:
            progress(f"folding {t.spec.name}'s calibrator into its model")
        folded, sidecar = fold_or_sidecar(
            t.spec.model,
            t.calibration.calibrator,
            models / f"{t.spec.name}.calibrated.onnx",
            models / f"{t.spec.name}.calibrator.json",
        )
        tiers.append(
            replace(
                t,
                calibrated_model=None if folded is None else str(folded),
                calibrator_sidecar=None if sidecar is None else str(sidecar),
            )
        )
    result = replace(result, tiers=tuple(tiers))
    _write.write_outputs(result, out_dir, command=command)
    return result
