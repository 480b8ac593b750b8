"""Which layers NVIDIA's DLA can run, and what TensorRT falls back to the GPU, per its DLA rules.

TensorRT builds a DLA engine layer by layer: a layer the DLA supports runs there; with GPU fallback
enabled (``trtexec --useDLACore=0 --allowGPUFallback``) any other layer runs on the GPU, and each
switch between the two splits the network into another DLA loadable (16 at most per core) with a
copy through DRAM. The rules below are those of TensorRT's "DLA Supported Layers and Restrictions"
(docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/dla-layer-restrictions.html, the
"DLA Layer Support Summary" table; TensorRT 10.7 is the last release with DLA on Jetson):

* precision FP16 or INT8 only; non-batch dimensions at most 8192; 2D (NCHW) layers;
* Convolution / Fully Connected: kernel [1, 32], stride [1, 8], channels [1, 8192] (grouped and
  depthwise convolutions included);
* Deconvolution: no grouped or dilated deconvolution (padding must be 0, which edgefit's graph
  does not record: it is not checked);
* Activation: ReLU, Sigmoid, TanH, Clipped ReLU, Leaky ReLU only;
* ElementWise: Sum, Sub, Product, Max, Min, Div, Pow;
* Concatenation: along the channel axis only;
* Pooling: Max and Average with a window of [1, 8] (a global average over a larger map exceeds it).

Everything else the summary lists with conditions edgefit does not check (Softmax, Resize, Slice,
Shuffle, Reduce other than a global average) and every layer it does not list (MatMul between
activations, LayerNorm, Gather, HardSwish, GELU …) is marked GPU fallback, so the DLA share is a
lower bound where those conditions would hold. View ops (Reshape, Flatten …) cost nothing and
follow their producer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

DLA = "dla"
GPU = "gpu fallback"
VIEW = "view"
SOURCE = (
    "TensorRT 'DLA Supported Layers and Restrictions' (docs.nvidia.com/deeplearning/tensorrt/"
    "latest/inference-library/dla-layer-restrictions.html)"
)
MAX_DIM = 8192
_ACTIVATIONS = {"Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu"}
_ELEMENTWISE = {"Add", "Sub", "Mul", "Max", "Min", "Div", "Pow", "Sum"}
_VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Cast"}
_QDQ = {"QuantizeLinear", "DequantizeLinear"}  # folded into the INT8 layers around them
_BN = {"BatchNormalization"}  # folded into the convolution before it (a Scale layer otherwise)


@dataclass(frozen=True)
class Placement:
    """Where one layer runs when the model is built for the DLA with GPU fallback, and why."""

    layer: str
    op: str
    unit: str  # "dla", "gpu fallback" or "view"
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _shape(graph, name: str) -> tuple[int, ...]:
    shape, _ = graph.tensors.get(name, ((), "fp32"))
    return tuple(int(d) for d in shape)


def _too_big(shape: tuple[int, ...]) -> int | None:
    return next((d for d in shape[1:] if d > MAX_DIM), None)


def _conv(layer, shape_in: tuple[int, ...]) -> tuple[bool, str]:
    kernel = [int(k) for k in layer.attrs.get("kernel_shape") or []]
    strides = [int(s) for s in layer.attrs.get("strides") or []]
    if len(kernel) != 2:
        return False, f"{len(kernel) or 'no'}-D kernel: the DLA runs 2D convolutions only"
    if max(kernel) > 32:
        return False, f"kernel {kernel[0]}x{kernel[1]} exceeds the DLA's [1, 32]"
    if strides and max(strides) > 8:
        return False, f"stride {max(strides)} exceeds the DLA's [1, 8]"
    channels = max(layer.output_shape[1] if len(layer.output_shape) > 1 else 0, *shape_in[1:2])
    if channels > MAX_DIM:
        return False, f"{channels} channels exceed the DLA's [1, 8192]"
    return True, "convolution within the DLA's kernel, stride and channel limits"


def _place(graph, layer) -> tuple[str, str]:
    op = layer.op
    shape_in = _shape(graph, layer.inputs[0]) if layer.inputs else ()
    if op in _VIEWS:
        return VIEW, "no kernel of its own"
    if op in _QDQ:
        return VIEW, "quantize/dequantize folded into the INT8 layer"
    big = _too_big(layer.output_shape) or _too_big(shape_in)
    if big:
        return GPU, f"dimension {big} exceeds the DLA's 8192"
    if op == "Conv":
        ok, why = _conv(layer, shape_in)
        return (DLA if ok else GPU), why
    if op in ("Gemm", "MatMul"):
        if op == "MatMul" and layer.params == 0:
            return GPU, "MatMul between two activations is not a DLA layer"
        return DLA, "fully connected layer (run as a 1x1 convolution)"
    if op == "ConvTranspose":
        if int(layer.attrs.get("group", 1) or 1) > 1:
            return GPU, "grouped deconvolution is not supported on the DLA"
        return DLA, "deconvolution (ungrouped, undilated)"
    if op in _ACTIVATIONS:
        return DLA, f"{op} is a DLA activation"
    if layer.kind == "activation":
        return GPU, f"{op} is not a DLA activation (ReLU, Sigmoid, TanH, Clip, LeakyReLU only)"
    if op in _ELEMENTWISE:
        if len(layer.output_shape) != 4:
            return GPU, f"{len(layer.output_shape)}-D elementwise: the DLA runs 2D (NCHW) only"
        return DLA, f"{op} is a DLA elementwise operation"
    if op == "Concat":
        ins = [_shape(graph, t) for t in layer.inputs if _shape(graph, t)]
        same = all(len(s) == 4 and s[2:] == layer.output_shape[2:] for s in ins)
        if len(layer.output_shape) == 4 and same:
            return DLA, "concatenation along the channel axis"
        return GPU, "concatenation not along the channel axis"
    if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
        return _pool(layer, shape_in)
    if op in _BN:
        return DLA, "batch normalization (a scale, folded into the convolution)"
    return GPU, f"{op} is not among the DLA layers edgefit checks"


def _pool(layer, shape_in: tuple[int, ...]) -> tuple[str, str]:
    if layer.op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
        if len(shape_in) != 4 or tuple(layer.output_shape[2:]) not in ((1, 1), ()):
            return GPU, f"{layer.op} other than a global average over H and W"
        window = list(shape_in[2:])
    else:
        window = [int(k) for k in layer.attrs.get("kernel_shape") or []]
    if len(window) != 2:
        return GPU, "the DLA pools in 2D only"
    if max(window) > 8:
        return GPU, f"pooling window {window[0]}x{window[1]} exceeds the DLA's [1, 8]"
    return DLA, f"pooling window {window[0]}x{window[1]} within the DLA's [1, 8]"


def dla_placement(graph, dtype: str) -> list[Placement]:
    """Per layer of ``graph`` in ``dtype``: DLA, GPU fallback (with the rule's reason) or view.

    >>> from edgefit.graph import load_graph  # doctest: +SKIP
    >>> [p.unit for p in dla_placement(load_graph("m.onnx"), "int8")][:2]  # doctest: +SKIP
    ['dla', 'dla']
    """
    if dtype not in ("int8", "fp16"):
        return [
            Placement(layer.name, layer.op, GPU, f"the DLA runs FP16 and INT8 only, not {dtype}")
            for layer in graph.layers
        ]
    out = []
    for layer in graph.layers:
        unit, reason = _place(graph, layer)
        out.append(Placement(layer.name, layer.op, unit, reason))
    return out


def summary(placements: list[Placement]) -> dict:
    """How many layers and MAC-bearing layers run where; the distinct fallback reasons."""
    real = [p for p in placements if p.unit != VIEW]
    fallback = [p for p in real if p.unit == GPU]
    reasons: dict[str, int] = {}
    for p in fallback:
        reasons[p.reason] = reasons.get(p.reason, 0) + 1
    return {
        "layers": len(real),
        "dla": len(real) - len(fallback),
        "gpu_fallback": len(fallback),
        "fallback_reasons": reasons,
        "rules": SOURCE,
    }
