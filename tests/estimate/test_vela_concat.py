"""Concat under the integer lowering, as litert-torch + Vela 5.2 deploy it: free where each producer writes
its slice, a requantize kernel for an input another op also reads (a U-Net's skip), a copy per slice for a
tensor concatenated twice."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import KERNEL_CLASSES, Estimator, Plan, build_kernel_table
from edgefit.estimate._layout import REQUANTIZE
from edgefit.graph import load_graph
from edgefit.targets import load_target


class _Net:
    """A small ONNX graph written node by node (weights random, 3×3 convolutions padded 'same')."""

    def __init__(self, c: int = 8, hw: int = 16) -> None:
        self.rng = np.random.default_rng(0)
        self.nodes, self.inits, self.c = [], [], {"x": c}
        self.hw, self.x = hw, helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])

    def _w(self, name: str, *shape: int) -> str:
        self.inits.append(numpy_helper.from_array(self.rng.standard_normal(shape).astype(np.float32), name))
        return name

    def conv(self, name: str, src: str, cout: int, k: int = 1, relu: bool = True) -> str:
        w, b = self._w(name + "_w", cout, self.c[src], k, k), self._w(name + "_b", cout)
        self.nodes.append(helper.make_node("Conv", [src, w, b], [name], name, kernel_shape=[k, k], pads=[k // 2] * 4))
        self.c[name] = cout
        if not relu:
            return name
        self.nodes.append(helper.make_node("Relu", [name], [name + "_r"], name + "_relu"))
        self.c[name + "_r"] = cout
        return name + "_r"

    def pool(self, name: str, src: str) -> str:
        self.nodes.append(helper.make_node("MaxPool", [src], [name], name, kernel_shape=[2, 2], strides=[2, 2]))
        self.c[name] = self.c[src]
        return name

    def up(self, name: str, src: str, cout: int) -> str:
        w, b = self._w(name + "_w", self.c[src], cout, 2, 2), self._w(name + "_b", cout)
        self.nodes.append(helper.make_node("ConvTranspose", [src, w, b], [name], name, kernel_shape=[2, 2], strides=[2, 2]))
        self.c[name] = cout
        return name

    def qdq(self, src: str) -> str:  # a QDQ pair, as onnxruntime's quantize_static writes before a reader
        scale = numpy_helper.from_array(np.array(0.05, np.float32), src + "_s")
        zero = numpy_helper.from_array(np.array(0, np.int8), src + "_z")
        self.inits += [scale, zero]
        self.nodes += [helper.make_node("QuantizeLinear", [src, src + "_s", src + "_z"], [src + "_q"]),
                       helper.make_node("DequantizeLinear", [src + "_q", src + "_s", src + "_z"], [src + "_dq"])]
        self.c[src + "_dq"] = self.c[src]
        return src + "_dq"

    def cat(self, name: str, *srcs: str) -> str:
        self.nodes.append(helper.make_node("Concat", list(srcs), [name], name, axis=1))
        self.c[name] = sum(self.c[s] for s in srcs)
        return name

    def graph(self, out: str):
        self.nodes.append(helper.make_node("Identity", [out], ["y"]))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, "concat", [self.x], [y], self.inits)
        return load_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _unet(qdq: bool = False):
    """One U-Net level: the skip (a 3×3 conv) feeds a max-pool and, after the way down and back up, the
    concat with the transposed conv's output."""
    n = _Net()
    skip = n.conv("a", "x", 16, 3)
    read = n.qdq(skip) if qdq else skip
    up = n.up("up", n.conv("b", n.pool("pool", read), 32, 3), 16)
    return n.graph(n.conv("m", n.cat("cat", up, read), 8, 3))


def _kernels(table) -> list[tuple[str, str]]:
    return [(name.rsplit("/", 1)[-1], KERNEL_CLASSES[k]) for name, k in zip(table.names, table.kclass)]


@pytest.mark.parametrize("qdq", [False, True])
def test_a_unet_skip_is_requantized_into_the_concat_when_the_concat_is_made(qdq):
    # litert-torch: the skip keeps its scale for the max-pool and is requantized into the concat's (Vela's
    # Quantize, scheduled after the transposed conv); a QDQ graph lowers alike (Q/DQ are views)
    t = build_kernel_table(_unet(qdq), lowering="integer")
    assert _kernels(t) == [("a", "conv"), ("pool", "pool"), ("b", "conv"), ("up", "conv"), ("quantize1", "datamove"),
                           ("m", "conv")]
    assert t.ops[4] == 16 * 16 * 16 and t.npu_work[4] == pytest.approx(REQUANTIZE)
    assert not t.has_weights[4] and t.chan_src[4] == 0  # it moves the skip: a's channels


