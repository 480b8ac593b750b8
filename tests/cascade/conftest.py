"""A realistic cascade result built by hand (no calibration or search runs), and the tiny ONNX models its
device tiers point at, for the output tests (fold, config, model cards, report).

The tests in tests/report load :func:`build_sample_result` from this file by path, so it stays a plain
function beside the fixture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefit.cascade._types import (Calibrator, CalibrationReport, CascadeResult, Objective, OperatingPoint, Quantity,
                                    ReliabilityBin, TierCost, TierResult, TierSpec)


def gemm_model(*, features: int = 64, classes: int = 10, opset: int = 17, softmax: bool = False,
               out_type: int | None = None, seed: int = 0):
    """x (N, features) -> Gemm -> (N, classes) logits, or probabilities with ``softmax``; ``out_type``
    casts the output (e.g. FLOAT16, as an fp16 export leaves it)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 0.4, (features, classes)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.5, classes).astype(np.float32), "b")]
    nodes, last = [helper.make_node("Gemm", ["x", "W", "b"], ["gemm"], name="gemm")], "gemm"
    if softmax:
        nodes.append(helper.make_node("Softmax", [last], ["probs"], name="softmax", axis=1))
        last = "probs"
    if out_type is not None:
        nodes.append(helper.make_node("Cast", [last], ["cast"], name="cast", to=out_type))
        last = "cast"
    nodes.append(helper.make_node("Identity", [last], ["scores"], name="out"))
    graph = helper.make_graph(nodes, "tier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
                              [helper.make_tensor_value_info("scores", out_type or TensorProto.FLOAT,
                                                             ["N", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _bins(pairs: list[tuple[float, float]], counts: list[int]) -> tuple[ReliabilityBin, ...]:
    edges = np.linspace(0.0, 1.0, len(pairs) + 1)
    return tuple(ReliabilityBin(float(edges[i]), float(edges[i + 1]), c, conf, acc)
                 for i, ((conf, acc), c) in enumerate(zip(pairs, counts)))


def _point(split: str, thresholds, acc, lat, p99, cloud, usd, energy, shares, tier_acc, samples=540):
    return OperatingPoint(tuple(thresholds), split, samples, acc, lat, p99, cloud, usd, energy, tuple(shares),
                          tuple(tier_acc))


def build_sample_result(folder: Path) -> CascadeResult:
    """Two glasses tiers (a small and a larger digits model) and a cloud tier with stated accuracy."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(gemm_model(seed=1), folder / "tier1.onnx")
    onnx.save(gemm_model(seed=2, softmax=True), folder / "tier2.onnx")
    counts = [0, 0, 3, 12, 25, 40, 61, 80, 120, 199]
    over = [(0.05, 0.0), (0.15, 0.0), (0.27, 0.0), (0.36, 0.17), (0.46, 0.28), (0.55, 0.4), (0.65, 0.49),
            (0.75, 0.6), (0.86, 0.74), (0.97, 0.9)]
    good = [(0.05, 0.0), (0.15, 0.0), (0.26, 0.33), (0.35, 0.33), (0.46, 0.44), (0.56, 0.55), (0.66, 0.64),
            (0.76, 0.77), (0.86, 0.85), (0.96, 0.95)]
    cal1 = CalibrationReport(Calibrator("temperature", "logits", temperature=1.734), 360,
                             {"temperature": 0.0213, "isotonic": 0.0287, "none": 0.0914}, 0.0871, 0.0192, 10,
                             _bins(over, counts), _bins(good, counts), "detected: rows do not sum to 1")
    cal2 = CalibrationReport(Calibrator("isotonic", "probabilities", knots_x=(0.31, 0.55, 0.8, 0.97),
                                        knots_y=(0.2, 0.5, 0.83, 0.99)), 360,
                             {"temperature": 0.0336, "isotonic": 0.0251, "none": 0.0622}, 0.0608, 0.0234, 10,
                             _bins(over, counts), _bins(good, counts), "stated by --outputs")
    ms = "s"
    tier1 = TierResult(
        TierSpec("tier1", str(folder / "tier1.onnx"), "glasses-npu"), (10,), (64,), 0.9083, cal1,
        TierCost(Quantity(0.0042, ms, "estimate: roofline, glasses-npu datasheet profile", 0.25),
                 Quantity(0.0061, ms, "estimate: roofline, glasses-npu datasheet profile", 0.25),
                 Quantity(0.00183, "J", "estimate: glasses-npu energy per MAC", 0.3),
                 Quantity(0.0, "USD", "stated: on-device")), 0.75)
    tier2 = TierResult(
        TierSpec("tier2", str(folder / "tier2.onnx"), "glasses-npu"), (10,), (64,), 0.9537, cal2,
        TierCost(Quantity(0.0314, ms, "estimate: roofline, glasses-npu datasheet profile", 0.3),
                 Quantity(0.0402, ms, "estimate: roofline, glasses-npu datasheet profile", 0.3),
                 Quantity(0.0127, "J", "estimate: glasses-npu energy per MAC", 0.3),
                 Quantity(0.0, "USD", "stated: on-device")), 0.8)
    cloud = TierResult(
        TierSpec("cloud", None, "cloud", latency_s=0.8, usd_per_request=0.0004, accuracy=0.985), (10,), (64,),
        0.985, None,
        TierCost(Quantity(0.8, ms, "stated: --tier cloud:latency=800ms"),
                 Quantity(0.8, ms, "stated: --tier cloud:latency=800ms"), None,
                 Quantity(0.0004, "USD", "stated: --tier cloud:usd=0.0004")), None)
    chosen = _point("select", (0.75, 0.8), 0.9648, 0.1147, 0.8463, 0.101, 0.0404, 0.00417,
                    (0.712, 0.187, 0.101), (0.9843, 0.9206, 0.985))
    reported = _point("report", (0.75, 0.8), 0.9611, 0.1189, 0.8463, 0.1056, 0.04224, 0.00423,
                      (0.7037, 0.1907, 0.1056), (0.9816, 0.9126, 0.9825))
    pareto = tuple(_point("select", (t1, t2), a, lat, 0.8463, c, c * 0.4, None, (s1, 1 - s1 - c, c), (None,) * 3)
                   for t1, t2, a, lat, c, s1 in [(0.95, 0.95, 0.9799, 0.2745, 0.31, 0.42),
                                                 (0.85, 0.9, 0.9721, 0.1702, 0.17, 0.6),
                                                 (0.75, 0.8, 0.9648, 0.1147, 0.101, 0.712),
                                                 (0.6, 0.7, 0.9442, 0.0691, 0.046, 0.83),
                                                 (0.0, 0.0, 0.9083, 0.0042, 0.0, 1.0)])
    pareto_report = tuple(_point("report", p.thresholds, p.accuracy - 0.003, p.expected_latency_s + 0.002,
                                 p.p99_latency_s, p.cloud_share, p.usd_per_1000, None, p.shares, p.tier_accuracy)
                          for p in pareto)
    alone = (_point("report", (), 0.9083, 0.0042, 0.0061, 0.0, 0.0, 0.00183, (1.0,), (0.9083,)),  # each tier by itself
             _point("report", (), 0.9537, 0.0314, 0.0402, 0.0, 0.0, 0.0127, (1.0,), (0.9537,)),
             _point("report", (), 0.985, 0.8, 0.8, 1.0, 0.4, None, (1.0,), (0.985,)))
    provenance = {"versions": {"edgefit": "0.9.0", "onnx": "1.23.2", "onnxruntime": "1.31.1", "numpy": "2.4.6",
                               "scikit-learn": "1.7.2", "python": "3.11.7"},
                  "seed": 7, "command": "edgefit cascade --example digits",
                  "machine": {"cpu": "AMD EPYC 7B13", "cores": 2, "arch": "x86_64"}}
    return CascadeResult((tier1, tier2, cloud), Objective("max-accuracy", latency_budget_s=0.12), chosen, reported,
                         pareto, pareto_report, alone, {"calibration": 360, "select": 540, "report": 540}, 7,
                         "edgefit digits example (UCI handwritten digits, 1,797 images)", provenance)


@pytest.fixture
def sample_result(tmp_path) -> CascadeResult:
    return build_sample_result(tmp_path / "tiers")
