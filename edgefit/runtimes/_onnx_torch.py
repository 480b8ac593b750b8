"""Rebuild an ONNX model as a ``torch.nn.Module`` (for converters that start from PyTorch: LiteRT,
Core ML).

Neither litert-torch nor coremltools reads ONNX. Most models edgefit sees are plain CNN/MLP graphs
(convolutions, pooling, Gemm, activations, residual adds), so :class:`OnnxModule` evaluates the
ONNX graph node by node with ``torch.nn.functional`` ops. ``torch.export`` traces through that
loop, so the converters see an ordinary aten graph; float initializers become parameters (PT2E
quantizers then find conv/linear weights as usual) and integer initializers (shapes, axes) stay
Python constants. Ops outside :data:`SUPPORTED_OPS` are refused up front with the fix: pass the
torch module itself.

>>> from edgefit.runtimes.testing import tiny_model
>>> module = OnnxModule(tiny_model())                           # doctest: +SKIP
>>> module(torch.zeros(1, 3, 16, 16)).shape                      # doctest: +SKIP
torch.Size([1, 10])
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
    from onnx import helper, numpy_helper
else:
    torch, F = lazy_import("torch", "torch.nn.functional")
    helper, numpy_helper = lazy_import("onnx.helper", "onnx.numpy_helper")

FIX = (
    "pass the torch.nn.Module instead: TorchModel(module, example_input) from edgefit.runtimes "
    "(or TorchModel.from_example(name) for a built-in example)"
)


def _attrs(node) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_const(value) -> bool:
    return isinstance(value, (np.ndarray, np.generic))


def _tensor(value, like=None):
    if _is_const(value):
        t = torch.as_tensor(value.copy())
        return t.to(like.dtype) if like is not None and t.is_floating_point() else t
    return value


def _ints(value) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _pads_split(pads: list[int], rank: int) -> tuple[list[int], bool]:
    """ONNX pads [x1_begin, x2_begin, …, x1_end, …] → F.pad order (last axis first) and whether
    symmetric."""
    begin, end = pads[:rank], pads[rank:]
    flat: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        flat += [b, e]
    return flat, begin == end


# -- op implementations: (module, inputs, attrs) → list of outputs --------------------------------


def _conv(m, xs, a):
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 and xs[2] is not None else None
    rank = w.dim() - 2
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise EdgefitError(
            "Conv with auto_pad is not supported by the ONNX→torch rebuild", where="MODEL", fix=FIX
        )
    pads = list(a.get("pads", [0] * 2 * rank))
    flat, symmetric = _pads_split(pads, rank)
    stride, dil, groups = (
        a.get("strides", [1] * rank),
        a.get("dilations", [1] * rank),
        a.get("group", 1),
    )
    pad: int | list[int] = 0
    if not symmetric:
        x = F.pad(x, flat)
    else:
        pad = pads[:rank]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    return [conv(x, w, b, stride=stride, padding=pad, dilation=dil, groups=groups)]


def _gemm(m, xs, a):
    x, w = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 and xs[2] is not None else None
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    if a.get("transA", 0):
        x = x.t()
    if a.get("transB", 0) and alpha == 1.0 and beta == 1.0:
        return [F.linear(x, w, c)]
    y = alpha * torch.matmul(x, w.t() if a.get("transB", 0) else w)
    return [y + beta * c if c is not None else y]


def _matmul(m, xs, a):
    if isinstance(
        xs[1], m.LinearWeight
    ):  # constant 2-D right operand: a Linear layer, stored transposed
        return [F.linear(xs[0], xs[1].weight)]
    return [torch.matmul(xs[0], xs[1])]


def _pool(kind: str):
    def run(m, xs, a):
        x = xs[0]
        k = list(a["kernel_shape"])
        rank = len(k)
        stride = a.get("strides", [1] * rank)
        flat, symmetric = _pads_split(list(a.get("pads", [0] * 2 * rank)), rank)
        ceil = bool(a.get("ceil_mode", 0))
        pad: int | list[int] = 0
        if kind == "max":
            if not symmetric:
                x = F.pad(x, flat, value=float("-inf"))
            else:
                pad = list(a.get("pads", [0] * 2 * rank))[:rank]
            max_pool: Callable[..., Any] = {1: F.max_pool1d, 2: F.max_pool2d}[rank]
            dilation = a.get("dilations", [1] * rank)
            return [max_pool(x, k, stride, pad, dilation=dilation, ceil_mode=ceil)]
        include = bool(a.get("count_include_pad", 0))
        if not symmetric:
            x = F.pad(x, flat)
        else:
            pad = list(a.get("pads", [0] * 2 * rank))[:rank]
        avg_pool: Callable[..., Any] = {1: F.avg_pool1d, 2: F.avg_pool2d}[rank]
        return [avg_pool(x, k, stride, pad, ceil_mode=ceil, count_include_pad=include)]

    return run


def _global_avg(x, keepdim: bool = True):
    """Mean over the spatial axes; as ``adaptive_avg_pool2d`` for 4-D input, which PT2E quantizers
    annotate."""
    if x.dim() == 4:
        y = F.adaptive_avg_pool2d(x, 1)
        return y if keepdim else y.flatten(1)
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=keepdim)


def _reduce_mean(m, xs, a):
    x = xs[0]
    axes = (
        a.get("axes")
        if "axes" in a
        else (_ints(xs[1]) if len(xs) > 1 and xs[1] is not None else None)
    )
    dims = list(range(x.dim())) if not axes else [int(d) % x.dim() for d in axes]
    if x.dim() == 4 and sorted(dims) == [2, 3]:
        return [_global_avg(x, bool(a.get("keepdims", 1)))]
    return [torch.mean(x, dim=dims, keepdim=bool(a.get("keepdims", 1)))]


def _reshape(m, xs, a):
    x, shape = xs[0], _ints(xs[1])
    if not _is_const(x):
        shape = [
            x.shape[i] if d == 0 and not a.get("allowzero", 0) else d for i, d in enumerate(shape)
        ]
        return [x.reshape(shape)]
    return [x.reshape(shape)]


def _flatten(m, xs, a):
    x = xs[0]
    axis = a.get("axis", 1) % max(x.dim(), 1)
    lead = 1
    for d in x.shape[:axis]:
        lead *= int(d)
    return [x.reshape(lead, -1)]


def _clip(m, xs, a):
    lo = float(np.asarray(xs[1])) if len(xs) > 1 and xs[1] is not None else a.get("min")
    hi = float(np.asarray(xs[2])) if len(xs) > 2 and xs[2] is not None else a.get("max")
    if lo == 0.0 and hi == 6.0:
        return [F.relu6(xs[0])]
    if lo == 0.0 and hi is None:
        return [F.relu(xs[0])]
    return [torch.clamp(xs[0], lo, hi)]


def _binary(fn: Callable):
    def run(m, xs, a):
        x, y = xs
        if _is_const(x) and _is_const(y):
            return [np.asarray(fn(x, y))]
        like = y if _is_const(x) else x
        return [fn(_tensor(x, like), _tensor(y, like))]

    return run


def _torch_add(x, y):
    """``torch.add`` rather than ``+``: litert-torch's PT2E quantizer matches residual adds by that
    name."""
    return torch.add(x, y) if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor) else x + y


def _unsqueeze(m, xs, a):
    x = xs[0]
    axes = a.get("axes") or _ints(xs[1])
    rank = x.ndim + len(axes)
    for ax in sorted(int(v) % rank for v in axes):
        x = np.expand_dims(x, ax) if _is_const(x) else x.unsqueeze(ax)
    return [x]


def _squeeze(m, xs, a):
    x = xs[0]
    axes = a.get("axes") or (_ints(xs[1]) if len(xs) > 1 and xs[1] is not None else None)
    if axes is None:
        return [np.squeeze(x) if _is_const(x) else x.squeeze()]
    for ax in sorted((int(v) % x.ndim for v in axes), reverse=True):
        x = np.squeeze(x, ax) if _is_const(x) else x.squeeze(ax)
    return [x]


def _concat(m, xs, a):
    if all(_is_const(x) for x in xs):
        return [np.concatenate(xs, axis=a["axis"])]
    like = next(x for x in xs if not _is_const(x))
    return [torch.cat([_tensor(x, like) for x in xs], dim=a["axis"])]


def _batchnorm(m, xs, a):
    x, scale, bias, mean, var = xs[:5]
    return [F.batch_norm(x, mean, var, scale, bias, training=False, eps=a.get("epsilon", 1e-5))]


def _pad(m, xs, a):
    x = xs[0]
    pads = list(a.get("pads") or _ints(xs[1]))
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = float(np.asarray(xs[2])) if len(xs) > 2 and xs[2] is not None else 0.0
    flat, _ = _pads_split(pads, x.dim())
    return [
        F.pad(x, flat, mode=mode, value=value) if mode == "constant" else F.pad(x, flat, mode=mode)
    ]


def _cast(m, xs, a):
    if not _is_const(xs[0]):
        raise EdgefitError(
            "Cast of a computed tensor is not supported by the ONNX→torch rebuild",
            where="MODEL",
            fix=FIX,
        )
    return [xs[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))]


def _unary(name: str):
    def run(m, xs, a):
        x = xs[0]
        table: dict[str, Callable[..., Any]] = {
            "Relu": F.relu,
            "Sigmoid": torch.sigmoid,
            "Tanh": torch.tanh,
            "HardSwish": F.hardswish,
            "Erf": torch.erf,
            "Exp": torch.exp,
            "Sqrt": torch.sqrt,
            "Neg": torch.neg,
            "Abs": torch.abs,
        }
        if name == "LeakyRelu":
            return [F.leaky_relu(x, a.get("alpha", 0.01))]
        if name == "HardSigmoid":
            alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
            if abs(alpha - 1 / 6) < 1e-6 and beta == 0.5:
                return [F.hardsigmoid(x)]
            return [torch.clamp(alpha * x + beta, 0.0, 1.0)]
        if name == "Softmax":
            return [torch.softmax(x, dim=a.get("axis", -1))]
        if name == "Gelu":
            approx = a.get("approximate", b"none")
            return [
                F.gelu(x, approximate=approx.decode() if isinstance(approx, bytes) else approx)
            ]
        return [table[name](x)]

    return run


OPS: dict[str, Callable] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda m, xs, a: [_global_avg(xs[0])],
    "GlobalMaxPool": lambda m, xs, a: [xs[0].amax(dim=tuple(range(2, xs[0].dim())), keepdim=True)],
    "ReduceMean": _reduce_mean,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Clip": _clip,
    "Add": _binary(_torch_add),
    "Sub": _binary(lambda x, y: x - y),
    "Mul": _binary(lambda x, y: x * y),
    "Div": _binary(lambda x, y: x / y),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Transpose": lambda m, xs, a: [
        xs[0].permute(*a["perm"]) if "perm" in a else xs[0].permute(*reversed(range(xs[0].dim())))
    ],
    "BatchNormalization": _batchnorm,
    "Pad": _pad,
    "Cast": _cast,
    "Identity": lambda m, xs, a: [xs[0]],
    "Dropout": lambda m, xs, a: [xs[0]],
    "Shape": lambda m, xs, a: [np.array(list(xs[0].shape), dtype=np.int64)],
    "Gather": lambda m, xs, a: [
        np.asarray(np.take(np.asarray(xs[0]), np.asarray(xs[1]), axis=a.get("axis", 0)))
    ],
    **{
        name: _unary(name)
        for name in (
            "Relu",
            "Sigmoid",
            "Tanh",
            "HardSwish",
            "Erf",
            "Exp",
            "Sqrt",
            "Neg",
            "Abs",
            "LeakyRelu",
            "HardSigmoid",
            "Softmax",
            "Gelu",
        )
    },
}
SUPPORTED_OPS = frozenset(OPS) | {"Constant"}


def unsupported_ops(model) -> list[str]:
    """The op types of ``model`` that :class:`OnnxModule` cannot rebuild (empty: all supported)."""
    return sorted(
        {
            n.op_type
            for n in model.graph.node
            if n.op_type not in SUPPORTED_OPS or n.domain not in ("", "ai.onnx")
        }
    )


def _module_class():
    class LinearWeight(torch.nn.Module):
        """A constant 2-D MatMul operand, kept as a Linear weight (transposed once here, not per
        call)."""

        LINEAR_WEIGHT = (
            True  # it feeds F.linear: quantizers (torchao) may treat it like an nn.Linear's weight
        )

        def __init__(self, w: np.ndarray, trainable: bool = False) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.as_tensor(w.T.copy()), requires_grad=trainable)

    class OnnxModule(torch.nn.Module):
        def __init__(self, model, trainable: bool | frozenset[str] = False) -> None:
            super().__init__()
            missing = unsupported_ops(model)
            if missing:
                raise EdgefitError(
                    f"cannot rebuild this ONNX model in PyTorch: op(s) {', '.join(missing)} are "
                    "not "
                    "supported by edgefit's ONNX→torch rebuild",
                    where="MODEL",
                    fix=FIX,
                )
            self.LinearWeight = LinearWeight
            self._nodes = [
                (n.op_type, list(n.input), list(n.output), _attrs(n)) for n in model.graph.node
            ]
            inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
            matmul_rhs = {n.input[1] for n in model.graph.node if n.op_type == "MatMul"}
            self._consts: dict[str, np.ndarray] = {}
            self._params: dict[str, str] = {}  # ONNX name → attribute name
            self.weights = torch.nn.ParameterDict()
            self.linear = torch.nn.ModuleDict()
            for name, value in inits.items():
                key = re.sub(r"\W", "_", name)[:80] + f"_{len(self._params)}"
                train = trainable if isinstance(trainable, bool) else name in trainable
                if value.dtype.kind == "f" and name in matmul_rhs and value.ndim == 2:
                    self.linear[key] = LinearWeight(value.astype(np.float32), train)
                    self._params[name] = "linear:" + key
                elif value.dtype.kind == "f":
                    self.weights[key] = torch.nn.Parameter(
                        torch.as_tensor(value.astype(np.float32)), requires_grad=train
                    )
                    self._params[name] = key
                else:
                    self._consts[name] = value
            for op, _, outs, a in self._nodes:
                if op == "Constant":
                    self._consts[outs[0]] = (
                        numpy_helper.to_array(a["value"])
                        if "value" in a
                        else np.asarray(
                            a.get(
                                "value_float",
                                a.get("value_floats", a.get("value_int", a.get("value_ints"))),
                            )
                        )
                    )
            self.input_names = [i.name for i in model.graph.input if i.name not in inits]
            self.output_names = [o.name for o in model.graph.output]

        def _value(self, env, name: str):
            if name == "":
                return None
            if name in env:
                return env[name]
            if name in self._consts:
                return self._consts[name]
            kind = self._params[name]
            return self.linear[kind[7:]] if kind.startswith("linear:") else self.weights[kind]

        def float_initializers(self) -> dict[str, np.ndarray]:
            """The current value of every float initializer, by its ONNX name and in its ONNX
            layout (a MatMul weight transposed back): what training changed, to write back."""
            out = {}
            for name in self._params:
                value = self._value({}, name)
                if isinstance(value, LinearWeight):
                    out[name] = value.weight.detach().numpy().T.copy()
                else:
                    out[name] = value.detach().numpy().copy()
            return out

        def forward(self, *args):
            env = dict(zip(self.input_names, args))
            for op, ins, outs, a in self._nodes:
                if op == "Constant":
                    continue
                values = [self._value(env, n) for n in ins]
                if op != "MatMul":
                    values = [v.weight.t() if isinstance(v, LinearWeight) else v for v in values]
                for name, value in zip(outs, OPS[op](self, values, a)):
                    env[name] = value
            outs = [env[n] for n in self.output_names]
            return outs[0] if len(outs) == 1 else tuple(outs)

    return OnnxModule


def onnx_to_torch(model, trainable: bool | frozenset[str] = False):
    """``model`` (an ``onnx.ModelProto``) as an eval-mode ``torch.nn.Module`` taking its inputs in
    order. With ``trainable`` (``True``: every float initializer; a set: those ONNX names) the
    initializers require gradients, for recovery fine-tuning of an ONNX-only model;
    ``float_initializers()`` gives them back by ONNX name."""
    return _module_class()(model, trainable).eval()
