"""Group a Graph's layers into the kernels a runtime actually launches.

Runtimes fuse: conv + batch-norm + activation (+ residual add, + requantize) run as one kernel, and
view ops (Reshape, Flatten, Squeeze…) and weight/activation dequantization cost nothing on their
own. The estimator charges each *kernel* once: its math, its external activation traffic, its
weights and one launch overhead. Kernel classes (:data:`KERNEL_CLASSES`) are what calibration fits
separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgefit.errors import EdgefitError
from edgefit.estimate._arena import flash_weight_elems, staged_weights, vela_arena
from edgefit.estimate._lower_integer import lower_integer
from edgefit.estimate._vela_weights import (
    BIAS_RECORD_BYTES,
    node_weights,
    quantize_per_channel,
    vela_weight_elems,
    weight_stream_bytes,
)
from edgefit.graph import Graph, Layer
from edgefit.graph._layer import VIEW_OPS

KERNEL_CLASSES = (
    "conv",
    "conv1x1",
    "dwconv",
    "conv1d",
    "gemm",
    "matmul",
    "rnn",
    "pool",
    "norm",
    "softmax",
    "eltwise",
    "reduce",
    "resize",
    "datamove",
    "other",
)
KCLASS = {name: i for i, name in enumerate(KERNEL_CLASSES)}
_EPILOGUE_KINDS = {"activation", "elementwise", "norm", "quant"}
# Ops an int8 runtime runs on quantized data: a DequantizeLinear feeding them is folded into the
# quantized kernel (QLinearConv, QLinearMatMul, QLinearAdd…). Before any other op (LayerNorm, Erf,
# Div…) the dequantize is a real pass over the tensor.
_QDQ_FUSED_OPS = {
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "AveragePool",
    "GlobalAveragePool",
    "MaxPool",
    "Concat",
    "Resize",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Sigmoid",
    "LeakyRelu",
    "Softmax",
    "Relu",
    "Clip",
    "Gather",
    "Split",
    "Slice",
    "Pad",
    "ArgMax",
    "QuantizeLinear",
    "DequantizeLinear",
    "Identity",
}
_ANCHOR_KINDS = {"conv", "depthwise_conv", "conv_transpose", "gemm", "matmul", "rnn", "pool"}
_DTYPE_BYTES = {
    "fp32": 4,
    "fp16": 2,
    "bf16": 2,
    "fp64": 8,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "fp8": 1,
    "int4": 0.5,
    "bool": 1,
}


def kernel_class(layer: Layer) -> str:
    """The calibration class of a kernel anchored at ``layer``."""
    kind = layer.kind
    if kind in ("conv", "depthwise_conv") and len(layer.attrs.get("kernel_shape") or []) == 1:
        return "conv1d"
    if kind == "conv":
        k = layer.attrs.get("kernel_shape") or []
        return "conv1x1" if k and all(d == 1 for d in k) else "conv"
    if kind == "conv_transpose":
        return "conv"
    if kind == "depthwise_conv":
        return "dwconv"
    if kind == "gemm":
        return "gemm"
    if kind == "matmul":
        return "matmul" if layer.params == 0 else "gemm"
    if layer.op in ("GlobalAveragePool", "GlobalMaxPool"):
        return "reduce"
    if kind in ("rnn", "pool", "norm", "softmax", "reduce", "resize"):
        return kind
    if kind in ("activation", "elementwise", "quant"):
        return "eltwise"
    if kind == "shape":
        return "datamove"
    return "other"


@dataclass
class KernelTable:
    """Fused kernels in execution order, as flat arrays for the estimator kernels (length K)."""

    names: list[str]
    layers: list[list[int]]  # layer indices fused into each kernel
    kclass: np.ndarray  # int32: index into KERNEL_CLASSES
    base_dtype: list[str]  # dtype of the anchor layer in the source graph
    ops: np.ndarray  # float64: ops at channel scale 1
    macs: np.ndarray  # float64
    w_elems: np.ndarray  # float64: weight elements
    in_elems: np.ndarray  # float64: external activation input elements
    out_elems: np.ndarray  # float64: external activation output elements
    chan_src: np.ndarray  # int32: kernel whose channel scale sets this kernel's output channels
    in_src: (
        np.ndarray
    )  # int32: kernel whose channel scale sets this kernel's input channels (-1: graph input)
    depthwise: np.ndarray  # bool: MACs scale with own channels only
    has_weights: (
        np.ndarray
    )  # bool: a weight-bearing compute kernel (can be quantized / pruned / sparse)
    reduction: (
        np.ndarray
    )  # float64: terms per dot product of the anchor (MACs ÷ output elements; 0 if none)
    t_born: np.ndarray  # int32, per activation tensor: producing kernel (-1 graph input)
    t_dies: np.ndarray  # int32: last consuming kernel (K for graph outputs)
    t_elems: np.ndarray  # float64
    t_producer: (
        np.ndarray
    )  # int32: kernel index whose dtype/scale the tensor takes (-1: graph input)
    warnings: list[str] = field(default_factory=list)
    # float64 or None: per kernel, the NPU's padded work over its ops (integer lowering: the MAC
    # array's block rounding, _lower_integer.npu_work_factor); only NPU units pay it
    npu_work: np.ndarray | None = None
    # float64 or None: per kernel, 1 where Vela stages its weights into SRAM by DMA, which starts
    # under the kernel before (integer lowering, _arena.staged_weights); None: no such staging
    prefetch: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)


def batched_table(table: KernelTable, batch: int) -> KernelTable:
    """``table`` for ``batch`` samples per call: math and activations grow with the batch; weights
    are read once per call and each kernel launches once (what batching amortizes)."""
    if batch == 1:
        return table
    return replace(
        table,
        ops=table.ops * batch,
        macs=table.macs * batch,
        in_elems=table.in_elems * batch,
        out_elems=table.out_elems * batch,
        t_elems=table.t_elems * batch,
    )


def _elems(graph: Graph, name: str) -> float:
    shape, _ = graph.tensors.get(name, ((), "fp32"))
    return float(np.prod(shape)) if shape else 0.0


LOWERINGS = ("onnx", "integer")


def build_kernel_table(graph: Graph, lowering: str = "onnx") -> KernelTable:
    """Fuse ``graph``'s layers into kernels (see module docstring).

    ``lowering="onnx"`` costs the ONNX nodes as written (what onnxruntime runs); ``"integer"``
    costs the deployed int8 graph an NPU compiler runs, with Vela's tensor arena as the activation
    memory (:mod:`edgefit.estimate._lower_integer`, :mod:`edgefit.estimate._arena`).
    """
    if lowering == "integer":
        return _integer_table(graph)
    if lowering != "onnx":
        raise EdgefitError(
            f"unknown lowering '{lowering}'", where="build_kernel_table", fix="use onnx or integer"
        )
    alias: dict[str, str] = {}  # tensor → the tensor it is a free view of
    producer: dict[str, int] = {}  # real tensor → kernel index
    consumers: dict[str, int] = {}
    consumer_ops: dict[str, set[str]] = {}
    for layer in graph.layers:
        for t in layer.inputs:
            consumers[t] = consumers.get(t, 0) + 1
            consumer_ops.setdefault(t, set()).add(layer.op)
    graph_outputs = set(graph.outputs)

    def real(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    kernels: list[dict] = []
    for layer in graph.layers:
        ins = [real(t) for t in layer.inputs]
        folded_dq = (
            layer.op == "DequantizeLinear"
            and layer.outputs
            and consumer_ops.get(layer.outputs[0], set()) <= _QDQ_FUSED_OPS
        )
        if layer.op in VIEW_OPS or folded_dq:
            if ins and layer.outputs:
                alias[layer.outputs[0]] = ins[0]
                continue
        first = ins[0] if ins else None
        k = producer.get(first) if first is not None else None
        last = _last_output(kernels[k]) if k is not None else None
        fusable = (
            layer.kind in _EPILOGUE_KINDS
            and k is not None
            and kernels[k]["fusable"]
            and last is not None
            and consumers.get(last, 0) <= 1
            and last == first
            and first not in graph_outputs
        )
        if fusable and k is not None:
            kern = kernels[k]
            kern["layers"].append(layer.index)
            kern["ops"] += layer.ops
            kern["extra_in"] += [t for t in ins[1:]]
            kern["outputs"] = list(layer.outputs)
            for t in layer.outputs:
                producer[t] = k
            continue
        kern = {
            "layers": [layer.index],
            "anchor": layer,
            "ops": float(layer.ops),
            "macs": float(layer.macs),
            "inputs": ins,
            "extra_in": [],
            "outputs": list(layer.outputs),
            "fusable": layer.kind in _ANCHOR_KINDS,
        }
        kernels.append(kern)
        for t in layer.outputs:
            producer[t] = len(kernels) - 1
    return _to_arrays(graph, kernels, producer, real)


def _integer_table(graph: Graph) -> KernelTable:
    kernels, producer, alias, concats = lower_integer(graph)
    # the layout moves' tensors (``<tensor>#<move>``) are copies of the tensor they move
    moved = {
        t: graph.tensors[t.split("#")[0]]
        for kern in kernels
        for t in kern["inputs"] + kern["outputs"]
        if "#" in t and t.split("#")[0] in graph.tensors
    }
    graph = replace(graph, tensors={**graph.tensors, **moved}) if moved else graph

    def real(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    table = _to_arrays(graph, kernels, producer, real)
    table.npu_work = np.array([k["npu_ops"] / k["ops"] if k["ops"] else 1.0 for k in kernels])
    table.w_elems = vela_weight_elems(
        graph,
        kernels,
        np.array([flash_weight_elems(k["anchor"], w) for k, w in zip(kernels, table.w_elems)]),
    )
    table.w_elems = expanded_flash(graph, kernels, table.w_elems)
    table.t_born, table.t_dies, table.t_elems, table.t_producer = vela_arena(
        graph, kernels, producer, real, concats
    )
    table.prefetch = staged_weights(kernels)
    if (
        graph.compute_dtype == "int8"
    ):  # a quantized graph deploys int8 end to end (no fp32 pool or concat)
        table.base_dtype = ["int8"] * len(kernels)
    for i, kern in enumerate(kernels):
        # a layout move of the model input runs in the int8 its Conv1d reads (a pool reading the
        # input stays float: litert-torch's quantizer leaves it so), and a weightless kernel on a
        # graph input keeps its own dtype under any plan
        if kern.get("layout_move") and table.in_src[i] < 0:
            table.base_dtype[i] = "int8"
    return table


def expanded_flash(graph: Graph, kernels: list[dict], w_elems: np.ndarray) -> np.ndarray:
    """``w_elems`` with each dilated convolution's weights as Vela stores them: its expanded
    kernel (:func:`~edgefit.estimate._lower_integer.vela_taps`, zeros between the taps) through
    the weight encoder, plus the bias records. A 9-tap stream for a 3-tap, dilation-8 Conv1d."""
    out = np.array(w_elems, float)
    weights = None
    for i, kern in enumerate(kernels):
        anchor, layer = kern["anchor"], graph.layers[kern["layers"][0]]
        taps = [int(t) for t in anchor.attrs.get("kernel_shape") or []]
        kernel = [int(k) for k in layer.attrs.get("kernel_shape") or []]
        if anchor.kind not in ("conv", "depthwise_conv") or np.prod(taps) == np.prod(kernel):
            continue
        weights = node_weights(graph) if weights is None else weights
        found = weights.get(layer.outputs[0]) if layer.outputs else None
        if found is None or found[0].ndim != 2 + len(kernel):
            continue
        w = found[0].astype(np.int16) if found[1] else quantize_per_channel(found[0])
        w = w.reshape(*w.shape[:2], -1)  # (out, in, taps) in the kernel's row-major order
        spread = np.zeros((*w.shape[:2], int(np.prod(taps))), np.int16)
        grid = np.indices(kernel).reshape(len(kernel), -1)
        step = [(t - 1) // max(k - 1, 1) for t, k in zip(taps[-len(kernel) :], kernel)]
        flat = np.ravel_multi_index(tuple(g * s for g, s in zip(grid, step)), taps[-len(kernel) :])
        spread[:, :, flat] = w
        ohwi = spread.reshape(*w.shape[:2], *taps).transpose(0, 2, 3, 1)
        cout = w.shape[0]
        depthwise = anchor.kind == "depthwise_conv"
        out[i] = _align16(BIAS_RECORD_BYTES * cout) + weight_stream_bytes(
            ohwi, depthwise=depthwise
        )
        kern["flash_bytes"] = float(out[i])
    return out


def _align16(n: float) -> float:
    return float(-(-int(n) // 16) * 16)


def _last_output(kern: dict) -> str | None:
    return kern["outputs"][0] if kern["outputs"] else None


def _to_arrays(graph: Graph, kernels: list[dict], producer: dict[str, int], real) -> KernelTable:
    n = len(kernels)
    arr: dict[str, Any] = {
        key: np.zeros(n) for key in ("ops", "macs", "w_elems", "in_elems", "out_elems")
    }
    kclass = np.zeros(n, np.int32)
    chan_src = np.arange(n, dtype=np.int32)
    in_src = np.full(n, -1, np.int32)
    depthwise = np.zeros(n, bool)
    has_weights = np.zeros(n, bool)
    reduction = np.zeros(n)
    for i, kern in enumerate(kernels):
        anchor: Layer = kern["anchor"]
        out_elems = float(np.prod(anchor.output_shape)) if anchor.output_shape else 0.0
        reduction[i] = anchor.macs / out_elems if anchor.macs and out_elems else 0.0
        arr["ops"][i], arr["macs"][i] = kern["ops"], kern["macs"]
        arr["w_elems"][i] = anchor.params + sum(graph.layers[j].params for j in kern["layers"][1:])
        ext_in = [
            t
            for t in kern["inputs"] + kern["extra_in"]
            if t in graph.tensors and producer.get(t) != i
        ]
        arr["in_elems"][i] = sum(_elems(graph, t) for t in dict.fromkeys(ext_in))
        arr["out_elems"][i] = sum(_elems(graph, t) for t in kern["outputs"])
        kclass[i] = KCLASS[kernel_class(anchor)]
        depthwise[i] = anchor.kind == "depthwise_conv"
        has_weights[i] = anchor.is_compute and anchor.params > 0
        main_in = kern["inputs"][0] if kern["inputs"] else None
        src = producer.get(main_in, -1) if main_in is not None else -1
        in_src[i] = chan_src[src] if src >= 0 else -1
        if not has_weights[i]:  # channel count follows the input (pool, eltwise, norm…)
            chan_src[i] = in_src[i] if in_src[i] >= 0 else i
    # kernel-level liveness: only tensors that cross kernel boundaries exist in memory
    born: dict[str, int] = {t: -1 for t in graph.inputs}
    dies: dict[str, int] = {}
    for i, kern in enumerate(kernels):
        for t in kern["inputs"] + kern["extra_in"]:
            if t in graph.tensors and (t in born or producer.get(t) is not None):
                born.setdefault(t, producer.get(t, -1))
                dies[t] = max(dies.get(t, i), i)
        for t in kern["outputs"]:
            born.setdefault(t, i)
    for t in graph.outputs:
        rt = real(t)
        if rt in born:
            dies[rt] = n
    names = list(born)
    return KernelTable(
        names=[kern["anchor"].name for kern in kernels],
        layers=[kern["layers"] for kern in kernels],
        kclass=kclass,
        base_dtype=[kern["anchor"].dtype for kern in kernels],
        chan_src=chan_src,
        in_src=in_src,
        depthwise=depthwise,
        has_weights=has_weights,
        reduction=reduction,
        t_born=np.array([born[t] for t in names], np.int32),
        t_dies=np.array([dies.get(t, born[t]) for t in names], np.int32),
        t_elems=np.array([_elems(graph, t) for t in names]),
        t_producer=np.array([born[t] for t in names], np.int32),
        **arr,
    )
