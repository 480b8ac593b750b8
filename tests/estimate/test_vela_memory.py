"""What Vela does that the Ethos-U55 estimate models: the MAC array's padded work, the encoded weight
stream in flash, and which weights Vela stages in SRAM."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import Estimator, Plan
from edgefit.estimate._arena import npu_cycles
from edgefit.estimate._lower_integer import as_npu_op, npu_work_factor
from edgefit.estimate._vela_weights import part_kernel_first, quantize_per_channel
from edgefit.graph import Layer, load_graph
from edgefit.runtimes import get_runtime
from edgefit.targets import load_target

needs_vela = pytest.mark.skipif(not get_runtime("vela").available().ok, reason="needs ethos-u-vela")


def _layer(op, kind, out_shape, taps=(1, 1), cin=1) -> Layer:
    outputs = int(np.prod(out_shape))
    macs = outputs * int(np.prod(taps)) * cin
    return Layer(0, "l", op, kind, "fp32", macs, 2 * macs, 0, 0, 0, 0, tuple(out_shape), ("x",), ("y",),
                 {"kernel_shape": list(taps)})


def test_the_mac_array_pads_channels_width_and_kernel_taps():
    """Ethos-U55-128 steps 2-wide, 8-deep output micro-blocks; a 1-channel stem runs part-kernel-first (taps in
    fours × input channels in eights: 1/8 of the array); 64 input channels fill two 32-deep blocks."""
    stem = _layer("Conv", "conv", (1, 64, 25, 5), taps=(10, 4), cin=1)
    assert npu_work_factor(stem) == pytest.approx(8 * 6 / 5)  # width 5 → 6, input depth 1 → 8
    pointwise = _layer("Conv", "conv", (1, 64, 25, 5), cin=64)
    assert npu_work_factor(pointwise) == pytest.approx(6 / 5)
    odd = _layer("Conv", "conv", (1, 172, 25, 5), cin=172)  # 172 → 176 output, 192 input channels
    assert npu_work_factor(odd) == pytest.approx(176 / 172 * 6 / 5 * 192 / 172)
    depthwise = _layer("Conv", "depthwise_conv", (1, 64, 24, 24), taps=(3, 3))
    assert npu_work_factor(depthwise) == pytest.approx(12 / 9)  # taps in fours
    pool = _layer("MaxPool", "pool", (1, 8, 16, 16), taps=(2, 2))
    assert npu_work_factor(pool) == 1.0
    fc = Layer(0, "fc", "Gemm", "gemm", "fp32", 640, 1280, 650, 0, 0, 0, (1, 10), ("x",), ("y",), {})
    assert npu_work_factor(fc) == 1.0


def test_the_output_stage_bounds_a_short_reduction():
    """Half a cycle per output element: a 1×1 convolution over 16 channels (32 MAC slots per output, depth-first)
    waits on the output stage, as long as 64 MACs."""
    narrow = _layer("Conv", "conv", (1, 128, 12, 12), cin=16)
    assert npu_work_factor(narrow) == pytest.approx(64 / 16)
    wide = _layer("Conv", "conv", (1, 128, 12, 12), cin=128)
    assert npu_work_factor(wide) == 1.0


def test_a_transposed_convolution_convolves_its_zero_upscaled_input():
    """Stride 2, 2×2 kernel: each output of the real op takes one tap; Vela's convolution takes all four."""
    up = Layer(0, "ct", "ConvTranspose", "conv_transpose", "fp32", 16 * 32 * 32 * 32, 0, 0, 0, 0, 0, (1, 16, 32, 32),
               ("x",), ("y",), {"kernel_shape": [2, 2], "strides": [2, 2]})
    assert npu_work_factor(up) == pytest.approx(4.0)  # 32 input channels fill a depth block


def test_an_upscale_runs_as_pooling_over_its_output():
    """Vela lowers a nearest Resize to an AvgPool reading the input upscaled: pooling, one tap per output."""
    resize = Layer(0, "up", "Resize", "resize", "fp32", 0, 4 * 64 * 32 * 32, 0, 0, 0, 0, (1, 64, 32, 32), ("x",),
                   ("y",), {})
    npu = as_npu_op(resize)
    assert (npu.kind, npu.op, npu.ops, npu.name) == ("pool", "AveragePool", 64 * 32 * 32, "up")
    assert npu_work_factor(npu) == 4.0  # at least four pooling steps per micro-block
    assert as_npu_op(_layer("Conv", "conv", (1, 8, 4, 4), cin=8)).op == "Conv"


def test_vela_traversal_choice():
    assert part_kernel_first(3, 9) and part_kernel_first(8, 1)  # ≤ 8 input channels: always part-kernel
    assert part_kernel_first(16, 9)  # 16/16 · 9/12 = 0.75 beats 16/32
    assert not part_kernel_first(64, 9) and not part_kernel_first(172, 1)


def test_per_channel_quantization_uses_the_int8_range_per_output_channel():
    w = np.array([[0.5, -1.0], [0.1, 0.4]], np.float32)
    assert quantize_per_channel(w).tolist() == [[64, -127], [32, 127]]


