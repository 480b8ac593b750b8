"""Ethos-U55 calibration against Arm Vela: kernels, fits, the shipped profile and its fidelity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefit.calibrate._catalog import sample_specs
from edgefit.calibrate._fit import Sample, fit_class
from edgefit.calibrate._report import fidelity_path
from edgefit.calibrate._vela import KERNELS, PREFIXED, ZOO, kernel_module
from edgefit.estimate import KERNEL_CLASSES, Estimator, Plan, load_profile, profile_path
from edgefit.runtimes import get_runtime
from edgefit.targets import load_target

needs_vela = pytest.mark.skipif(not get_runtime("vela").available().ok,
                                reason=f"vela: {get_runtime('vela').available().reason}")


def test_grid_covers_the_estimator_classes_of_mcu_models():
    classes = {c for c, _, _ in KERNELS}
    assert classes <= set(KERNEL_CLASSES)
    assert classes == {"conv", "conv1x1", "dwconv", "gemm", "pool", "eltwise", "reduce", "datamove"}
    assert {name for name, _ in ZOO} >= {"ds-cnn-kws", "mobilenetv1-vww", "resnet8-cifar", "fc-autoencoder",
                                         "digits-cnn"}
    assert any(knobs.get("width") for _, knobs in ZOO) and any(knobs.get("resolution") for _, knobs in ZOO)


@pytest.mark.parametrize("spec", sample_specs(list(KERNELS), scale=0.01, seed=2)[::2], ids=lambda s: s.label)
def test_every_kernel_module_runs_and_its_export_has_the_class(spec):
    torch = pytest.importorskip("torch")
    from edgefit.calibrate._vela import _main
    from edgefit.graph import load_graph
    from edgefit.graph._torch import export_torch

    module, x = kernel_module(spec)
    with torch.no_grad():
        assert torch.isfinite(module(x)).all()
    est = Estimator(load_graph(export_torch(module, tuple(x.shape))), load_target("ethos-u55"), profile=None)
    assert KERNEL_CLASSES[est.table.kclass[_main(est, spec.kclass)]] == spec.kclass
    # the prefix is one dwconv kernel; under the integer lowering the add takes its ReLU, as in Vela; a
    # datamove kernel is the depthwise Conv1d between its transposes in and out (the main one, the last)
    assert len(est.table) == {"datamove": 3}.get(spec.kclass, 2 if spec.kclass in PREFIXED else 1)


def test_fit_recovers_an_npu_like_class():
    """Vela-like times: compute-bound at 60% of peak for long reductions, falling off below 32 terms, 2 µs each."""
    rng = np.random.default_rng(4)
    samples = []
    for i in range(20):
        a, r = 10 ** rng.uniform(-6.5, -4), float(rng.choice([9, 27, 72, 144, 576, 1152]))
        samples.append(Sample(f"k{i}", "conv", "int8", a, a / 20, r, 1e-6, a / (0.6 * r / (r + 32)) + 2e-6 + 1e-6))
    fit = fit_class(samples)
    assert fit.efficiency == pytest.approx(0.6, rel=0.1) and fit.k_half == 32.0
    assert fit.overhead_s == pytest.approx(2e-6, rel=0.35) and fit.median_abs_error < 0.03


def test_shipped_profile_loads_and_calibrates_ethos_u55_estimates():
    path = profile_path("ethos-u55", "vela")
    profile = load_profile(path)
    assert profile.target == "ethos-u55" and profile.runtime == "vela"
    assert profile.environment["system_config"] == "Ethos_U55_High_End_Embedded"
    assert "no Ethos-U hardware" in profile.environment["ground_truth"]
    for kclass in ("conv", "conv1x1", "dwconv", "gemm", "pool", "eltwise", "reduce", "datamove"):
        fit = profile.kernels[(kclass, "int8")]
        assert 0 < fit.efficiency <= 1 and 0 <= fit.overhead_s < 1e-4 and fit.n >= 6, (kclass, fit)
    # sane NPU physics: dense convolutions run far closer to peak than batch-1 fully-connected layers
    assert profile.kernels[("conv", "int8")].efficiency > 10 * profile.kernels[("gemm", "int8")].efficiency
    assert profile.residual["kernels_measured"] >= 60 and profile.residual["median_abs_error"] < 0.15
    fid = profile.fidelity
    assert fid["models"] >= 15 and fid["median_abs_error"] < 0.15 and fid["kendall_tau"] > 0.9, fid
    stored = json.loads(fidelity_path(path).read_text())
    assert len(stored["rows"]) == fid["measurements"] and stored["summary"]["kendall_tau"] == fid["kendall_tau"]


def test_the_estimator_picks_the_vela_profile_for_ethos_u55():
    pytest.importorskip("torch")
    from edgefit.graph._examples import example_graph

    target = load_target("ethos-u55")
    est = Estimator(example_graph("ds-cnn-kws"), target).estimate(Plan(dtype="int8"))
    assert est.source == "calibrated" and "vela.yaml" in est.source_detail
    rows = {r["model"]: r for r in json.loads(fidelity_path(profile_path("ethos-u55", "vela")).read_text())["rows"]}
    assert est.latency_s == pytest.approx(rows["ds-cnn-kws"]["estimated_s"], rel=0.02)


def test_refit_from_stored_vela_times_needs_no_vela(tmp_path):
    pytest.importorskip("torch")
    from edgefit.calibrate._calibrate import measurements_path
    from edgefit.calibrate._vela import refit_vela

    doc = json.loads(measurements_path(profile_path("ethos-u55", "vela")).read_text())
    assert doc["environment"]["runtime"] == "vela" and len(doc["kernels"]) >= 60
    rows = [r for r in doc["kernels"] if r["class"] == "gemm"][:3]
    (tmp_path / "m.json").write_text(json.dumps({**doc, "kernels": rows}))
    profile = refit_vela(tmp_path / "m.json", tmp_path / "vela.yaml")
    assert set(profile.kernels) == {("gemm", "int8")} and load_profile(tmp_path / "vela.yaml").kernels == profile.kernels
    assert profile.residual["kernels_measured"] == 3 and profile.residual["median_abs_error"] < 0.1


@needs_vela
@pytest.mark.slow
def test_small_calibration_and_fidelity_end_to_end(tmp_path):
    """Two kernels per class (~30 s): a loadable profile, and a fidelity row for one model."""
    from edgefit.calibrate._vela import calibrate_vela, vela_fidelity

    seen = []
    profile = calibrate_vela("ethos-u55", budget_s=1, out=tmp_path / "vela.yaml",
                             progress=lambda label, i, n: seen.append(label))
    back = load_profile(tmp_path / "vela.yaml")
    assert back.kernels == profile.kernels and back.residual["kernels_measured"] == 2 * len(KERNELS)
    assert seen[-1] == "fitting" and back.environment["runtime_version"]
    (row,) = vela_fidelity(back, zoo=(("fc-autoencoder", {"width": 0.5}),))
    assert row.dtype == "int8" and row.measured_s > 0 and abs(row.error) < 1.0, row


def test_fidelity_summary_recomputes_from_the_stored_rows():
    """Time, SRAM and flash figures per family, and the leave-one-family-out method, from the stored rows."""
    from edgefit.calibrate._vela_fidelity import load_rows, vela_summary

    stored = json.loads(fidelity_path(profile_path("ethos-u55", "vela")).read_text())
    rows = load_rows(fidelity_path(profile_path("ethos-u55", "vela")))
    summary = vela_summary(rows)
    for key in ("within_10pct", "kendall_tau", "sram_median_abs_error", "flash_median_abs_error", "per_family"):
        assert summary[key] == stored["summary"][key], key
    assert summary["families"] >= 6 and "leave-one-family-out" in summary["method"]
    assert {r["family"] for r in stored["rows"]} == set(summary["per_family"])
    # the integer lowering and Vela's arena model: SRAM and flash land near Vela's figures for most models
    assert summary["sram_median_abs_error"] < 0.05 and summary["flash_median_abs_error"] < 0.1
    mlp = [r for r in rows if r.family == "mlp"]
    assert mlp and all(abs(r.sram_estimated / r.sram_measured - 1) < 0.01 for r in mlp)
