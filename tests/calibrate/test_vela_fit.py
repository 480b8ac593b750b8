"""The Ethos-U55 fit uses the estimator's NPU structure: ``max(compute / eff(r) + overhead + lead,
memory)``, Vela's pass time (the fixed per-operator cost hides under a memory-bound pass)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.calibrate._fit import fit_class
from edgefit.calibrate._vela_fit import VelaSample, fit_overlapped


def _samples(memory_share: float, seed: int = 4) -> list[VelaSample]:
    """Vela-like kernels: 60% of peak beyond 32-term reductions, 2 µs per operator, a first weight slice
    of 1 µs; memory ``memory_share`` × the busy time."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(24):
        a, r = 10 ** rng.uniform(-6.5, -4), float(rng.choice([9, 27, 72, 144, 576, 1152]))
        busy = a / (0.6 * r / (r + 32)) + 2e-6 + 1e-6
        memory = busy * memory_share * rng.uniform(0.5, 1.5)
        out.append(VelaSample(f"k{i}", "conv", "int8", a, memory, r, 0.0, max(busy, memory), "sram", 1e-6))
    return out


def test_fit_recovers_an_npu_class_whose_overhead_overlaps_memory():
    fit = fit_overlapped(_samples(memory_share=0.9))  # many passes near the memory roof
    assert fit.efficiency == pytest.approx(0.6, rel=0.1) and fit.k_half == 32.0
    assert fit.overhead_s == pytest.approx(2e-6, rel=0.35) and fit.median_abs_error < 0.03


def test_the_cpu_structure_misfits_the_same_times():
    """``max(compute, memory) + overhead`` (fit_class, a CPU's) charges the overhead on top of memory-bound
    passes: on times near the memory roof it fits worse and finds a wrong efficiency."""
    samples = _samples(memory_share=0.9)
    npu, cpu = fit_overlapped(samples), fit_class(samples)
    assert npu.median_abs_error < 0.01 < cpu.median_abs_error
    assert abs(cpu.efficiency / 0.6 - 1) > 0.2


@pytest.mark.slow
def test_vela_pads_an_intermediate_add_to_16_channel_bricks(tmp_path):
    """The check behind _lower_integer.brick_factor, on Vela itself: an 8-channel Add + ReLU costs twice
    per element when a kernel reads its output (NHCWB16) than when it writes the model's output (NHWC)."""
    from edgefit.runtimes import get_runtime

    if not get_runtime("vela").available().ok:
        pytest.skip("needs ethos-u-vela")
    torch = pytest.importorskip("torch")
    from torch import nn

    from edgefit.calibrate._vela import vela_config, vela_time
    from edgefit.runtimes._torch_source import TorchModel
    from edgefit.targets import load_target

    class Add(nn.Module):
        def __init__(self, tail: bool) -> None:
            super().__init__()
            self.pre, self.act = nn.Conv2d(8, 8, 1, groups=8), nn.ReLU()
            self.tail = nn.Conv2d(8, 8, 1, groups=8) if tail else nn.Identity()

        def forward(self, x):
            return self.tail(self.act(torch.add(x, self.pre(x))))

    per_element = {}
    for tail in (False, True):
        torch.manual_seed(0)
        tm = TorchModel(Add(tail).eval(), (torch.randn(1, 8, 16, 16),), name="add")
        report = vela_time(tm, vela_config(load_target("ethos-u55")), tmp_path, f"add{tail}")
        (cycles,) = [layer.cycles for layer in report.layers if layer.original_op == "Add" and layer.cycles]
        per_element[tail] = cycles / (8 * 16 * 16)
    assert per_element[True] == pytest.approx(2 * per_element[False])
