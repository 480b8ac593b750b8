"""`edgefit calibrate`: measure the kernel catalog on a runtime, fit, and write the profile."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.calibrate import _measure
from edgefit.calibrate._catalog import (
    KernelSpec,
    build_kernel_model,
    load_catalog,
    quantizable,
    sample_specs,
)
from edgefit.calibrate._fit import Sample, fit_bandwidth, fit_class
from edgefit.calibrate._measure import default_threads, time_model
from edgefit.errors import EdgefitError
from edgefit.estimate import (
    KERNEL_CLASSES,
    PLAN_DTYPES,
    Estimator,
    KernelFit,
    PlanBatch,
    Profile,
    profile_path,
)
from edgefit.graph import load_graph
from edgefit.runtimes import measuring_runtime
from edgefit.runtimes._ort_convert import quantize_int8_static

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort

    from edgefit import targets
    from edgefit.calibrate import _vela
    from edgefit.targets import _host
else:  # onnx/onnxruntime and the target model (pydantic) load when a sweep runs; the Vela sweep
    # imports this module (an import cycle, resolved at call time)
    onnx, ort, targets, _vela, _host = lazy_import(
        "onnx",
        "onnxruntime",
        "edgefit.targets",
        "edgefit.calibrate._vela",
        "edgefit.targets._host",
    )

SECONDS_PER_MEASUREMENT = 0.7
MIN_BANDWIDTH_SAMPLES = (
    4  # fewer memory-bound kernels than this leave the datasheet bandwidth alone
)
BW_SCALE_RANGE = (
    0.04,
    25.0,
)  # session build + warm-up + timed runs + (int8) quantization, on 2 cores


def unit_profile(
    target_id: str, runtime: str, bw_scale: float = 1.0, base: Profile | None = None
) -> Profile:
    """A profile with efficiency 1 and no overhead: the estimator then returns raw roofline
    parts."""
    kernels = {(k, d): KernelFit(1.0, 0.0) for k in KERNEL_CLASSES for d in PLAN_DTYPES}
    if base:
        kernels.update(base.kernels)
    return Profile(
        target=target_id, runtime=runtime, kernels=kernels, memory_bandwidth_scale=bw_scale
    )


def environment(threads: int) -> dict:
    host = _host.probe_host()
    return {
        "cpu": host.model,
        "cpu_id": host.cpu_id,
        "cores": host.cores,
        "clock_hz": host.clock_hz,
        "isa": host.isa,
        "threads": threads,
        "runtime": "onnxruntime",
        "runtime_version": ort.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "measured_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _int8(model, folder: Path):
    """Static QDQ int8 (the recipe `edgefit bench --precision int8` uses), on random calibration
    data."""
    sess = _measure.session(model, 1)
    samples = [_measure.feeds_for(sess, seed) for seed in range(4)]
    out = folder / "q.onnx"
    root = logging.getLogger()
    level, root.level = (
        root.level,
        logging.ERROR,
    )  # onnxruntime.quantization warns on the root logger
    try:
        quantize_int8_static(
            model,
            out,
            samples,
            per_channel=True,
            reduce_range=False,
            calibration_source="random normal inputs (latency only)",
            preprocess=False,
        )
    finally:
        root.setLevel(level)
    return onnx.load(str(out))


def _roofline(model, target, profile: Profile):
    """(main kernel index, components, estimator) of a measured kernel model."""

    est = Estimator(load_graph(model), target, profile=profile)
    parts = est.components(PlanBatch.native(est.table))
    main = int(np.argmax(est.table.ops))
    return main, parts, est


def calibrate(
    target_id: str = "host-cpu",
    runtime: str = "onnxruntime",
    *,
    budget_s: float = 300.0,
    threads: int | None = None,
    out: Path | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Profile:
    """Measure ``kernels/catalog.yaml`` on ``runtime`` here, fit, write
    ``profiles/<target>/<runtime>.yaml``."""
    target = targets.load_target(target_id)
    if (
        runtime == "vela" and target.id == "ethos-u55"
    ):  # Arm's compiler gives the figures, no hardware needed
        return _vela.calibrate_vela(
            target.id, budget_s=budget_s, out=out, progress=progress, seed=seed
        )
    # kernel timing needs the target's own measuring runtime here (its YAML's runtimes), and the
    # catalog is built for onnxruntime
    if runtime != "onnxruntime" or measuring_runtime(target) != runtime:
        raise EdgefitError(
            f"calibration measures on this machine: '{target.id}' with '{runtime}' cannot run "
            "here",
            where="--target/--runtime",
            fix="use --target host-cpu --runtime onnxruntime, or --target ethos-u55 --runtime "
            "vela",
        )
    threads = threads or default_threads()
    dtypes, entries = load_catalog()
    specs = sample_specs(entries, seed=seed)
    per_spec = SECONDS_PER_MEASUREMENT * (
        1 + sum(quantizable(s.kclass) for s in specs) / len(specs)
    )
    specs = sample_specs(entries, scale=min(1.0, budget_s / (per_spec * len(specs))), seed=seed)

    helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
    ident = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "identity",
            [helper.make_tensor_value_info("x", float32, [1, 16])],
            [helper.make_tensor_value_info("y", float32, [1, 16])],
        ),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    ident.ir_version = 9
    run_overhead = time_model(ident, threads, min_runs=200).p50

    measured: list[tuple[str, str, object, float]] = []  # (class, dtype, model, seconds)
    raw: list[dict] = []
    total = len(specs)
    with tempfile.TemporaryDirectory(prefix="edgefit-calibrate-") as tmp:
        for i, spec in enumerate(specs):
            if progress:
                progress(spec.label, i, total)
            model = build_kernel_model(spec)
            for dtype in ("fp32", "int8"):
                if dtype == "int8" and not ("int8" in dtypes and quantizable(spec.kclass)):
                    continue
                m = model if dtype == "fp32" else _int8(model, Path(tmp))
                seconds = time_model(m, threads).p50
                measured.append((spec.kclass, dtype, m, seconds))
                raw.append(
                    {
                        "class": spec.kclass,
                        "params": dict(spec.params),
                        "dtype": dtype,
                        "seconds": seconds,
                    }
                )
    if progress:
        progress("fitting", total, total)
    path = Path(out) if out else profile_path(target.id, runtime)
    write_atomic(
        measurements_path(path),
        to_json(
            {
                "run_overhead_s": run_overhead,
                "threads": threads,
                "environment": environment(threads),
                "kernels": raw,
            }
        )
        + "\n",
    )
    return _fit_and_write(target, runtime, measured, run_overhead, environment(threads), path)


def measurements_path(profile: Path) -> Path:
    """The raw kernel timings beside a profile (``<runtime>.measurements.json``): refit without
    re-measuring."""
    return profile.with_name(profile.stem + ".measurements.json")


def _fit_and_write(target, runtime, measured, run_overhead, env: dict, path: Path) -> Profile:
    profile = fit_profile(target, runtime, measured, run_overhead)
    profile = Profile(
        **{
            **profile.__dict__,
            "environment": env,
            "residual": _residual(target, runtime, profile, measured, run_overhead),
        }
    )
    write_atomic(path, _yaml(profile))
    return Profile(**{**profile.__dict__, "path": str(path)})


def refit(
    measurements: Path, out: Path, target_id: str = "host-cpu", runtime: str = "onnxruntime"
) -> Profile:
    """Fit a profile again from stored kernel timings (the models are rebuilt from their
    parameters)."""
    doc = json.loads(Path(measurements).read_text())
    measured = []
    with tempfile.TemporaryDirectory(prefix="edgefit-refit-") as tmp:
        for row in doc["kernels"]:
            model = build_kernel_model(KernelSpec(row["class"], tuple(row["params"].items())))
            if row["dtype"] == "int8":
                model = _int8(model, Path(tmp))
            measured.append((row["class"], row["dtype"], model, row["seconds"]))
    return _fit_and_write(
        targets.load_target(target_id),
        runtime,
        measured,
        doc["run_overhead_s"],
        doc["environment"],
        Path(out),
    )


def _samples(target, measured, run_overhead, unit: Profile, others: Profile) -> list[Sample]:
    """Roofline parts of each measured model's main kernel (at 100% efficiency, no overhead,
    datasheet bandwidth) and the predicted time of its other kernels under ``others``."""
    samples = []
    for kclass, dtype, model, seconds in measured:
        main, parts, est = _roofline(model, target, unit)
        _, side, _ = _roofline(model, target, others)
        pred = np.maximum(side["compute_s"], side["memory_s"]) + side["overhead_s"]
        samples.append(
            Sample(
                model.graph.name,
                kclass,
                dtype,
                float(parts["compute_s"][main]),
                float(parts["memory_s"][main]),
                float(est.table.reduction[main]),
                float(pred.sum() - pred[main]),
                seconds - run_overhead,
                est.hw.level_names[int(parts["level"][main])],
            )
        )
    return samples


def fit_profile(target, runtime: str, measured, run_overhead: float) -> Profile:
    """Bandwidth first (memory-bound elementwise kernels), then every (class, dtype) twice: the
    second round subtracts side kernels (an int8 model's input quantize) predicted with the first
    round's fits. Last, the "chain" models (many kernels in a row) give each dtype an extra
    overhead per kernel for what happens between kernels in a real network and not around a lone
    one."""
    kernels_only = [m for m in measured if m[0] != "chain"]
    unit = unit_profile(target.id, runtime)
    first = _samples(target, kernels_only, run_overhead, unit, unit)
    # One bandwidth scale from the memory-bound elementwise kernels. (Per-level fits were tried: on
    # a 2-core VM the cache levels are too noisy to separate, and gave L3 faster than L2.)
    memory_bound = [s for s in first if s.kclass == "eltwise" and s.dtype == "fp32"]
    bw_scale = (
        fit_bandwidth(memory_bound)[0] if len(memory_bound) >= MIN_BANDWIDTH_SAMPLES else 1.0
    )
    if (
        not BW_SCALE_RANGE[0] < bw_scale < BW_SCALE_RANGE[1]
    ):  # pinned at the search's edge: not identified
        bw_scale = 1.0
    unit = unit_profile(target.id, runtime, bw_scale)
    fits: dict[tuple[str, str], KernelFit] = {}
    for _ in range(2):
        others = unit_profile(target.id, runtime, bw_scale, Profile(target.id, runtime, fits))
        groups: dict[tuple[str, str], list[Sample]] = {}
        for sample in _samples(target, kernels_only, run_overhead, unit, others):
            groups.setdefault((sample.kclass, sample.dtype), []).append(sample)
        fits = {key: fit_class(group) for key, group in groups.items()}
    profile = Profile(
        target=target.id,
        runtime=runtime,
        kernels=fits,
        memory_bandwidth_scale=bw_scale,
        run_overhead_s=run_overhead,
    )
    extra: dict[str, list[float]] = {}
    for kclass, dtype, model, seconds in measured:
        if kclass != "chain":
            continue
        _, parts, est = _roofline(model, target, profile)
        pred = float(
            (np.maximum(parts["compute_s"], parts["memory_s"]) + parts["overhead_s"]).sum()
        )
        extra.setdefault(dtype, []).append((seconds - run_overhead - pred) / len(est.table))
    per_kernel = {d: float(np.median(v)) for d, v in extra.items()}
    return Profile(**{**profile.__dict__, "extra_overhead_s": per_kernel})


def _residual(target, runtime, profile: Profile, measured, run_overhead) -> dict:
    errors = []
    for _kclass, _dtype, model, seconds in measured:
        _, parts, est = _roofline(model, target, profile)
        pred = (
            float((np.maximum(parts["compute_s"], parts["memory_s"]) + parts["overhead_s"]).sum())
            + run_overhead
        )
        errors.append(pred / seconds - 1)
    err = np.abs(np.array(errors))
    return {
        "kernels_measured": len(errors),
        "median_abs_error": float(np.median(err)),
        "p90_abs_error": float(np.percentile(err, 90)),
        "within_10pct": float((err <= 0.10).mean()),
        "within_20pct": float((err <= 0.20).mean()),
    }


def _yaml(profile: Profile) -> str:
    header = (
        f"# Calibration profile for {profile.target} on {profile.runtime}, written by `edgefit "
        "calibrate`.\n"
        "# efficiency: fraction of the probed peak reached per kernel class and dtype; "
        "overhead_s: fixed\n"
        "# cost per kernel; residual: errors of the fitted model on the measured kernels.\n"
    )
    return header + yaml.safe_dump(profile.to_dict(), sort_keys=False, width=120)
