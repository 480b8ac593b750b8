"""Learned kernel costs: a per-machine profile of tree ensembles over lowered onnxruntime kernels.

The per-class fit of the first estimator (one efficiency, overhead and fall-off per kernel class)
could not follow held-out shapes: a uint8 MaxPool, a depthwise QLinearConv and an fp32 1×1 conv
differ by orders of magnitude in time per byte. Following nn-Meter, kernel times are learned from
measured in-network kernel times. The format holds per-op and per-category ensembles that take
precedence over the one over all kernels, but calibration currently fits only that one (with the
op, its element types and layout as features): per-op and per-category models cross-validated worse
on the corpus (see ``edgefit.calibrate._learn._fit_models``), so ``ops`` and ``categories`` are
empty in shipped profiles. A whole model is

    time = run overhead + Σ_c (scale_c · Σ kernel times in c + per-node_c · kernels in c)

over kernel categories c (convolution, gemm, pooling, quantize, norm, data movement, recurrent,
elementwise, transposed convolution), with the run terms fitted on whole-model measurements without
the profiler (out-of-fold kernel predictions, so the correction is not fitted to in-sample fits).
They are per category because the profiler's error is: it adds a few microseconds of bookkeeping to
every node, which is most of a Reshape's profiled time and little of a convolution's, and a layer
norm or a view op runs slower or faster in a tight unprofiled run than its profiled time says. (On
the corpus before it gained resize decoders, one scale and one per-node term for all kernels, the
first form, left 15% median error in the corpus's own cross-validation by network where
per-category terms leave 11%.) A category seen in fewer than ``MIN_NETWORKS`` corpus networks
(:mod:`edgefit.calibrate._learn`) keeps its kernel times: scale 1, no per-node term. A profile
without per-category terms reads as the first form. The printed interval is the 90% quantile of
held-out |log error| in the profile's own cross-validation, per precision class
(:data:`INTERVAL_QUANTILE`).

Profiles are JSON (``profiles/<target>/<runtime>/<fingerprint id>.profile.json``), never pickles;
the fidelity run stores its rows beside it (``….fidelity.json``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgefit._resources import data_dir
from edgefit.errors import EdgefitError
from edgefit.estimate._fingerprint import Fingerprint, this_machine
from edgefit.estimate._lower_ort import Lowered
from edgefit.estimate._node_features import CATEGORIES, FEATURES, category, node_features, op_key
from edgefit.estimate._trees import TreeEnsemble

# /2: a recurrent kernel's reference time counts its recurrence weights read at every step
FORMAT = "edgefit-learned-profile/2"
COVERAGE = 0.8  # what the printed interval aims to cover on architectures never trained on
# The printed interval is this quantile of |log error| over held-out corpus networks in the
# profile's cross-validation. New architectures err more than held-out corpus networks: with the
# 80% quantile the bars covered 71% / 75% (1 / 2 threads) of the fidelity zoo's held-out families,
# with the 90% quantile 83% / 82%; choosing the quantile itself leave-one-family-out on the zoo
# covered 79% (Intel Xeon VM with AMX, onnxruntime 1.31.1, 2026-12-07, the corpus before resize
# decoders; with the current corpus and profile the 90% bars cover 93% / 90%).
INTERVAL_QUANTILE = 0.9


def precision_class(lowered: Lowered) -> str:
    """fp32, int8-u8 or int8-s8: what the model's activations are quantized to (the error bars
    differ)."""
    for node in lowered.nodes:
        if node.op == "QuantizeLinear" and node.out_types:
            return "int8-" + node.out_types[0]
        if node.op.startswith("QLinear") or node.op in ("QGemm", "MatMulInteger"):
            # the first integer input: QLinearConcat's inputs start with its output scale
            return "int8-" + next((t for t in node.in_types if t in ("u8", "s8")), "u8")
    return "fp32"


@dataclass(frozen=True)
class RunTerms:
    """From summed kernel predictions to a whole run at one thread count (module docstring)."""

    scale: float
    overhead_s: float
    per_kernel_s: float
    # kernel category → (scale, seconds per node), replacing ``scale`` and ``per_kernel_s`` for the
    # nodes of that category; empty in profiles fitted before the terms were per category
    by_category: dict[str, tuple[float, float]] = field(
        default_factory=dict, hash=False, compare=False
    )

    def total(self, times: np.ndarray, categories: list[str]) -> float:
        """Whole-run seconds from per-node predictions ``times`` of the given ``categories``. A
        node contributes at least nothing: a negative per-node term never makes a kernel free
        time."""
        if not self.by_category:
            return (
                self.scale * float(np.sum(times))
                + self.overhead_s
                + self.per_kernel_s * len(times)
            )
        default = (self.scale, self.per_kernel_s)
        terms = np.array([self.by_category.get(c, default) for c in categories]).reshape(-1, 2)
        per_node = np.maximum(terms[:, 0] * np.asarray(times) + terms[:, 1], 0.0)
        return self.overhead_s + float(per_node.sum())

    def to_dict(self) -> dict:
        d: dict = {
            "scale": self.scale,
            "overhead_s": self.overhead_s,
            "per_kernel_s": self.per_kernel_s,
        }
        if self.by_category:
            d["by_category"] = {c: list(v) for c, v in sorted(self.by_category.items())}
        return d


@dataclass(frozen=True)
class LearnedProfile:
    target: str
    runtime: str
    fingerprint: Fingerprint
    threads: tuple[int, ...]  # thread counts measured
    ops: dict[str, TreeEnsemble]
    categories: dict[str, TreeEnsemble]
    overall: TreeEnsemble
    run: dict[int, RunTerms]
    # precision class → INTERVAL_QUANTILE of held-out |log(est / measured)|
    intervals: dict[str, float]
    cross_machine_error: float | None = (
        None  # |log error| quantile when used on another machine, if measured
    )
    training: dict = field(default_factory=dict)
    fidelity: dict = field(default_factory=dict)
    path: str = ""
    # where a measured cross-machine error comes from (read from the cross-machine fidelity files
    # beside the profile when it is loaded; not stored in the profile, which only calibrate writes)
    cross_machine_note: str = ""

    # -- prediction ----------------------------------------------------------------------------
    def kernel_times(self, lowered: Lowered, threads: int | None = None) -> np.ndarray:
        """Predicted in-network time of every lowered node, seconds."""
        threads = threads or lowered.threads
        if threads in self.threads or len(self.threads) < 2:
            return self._kernel_times(lowered, threads)
        # Amdahl between the two measured ends: t(n) = t1 · ((1 - p) + p / n), p from t(lo) and
        # t(hi)
        lo, hi = min(self.threads), max(self.threads)
        t_lo, t_hi = self._kernel_times(lowered, lo), self._kernel_times(lowered, hi)
        serial = (
            np.clip((t_hi - t_lo / hi * lo) / (t_lo * (1 - lo / hi)), 0.0, 1.0)
            if hi != lo
            else 1.0
        )
        t1 = t_lo / (serial + (1 - serial) / lo)
        return t1 * (serial + (1 - serial) / threads)

    def _kernel_times(self, lowered: Lowered, threads: int) -> np.ndarray:
        if not lowered.nodes:
            return np.zeros(0)
        feats, refs = zip(*(node_features(n, threads) for n in lowered.nodes))
        x, ref = np.vstack(feats), np.array(refs)
        pred = np.empty(len(x))
        groups: dict[int, list[int]] = {}
        models: list[TreeEnsemble] = []
        for i, node in enumerate(lowered.nodes):
            model = (
                self.ops.get(op_key(node)) or self.categories.get(category(node)) or self.overall
            )
            groups.setdefault(id(model), []).append(i)
            if all(m is not model for m in models):
                models.append(model)
        for model in models:
            idx = groups[id(model)]
            pred[idx] = model.predict(x[idx])
        return np.exp(pred) * ref

    def latency(self, lowered: Lowered, threads: int | None = None) -> float:
        """Predicted whole-model latency (seconds) of a lowered model at ``threads``."""
        threads = threads or lowered.threads
        terms = self.run.get(threads) or self.run[min(self.run, key=lambda t: abs(t - threads))]
        times = self.kernel_times(lowered, threads)
        return terms.total(times, [category(n) for n in lowered.nodes])

    def mismatch_interval(self) -> float:
        """± fraction for use on another machine: the measured cross-machine error, else ±100%."""
        return (
            math.exp(self.cross_machine_error) - 1 if self.cross_machine_error is not None else 1.0
        )

    def interval(self, precision: str) -> float:
        """Relative half-width (± fraction) of the interval for ``precision``
        (:data:`INTERVAL_QUANTILE` of held-out corpus error)."""
        q = self.intervals.get(precision, max(self.intervals.values(), default=0.5))
        return math.exp(q) - 1

    # -- storage -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "target": self.target,
            "runtime": self.runtime,
            "fingerprint": self.fingerprint.to_dict(),
            "threads": list(self.threads),
            "features": list(FEATURES),
            "run": {str(t): r.to_dict() for t, r in self.run.items()},
            "intervals": self.intervals,
            "cross_machine_error": self.cross_machine_error,
            "training": self.training,
            "fidelity": self.fidelity,
            "ops": {k: m.to_dict() for k, m in sorted(self.ops.items())},
            "categories": {k: m.to_dict() for k, m in sorted(self.categories.items())},
            "overall": self.overall.to_dict(),
        }


def learned_from_dict(d: dict, *, path: str = "<dict>") -> LearnedProfile:
    try:
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r} is not {FORMAT!r}")
        if list(d.get("features", [])) != list(FEATURES):
            raise ValueError("its feature list differs from this edgefit's")
        unknown = set(d.get("categories", {})) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown kernel categories {sorted(unknown)}")
        return LearnedProfile(
            target=str(d["target"]),
            runtime=str(d["runtime"]),
            fingerprint=Fingerprint.from_dict(d["fingerprint"]),
            threads=tuple(int(t) for t in d["threads"]),
            ops={str(k): TreeEnsemble.from_dict(v) for k, v in d["ops"].items()},
            categories={str(k): TreeEnsemble.from_dict(v) for k, v in d["categories"].items()},
            overall=TreeEnsemble.from_dict(d["overall"]),
            run={int(t): _run_terms_from_dict(r) for t, r in d["run"].items()},
            intervals={str(k): float(v) for k, v in d["intervals"].items()},
            cross_machine_error=None
            if d.get("cross_machine_error") is None
            else float(d["cross_machine_error"]),
            training=dict(d.get("training") or {}),
            fidelity=dict(d.get("fidelity") or {}),
            path=path,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgefitError(
            f"invalid learned profile: {exc}",
            where=path,
            fix="re-run `edgefit calibrate --target host-cpu --runtime onnxruntime` (with "
            f"`--refit --out {path}` it fits again from the timings stored beside it, measuring "
            "nothing)",
        ) from None


def _run_terms_from_dict(r: dict) -> RunTerms:
    by_category = {str(c): (float(v[0]), float(v[1])) for c, v in r.get("by_category", {}).items()}
    unknown = set(by_category) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"run terms for unknown kernel categories {sorted(unknown)}")
    return RunTerms(
        float(r["scale"]), float(r["overhead_s"]), float(r["per_kernel_s"]), by_category
    )


def load_learned(path: str | Path) -> LearnedProfile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgefitError(
            f"cannot read learned profile: {exc}",
            where=str(path),
            fix="re-run `edgefit calibrate` to regenerate it",
        ) from None
    if not isinstance(data, dict):
        raise EdgefitError(
            "a learned profile must be a JSON object",
            where=str(path),
            fix="re-run `edgefit calibrate`",
        )
    profile = learned_from_dict(data, path=str(path))
    if profile.cross_machine_error is None:
        measured = cross_machine_measured(profile)
        if measured is not None:
            error, note = measured
            profile = replace(profile, cross_machine_error=error, cross_machine_note=note)
    return profile


# the quantile of |log(estimate / measured)| over the zoo points measured on another machine that
# becomes the profile's bar there: the same quantile as its own intervals
CROSS_MACHINE_QUANTILE = INTERVAL_QUANTILE


def cross_machine_measured(profile: LearnedProfile) -> tuple[float, str] | None:
    """The widest measured cross-machine error of ``profile``, from the whole-zoo fidelity runs of
    it on other machines stored beside it (``<profile>.on-<machine>.fidelity.json``), and a note
    of where it was measured; None when there is none."""
    if not profile.path or not profile.path.endswith(".profile.json"):
        return None
    stem = Path(profile.path.removesuffix(".profile.json"))
    found: list[tuple[float, str]] = []
    for path in sorted(stem.parent.glob(stem.name + ".on-*.fidelity.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cross = data["cross_machine"]
            error, points = float(cross["abs_log_error_quantile"]), len(data["rows"])
            where = Fingerprint.from_dict(data["measured_on"]).describe()
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable or partial file says nothing; the default bar stays
        if data.get("subset") == "all" and math.isfinite(error):
            found.append((error, f"measured on {where}, {points} zoo points"))
    return max(found) if found else None


# a thread count at which the profile's own fidelity run left out this share of its timing rounds
# or more (over 20% slower than the model's fastest) gets a word with every estimate
SLOW_MODE_SHARE = 0.1


def slow_mode_note(profile: LearnedProfile, threads: int) -> str | None:
    """A warning when, on the profile's own machine, its whole-zoo fidelity run found runs at
    ``threads`` in a slow mode often (:data:`SLOW_MODE_SHARE`): the estimate and its bar are for
    the quiet runs, and a user timing in the slow mode will measure more. None otherwise, or when
    no fidelity run is stored."""
    if not profile.path or not profile.path.endswith(".profile.json"):
        return None
    try:
        data = json.loads(fidelity_path(profile).read_text(encoding="utf-8"))
        left, _, total = str(data["per_threads"][str(threads)]["rounds_left_out"]).split()
        share = int(left) / int(total)
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    if share < SLOW_MODE_SHARE:
        return None
    return (
        f"on this machine {left} of {total} timing rounds at {threads} thread(s) ran over 20% "
        "slower than the same model's fastest when this profile's fidelity was measured (a slow "
        "mode, up to 2x on the 2-core VM it was first seen on); the estimate and its bar are for "
        "the quiet runs"
    )


def learned_dir(target_id: str, runtime: str, root: Path | None = None) -> Path:
    return (root or data_dir("profiles")) / target_id / runtime


def learned_path(
    target_id: str, runtime: str, fingerprint: Fingerprint, root: Path | None = None
) -> Path:
    return learned_dir(target_id, runtime, root) / f"{fingerprint.id}.profile.json"


@dataclass(frozen=True)
class ProfileMatch:
    """The learned profile chosen for this machine, and whether it describes this machine."""

    profile: LearnedProfile
    here: Fingerprint
    mismatches: tuple[str, ...]  # empty: calibrated on this kind of machine

    @property
    def matches(self) -> bool:
        return not self.mismatches


def find_learned(
    target_id: str, runtime: str, *, here: Fingerprint | None = None, root: Path | None = None
) -> ProfileMatch | None:
    """The learned profile whose fingerprint matches this machine; else the nearest one (fewest
    mismatches, same int8 path first), flagged as another machine's; None when there is none."""
    folder = learned_dir(target_id, runtime, root)
    paths = sorted(folder.glob("*.profile.json")) if folder.is_dir() else []
    if not paths:
        return None
    here = here or this_machine(runtime)
    best: tuple[tuple[int, int], LearnedProfile, list[str]] | None = None
    for path in paths:
        profile = load_learned(path)
        miss = here.mismatches(profile.fingerprint)
        rank = (len(miss), int(profile.fingerprint.int8_path != here.int8_path))
        if best is None or rank < best[0]:
            best = (rank, profile, miss)
    assert best is not None
    return ProfileMatch(best[1], here, tuple(best[2]))


def fidelity_path(
    profile: LearnedProfile, *, on: Fingerprint | None = None, subset: str | None = None
) -> Path:
    """Where a fidelity run of ``profile`` is stored: beside it, as ``.fidelity.json`` for the
    whole zoo on the profile's own machine; ``on`` another machine adds ``.on-<its id>`` and a zoo
    subset adds its name, so neither overwrites the profile's own figures."""
    stem = profile.path.removesuffix(".profile.json")
    if on is not None:
        stem += f".on-{on.id}"
    if subset not in (None, "all"):
        stem += f".{subset}"
    return Path(stem + ".fidelity.json")
