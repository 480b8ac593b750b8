"""Vela's SRAM tensor arena and flash image for an integer-lowered graph, as the estimator's tensor
list.

Vela's "Total SRAM used" is not the liveness peak of the ONNX tensors. In the ``Shared_Sram``
memory mode (read from Vela 5.2's per-layer "Staging Usage" column on int8 .tflite models) the
arena at each NPU operator holds:

* every feature map live across that operator, each rounded up to Vela's 16-byte alignment — the
  model input and output included (they sit in the arena), Q/DQ and free views not at all; an
  intermediate feature map in Vela's NHCWB16 brick layout, i.e. with its channels padded to a
  multiple of 16 (the model input and output, and tensors read through a Reshape/Flatten, stay
  NHWC);
* one buffer per concatenation (its producers write into their slices, so the inputs are not
  separate tensors; a requantized input is, until its requantize), live from its first producer to
  its last consumer, NHWC where a slice starts off a 16-channel brick;
* an elementwise kernel's output *in place* of an input that dies there with the same size (Vela's
  ``Add`` staging equals its two inputs, not three tensors);
* the weight buffers Vela stages in SRAM (``scheduler.propose_weight_buffering``), from the encoded
  weight streams of :mod:`edgefit.estimate._vela_weights`: a kernel's whole stream, prefetched
  under the kernel before it when the copy hides there (single buffer, live over both kernels), or
  loaded in two halves while it runs when it computes longer than its weights stream (double
  buffer; the first half prefetched, and a following prefetch waits for that half to free). A
  weight-bound kernel (a 1×1 convolution on a 6×6 map) reads flash directly, and so do fully
  connected layers and the kernel after a direct read (:func:`weight_buffers`). A global
  average's all-one weights are staged the same way. Whether a copy hides is judged with
  :func:`npu_cycles` against the flash's ~1 byte per NPU cycle. The same staging tells the time
  estimate which flash reads hide under the kernel before (:func:`staged_weights`).

The estimator's peak over kernels of these live bytes (:mod:`edgefit.estimate._reference`) is then
Vela's SRAM figure; it takes the plan's channel scales and dtypes like any other tensor.

Flash (:func:`flash_weight_elems`, refined by :mod:`edgefit.estimate._vela_weights`): Vela's
off-chip flash holds each weight-bearing kernel's encoded weight stream plus
:data:`BIAS_RECORD_BYTES` per output channel (the int8 plan charges one byte per element).
"""

from __future__ import annotations

import numpy as np

