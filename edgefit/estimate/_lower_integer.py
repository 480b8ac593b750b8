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
  copy in the per-layer report), and Split / Slice become read offsets of their consumers;
* **epilogues**: batch-norm, ReLU / Clip, and the LUT activations (Sigmoid, Tanh, HardSwish,
  HardSigmoid, LeakyRelu), and Add/Mul/Sub/Div by a constant fold into the kernel before them
  (Vela's per-layer report shows them with 0 cycles);
* **binary elementwise ops on two activations** (residual Add, SE's Mul) are kernels of their own
  (Vela's ``Add`` / ``Mul`` NPU ops), which take their ReLU as an epilogue; a residual add is *not*
  a conv epilogue;
* **pooling, global average, transpose** run in int8 on the NPU (``pool``, ``reduce``,
  ``datamove``);
* **MatMul by a constant** is a FULLY_CONNECTED over the rows (``gemm``); a MatMul of two
  activations stays ``matmul`` (Vela leaves BATCH_MATMUL to the CPU on Ethos-U55 with this
  converter).

The activation memory of the lowered graph is Vela's tensor arena, from
:mod:`edgefit.estimate._arena`.

>>> table = build_kernel_table(graph, lowering="integer")   # doctest: +SKIP
"""

from __future__ import annotations

from edgefit.estimate._table import VIEW_OPS
from edgefit.graph import Graph, Layer

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
    for layer in graph.layers:
        ins = [real(t) for t in layer.inputs]
        if (
            layer.op == "Concat" and ins and layer.outputs
        ):  # producers write into their slices: no kernel
            concats.append([layer.outputs[0], *dict.fromkeys(ins)])
            made = [producer[t] for t in ins if t in producer]
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
            "fusable": layer.kind in ANCHOR_KINDS,
        }
        kernels.append(kern)
        for t in layer.outputs:
            producer[t] = len(kernels) - 1
    return kernels, producer, alias, concats


def _is_epilogue(layer: Layer, ins: list[str]) -> bool:
    """A unary op, or an elementwise op whose other operand is a constant (a rescale / bias)."""
    if layer.op not in EPILOGUE_OPS:
        return False
    return not (layer.op in BINARY_OPS and len(set(ins)) > 1)
