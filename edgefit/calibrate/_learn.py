"""Learn kernel costs on this machine: profile the corpus, fit tree ensembles, cross-validate.

``edgefit calibrate --target host-cpu --runtime onnxruntime`` runs :func:`calibrate_learned`:

1. :func:`corpus_items` exports the random-network corpus (:mod:`edgefit.calibrate._corpus`) in
   fp32 and both int8 recipes; :func:`~edgefit.calibrate._collect.collect` lowers each with
   onnxruntime and times every kernel in the network at each thread count, and the whole model
   without the profiler (the run-level terms need that).
2. :func:`fit` trains one ensemble per kernel op (enough samples), per category and overall, on
   log(measured ÷ reference time); k-fold by *network* gives out-of-fold kernel predictions, from
   which the run-level terms and the per-precision 90% intervals are fitted — on networks the
   kernels were not fitted on.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefit._cpu import spare_threads
from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.calibrate import _observed
from edgefit.calibrate._collect import (
    PASSES,
    ModelRun,
    Progress,
    collect,
    runs_from_dict,
    runs_to_dict,
)
from edgefit.calibrate._corpus import (
    ADAPTIVE_FAMILY,
    MAX_MACS,
    can_focus,
    corpus_specs,
    focused_specs,
)
from edgefit.calibrate._measure import SENTINEL_SLOWDOWN
from edgefit.calibrate._zoo import ZooSpec, zoo_onnx
from edgefit.errors import EdgefitError
from edgefit.estimate._fingerprint import Fingerprint, this_machine
from edgefit.estimate._learned import (
    INTERVAL_QUANTILE,
    LearnedProfile,
    RunTerms,
    learned_from_dict,
    learned_path,
)
from edgefit.estimate._node_features import CATEGORIES, category, node_features, op_key
from edgefit.estimate._trees import TreeEnsemble, fit_ensemble
from edgefit.graph import load_graph
from edgefit.runtimes import _measure as _runtime_measure

if TYPE_CHECKING:
    import threadpoolctl
    from scipy import optimize as scipy_optimize

    from edgefit.targets import _host
else:  # the host probe needs the target model (pydantic); threadpoolctl and scipy when fitting
    threadpoolctl, _host, scipy_optimize = lazy_import(
        "threadpoolctl", "edgefit.targets._host", "scipy.optimize"
    )

TREES, LEAVES = 250, 31
FOLDS = 5


def _table(runs: list[ModelRun]):
    """Kernel rows: features, log(time ÷ reference), reference, op key, category, network index,
    and the weight √(share of its network's summed kernel time)."""
    x, y, ref, keys, cats, model_of = [], [], [], [], [], []
    for m, run in enumerate(runs):
        for node in run.lowered.nodes:
            if node.time_s is None or node.time_s <= 0:
                continue
            vec, r = node_features(node, run.threads)
            x.append(vec)
            ref.append(r)
            y.append(np.log(node.time_s) - np.log(r))
            keys.append(op_key(node))
            cats.append(category(node))
            model_of.append(m)
    y_, ref_, model_ = np.array(y), np.array(ref), np.array(model_of, dtype=int)
    t = np.exp(y_) * ref_
    total = np.zeros(len(runs))
    np.add.at(total, model_, t)
    weight = np.sqrt(t / total[model_]) if len(t) else t
    return np.array(x), y_, ref_, np.array(keys), np.array(cats), model_, weight


def _fit_models(x, y, keys, cats, weights, seed: int) -> tuple[dict, dict, TreeEnsemble]:
    """One ensemble over all kernels, weighted by √(the kernel's share of its network's time): the
    kernels that make a model's latency count most, the many tiny ones still count. (Per-category
    and per-op ensembles were tried and cross-validated worse on the corpus: 13.0% and more median
    whole-network error against 12.1% for one model, 11.3% weighted — an op's own samples cover
    fewer shapes than all kernels together, and the op code is a feature of the one model.)"""
    # the machine's two cores, or one while other work keeps them busy: never oversubscribed by
    # OpenMP (the fit is the same at any thread count)
    with threadpoolctl.threadpool_limits(spare_threads()):
        return {}, {}, fit_ensemble(x, y, trees=TREES, leaves=LEAVES, seed=seed, weights=weights)


# bounds of the per-category run terms (see RunTerms): a category's unprofiled time is its profiled
# time times a factor in [SCALE_BOUNDS], plus a per-node term within ±PER_NODE_BOUND_S (the
# profiler's bookkeeping is a few microseconds a node); a run's fixed cost is not negative
SCALE_BOUNDS = (0.2, 5.0)
PER_NODE_BOUND_S = 5e-6
# a category in fewer corpus networks gets no terms of its own: two free terms fitted on a handful
# of networks follow those networks, not the category (4 networks with a transposed convolution
# gave it a scale of 3). Such categories share one pooled pair, fitted when they appear together
# in MIN_NETWORKS networks (a quick profile's 13 networks leave conv, norm, pool and rnn below the
# bar, and without a per-node term their kernels kept the profiler's bookkeeping: an 18 µs
# autoencoder was estimated at 48 µs); a pool in fewer networks keeps its profiled times.
MIN_NETWORKS = 10


def _run_terms(
    runs: list[ModelRun], times: list[np.ndarray], cats: list[list[str]]
) -> dict[int, RunTerms]:
    """Bounded least squares in relative error, per thread count: measured ≈ overhead + Σ over
    categories (scale_c · Σ kernel times in c + per-node_c · kernels in c). ``times[i]`` and
    ``cats[i]`` are run ``i``'s out-of-fold kernel predictions and their categories."""
    networks = {c: {r.name for r, cs in zip(runs, cats) if c in cs} for c in CATEGORIES}
    rare = [c for c in CATEGORIES if len(networks[c]) < MIN_NETWORKS]
    pooled = len(set().union(*(networks[c] for c in rare))) >= MIN_NETWORKS if rare else False
    # the fitted groups: each well-sampled category alone, the rare ones as one pool (or none)
    groups = [[c] for c in CATEGORIES if c not in rare] + ([rare] if pooled else [])
    group_of = {c: g for g, members in enumerate(groups) for c in members}
    terms = {}
    for threads in sorted({r.threads for r in runs}):
        idx = [i for i, r in enumerate(runs) if r.threads == threads and len(times[i])]
        meas = np.array([runs[i].measured_s for i in idx])
        a = np.zeros((len(idx), 1 + 2 * len(groups)))
        kept = np.zeros(len(idx))  # kernels of an unfitted category count at their predicted time
        a[:, 0] = 1.0
        for row, i in enumerate(idx):
            for t, c in zip(times[i], cats[i]):
                if c in group_of:
                    a[row, 1 + 2 * group_of[c]] += t
                    a[row, 2 + 2 * group_of[c]] += 1.0
                else:
                    kept[row] += t
        lo = np.r_[0.0, np.tile([SCALE_BOUNDS[0], -PER_NODE_BOUND_S], len(groups))]
        hi = np.r_[np.inf, np.tile([SCALE_BOUNDS[1], PER_NODE_BOUND_S], len(groups))]
        coef = scipy_optimize.lsq_linear(a / meas[:, None], 1.0 - kept / meas, bounds=(lo, hi)).x
        by_category = {
            c: (
                (float(coef[1 + 2 * group_of[c]]), float(coef[2 + 2 * group_of[c]]))
                if c in group_of
                else (1.0, 0.0)
            )
            for c in CATEGORIES
        }
        terms[threads] = RunTerms(1.0, float(coef[0]), 0.0, by_category)
    return terms


def fit(
    runs: list[ModelRun],
    *,
    target: str = "host-cpu",
    runtime: str = "onnxruntime",
    seed: int = 0,
    folds: int = FOLDS,
    fingerprint: Fingerprint | None = None,
) -> LearnedProfile:
    """Fit a :class:`LearnedProfile` on ``runs`` (see the module docstring), measured on the
    machine ``fingerprint`` describes (default: this one). Runs measured while
    another process held a CPU through every retry are left out, unless they are half or more
    (then the machine was busy throughout: all are kept, and ``training["disturbed"]`` says so)."""
    disturbed = sum(r.disturbed for r in runs)
    excluded = 0 < disturbed < len(runs) / 2
    if excluded:
        runs = [r for r in runs if not r.disturbed]
    x, y, ref, keys, cats, model_of, weight = _table(runs)
    if not len(y):
        raise EdgefitError(
            f"no kernel timings to fit: none of {len(runs)} network runs has a timed kernel",
            where="calibrate",
            fix="profile each network with 5 runs or more (lower(..., runs=5)), or measure again",
        )
    networks = sorted({r.name for r in runs})
    oof = _out_of_fold(runs, x, y, keys, cats, model_of, weight, seed=seed, folds=folds)
    kernel_s = np.exp(oof) * ref
    times = [kernel_s[model_of == m] for m in range(len(runs))]
    run_cats = [list(cats[model_of == m]) for m in range(len(runs))]
    run_terms = _run_terms(runs, times, run_cats)
    est = np.array([run_terms[r.threads].total(times[i], run_cats[i]) for i, r in enumerate(runs)])
    log_err = np.abs(np.log(est / np.array([r.measured_s for r in runs])))
    precisions = np.array([r.precision for r in runs])
    intervals = {
        str(p): float(np.quantile(log_err[precisions == p], INTERVAL_QUANTILE))
        for p in np.unique(precisions)
    }
    ops, categories, overall = _fit_models(x, y, keys, cats, weight, seed)
    training = {
        "networks": len(networks),
        "model_runs": len(runs),
        "kernels": int(len(y)),
        "op_models": sorted(ops),
        "category_models": sorted(categories),
        "cv": {
            "folds": folds,
            "by": "network",
            "median_abs_error": float(np.median(np.exp(log_err) - 1)),
            "within_10pct": float((np.exp(log_err) - 1 <= 0.10).mean()),
            f"per_precision_q{round(INTERVAL_QUANTILE * 100)}_abs_log_error": intervals,
        },
        "disturbed": {
            "runs": disturbed,
            "excluded": excluded,
            "rule": (
                f"after {PASSES} tries, CPU wait over {_runtime_measure.QUIET_CPU_WAIT:.0%} or "
                f"the sentinel over {SENTINEL_SLOWDOWN:.0%} slower than quiet"
            ),
        },
        "python": platform.python_version(),
        "measured_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    adaptive = sorted({r.family for r in runs if r.family.startswith(ADAPTIVE_FAMILY)})
    if adaptive:
        training["adaptive"] = {
            f.removeprefix(ADAPTIVE_FAMILY): len({r.name for r in runs if r.family == f})
            for f in adaptive
        }
    return LearnedProfile(
        target=target,
        runtime=runtime,
        fingerprint=fingerprint or this_machine(runtime),
        threads=tuple(sorted({r.threads for r in runs})),
        ops=ops,
        categories=categories,
        overall=overall,
        run=run_terms,
        intervals=intervals,
        training=training,
    )


def _out_of_fold(runs, x, y, keys, cats, model_of, weight, *, seed: int, folds: int) -> np.ndarray:
    """Each kernel's log-ratio predicted by a model fitted without its network (k-fold by
    network)."""
    networks = sorted({r.name for r in runs})
    fold_of = {
        n: i % folds for i, n in enumerate(np.random.default_rng(seed).permutation(networks))
    }
    oof = np.zeros(len(y))
    for f in range(folds):
        test = np.array([fold_of[runs[m].name] == f for m in model_of], dtype=bool)
        if not test.any() or test.all():
            continue
        _, _, overall = _fit_models(
            x[~test], y[~test], keys[~test], cats[~test], weight[~test], seed
        )
        oof[test] = overall.predict(x[test])
    return oof


# Adaptive sampling (nn-Meter samples more kernel configurations where its first predictor errs
# most). After the first pass, the kernel ops with the largest out-of-fold error times their
# share of the corpus's kernel time get ADAPT_NETWORKS more networks each (at most ADAPT_OPS
# ops a round), rich in the modules that lower to them (calibrate._corpus.focused_specs). An op
# whose time-weighted median error is under ADAPT_MIN_ERROR, or whose kernels are under
# ADAPT_MIN_SHARE of the time, is left as it is: a tiny op's error hardly moves a network.
ADAPT_OPS = 3
ADAPT_NETWORKS = 8
ADAPT_MIN_ERROR = 0.15
ADAPT_MIN_SHARE = 0.003


@dataclass(frozen=True)
class WeakOp:
    """A kernel op the corpus fit predicts badly: its time-weighted median out-of-fold |error|
    (as a ratio − 1), its share of the corpus's kernel time, its kernels and networks."""

    op: str
    error: float
    share: float
    kernels: int
    networks: int

    @property
    def score(self) -> float:
        return float(np.log1p(self.error) * self.share)


def weak_ops(runs: list[ModelRun], *, seed: int = 0, folds: int = FOLDS) -> list[WeakOp]:
    """The kernel ops the corpus predicts worst out of fold, worst (error × time share) first,
    above ADAPT_MIN_ERROR and ADAPT_MIN_SHARE; only ops the corpus grammar can draw more of."""
    x, y, ref, keys, cats, model_of, weight = _table(runs)
    if not len(y):
        return []
    oof = _out_of_fold(runs, x, y, keys, cats, model_of, weight, seed=seed, folds=folds)
    err, t = np.abs(oof - y), np.exp(y) * ref
    out = []
    for op in np.unique(keys):
        mask = keys == op
        order = np.argsort(err[mask])
        cum = np.cumsum(t[mask][order])
        median = float(err[mask][order][np.searchsorted(cum, cum[-1] / 2)])
        weak = WeakOp(
            str(op),
            float(np.expm1(median)),
            float(t[mask].sum() / t.sum()),
            int(mask.sum()),
            len({runs[m].name for m in model_of[mask]}),
        )
        if weak.error >= ADAPT_MIN_ERROR and weak.share >= ADAPT_MIN_SHARE and can_focus(op):
            out.append(weak)
    return sorted(out, key=lambda w: -w.score)


def adaptive_specs(runs: list[ModelRun], *, seed: int = 0, round_: int = 0) -> list[ZooSpec]:
    """The networks of one adaptive round: ADAPT_NETWORKS for each of the ADAPT_OPS weakest
    kernel ops, none already in ``runs`` (a network drawn for two ops is kept once)."""
    seen = {r.name for r in runs}
    specs: list[ZooSpec] = []
    for weak in weak_ops(runs, seed=seed)[:ADAPT_OPS]:
        for spec in focused_specs(
            weak.op, ADAPT_NETWORKS, seed=seed, start=50_000 + 10_000 * round_
        ):
            if spec.name not in seen:
                seen.add(spec.name)
                specs.append(spec)
    return specs


def corpus_items(
    count: int,
    folder: Path,
    *,
    recipes: tuple[str, ...],
    seed: int = 0,
    progress: Progress | None = None,
) -> list[tuple[str, str, str, Path]]:
    """Export the corpus (cached in ``folder``) in each recipe."""
    return export_items(corpus_specs(count, seed=seed), folder, recipes=recipes, progress=progress)


def export_items(
    specs: list[ZooSpec],
    folder: Path,
    *,
    recipes: tuple[str, ...],
    progress: Progress | None = None,
) -> list[tuple[str, str, str, Path]]:
    """Export corpus networks (cached in ``folder``) in each recipe; a network over
    :data:`MAX_MACS`, or one the exporter or quantizer cannot take, is passed over."""
    items = []
    for i, spec in enumerate(specs):
        if progress:
            progress(f"export {spec.name}", i, len(specs))
        try:
            fp32 = zoo_onnx(spec, "fp32", folder)
            if load_graph(str(fp32)).macs > MAX_MACS:
                continue
            items += [(spec.name, spec.family, r, zoo_onnx(spec, r, folder)) for r in recipes]
        except (
            EdgefitError,
            RuntimeError,
            ValueError,
        ):  # an export or quantization the draw cannot take
            continue
    return items


def calibrate_learned(
    *,
    networks: int = 120,
    threads_list: tuple[int, ...] = (1, 2),
    out: Path | None = None,
    cache: Path | None = None,
    recipes=("fp32", "int8-default", "int8-u8s8-pc"),
    runs: int = 30,
    seed: int = 0,
    quick: bool = False,
    adaptive_rounds: int = 1,
    progress: Progress | None = None,
) -> LearnedProfile:
    """Profile ``networks`` corpus networks here, then ``adaptive_rounds`` rounds of networks
    focused on the kernel ops predicted worst (none with ``quick``), fit, write the profile;
    returns it."""

    if quick:
        runs, adaptive_rounds = QUICK["runs"], 0
    with tempfile.TemporaryDirectory(prefix="edgefit-corpus-") as tmp:
        folder = Path(cache) if cache else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        items = corpus_items(networks, folder, recipes=recipes, seed=seed, progress=progress)
        runs_ = collect(items, threads_list, runs=runs, progress=progress)
        for round_ in range(adaptive_rounds):
            specs = adaptive_specs(runs_, seed=seed, round_=round_)
            if not specs:
                break
            items = export_items(specs, folder, recipes=recipes, progress=progress)
            runs_ += collect(items, threads_list, runs=runs, progress=progress)
    path = (
        Path(out) if out else learned_path("host-cpu", "onnxruntime", this_machine("onnxruntime"))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # the raw kernel timings go beside the profile first: a refit never needs the machine again
    write_atomic(
        measurements_path(path),
        gzip.compress(to_json(runs_to_dict(runs_), indent=None).encode(), mtime=0),
    )
    return _fit_and_write(runs_, path, seed=seed, folds=3 if quick else FOLDS)


def measurements_path(profile_path: Path) -> Path:
    return Path(str(profile_path).replace(".profile.json", "") + ".measurements.json.gz")


def _fit_and_write(
    runs_: list[ModelRun],
    path: Path,
    *,
    seed: int,
    folds: int,
    fingerprint: Fingerprint | None = None,
    measured_at: str | None = None,
    observed: dict | None = None,
) -> LearnedProfile:
    profile = fit(runs_, seed=seed, folds=folds, fingerprint=fingerprint)
    if measured_at:  # a refit: the timings are as old as they were, the fit is new
        profile.training["refit_at"] = profile.training["measured_at"]
        profile.training["measured_at"] = measured_at
    if observed is not None:
        profile.training["observed"] = observed
    write_atomic(path, to_json(profile.to_dict()))
    return learned_from_dict(profile.to_dict(), path=str(path))


def refit_learned(
    path: Path, *, seed: int = 0, observed_folder: Path | None = None
) -> LearnedProfile:
    """Fit the profile at ``path`` again from the kernel timings stored beside it (no
    measuring), with the runs other commands measured on the profile's machine
    (:mod:`~edgefit.calibrate._observed`, read from ``observed_folder``, default the cache). The
    machine and the time the stored timings were measured on are the old profile's (read even
    from a profile of an older format), so another machine's profile can be refitted here."""
    stored = measurements_path(path)
    fingerprint, measured_at = _measured_on(path)
    try:
        rows = json.loads(gzip.decompress(stored.read_bytes()))
        runs_ = runs_from_dict(rows)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise EdgefitError(
            f"cannot read the stored measurements: {exc}",
            where=str(stored),
            fix="run `edgefit calibrate --target host-cpu` without --refit to measure again",
        ) from None
    observed = _observed.load(fingerprint or this_machine(), observed_folder)
    return _fit_and_write(
        runs_ + observed.runs,
        path,
        seed=seed,
        folds=FOLDS,
        fingerprint=fingerprint,
        measured_at=measured_at,
        observed=observed.summary(),
    )


def _measured_on(path: Path) -> tuple[Fingerprint | None, str | None]:
    """The fingerprint and measurement time of the profile at ``path`` (None, None where there is
    no readable one: the timings are then taken to be this machine's)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return Fingerprint.from_dict(d["fingerprint"]), (d.get("training") or {}).get(
            "measured_at"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


QUICK = {
    "networks": 16,
    "runs": 12,
}  # `edgefit calibrate --quick`: a usable profile in about 90 s on 2 cores


def default_threads_list(threads: int | None) -> tuple[int, ...]:
    """Profiles are measured at 1 thread and at the core count (other counts: Amdahl between
    them)."""
    counts = {1, _host.probe_host().cores}
    if threads:
        counts.add(int(threads))
    return tuple(sorted(counts))
