"""The serving model against hand computations: Llama-3-70B on one H100 80 GB, tensor parallelism."""

from __future__ import annotations

import pytest

from edgefit.errors import EdgefitError
from edgefit.serve import Assumptions, ServeModel, load_architecture
from edgefit.targets import load_target

HBM = 80e9  # targets/h100.yaml
BW = 3.35e12
OVERHEAD = 0.05 * HBM  # the stated default: 5% of the budget
P70 = 70_553_706_496
SMALL_70 = 80 * 2 * 8192 + 8192  # RMSNorm weights, kept at 16 bits


@pytest.fixture(scope="module")
def h100():
    return load_target("h100")


@pytest.fixture(scope="module")
def llama70():
    return load_architecture("llama-3-70b")


def test_kv_bytes_per_token_by_hand(h100, llama70):
    fp16 = ServeModel(llama70, h100, "fp8", "fp16")
    assert fp16.kv_bytes_per_token == 2 * 80 * 8 * 128 * 2 == 327_680 == 320 * 1024
    assert ServeModel(llama70, h100, "fp8", "fp8").kv_bytes_per_token == 163_840


def test_weight_bytes_per_dtype_by_hand(h100, llama70):
    matrices = P70 - SMALL_70
    assert ServeModel(llama70, h100, "fp16", "fp16").weight_bytes == 2 * P70  # ≈ 141 GB
    assert ServeModel(llama70, h100, "fp8", "fp8").weight_bytes == matrices + 2 * SMALL_70  # ≈ 70.6 GB
    int4 = ServeModel(llama70, h100, "int4", "fp8").weight_bytes
    assert int4 == matrices * (0.5 + 2 / 128) + 2 * SMALL_70
    assert 36e9 < int4 < 40e9  # hardware-numbers.md §6: 36–40 GB


def test_fp16_does_not_fit_one_h100(h100, llama70):
    m = ServeModel(llama70, h100, "fp16", "fp16")
    assert m.weight_bytes == pytest.approx(141.1e9, rel=1e-3)
    assert m.kv_budget == pytest.approx(HBM - OVERHEAD - 2 * P70) and m.kv_budget < 0
    assert m.max_batch(8192) == 0


