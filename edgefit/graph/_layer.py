"""The per-layer table: one row per ONNX node, in execution order."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Layer kinds: what the estimator and the search reason about (ONNX op types are too fine-grained).
KINDS = (
    "conv",
    "depthwise_conv",
    "conv_transpose",
    "gemm",
    "matmul",
    "rnn",
    "pool",
    "norm",
    "elementwise",
    "activation",
    "softmax",
    "reduce",
    "resize",
    "shape",
    "quant",
    "unknown",
)
COMPUTE_KINDS = frozenset({"conv", "depthwise_conv", "conv_transpose", "gemm", "matmul", "rnn"})
# ONNX ops that are free views of their input, or small constants: no kernel of their own on any
# runtime (the estimator's kernel table and its integer lowering both fold them away).
VIEW_OPS = {
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Dropout",
    "Shape",
    "Size",
    "Constant",
    "ConstantOfShape",
    "Cast",
    "CastLike",
}


@dataclass(frozen=True)
class Layer:
    """One node of the model with its costs.

    ``macs`` counts multiply-accumulates of the layer's math (0 for data movement); ``ops`` is what
    the compute roof charges: 2 × MACs for MAC layers, an elementwise count for the rest. Byte
    counts use the tensors' element types, so an int8 QDQ model has int8 weights and activations.
    """

    index: int
    name: str
    op: str
    kind: str
    dtype: str
    macs: int
    ops: int
    params: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    output_shape: tuple[int, ...]
    inputs: tuple[str, ...] = field(repr=False)
    outputs: tuple[str, ...] = field(repr=False)
    attrs: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_compute(self) -> bool:
        return self.kind in COMPUTE_KINDS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        d["inputs"] = list(self.inputs)
        d["outputs"] = list(self.outputs)
        return d
