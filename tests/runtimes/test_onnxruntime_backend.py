"""onnxruntime backend: conversions with parity, options, providers; Timing and Parity arithmetic; lean import."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from edgefit.errors import EdgefitError
from edgefit.runtimes import Artifact, Timing, get_runtime, parity
from edgefit.runtimes._inputs import random_inputs
from edgefit.runtimes._onnxruntime import OrtOptions, pick_providers
from edgefit.runtimes.testing import tiny_model

SPEC = {"x": ((1, 3, 16, 16), "float32")}


@pytest.fixture(scope="module")
def ort():
    return get_runtime("onnxruntime")


@pytest.mark.parametrize("precision, min_sqnr", [("fp32", math.inf), ("fp16", 40.0), ("int8", 20.0),
                                                 ("int8-dynamic", 20.0)])
def test_conversion_writes_onnx_with_parity(ort, tmp_path, precision, min_sqnr):
    import onnx

    art = ort.convert(tiny_model(), precision, tmp_path)
    assert art.path == tmp_path / f"tiny.{precision}.onnx" and art.format == "onnx"
    model = onnx.load(str(art.path))
    assert model.ir_version <= 10  # onnxruntime 1.31 reads ≤ 13; onnx 1.23 writes 14
    ops = {n.op_type for n in model.graph.node}
    if precision == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    if precision == "int8-dynamic":
        assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"}
    p = art.metadata["parity"]
    assert p["n_samples"] == 8 and p["top1_agreement"] == 1.0
    assert p["sqnr_db"] >= min_sqnr if min_sqnr != math.inf else p["sqnr_db"] == math.inf
    assert "random" in art.metadata["parity_inputs"]


def test_int8_says_how_it_was_calibrated(ort, tmp_path):
    random_cal = ort.convert(tiny_model(), "int8", tmp_path / "a", calibration_samples=4)
    assert random_cal.metadata["calibration"].startswith("4 samples: random")
    assert "random inputs" in random_cal.metadata["warning"]
    given = [random_inputs(SPEC, seed=s) for s in range(5)]
    real_cal = ort.convert(tiny_model(), "int8", tmp_path / "b", calibration=given)
    assert real_cal.metadata["calibration"] == "5 samples: given calibration inputs"
    assert "warning" not in real_cal.metadata
    assert real_cal.metadata["parity_inputs"].startswith("5 calibration inputs")


def test_options_are_frozen_validated_and_recorded(ort, tmp_path):
    art = ort.convert(tiny_model(), "fp32", tmp_path, graph_optimization_level="basic")
    assert art.metadata["options"]["graph_optimization_level"] == "basic"
    assert ort.open(art, threads=1).environment["graph_optimization_level"] == "basic"
    with pytest.raises(EdgefitError, match="unknown onnxruntime option"):
        ort.convert(tiny_model(), "fp32", tmp_path, per_chanel=True)
    with pytest.raises(EdgefitError, match="graph_optimization_level"):
        OrtOptions(graph_optimization_level="max")
    with pytest.raises(EdgefitError, match="unknown precision"):
        ort.convert(tiny_model(), "int4", tmp_path)


def test_bad_calibration_inputs_are_a_usage_error(ort, tmp_path):
    with pytest.raises(EdgefitError, match="missing"):
        ort.convert(tiny_model(), "int8", tmp_path, calibration=[{"image": np.zeros((1, 3, 16, 16), np.float32)}])


def test_provider_choice():
    assert pick_providers(["CUDAExecutionProvider", "CPUExecutionProvider", "TensorrtExecutionProvider"]) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert pick_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(EdgefitError, match="not installed"):
        pick_providers(["CPUExecutionProvider"], ("CUDAExecutionProvider",))


def test_infer_matches_reference_and_artifact_round_trips(ort, tmp_path):
    from edgefit.runtimes._parity import reference_outputs

    art = ort.convert(tiny_model(), "fp32", tmp_path)
    sample = random_inputs(SPEC, seed=11)
    out = ort.infer(art, sample)
    np.testing.assert_allclose(out["logits"], reference_outputs(tiny_model(), [sample])[0]["logits"], rtol=1e-6)
    assert Artifact.from_dict(art.to_dict()) == art


def test_timing_from_samples_defines_jitter_and_percentiles():
    t = Timing.from_samples([0.010] * 98 + [0.020, 0.030], environment={"runtime": "x", "version": "1", "threads": 2})
    assert t.p50 == pytest.approx(0.010) and t.max == pytest.approx(0.030)
    assert t.p50 <= t.p90 <= t.p99 <= t.max
    assert t.jitter == pytest.approx(t.p99 - t.p50)
    assert t.provenance == "measured on x 1, 2 threads"
    assert t.to_dict()["unit"] == "s"
    with pytest.raises(ValueError):
        Timing.from_samples([])
    with pytest.raises(ValueError):
        Timing.from_samples([0.1, float("nan")])


def test_parity_figures():
    ref = [{"y": np.array([[1.0, 3.0, 2.0]])}, {"y": np.array([[4.0, 0.0, 1.0]])}]
    same = parity(ref, ref)
    assert (same.max_abs, same.max_rel, same.top1_agreement, same.sqnr_db) == (0.0, 0.0, 1.0, math.inf)
    conv = [{"y": np.array([[1.0, 3.0, 3.5]])}, {"y": np.array([[4.0, 0.0, 1.0]])}]
    p = parity(ref, conv)
    assert p.max_abs == pytest.approx(1.5) and p.max_rel == pytest.approx(1.5 / 4.0)
    assert p.top1_agreement == 0.5 and p.n_samples == 2
    assert p.sqnr_db == pytest.approx(10 * math.log10((1 + 9 + 4 + 16 + 1) / 1.5**2))
    assert parity({"y": np.ones((1, 1))}, {"y": np.ones((1, 1))}).top1_agreement is None  # not class scores
    with pytest.raises(ValueError, match="shape"):
        parity({"y": np.ones((1, 2))}, {"y": np.ones((2, 1))})


def test_import_stays_lean():
    code = ("import sys, edgefit.runtimes, edgefit.runtimes.testing; "
            "print(sorted(m for m in ('onnxruntime', 'torch', 'tensorrt', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
