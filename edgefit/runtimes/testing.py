"""The runtime conformance suite: checks every registered backend must pass (like
``optuna.testing``).

Each check takes a :class:`~edgefit.runtimes.Runtime` and a scratch folder and raises
``AssertionError`` when the backend breaks the contract written on :class:`Runtime`. A check that
needs the runtime raises :class:`ConformanceSkip` with the runtime's own reason when it is not
available here (a missing optional dependency, device or OS is the only legitimate skip): checks
that convert need :meth:`~Runtime.available`, checks that run a model need
:meth:`~Runtime.runnable`.

Run it over a new backend from any test framework::

    from edgefit.runtimes.testing import CHECKS, ConformanceSkip
    for name, check in CHECKS.items():
        try:
            check(MyRuntime(), tmp_path / name)
        except ConformanceSkip as skip:
            print(name, "skipped:", skip)

It needs numpy and onnx (for the tiny test model) and onnxruntime (for reference outputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import (
    PRECISIONS,
    Artifact,
    Availability,
    MeasurementError,
    Runtime,
    RuntimeUnavailableError,
    Timing,
    UnsupportedPrecisionError,
)
from edgefit.runtimes._inputs import random_inputs
from edgefit.runtimes._parity import reference_outputs

if TYPE_CHECKING:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
else:
    np, onnx, helper, numpy_helper = lazy_import(
        "numpy", "onnx", "onnx.helper", "onnx.numpy_helper"
    )

# Smallest acceptable SQNR (dB) against the fp32 source, per precision. fp32 allows TF32 on GPUs.
MIN_SQNR_DB = {"fp32": 40.0, "fp16": 30.0, "int8": 15.0, "int8-dynamic": 15.0}


class ConformanceSkip(Exception):
    """The check cannot run here; the message is the runtime's own reason (from
    ``available()``)."""


def tiny_model(name: str = "tiny"):
    """A deterministic conv classifier as an ``onnx.ModelProto``: input ``x`` 1×3×16×16 →
    ``logits`` 1×10."""
    rng = np.random.default_rng(0)

    def weight(label: str, *shape: int, scale: float = 0.3):
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), label
        )

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1),
    ]
    inits = [
        weight("w1", 8, 3, 3, 3),
        weight("b1", 8, scale=0.1),
        weight("w2", 16, 8, 3, 3),
        weight("b2", 16, scale=0.1),
        weight("w3", 10, 16),
        weight("b3", 10, scale=0.1),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="edgefit.testing"
    )
    model.ir_version = 10  # onnx 1.23 would write 14, which onnxruntime 1.31 cannot read
    return model


def _require(runtime: Runtime) -> None:
    status = runtime.available()
    if not status.ok:
        raise ConformanceSkip(f"{runtime.name}: {status.reason}")


def _require_runnable(runtime: Runtime) -> None:
    _require(runtime)
    status = runtime.runnable()
    if not status.ok:
        raise ConformanceSkip(f"{runtime.name}: {status.reason}")


def _supported(runtime: Runtime) -> list[str]:
    return [p for p, reason in runtime.precisions().items() if reason is None]


def _timing_precision(runtime: Runtime) -> str:
    """fp32 where supported, else the first supported precision (an int8-only NPU compiler)."""
    supported = _supported(runtime)
    return "fp32" if "fp32" in supported else supported[0]


def _size(path: Path) -> int:
    """Bytes of an artifact file, or of every file in a bundle directory (.mlpackage)."""
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )


def check_available_reports_reason(runtime: Runtime, workdir: Path) -> None:
    """available() never raises, gives a reason either way; an unavailable runtime refuses with
    it."""
    status = runtime.available()
    assert isinstance(status, Availability), f"available() returned {type(status).__name__}"
    assert isinstance(status.reason, str) and status.reason.strip(), (
        "available() must say why (or what was found)"
    )
    if not status.ok:
        try:
            runtime.convert(tiny_model(), "fp32", workdir)
        except RuntimeUnavailableError as exc:
            assert status.reason in str(exc), f"the refusal does not carry the reason: {exc}"
        else:
            raise AssertionError(
                "convert() on an unavailable runtime must raise RuntimeUnavailableError"
            )


def check_precisions_declared(runtime: Runtime, workdir: Path) -> None:
    """precisions() covers every precision with None or a reason; bad precisions and options are
    errors."""
    declared = runtime.precisions()
    assert set(declared) == set(PRECISIONS), (
        f"precisions() must cover {PRECISIONS}, got {sorted(declared)}"
    )
    for precision, reason in declared.items():
        assert reason is None or (isinstance(reason, str) and reason.strip()), (
            f"{precision}: empty reason"
        )
    _require(runtime)
    for precision, reason in declared.items():
        if reason is not None:

            def convert(precision: str = precision) -> object:
                return runtime.convert(tiny_model(), precision, workdir)

            _expect(UnsupportedPrecisionError, convert)
    _expect(EdgefitError, lambda: runtime.convert(tiny_model(), "int3", workdir))
    _expect(EdgefitError, lambda: runtime.convert(tiny_model(), "fp32", workdir, no_such_option=1))


def _expect(error: type[Exception], call: Callable[[], object]) -> None:
    try:
        call()
    except error:
        return
    raise AssertionError(f"expected {error.__name__}")


def check_convert_writes_artifact(runtime: Runtime, workdir: Path) -> None:
    """Every supported precision gives a non-empty file under out_dir with a truthful Artifact."""
    _require(runtime)
    for precision in _supported(runtime):
        artifact = runtime.convert(tiny_model(), precision, workdir / precision)
        assert isinstance(artifact, Artifact)
        assert artifact.path.exists() and _size(artifact.path) > 0, f"{precision}: no file"
        assert Path(workdir / precision) in artifact.path.parents, (
            f"{precision}: written outside out_dir"
        )
        assert (artifact.runtime, artifact.precision) == (runtime.name, precision)
        assert {"parity", "options"} <= set(artifact.metadata), (
            f"{precision}: metadata lacks parity/options"
        )
        assert Artifact.from_dict(artifact.to_dict()) == artifact


def check_parity(runtime: Runtime, workdir: Path) -> None:
    """Outputs keep names and shapes; parity against the fp32 source is within the precision's
    bound."""
    _require_runnable(runtime)
    model = tiny_model()
    sample = random_inputs({"x": ((1, 3, 16, 16), "float32")}, seed=7)
    (reference,) = reference_outputs(model, [sample])
    for precision in _supported(runtime):
        artifact = runtime.convert(model, precision, workdir / precision)
        out = runtime.infer(artifact, sample)
        assert set(out) == set(reference), (
            f"{precision}: outputs {sorted(out)} vs {sorted(reference)}"
        )
        assert all(np.shape(out[k]) == np.shape(reference[k]) for k in out), (
            f"{precision}: shapes differ"
        )
        p = artifact.metadata["parity"]
        assert p["n_samples"] >= 1 and p["max_abs"] >= 0
        assert (
            p["sqnr_db"] is None
            or p["sqnr_db"] == math.inf
            or p["sqnr_db"] >= MIN_SQNR_DB[precision]
        ), f"{precision}: SQNR {p['sqnr_db']:.1f} dB < {MIN_SQNR_DB[precision]} dB"


def check_measure_is_sane(runtime: Runtime, workdir: Path) -> None:
    """measure() returns ordered, positive percentiles in seconds with its provenance.

    A runtime whose ``timing_kind`` is ``"estimated"`` (a compiler's cycle estimate) returns one
    deterministic figure: p50 = p90 = p99 = mean, no jitter, and a provenance that says "estimate".
    """
    _require_runnable(runtime)
    artifact = runtime.convert(tiny_model(), _timing_precision(runtime), workdir)
    t = runtime.measure(artifact, warmup=2, runs=20, threads=1, min_runs=20, timeout_s=120)
    if runtime.timing_kind == "estimated":
        assert isinstance(t, Timing) and t.n_runs >= 1 and 0 < t.p50 < 60, t
        assert t.p50 == t.p90 == t.p99 == t.mean == t.max and t.jitter == 0 and t.std == 0, t
        assert "estimate" in t.provenance and "not a measurement" in t.provenance, t.provenance
        assert t.environment.get("runtime") == runtime.name and t.environment.get("version"), (
            t.environment
        )
        return
    assert runtime.timing_kind == "measured", (
        f"timing_kind {runtime.timing_kind!r}: measured or estimated"
    )
    assert isinstance(t, Timing) and t.n_runs >= 20
    assert 0 < t.p50 <= t.p90 <= t.p99 <= t.max, f"percentiles out of order: {t}"
    assert t.mean > 0 and t.std >= 0 and math.isclose(t.jitter, t.p99 - t.p50)
    assert t.max < 60, f"a tiny model took {t.max} s per run: wrong unit?"
    assert t.peak_rss_bytes is None or t.peak_rss_bytes > 1 << 20
    assert t.cpu_wait_fraction is None or 0 <= t.cpu_wait_fraction <= 1
    env = t.environment
    assert env.get("runtime") == runtime.name and env.get("version") and env.get("threads") == 1, (
        env
    )
    assert t.provenance.startswith(f"measured on {runtime.name} "), t.provenance


def check_measure_inputs(runtime: Runtime, workdir: Path) -> None:
    """Given inputs are used; inputs that do not match the model are a usage error, not a crash."""

    _require_runnable(runtime)
    artifact = runtime.convert(tiny_model(), _timing_precision(runtime), workdir)
    given = random_inputs({"x": ((1, 3, 16, 16), "float32")}, seed=3)
    t = runtime.measure(artifact, given, warmup=1, runs=5, threads=1, min_runs=5, timeout_s=120)
    assert str(t.environment.get("inputs")).startswith("given"), t.environment
    try:
        runtime.measure(
            artifact, {"y": given["x"]}, warmup=1, runs=5, threads=1, min_runs=5, timeout_s=120
        )
    except MeasurementError as exc:
        raise AssertionError(
            f"a wrong input name must be an EdgefitError, not a MeasurementError: {exc}"
        ) from None
    except EdgefitError:
        return
    raise AssertionError("measure() accepted an input the model does not have")


CHECKS: dict[str, Callable[[Runtime, Path], None]] = {
    "available_reports_reason": check_available_reports_reason,
    "precisions_declared": check_precisions_declared,
    "convert_writes_artifact": check_convert_writes_artifact,
    "parity": check_parity,
    "measure_is_sane": check_measure_is_sane,
    "measure_inputs": check_measure_inputs,
}


def run_conformance(runtime: Runtime, workdir: str | Path) -> dict[str, str]:
    """Run every check; returns ``{check: "passed" | "skipped: reason"}`` (failures raise)."""
    results = {}
    for name, check in CHECKS.items():
        folder = Path(workdir) / name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            check(runtime, folder)
            results[name] = "passed"
        except ConformanceSkip as skip:
            results[name] = f"skipped: {skip}"
    return results
