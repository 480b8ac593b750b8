"""Lower a Graph to the integer kernels an NPU compiler deploys (``build_kernel_table(g,
lowering="integer")``).

An int8 deployment (Arm Vela for Ethos-U; the same holds for LiteRT's and TensorRT's int8 engines)
does not run the ONNX nodes as written. What the compiler runs, checked against Vela 5.2's
per-layer report on the litert-torch int8 .tflite of the same model:

* **Q/DQ fold away**: QuantizeLinear / DequantizeLinear are requantization parameters of the
  neighbouring integer kernels, never kernels of their own (a QDQ graph and its fp32 source lower
  alike);
* **free ops**: Reshape / Flatten / Squeeze / Unsqueeze / Identity / Dropout / Cast and explicit
  Pad (Vela folds padding into the consuming convolution) cost nothing; **Concat** costs nothing
  either: Vela places each producer's output straight into its slice of the concatenated tensor (no
  copy in the per-layer report), except an input that another op also reads, which litert-torch
  requantizes into the slice (a U-Net's skip; :func:`~edgefit.estimate._layout.concat_requantize`);
  Split / Slice become read offsets of their consumers;
* **epilogues**: batch-norm, ReLU / Clip, and the LUT activations (Sigmoid, Tanh, HardSwish,
  HardSigmoid, LeakyRelu), and Add/Mul/Sub/Div by a constant fold into the kernel before them
  (Vela's per-layer report shows them with 0 cycles);
* **binary elementwise ops on two activations** (residual Add, SE's Mul) are kernels of their own
  (Vela's ``Add`` / ``Mul`` NPU ops), which take their ReLU as an epilogue; a residual add is *not*
  a conv epilogue; writing an intermediate map, one works on its 16-channel bricks
  (:func:`brick_factor`);
* **pooling, global average, transpose** run in int8 on the NPU (``pool``, ``reduce``,
  ``datamove``);
* **MatMul by a constant** is a FULLY_CONNECTED over the rows (``gemm``); a MatMul of two
  activations stays ``matmul`` (Vela leaves BATCH_MATMUL to the CPU on Ethos-U55 with this
  converter);
* **a Conv1d** is a CONV_2D of height 1 (``conv`` / ``conv1x1`` / ``dwconv``, :func:`as_npu_conv`)
  with Vela's expanded kernel above dilation 2, between the NCL ↔ NLC layout transposes
  litert-torch writes around it (``datamove`` kernels,
  :func:`~edgefit.estimate._layout.layout_transposes`).

An NPU kernel costs its **padded work** (:func:`npu_work_factor`), not its MACs: Vela's
cycle model steps the MAC array over 2-wide, 8-deep output micro-blocks and 32-deep input blocks
(or kernel taps in fours and input channels in eights), so a 1-channel stem convolution costs
eight times its MACs and a 5-wide map six fifths. The per-class efficiencies fitted on the kernel
catalog then describe the array, not the shapes. The table keeps the plain ``ops`` and the factor
apart (``KernelTable.npu_work``): only a unit of kind ``npu`` pays it, and a Cortex-M beside the
NPU computes the plain ops.

The activation memory of the lowered graph is Vela's tensor arena, from
:mod:`edgefit.estimate._arena`; its weights are Vela's encoded streams, from
:mod:`edgefit.estimate._vela_weights`.

>>> table = build_kernel_table(graph, lowering="integer")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgefit.estimate._layout import concat_requantize, layout_transposes
from edgefit.graph import Graph, Layer
from edgefit.graph._layer import VIEW_OPS

# free in the deployed int8 graph: the views every lowering treats as free, plus Q/DQ (folded into
# the integer kernels) and the data moves the compiler turns into addressing
FREE_OPS = frozenset(
    VIEW_OPS | {"QuantizeLinear", "DequantizeLinear", "Pad", "Split", "Slice", "Expand"}
)
# unary ops that run as the previous kernel's output stage (requantize, clamp or a 256-entry LUT)
EPILOGUE_OPS = frozenset(
    {
        "BatchNormalization",
        "Relu",
        "Clip",
        "Sigmoid",
        "Tanh",
        "HardSwish",
        "HardSigmoid",
        "LeakyRelu",
        "PRelu",
        "Add",
        "Sub",
        "Mul",
        "Div",
    }
)
BINARY_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"})
ANCHOR_KINDS = frozenset(
    {
        "conv",
        "depthwise_conv",
        "conv_transpose",
        "gemm",
        "matmul",
        "pool",
        "reduce",
        "resize",
        "elementwise",
    }
)
# Ethos-U55-128's MAC array (Vela's architecture_features: ofm_ublock Block(2, 1, 8)) and its
# depth-first input block (architecture_allocator._ifm_blockdepth, 8-bit)
UBLOCK_W, UBLOCK_C, IFM_BLOCK_DEPTH = 2, 8, 32
BRICK_C = 16  # channels per brick of Vela's NHCWB16 feature-map layout (_arena.BRICK)
# its output stage: 0.5 cycles per int8 output element (npu_performance's output_cycles_per_elem),
# i.e. as long as 64 MACs of the 128-MAC array
OUTPUT_MACS = 64.0
INTEGER_RUNTIMES = frozenset({"vela", "tflm"})
INTEGER_TARGET_KINDS = frozenset({"mcu_npu"})


def lowering_for(target, runtime: str | None, profile=None) -> str:
    """``"integer"`` where the deployed model is a fully int8 graph compiled ahead of time, else
    ``"onnx"``.

    Integer: Ethos-U class targets (kind ``mcu_npu``, whose runtimes Vela and TFLite Micro both run
    the int8 .tflite) and any target estimated for the ``vela`` or ``tflm`` runtime (named, or the
    runtime of the calibration profile in use). LiteRT and TensorRT run integer graphs too and this
    lowering is meant to serve them, but their shipped profiles were fitted on ONNX-node kernels,
    so they keep ``"onnx"`` until they are recalibrated with it.
    """
    named = getattr(profile, "runtime", None) if profile not in (None, "auto") else None
    chosen = named or runtime
    if chosen is not None:
        return (
            "integer"
            if chosen in INTEGER_RUNTIMES
            else ("integer" if _npu(target) and chosen in ("litert",) else "onnx")
        )
    return "integer" if _npu(target) else "onnx"


def _npu(target) -> bool:
    return getattr(target, "kind", None) in INTEGER_TARGET_KINDS


def lower_integer(
    graph: Graph,
) -> tuple[list[dict], dict[str, int], dict[str, str], list[list[str]]]:
    """The integer kernels of ``graph``: ``(kernels, producer, alias, concats)``.

    ``kernels`` are dicts in :func:`edgefit.estimate._table.build_kernel_table`'s internal format;
    ``alias`` maps a free op's output to the tensor it views; ``concats`` lists, per concatenation,
    its output followed by the (real) input tensors placed inside it.
    """
    alias: dict[str, str] = {}
    consumers: dict[str, int] = {}
    for layer in graph.layers:
        for t in layer.inputs:
            consumers[t] = consumers.get(t, 0) + 1
    outputs = set(graph.outputs)

    def real(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    def uses(t: str) -> int:  # consumers of a real tensor, counted through the free views of it
        return consumers.get(t, 0) + sum(
            uses(v) - 1 for v, src in alias.items() if src == t and v in consumers
        )

    kernels: list[dict] = []
    producer: dict[str, int] = {}
    concats: list[list[str]] = []
    shapes = {t: shape for t, (shape, _) in graph.tensors.items()}
    for layer in graph.layers:
        ins = [real(t) for t in layer.inputs]
        if layer.op == "Concat" and ins and layer.outputs:
            # producers write into their slices, but an input another op reads is requantized
            # into the slice first (:func:`~edgefit.estimate._layout.concat_requantize`)
            copies, parts = concat_requantize(layer, ins, [uses(t) for t in ins], shapes)
            for kern in copies:
                kernels.append(kern)
                producer[kern["outputs"][0]] = len(kernels) - 1
            concats.append([layer.outputs[0], *dict.fromkeys(parts)])
            made = [producer[t] for t in parts if t in producer]
            if made:
                producer[layer.outputs[0]] = max(made)
            continue
        if layer.op in FREE_OPS:
            if ins and layer.outputs:
                for t in layer.outputs:
                    alias[t] = ins[0]
                continue
        first = ins[0] if ins else None
        k = producer.get(first) if first is not None else None
        if (
            _is_epilogue(layer, ins)
            and k is not None
            and kernels[k]["fusable"]
            and kernels[k]["outputs"][:1] == [first]
            and first is not None
            and uses(first) <= 1
            and first not in outputs
        ):
            kern = kernels[k]
            kern["layers"].append(layer.index)
            kern["ops"] += layer.ops
            kern["npu_ops"] += layer.ops
            kern["outputs"] = list(layer.outputs)
            for t in layer.outputs:
                producer[t] = k
            continue
        anchor = as_npu_op(layer)
        kern = {
            "layers": [layer.index],
            "anchor": anchor,
            # what a CPU beside the NPU computes (a dilated kernel's taps, not Vela's expansion)
            "ops": float(layer.ops if anchor.kind in CONV_KINDS else anchor.ops),
            "npu_ops": float(anchor.ops) * npu_work_factor(anchor),  # the NPU's padded work
            "macs": float(layer.macs),
            "inputs": ins,
            "extra_in": [],
            "outputs": list(layer.outputs),
            "fusable": layer.kind in ANCHOR_KINDS,
            "conv1d": is_conv1d(layer),
        }
        kernels.append(kern)
        for t in layer.outputs:
            producer[t] = len(kernels) - 1
    for kern in kernels:
        kern["npu_ops"] *= brick_factor(kern["anchor"], kern["outputs"], outputs)
    kernels = layout_transposes(kernels, outputs, shapes)
    producer = {t: i for i, kern in enumerate(kernels) for t in kern["outputs"]}
    for out, *ins in concats:  # a concatenation is made by its last producer
        made = [producer[t] for t in ins if t in producer]
        if made:
            producer[out] = max(made)
    return kernels, producer, alias, concats


def brick_factor(anchor: Layer, produced: list[str], graph_outputs: set[str]) -> float:
    """An elementwise kernel writing an intermediate feature map works on Vela's NHCWB16 bricks:
    its channels padded to :data:`BRICK_C`. Vela 5.2 on a residual Add + ReLU over a 16×16 map
    (depthwise 1×1 before it): 1.5 cycles per element whatever the channels when it writes the
    model's NHWC output (the calibration kernels), but 3.0 at 8 channels and 2.0 at 24 when a
    kernel follows it (the padded 16 and 32, at 1.5). 1 for other kernels and a graph output."""
    shape = anchor.output_shape
    if anchor.kind != "elementwise" or len(shape) < 3 or any(t in graph_outputs for t in produced):
        return 1.0
    c = int(shape[1])
    return _round_up(c, BRICK_C) / c if c > 0 else 1.0


def as_npu_op(layer: Layer) -> Layer:
    """The layer as the NPU runs it: Vela lowers a nearest/bilinear upscale (``Resize``) to a 1×1
    average pool with the NPU's upscaling read (``ResizeNearestNeighbor`` → ``AvgPool`` in its
    per-layer report), so it is costed as pooling over its output, one tap per element. A
    convolution is the 2-D one Vela runs (:func:`as_npu_conv`)."""
    if layer.kind in CONV_KINDS:
        return as_npu_conv(layer)
    if layer.op not in ("Resize", "Upsample") or len(layer.output_shape) != 4:
        return layer
    outputs = int(np.prod(layer.output_shape))
    attrs = {**layer.attrs, "kernel_shape": [1, 1]}
    return replace(layer, op="AveragePool", kind="pool", ops=outputs, attrs=attrs)


CONV_KINDS = frozenset({"conv", "depthwise_conv"})
HW_DILATION = 2  # the largest dilation Ethos-U55 reads in hardware


def is_conv1d(layer: Layer) -> bool:
    """A convolution over a ``(N, C, L)`` sequence (ONNX Conv with a 1-D kernel)."""
    kernel = layer.attrs.get("kernel_shape") or []
    return layer.kind in CONV_KINDS and len(kernel) == 1 and len(layer.output_shape) == 3


def vela_taps(k: int, dilation: int) -> tuple[int, int]:
    """``(taps, hardware dilation)`` of one kernel axis as Vela runs it: the NPU dilates by 1 or
    2 only, so Vela (``fixup_dilation_gt2``) writes a larger kernel with zeros between the taps:
    an even dilation d keeps the hardware's 2 and spreads the taps d/2 apart, an odd one d apart
    (k=3: 5 taps at d=4, 9 at d=8, 7 at d=3; Vela 5.2's per-layer MACs count them)."""
    if dilation <= HW_DILATION:
        return k, dilation
    hw = HW_DILATION if dilation % 2 == 0 else 1
    return (k - 1) * (dilation // hw) + 1, hw


def as_npu_conv(layer: Layer) -> Layer:
    """A convolution as Vela runs it: a Conv1d is a CONV_2D (or DEPTHWISE_CONV_2D) of height 1
    over the sequence (litert-torch's .tflite: Reshape to ``(N, C, 1, L)``, layout transposes,
    CONV_2D), so it takes the ``conv`` / ``conv1x1`` / ``dwconv`` class and the MAC array's block
    rounding of a 1-high map; a dilation above 2 becomes Vela's expanded kernel
    (:func:`vela_taps`), whose MACs and ops count every tap it computes (``dilations`` from the
    layer's attributes, where the graph reader keeps the ONNX node's)."""
    kernel = [int(k) for k in layer.attrs.get("kernel_shape") or []]
    if not kernel:
        return layer
    conv1d = is_conv1d(layer)
    dilations = [int(d) for d in layer.attrs.get("dilations") or [1] * len(kernel)]
    expanded = [vela_taps(k, d) for k, d in zip(kernel, dilations)]
    taps = [t for t, _ in expanded]
    if not conv1d and taps == kernel:
        return layer
    scale = float(np.prod(taps)) / float(np.prod(kernel))
    attrs = {**layer.attrs, "kernel_shape": taps, "dilations": [hw for _, hw in expanded]}
    shape = layer.output_shape
    if conv1d:
        strides = [int(s) for s in layer.attrs.get("strides") or [1]]
        attrs.update(kernel_shape=[1, *taps], dilations=[1, expanded[0][1]], strides=[1, *strides])
        shape = (*shape[:2], 1, shape[2])
    return replace(
        layer,
        macs=int(round(layer.macs * scale)),
        ops=int(round(layer.ops * scale)),
        output_shape=tuple(shape),
        attrs=attrs,
    )


def _round_up(n: int, q: int) -> int:
    return -(-n // q) * q


def npu_work_factor(layer: Layer) -> float:
    """How much more work the NPU's MAC array does for ``layer`` than its MACs: Vela's cycle model
    of Ethos-U55-128 (``npu_performance._estimate_conv_cycles``) steps over output micro-blocks of
    :data:`UBLOCK_W` × 1 × :data:`UBLOCK_C` elements, so the output width and channels round up to
    them; a convolution runs either depth-first (input channels in blocks of
    :data:`IFM_BLOCK_DEPTH`) or part-kernel-first (kernel elements in fours, input channels in
    eights), whichever wastes less (Vela's ``_choose_kernel_method``; always part-kernel at ≤ 8
    input channels); a depthwise convolution steps kernel elements in fours, pooling at least four.
    A convolution's output stage takes half a cycle per element (:data:`OUTPUT_MACS`), which bounds
    one with a short reduction. A 1-channel stem convolution thus runs at an eighth of the MAC
    array, not at its peak; a 3×3 depthwise at 9/12; a 1×1 convolution over 16 channels at a
    quarter; a stride-2 transposed convolution four times its MACs (it convolves the zero-upscaled
    input). 1 for every other kernel (fully connected, elementwise, reductions)."""
    kind, shape = layer.kind, layer.output_shape
    if (
        kind not in ("conv", "depthwise_conv", "pool", "conv_transpose")
        or len(shape) < 3
        or layer.op.startswith("Global")
    ):
        return 1.0
    cout, spatial = int(shape[1]), [int(d) for d in shape[2:]]
    height, width = int(np.prod(spatial[:-1])) if len(spatial) > 1 else 1, spatial[-1]
    taps = int(np.prod(layer.attrs.get("kernel_shape") or [1]))
    outputs = cout * height * width
    padded = _round_up(cout, UBLOCK_C) * height * _round_up(width, UBLOCK_W)
    if outputs <= 0 or taps <= 0:
        return 1.0
    if kind == "pool":
        return padded * max(4, taps) / (outputs * taps)
    if kind == "depthwise_conv":
        return padded * _round_up(taps, 4) / (outputs * taps)
    # a transposed convolution runs as a convolution over its zero-upscaled input: every output
    # takes all kernel taps (Vela's TransposeConv2D counts stride² times the MACs)
    upscale = (
        float(np.prod(layer.attrs.get("strides") or [1])) if kind == "conv_transpose" else 1.0
    )
    cin = layer.macs * upscale / (outputs * taps) if layer.macs else 0.0
    if cin <= 0:
        return 1.0
    c = int(round(cin))
    depth_use = cin / _round_up(c, IFM_BLOCK_DEPTH)
    part_use = cin * taps / (_round_up(c, 8) * _round_up(taps, 4))
    use = part_use if c <= 8 else max(depth_use, part_use)
    # the output stage writes an element per half cycle (OUTPUT_MACS): a 1×1 convolution over a few
    # channels waits on it, not on the MAC array
    return upscale * padded / outputs * max(1.0 / use, OUTPUT_MACS / (cin * taps))


def _is_epilogue(layer: Layer, ins: list[str]) -> bool:
    """A unary op, or an elementwise op whose other operand is a constant (a rescale / bias)."""
    if layer.op not in EPILOGUE_OPS:
        return False
    return not (layer.op in BINARY_OPS and len(set(ins)) > 1)