def test_the_skip_lives_apart_from_the_concat_buffer_until_it_is_requantized():
    t = build_kernel_table(_unet(), lowering="integer")
    maps = {(int(b), int(d), float(e)) for b, d, e in zip(t.t_born, t.t_dies, t.t_elems)}
    # the skip (16 channels at 16×16) from conv a to its requantize; the concat buffer (32 channels) from
    # the first producer writing a slice (the transposed conv) to the conv reading it
    assert (0, 4, 16 * 16 * 16.0) in maps and (3, 5, 32 * 16 * 16.0) in maps


def test_the_requantize_runs_on_the_npu_in_int8_and_costs_about_a_cycle_per_element():
    est = Estimator(_unet(), load_target("ethos-u55"), runtime="vela")
    kernel = est.estimate(Plan(dtype="int8")).kernels[4]
    assert (kernel.kclass, kernel.dtype, kernel.unit) == ("datamove", "int8", "npu")
    # Vela 5.2: 4352 cycles for 4096 elements at 500 MHz (8.7 µs); the shipped datamove fit prices it
    assert kernel.latency_s == pytest.approx(4352 / 500e6, rel=0.15)


@pytest.mark.parametrize("widths", [(16, 16), (8, 24), (16, 16, 16), (8, 16, 32)])
def test_a_concat_of_producers_read_by_it_alone_is_free(widths):
    # a Fire module's expand convs, concats of 2 and 3 equal and unequal producers: each writes its slice
    n = _Net()
    stem = n.conv("stem", "x", 16)
    branches = [n.conv(f"b{i}", stem, c, 3 if i % 2 else 1) for i, c in enumerate(widths)]
    t = build_kernel_table(n.graph(n.conv("tail", n.cat("cat", *branches), 8)), lowering="integer")
    assert [kclass for _, kclass in _kernels(t)] == ["conv1x1"] + [
        "conv" if i % 2 else "conv1x1" for i in range(len(widths))] + ["conv1x1"]
    # one buffer, born with the first branch (NHWC where a slice starts off a 16-channel brick: 56 not 64)
    concat = sum(widths) * 16 * 16.0
    assert (1, len(widths) + 1, concat) in {(int(b), int(d), float(e)) for b, d, e in zip(t.t_born, t.t_dies, t.t_elems)}


def test_only_the_input_another_op_reads_is_requantized():
    # three inputs, the middle one also read by a conv after the concat
    n = _Net()
    stem = n.conv("stem", "x", 16)
    a, b, c = (n.conv(name, stem, 16) for name in "abc")
    cat = n.conv("tail", n.cat("cat", a, b, c), 16)
    t = build_kernel_table(n.graph(n.cat("out", cat, n.conv("side", b, 16))), lowering="integer")
    assert _kernels(t) == [("stem", "conv1x1"), ("a", "conv1x1"), ("b", "conv1x1"), ("c", "conv1x1"),
                           ("quantize1", "datamove"), ("tail", "conv1x1"), ("side", "conv1x1")]
    assert t.in_src[4] == 2 and t.ops[4] == 16 * 16 * 16


def test_a_tensor_concatenated_twice_is_copied_into_each_slice():
    # Vela cannot place one producer's output in two slices: a MemoryCopy each (4352 cycles per 4096)
    n = _Net()
    a = n.conv("a", "x", 16)
    t = build_kernel_table(n.graph(n.conv("tail", n.cat("cat", a, a), 8)), lowering="integer")
    assert _kernels(t) == [("a", "conv1x1"), ("quantize0", "datamove"), ("quantize1", "datamove"), ("tail", "conv1x1")]


def test_the_onnx_lowering_is_unchanged():
    # onnxruntime runs the ONNX Concat as written: one kernel, no requantize
    t = build_kernel_table(_unet(), lowering="onnx")
    assert [name for name, _ in _kernels(t)] == ["a", "pool", "b", "up", "cat", "m"]