ALIGN = 16  # bytes: Vela aligns every tensor in the arena
BIAS_RECORD_BYTES = 10  # Ethos-U55 per output channel: 40-bit bias + 32-bit scale + shift
BRICK = 16  # channels per brick of Vela's NHCWB16 feature-map layout
RESHAPES = frozenset(
    {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
)  # their input stays NHWC (linear)
BUFFERED_KINDS = frozenset({"conv", "depthwise_conv", "conv_transpose"})
# Ethos-U55-128 on Vela's Ethos_U55_High_End_Embedded: 128 MACs per cycle, a depthwise lane 1/8 of
# that, off-chip flash ~1 byte per NPU cycle (0.47 GB/s at 500 MHz)
MACS_PER_CYCLE = 128.0
LANE_MACS_PER_CYCLE = 16.0
FLASH_BYTES_PER_CYCLE = 1.0


def _align(n: float) -> float:
    return float(np.ceil(n / ALIGN) * ALIGN) if n > 0 else 0.0


def out_channels(layer) -> int:
    shape = layer.output_shape
    return int(shape[1]) if len(shape) >= 2 else int(shape[-1]) if shape else 0


def flash_weight_elems(layer, params: float) -> float:
    """Bytes of an int8 kernel's weights in Vela's flash image: weights plus the per-channel bias
    records (the bias itself, counted in ``params``, is part of the record)."""
    if params <= 0:
        return 0.0
    return params + (BIAS_RECORD_BYTES - 1) * out_channels(layer)


def vela_arena(
    graph, kernels: list[dict], producer: dict[str, int], real, concats: list[list[str]]
):
    """``(t_born, t_dies, t_elems, t_producer)`` arrays of the arena residents (see module
    docstring)."""
    n = len(kernels)
    home: dict[str, str] = {}  # tensor → the concat buffer it lives in
    for out, *ins in concats:
        for t in ins:
            home[t] = out
    for t in list(home):  # nested concats: follow to the outermost buffer
        while home.get(home[t]) is not None and home[home[t]] != home[t]:
            home[t] = home[home[t]]

    def buf(t: str) -> str:
        t = real(t)
        return home.get(t, t)

    born: dict[str, int] = {}
    dies: dict[str, int] = {}
    for t in graph.inputs:
        born[buf(t)] = -1
    for i, kern in enumerate(kernels):
        for t in kern["outputs"]:
            born[buf(t)] = min(born.get(buf(t), i), i)
        for t in kern["inputs"] + kern["extra_in"]:
            b = buf(t)
            if b in graph.tensors and b in born:
                dies[b] = max(dies.get(b, i), i)
    for t in graph.outputs:
        if buf(t) in born:
            dies[buf(t)] = n
    _in_place(kernels, born, dies, buf, graph)
    names = [t for t in born if t in graph.tensors]
    nhwc = (
        set(graph.inputs)
        | {buf(t) for t in graph.outputs}
        | {buf(layer.inputs[0]) for layer in graph.layers if layer.op in RESHAPES and layer.inputs}
        | {buf(out) for out, *ins in concats if _unaligned_slices(graph, ins)}
    )
    elems = [_align(_elems(graph, t) if t in nhwc else _brick_elems(graph, t)) for t in names]
    t_born = [born[t] for t in names]
    t_dies = [max(dies.get(t, born[t]), born[t]) for t in names]
    t_prod = [born[t] for t in names]
    first_half = -1  # entry of the double buffer's first half of the kernel before, if any
    plan = weight_buffers(kernels)
    for i in range(len(kernels)):  # weight buffers, the first prefetched under the kernel before
        buffers = plan[i]
        first = max(i - 1, 0)
        if first_half >= 0:
            # a prefetch waits for the double buffer before it to free its first half, then lives
            # beside its second half while that kernel finishes (Vela 5.2's allocation: a dilated
            # TCN conv's 4.5 KB single buffer from the end of the 3×-tap conv before it)
            if buffers[0] > elems[first_half] and t_born[first_half] < i - 1:
                t_dies[first_half] = i - 2
            else:
                first = i
        first_half = -1
        for size, born_at in zip(buffers, (first, i)):
            if size > 0:
                elems.append(_align(size))
                t_born.append(born_at)
                t_dies.append(i)
                t_prod.append(i)
        if buffers[1] > 0:
            first_half = len(elems) - 2
    return (
        np.array(t_born, np.int32),
        np.array(t_dies, np.int32),
        np.array(elems, float),
        np.array(t_prod, np.int32),
    )


def staged_weights(kernels: list[dict]) -> np.ndarray:
    """Per kernel, 1.0 where Vela copies its weights into SRAM by DMA (see :func:`weight_buffers`),
    else 0.0 (read from flash while it runs, or no weights). A staged copy starts under the kernel
    before (Vela's slack cycles), so the estimate hides that much of its flash time
    (:mod:`edgefit.estimate._kernels`)."""
    return np.array([1.0 if any(b) else 0.0 for b in weight_buffers(kernels)])


def weight_buffers(kernels: list[dict]) -> list[tuple[float, float]]:
    """Per kernel, the SRAM bytes of its weight buffers: ``(prefetched under the kernel before,
    loaded while it runs)``; ``(0, 0)`` where its weights are read from flash directly.

    Vela copies a convolution's encoded weights (Vela's own size where the lowering has it,
    :mod:`edgefit.estimate._vela_weights`) into SRAM when the copy pays: when it hides under the
    kernel before (single buffer, prefetched), or when the kernel computes longer than its weights
    take to stream (double buffer, the whole stream in two halves). A weight-bound kernel (a 1×1
    convolution on a 6×6 map) reads flash directly; fully connected layers always do; and the
    kernel after one that reads flash directly finds the flash port busy, so nothing hides under
    it (Vela 5.2's schedule: MobileNetV1's 1×1 after a direct-read 1×1, SqueezeNet's squeeze 1×1
    after a direct-read expand 3×3, both unbuffered). A global average's all-one weights are
    buffered the same way.
    """
    out: list[tuple[float, float]] = []
    direct = False  # the kernel before reads its weights from flash while it runs
    for i, kern in enumerate(kernels):
        anchor = kern["anchor"]
        mean = anchor.kind == "reduce" or anchor.op in ("GlobalAveragePool", "ReduceMean")
        if not mean and (anchor.kind not in BUFFERED_KINDS or anchor.params <= 0):
            out.append((0.0, 0.0))
            direct = anchor.params > 0
            continue
        size = float(kern.get("flash_bytes") or flash_weight_elems(anchor, anchor.params))
        transfer = size / FLASH_BYTES_PER_CYCLE
        if i > 0 and not direct and npu_cycles(kernels[i - 1]) >= transfer:
            out.append((size, 0.0))
        elif npu_cycles(kern) >= transfer:
            out.append((size / 2, size / 2))
        else:
            out.append((0.0, 0.0))
        direct = not any(out[-1])
    return out


def npu_cycles(kern: dict) -> float:
    """A kernel's Ethos-U55-128 cycles, roughly: its MAC-array work (the integer lowering's padded
    ops) at :data:`MACS_PER_CYCLE` for a full convolution, :data:`LANE_MACS_PER_CYCLE` for
    depthwise, pooling and averaging (one input channel per output lane), pooling at least one
    cycle per output element. Only decides whether weight buffering pays."""
    anchor = kern["anchor"]
    # the padded work (the NPU's), not the plain ops: a 1-channel stem runs 8x its MACs
    work = kern.get("npu_ops", kern["ops"]) / 2
    if anchor.kind in ("conv", "conv_transpose", "gemm", "matmul"):
        return work / MACS_PER_CYCLE
    if anchor.kind == "reduce" or anchor.op in ("GlobalAveragePool", "ReduceMean"):
        return float(anchor.input_bytes) / LANE_MACS_PER_CYCLE
    if anchor.kind == "pool":
        outputs = float(np.prod(anchor.output_shape)) if anchor.output_shape else 0.0
        return max(work / LANE_MACS_PER_CYCLE, outputs)
    return work / LANE_MACS_PER_CYCLE


def _in_place(kernels, born, dies, buf, graph) -> None:
    """A binary elementwise kernel writes over an input that dies there with its own size."""
    for i, kern in enumerate(kernels):
        anchor = kern["anchor"]
        if anchor.kind != "elementwise" or not kern["outputs"]:
            continue
        out = buf(kern["outputs"][0])
        size = _elems(graph, out)
        for t in kern["inputs"]:
            b = buf(t)
            if b != out and dies.get(b) == i and born.get(b, i) < i and _elems(graph, b) == size:
                dies[b] = i - 1
                break


def _unaligned_slices(graph, parts: list[str]) -> bool:
    """A concat slice starts off a 16-channel brick: Vela keeps that concat NHWC
    (``_avoid_nhcwb16_for_concat``; 8 + 16 + 32 channels: 56 per pixel, not 64)."""
    offset = 0
    for t in parts[:-1]:
        shape, _ = graph.tensors.get(t, ((), "fp32"))
        offset += int(shape[1]) if len(shape) >= 3 else 0
        if offset % BRICK:
            return True
    return False


def _brick_elems(graph, name: str) -> float:
    """Elements of a feature map in Vela's NHCWB16 layout: channels padded to a multiple of 16."""
    shape, _ = graph.tensors.get(name, ((), "fp32"))
    if not shape or len(shape) < 3:
        return _elems(graph, name)
    c = int(shape[1])
    return float(np.prod(shape)) / c * (-(-c // BRICK) * BRICK)


def _elems(graph, name: str) -> float:
    shape, _ = graph.tensors.get(name, ((), "fp32"))
    return float(np.prod(shape)) if shape else 0.0