def test_fp8_fits_with_the_kv_budget_left(h100, llama70):
    m = ServeModel(llama70, h100, "fp8", "fp8")
    weights = P70 - SMALL_70 + 2 * SMALL_70
    assert m.kv_budget == pytest.approx(HBM - OVERHEAD - weights)  # 80 − 4 − 70.55 = 5.44 GB
    assert 5e9 < m.kv_budget < 8e9  # hardware-numbers.md §6: about 5–8 GB left
    per_sequence = 8192 * 163_840  # 1.34 GB of fp8 KV per 8k-token sequence
    assert m.max_batch(8192) == int(m.kv_budget // per_sequence) == 4
    assert ServeModel(llama70, h100, "fp8", "fp16").max_batch(8192) == 2


def test_batch1_decode_bound_is_weights_over_bandwidth(h100, llama70):
    m = ServeModel(llama70, h100, "fp8", "fp8")
    hand = m.weight_bytes / BW  # 70.6 GB ÷ 3.35 TB/s = 21.1 ms → 47 tok/s (hardware-numbers.md §6)
    assert hand == pytest.approx(0.02106, rel=1e-3)
    for context in (1, 8192):
        step = m.decode(1, context)
        assert step.floor_s == pytest.approx(hand, rel=0.05)
        assert step.bound == "memory"
    assert 1 / m.decode(1, 1).floor_s == pytest.approx(47, rel=0.05)
    int4 = ServeModel(llama70, h100, "int4", "fp8").decode(1, 1)
    assert 3.35e12 / 40e9 < 1 / int4.floor_s < 3.35e12 / 35e9  # 35–40 GB of INT4 (§6 says ≈85 tok/s)


def test_decode_time_is_the_roofline_plus_overheads(h100, llama70):
    m = ServeModel(llama70, h100, "fp8", "fp8")
    step = m.decode(4, 8192)
    bytes_ = m.streamed_weight_bytes + 4 * 8192 * 163_840
    assert step.bytes_per_device == bytes_
    assert step.memory_s == pytest.approx(bytes_ / (BW * 0.8))
    assert step.launch_s == pytest.approx(80 * 8 * 4e-6)  # 8 kernels per layer × the target's 4 µs
    assert step.time_s == pytest.approx(max(step.memory_s, step.compute_s) + step.launch_s)
    assert m.decode(8, 8192).time_s > step.time_s  # more KV to read


def test_prefill_is_compute_bound(h100, llama70):
    m = ServeModel(llama70, h100, "fp8", "fp8")
    p = m.prefill(4096)
    flops = 2 * 4096 * 80 * llama70.layer_matmul_params + 2 * 128256 * 8192 + 2 * 80 * 64 * 128 * 4096**2
    assert p.bound == "compute" and p.flops_per_device == flops
    assert p.compute_s == pytest.approx(flops / (1.979e15 * 0.6))  # FP8 peak × the target's efficiency


def test_tensor_parallel_two_halves_weights_and_kv(h100, llama70):
    one, two = ServeModel(llama70, h100, "fp16", "fp16", 1), ServeModel(llama70, h100, "fp16", "fp16", 2)
    matrices = (P70 - SMALL_70) * 2
    assert two.weight_bytes_per_device == pytest.approx(matrices / 2 + 2 * SMALL_70)
    assert two.weight_bytes_per_device == pytest.approx(one.weight_bytes_per_device / 2, rel=1e-4)
    assert two.kv_bytes_per_token == one.kv_bytes_per_token / 2
    assert two.kv_budget > 0 and two.max_batch(8192) > 0  # FP16 fits on two H100s
    step = two.decode(1, 1)
    hand = 2 * 80 * (10e-6 + 2 * (2 - 1) / 2 * 8192 * 2 / 450e9)  # 2 all-reduces per layer
    assert step.allreduce_s == pytest.approx(hand)


def test_tp_beyond_kv_heads_replicates_them(h100, llama70):
    assert ServeModel(llama70, h100, "fp8", "fp8", 8).kv_heads_per_device == 1


def test_energy_per_step_from_the_target(h100, llama70):
    m = ServeModel(llama70, h100, "fp8", "fp8")
    s = m.decode(1, 1)
    hand = 70.0 * s.time_s + (s.flops_per_device * 0.12 + s.bytes_per_device * 30.0) * 1e-12
    assert s.energy_j == pytest.approx(hand)


def test_overhead_is_an_overridable_assumption(h100, llama70):
    m = ServeModel(llama70, h100, "fp8", "fp8", assumptions=Assumptions(overhead_bytes=1e9))
    assert m.kv_budget == pytest.approx(HBM - 1e9 - m.weight_bytes)
    assert "given" in m.hw.overhead.provenance


@pytest.mark.parametrize("kwargs, where", [
    ({"weights": "fp7"}, "--weights"),
    ({"kv": "int4"}, "--kv"),
    ({"gpus": 3}, "--gpus"),
    ({"gpus": 0}, "--gpus"),
])
def test_bad_configurations(h100, llama70, kwargs, where):
    args = {"weights": "fp8", "kv": "fp8", "gpus": 1, **kwargs}
    with pytest.raises(EdgefitError) as exc:
        ServeModel(llama70, h100, args["weights"], args["kv"], args["gpus"])
    assert exc.value.where == where


def test_dtype_the_target_does_not_run():
    with pytest.raises(EdgefitError, match="no fp8"):
        ServeModel(load_architecture("gpt2"), load_target("host-cpu"), "fp8", "fp32")


@pytest.mark.parametrize("bad", [{"overhead_fraction": 2.0}, {"bandwidth_efficiency": 0}, {"launches_per_layer": -1}])
def test_assumptions_are_validated(bad):
    with pytest.raises(EdgefitError):
        Assumptions(**bad)


def test_assumptions_round_trip():
    a = Assumptions(overhead_bytes=2e9, bandwidth_efficiency=0.9)
    assert Assumptions.from_dict(a.to_dict()) == a
    with pytest.raises(EdgefitError, match="unknown"):
        Assumptions.from_dict({"coffee": 1})
