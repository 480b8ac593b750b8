"""Calibration: catalog, kernel models, fits that recover known parameters, profiles, fidelity stats."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.calibrate import build_kernel_model, load_catalog, sample_specs
from edgefit.calibrate._fidelity import FidelityRow, kendall_tau, summarize
from edgefit.calibrate._fit import Sample, fit_bandwidth, fit_class
from edgefit.calibrate._report import parse_duration
from edgefit.errors import EdgefitError
from edgefit.estimate import Estimator, KernelFit, Plan, Profile, load_profile
from edgefit.estimate._profile import profile_from_dict
from edgefit.graph import load_graph
from edgefit.targets import load_target


def test_catalog_samples_every_class_deterministically():
    dtypes, entries = load_catalog()
    assert dtypes == ["fp32", "int8"]
    a, b = sample_specs(entries, seed=3), sample_specs(entries, seed=3)
    assert a == b and {s.kclass for s in a} == {e[0] for e in entries}
    small = sample_specs(entries, scale=0.1)
    assert 2 * len(entries) <= len(small) < len(a)


@pytest.mark.parametrize("spec", sample_specs(load_catalog()[1], scale=0.1, seed=1), ids=lambda s: s.label)
def test_every_kernel_model_loads_and_its_main_kernel_has_the_class(spec):
    from edgefit.estimate import KERNEL_CLASSES, build_kernel_table

    table = build_kernel_table(load_graph(build_kernel_model(spec)))
    main = int(np.argmax(table.ops))
    if spec.kclass == "chain":  # blocks of depthwise + pointwise convolutions, fused with their ReLUs
        assert len(table) == 2 * spec.p["blocks"]
        assert {KERNEL_CLASSES[c] for c in table.kclass} == {"dwconv", "conv1x1"}
    else:
        assert KERNEL_CLASSES[table.kclass[main]] == spec.kclass


def _synthetic(eff, k_half, ovh, n=25, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, m, r = 10 ** rng.uniform(-7, -3), 10 ** rng.uniform(-8, -4), rng.choice([9.0, 27.0, 144.0, 1152.0])
        t = max(a / (eff * r / (r + k_half)), m) + ovh
        out.append(Sample(f"k{i}", "conv", "fp32", a, m, r, 0.0, t))
    return out


def test_fit_recovers_known_efficiency_falloff_and_overhead():
    fit = fit_class(_synthetic(0.4, 32.0, 3e-6))
    assert fit.efficiency == pytest.approx(0.4, rel=0.08)
    assert fit.k_half == 32.0
    assert fit.overhead_s == pytest.approx(3e-6, rel=0.35)
    assert fit.median_abs_error < 0.03


def test_fit_bandwidth_recovers_scale():
    rng = np.random.default_rng(1)
    samples = [Sample(f"e{i}", "eltwise", "fp32", 0.0, m, 0.0, 0.0, m / 0.5 + 2e-6)
               for i, m in enumerate(10 ** rng.uniform(-7, -3, 20))]
    scale, ovh = fit_bandwidth(samples)
    assert scale == pytest.approx(0.5, rel=0.05) and 1e-6 <= ovh <= 5e-6


def test_profile_round_trip_and_estimator_uses_it(tmp_path):
    from edgefit.calibrate._calibrate import _yaml

    prof = Profile("host-cpu", "onnxruntime", {("conv", "fp32"): KernelFit(0.25, 5e-6, 10, 0.1, 64.0)},
                   residual={"median_abs_error": 0.1, "p90_abs_error": 0.2}, run_overhead_s=4e-6)
    path = tmp_path / "p.yaml"
    path.write_text(_yaml(prof))
    back = load_profile(path)
    assert back.kernels == prof.kernels and back.run_overhead_s == 4e-6 and back.error == 0.2
    from toy_graphs import conv_net

    g = conv_net()
    target = load_target("host-cpu")
    plain = Estimator(g, target, profile=None).estimate(Plan())
    fitted = Estimator(g, target, profile=back).estimate(Plan())
    assert fitted.source == "calibrated" and fitted.error == 0.2 and plain.source == "datasheet"
    assert fitted.latency_s != plain.latency_s


def test_bad_profile_is_one_clear_error(tmp_path):
    with pytest.raises(EdgefitError, match="invalid calibration profile"):
        profile_from_dict({"target": "x", "runtime": "y", "kernels": {"conv/fp32": {"efficiency": -1, "overhead_s": 0}}})


def test_kendall_tau_and_summary():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    rows = [FidelityRow("a", "fp32", 1, 1.0, 1.05), FidelityRow("b", "fp32", 1, 2.0, 2.5), FidelityRow("c", "int8", 1, 4.0, 3.9)]
    s = summarize(rows)
    assert s["median_abs_error"] == pytest.approx(0.05) and s["within_10pct"] == pytest.approx(2 / 3)
    assert s["kendall_tau"] == 1.0


@pytest.mark.parametrize("text, seconds", [("300s", 300), ("5m", 300), ("1h", 3600), ("90", 90)])
def test_durations(text, seconds):
    assert parse_duration(text, where="--budget") == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1m", "m"])
def test_bad_durations(text):
    with pytest.raises(EdgefitError, match="--budget"):
        parse_duration(text, where="--budget")


def test_calibrate_refuses_targets_it_cannot_measure_here():
    from edgefit.calibrate import calibrate

    with pytest.raises(EdgefitError, match="cannot run here"):
        calibrate("orin", "tensorrt")


@pytest.mark.slow
def test_small_calibration_end_to_end(tmp_path, one_try_per_timing):
    """A 20-second sweep writes a loadable profile with the environment and residuals."""
    from edgefit.calibrate import calibrate

    prof = calibrate("host-cpu", "onnxruntime", budget_s=20, out=tmp_path / "p.yaml")
    back = load_profile(tmp_path / "p.yaml")
    assert back.environment["runtime"] == "onnxruntime" and back.environment["threads"] >= 1
    assert back.residual["kernels_measured"] >= 10, back.residual
    assert ("conv", "fp32") in back.kernels and ("conv", "int8") in back.kernels, sorted(back.kernels)
    assert 0 < prof.memory_bandwidth_scale < 30, prof.memory_bandwidth_scale