def _chain(cin: int, hw: int, couts: list[int], seed: int = 0) -> onnx.ModelProto:
    """conv3×3 + ReLU layers (NCHW), fp32 Kaiming-normal-like weights."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev, c = [], [], "x", cin
    for i, cout in enumerate(couts):
        w = (rng.standard_normal((cout, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        prev, c = f"r{i}", cout
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, c, hw, hw])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@needs_vela
def test_flash_is_vela_s_encoded_weight_stream():
    """Per convolution: 10-byte bias records, 16-aligned, then the weights as Vela's own encoder compresses them
    (traversal chosen as Vela does: part-kernel for the 3-channel stem, depth-first for 64 channels)."""
    from ethosu.vela.api import NpuAccelerator, NpuBlockTraversal, npu_encode_weights

    model = _chain(3, 16, [64, 64])
    est = Estimator(load_graph(model), load_target("ethos-u55"), runtime="vela", profile=None)
    expected = 0
    for init, part in (("w0", True), ("w1", False)):
        w = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == init))
        ohwi = quantize_per_channel(w).transpose(0, 2, 3, 1)
        mode = NpuBlockTraversal.PART_KERNEL_FIRST if part else NpuBlockTraversal.DEPTH_FIRST
        stream = npu_encode_weights(NpuAccelerator.Ethos_U55_128, ohwi, (1, 1), 8, 16, False, mode)
        expected += 640 + -(-len(stream) // 16) * 16
    assert est.estimate(Plan(dtype="int8")).weight_bytes == expected
    # Gaussian weights compress: the 64×64×3×3 stream is smaller than its 36864 int8 weights
    assert expected - 640 - 1024 < 36864 + 64 * 27


def test_weights_are_staged_in_sram_only_where_the_copy_pays(monkeypatch):
    """A 3×3 convolution on a 16×16 map computes longer than its weights stream: they sit in SRAM (two halves
    while it runs, the first half prefetched under the kernel before). The same convolution on a 2×2 map is
    weight-bound: Vela reads its weights from flash and SRAM holds only the feature maps."""
    monkeypatch.setattr("edgefit.estimate._vela_weights._codec", lambda: None)
    target = load_target("ethos-u55")
    big = Estimator(load_graph(_chain(16, 16, [16, 64])), target, runtime="vela", profile=None)
    small = Estimator(load_graph(_chain(16, 2, [16, 64])), target, runtime="vela", profile=None)
    w1 = 9 * 16 * 64 + 640  # second convolution: weights + bias records (one byte each, 16-aligned already)
    fm = 16 * 16 * 16  # NHCWB16: 16 channels of the map
    peak = big.estimate(Plan(dtype="int8")).peak_activation_bytes
    assert peak == fm + 64 * 16 * 16 + w1  # its input, its output, its whole weight stream
    assert small.estimate(Plan(dtype="int8")).peak_activation_bytes == 16 * 2 * 2 + 64 * 2 * 2


def test_npu_cycles_of_a_full_convolution_and_of_a_pool():
    conv = {"anchor": _layer("Conv", "conv", (1, 64, 16, 16), taps=(3, 3), cin=64), "ops": 2.0 * 128 * 1000}
    assert npu_cycles(conv) == 1000  # 128 MACs per cycle
    pool = {"anchor": _layer("MaxPool", "pool", (1, 64, 8, 8), taps=(2, 2)), "ops": 2.0 * 16 * 10}
    assert npu_cycles(pool) == 64 * 8 * 8  # at least one cycle per output element


def test_npu_cycles_count_the_padded_work_the_npu_runs():
    """Whether a weight copy hides under a kernel depends on the NPU's cycles, i.e. its padded work: a
    1-channel stem runs ~8x its MACs (kws-dscnn-s's second conv is prefetched under it, as in Vela)."""
    stem = {"anchor": _layer("Conv", "conv", (1, 64, 16, 16), taps=(3, 3), cin=1), "ops": 2.0 * 128 * 1000,
            "npu_ops": 8 * 2.0 * 128 * 1000}
    assert npu_cycles(stem) == 8000


@pytest.mark.parametrize("single, born, first_half_dies", [(4544, 1, 0), (1008, 2, 1)])
def test_a_prefetch_after_a_double_buffer_lives_beside_its_second_half(monkeypatch, single, born, first_half_dies):
    """Vela 5.2 (a dilated TCN's convs): kernel 1 loads its weights in two halves, the first prefetched under
    kernel 0; kernel 2's single buffer waits for that first half to free, then lives beside the second half
    while kernel 1 finishes. The arena, kernel by kernel, counts the larger of the two there: a 4.5 KB buffer
    after 2.3 KB halves from kernel 1 on (the first half then live under kernel 0 only), a 1 KB one from
    kernel 2 (as before)."""
    from types import SimpleNamespace

    from edgefit.estimate._arena import vela_arena

    plan = [(0.0, 0.0), (2272.0, 2272.0), (float(single), 0.0)]
    monkeypatch.setattr("edgefit.estimate._arena.weight_buffers", lambda kernels: plan)
    anchor = _layer("Conv", "conv", (1, 32, 1, 128), taps=(1, 3), cin=32)
    names = ["x", "a", "b", "y"]
    kernels = [{"inputs": [names[i]], "extra_in": [], "outputs": [names[i + 1]], "anchor": anchor} for i in range(3)]
    graph = SimpleNamespace(inputs={"x": (1, 32, 128)}, outputs={"y": (1, 32, 128)}, layers=[],
                            tensors={t: ((1, 32, 128), "fp32") for t in names})
    t_born, t_dies, t_elems, _ = vela_arena(graph, kernels, {}, lambda t: t, [])
    buffers = [tuple(map(int, b)) for b in zip(t_born[4:], t_dies[4:], t_elems[4:])]  # after the 4 maps
    assert buffers == [(0, first_half_dies, 2272), (1, 1, 2272), (born, 2, single)]
