"""The estimator: hand-computed rooflines, fusion, memory levels, power modes, sparsity, verdicts."""

from __future__ import annotations

import pytest

from edgefit.estimate import Estimator, Plan, build_kernel_table
from edgefit.targets import load_target, target_from_dict

from toy_models import S, conv_chain, toy_target


def test_fusion_folds_relu_into_conv_and_counts_external_traffic_once():
    g = conv_chain(3)
    t = build_kernel_table(g)
    assert len(t) == 3  # conv+relu fused three times
    assert [len(x) for x in t.layers] == [2, 2, 2]
    assert t.ops[0] == 2 * 16 * 16 * 16 * 16 * 9 + 16 * 16 * 16  # conv ops + relu elementwise ops
    assert t.in_elems[0] == t.out_elems[0] == 16 * 16 * 16


def test_single_kernel_roofline_by_hand(toy):
    g = conv_chain(1)
    e = Estimator(g, toy, profile=None).estimate(Plan(dtype="fp32"))
    ops = 2 * 16 * 16 * 16 * 16 * 9 + 4096
    t_compute = ops / (1e12 * 0.5)
    w_bytes, a_bytes = 16 * 16 * 9 * 4, 2 * 4096 * 4
    t_memory = w_bytes / 1e11 + a_bytes / 1e11  # everything fits the 1 MB SRAM
    assert t_compute > t_memory
    assert e.latency_s == pytest.approx(t_compute + 1e-6, rel=1e-12)
    dyn_pj = ops * 1.0 + (w_bytes + a_bytes) * 1.0
    assert e.energy_j == pytest.approx(dyn_pj * 1e-12 + 0.1 * e.latency_s, rel=1e-12)
    assert e.kernels[0].bound == "compute"
    assert e.weight_level == "sram" and e.activation_level == "sram"
    assert e.source == "datasheet" and e.error == 0.5


def test_memory_bound_when_activations_spill_to_dram(toy):
    # 64 channels at 128×128 fp32 = 4 MB per tensor: does not fit the 1 MB SRAM
    g = conv_chain(1, channels=64, size=128)
    slow_doc = toy_target()
    slow_doc["memory_levels"][1]["bandwidth_bytes_per_s"] = S(1e8)
    e = Estimator(g, target_from_dict(slow_doc), profile=None).estimate(Plan(dtype="fp32"))
    assert e.activation_level == "dram"
    a_bytes = 2 * 64 * 128 * 128 * 4
    assert e.kernels[0].bound == "memory"
    assert e.latency_s == pytest.approx(64 * 64 * 9 * 4 / 1e11 + a_bytes / 1e8 + 1e-6, rel=1e-9)


def test_int8_quarters_bytes_and_uses_int8_peak(toy):
    g = conv_chain(2)
    est = Estimator(g, toy, profile=None)
    fp, q = est.estimate(Plan(dtype="fp32")), est.estimate(Plan(dtype="int8"))
    assert q.weight_bytes == pytest.approx(fp.weight_bytes / 4)
    assert q.peak_activation_bytes == pytest.approx(fp.peak_activation_bytes / 4)
    assert q.latency_s < fp.latency_s


def test_channel_scale_scales_macs_quadratically_inside_the_net(toy):
    g = conv_chain(3)
    est = Estimator(g, toy, profile=None)
    full, half = est.estimate(Plan()), est.estimate(Plan(channel_scale=0.5))
    macs = [k.macs for k in full.kernels]
    half_macs = [k.macs for k in half.kernels]
    assert half_macs[0] == pytest.approx(macs[0] * 0.5)  # input channels are the image
    assert half_macs[1] == pytest.approx(macs[1] * 0.25)


def test_sparsity_only_where_the_target_supports_it():
    g = conv_chain(3, channels=64, size=32)
    orin, host = load_target("orin"), load_target("host-cpu")
    for target, expect_faster in ((orin, True), (host, False)):
        est = Estimator(g, target, profile=None)
        dense, sparse = est.estimate(Plan(dtype="int8")), est.estimate(Plan(dtype="int8", sparse_2to4=True))
        if expect_faster:
            assert sparse.latency_s < dense.latency_s
        else:
            assert sparse.latency_s <= dense.latency_s  # smaller weights, no compute speed-up
            assert all(s.bound != "compute" or s.latency_s == pytest.approx(d.latency_s)
                       for s, d in zip(sparse.kernels, dense.kernels))


def test_orin_power_mode_scales_compute_as_the_profile_says():
    g = conv_chain(4, channels=128, size=64)
    orin = load_target("orin")
    maxn = Estimator(g, orin, power_mode="MAXN", profile=None).estimate(Plan(dtype="int8"))
    low = Estimator(g, orin, power_mode="15W", profile=None).estimate(Plan(dtype="int8"))
    scale = orin.power_mode("15W").compute_scale["gpu"].value
    compute_maxn = sum(k.latency_s for k in maxn.kernels if k.bound == "compute")
    assert low.latency_s > maxn.latency_s * 3
    # compute-bound kernels slow down by exactly 1/scale (the overhead stays)
    overhead = orin.compute_units[0].layer_overhead_s.value
    n = sum(k.bound == "compute" for k in maxn.kernels)
    compute_low = sum(k.latency_s for k in low.kernels if k.bound == "compute")
    assert (compute_low - n * overhead) == pytest.approx((compute_maxn - n * overhead) / scale, rel=1e-9)


def test_missing_dtype_gives_a_warning_and_an_estimate(toy):
    g = conv_chain(1)
    e = Estimator(g, toy, profile=None).estimate(Plan(dtype="fp16"))
    assert e.latency_s > 0 and e.plan.dtype == "fp32"
    assert any("does not support fp16" in w for w in e.warnings)


def test_unknown_power_mode_is_one_clear_error():
    from edgefit.errors import EdgefitError

    with pytest.raises(EdgefitError, match="--power-mode.*no power mode '7W'.*MAXN"):
        Estimator(conv_chain(1), load_target("orin"), power_mode="7W")


def test_envelope_verdict_energy_and_power_at_rate():
    doc = toy_target()
    doc["envelope"] = {"latency_budget_s": S(0.01), "average_power_w": S(1e-3), "inference_rate_hz": S(100),
                       "energy_per_inference_j": S(1e-5), "memory_bytes": {"sram": S(1e3)}}
    e = Estimator(conv_chain(2), target_from_dict(doc), profile=None).estimate(Plan(dtype="int8"))
    checks = {c.constraint.split(" (")[0]: c for c in e.checks}
    assert e.power_at_rate_w == pytest.approx(e.energy_j * 100)
    assert checks["average power at 100 inferences/s"].value == pytest.approx(e.energy_j * 100)
    assert checks["energy per inference"].fits == (e.energy_j <= 1e-5)
    assert checks["memory sram"].fits is False  # 1 kB budget cannot hold the weights
    assert not e.fits
