"""Bytes of each int8 kernel's weights in Vela's flash image (the integer lowering's ``w_elems``).

Vela does not store a convolution's int8 weights as they are: it reorders them into the MAC
array's traversal (depth-first, or part-kernel-first for few input channels: kernel taps padded to
fours, input channels to eights) and compresses them losslessly (``mlw_codec``, a Golomb-Rice code
with zero runs), in front of a 10-byte bias/scale record per output channel; each stream is
padded to 16 bytes. The compressed size depends on the weight *values*: Gaussian-initialised or
trained weights need ~7.5 bits each, uniformly spread ones ~9, the zeros padding a 1-channel stem
little. So the estimate quantizes the model's own weights as the deployment does (int8,
symmetric, per output channel) and, where Arm Vela is installed, runs its public weight encoder
(``ethosu.vela.api.npu_encode_weights``) on them: the bytes are then Vela's own (within ~1% on
the MCU zoo). Without Vela the weights count one byte each. A plan's channel scale scales the
stream linearly, like any weight count.

One known gap: Vela 5 compiles for the Ethos-U55 with its C++ back end (Regor), whose weight
encoder is newer than the Python API's (it chooses a palette and sections per stream) and is not
exposed. The two agree to the byte on every MCU zoo layer but one shape: a fully connected layer
with 784 inputs (not a multiple of the 32-deep input blocks) and 256 or more outputs, which Regor
stores at 1.01–1.05 bytes a weight and the API's encoder at 1.125 (784→128 and 520→512 are
1.125 in both). That layer makes the zoo's mlp-m 8.4% over Vela in flash and time.

A global average (``ReduceMean`` / ``GlobalAveragePool``) has weights in flash too: Vela runs it
as a depthwise convolution over the whole map with all-one weights.

>>> weight_stream_bytes(np.ones((8, 3, 3, 8), np.int16), depthwise=False)   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from functools import lru_cache

import numpy as np
from onnx import numpy_helper

ALIGN = 16  # Vela aligns each scale and weight stream to 16 bytes
BIAS_RECORD_BYTES = 10  # Ethos-U55 per output channel: 40-bit bias + 32-bit scale + shift
OFM_BLOCK_DEPTH = 16  # the encoder's brick depth (the encoded size hardly depends on it)


def _align(n: float) -> float:
    return float(-(-int(n) // ALIGN) * ALIGN)


@lru_cache(maxsize=1)
def _codec():
    """Vela's weight encoder, or None where ethos-u-vela is not installed."""
    try:  # by name: ethos-u-vela ships no type information
        api = importlib.import_module("ethosu.vela.api")
    except ImportError:
        return None
    return api.npu_encode_weights, api.NpuAccelerator.Ethos_U55_128, api.NpuBlockTraversal


def quantize_per_channel(w: np.ndarray) -> np.ndarray:
    """int8 symmetric per-output-channel quantization (axis 0), as the deploy recipe does.

    A weight that is NaN or infinite (the model's intake warns of it) does not set its channel's
    scale; it quantizes to 0 (NaN) or to the end of the range (±infinity), so that the stream
    Vela would encode, and its size, stay defined."""
    finite = np.isfinite(w)
    flat = np.abs(np.where(finite, w, 0.0).reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(flat > 0, flat / 127.0, 1.0).reshape(-1, *([1] * (w.ndim - 1)))
    q = np.nan_to_num(w / scale, nan=0.0, posinf=127.0, neginf=-127.0)
    return np.clip(np.rint(q), -127, 127).astype(np.int16)


def part_kernel_first(cin: int, taps: int) -> bool:
    """Vela's traversal choice (``weight_compressor``): part-kernel-first when it wastes less of
    the MAC array than depth-first, always at ≤ 8 input channels."""
    depth = cin / (-(-cin // 32) * 32)
    part = cin / (-(-cin // 8) * 8) * taps / (-(-taps // 4) * 4)
    return cin <= 8 or part >= depth


def weight_stream_bytes(ohwi: np.ndarray, *, depthwise: bool) -> float:
    """Encoded bytes of int8 weights in OHWI layout (Vela's codec; one byte each without it)."""
    codec = _codec()
    if codec is None:
        return _align(ohwi.size)
    encode, accelerator, traversal = codec
    part = not depthwise and part_kernel_first(ohwi.shape[3], ohwi.shape[1] * ohwi.shape[2])
    mode = traversal.PART_KERNEL_FIRST if part else traversal.DEPTH_FIRST
    stream = encode(accelerator, ohwi, (1, 1), 8, OFM_BLOCK_DEPTH, depthwise, mode)
    return _align(len(stream))


def kernel_flash_bytes(layer, weights: dict, graph) -> float | None:
    """Flash bytes of one integer kernel's weights and bias records, or None when its weights are
    not in the model (the caller keeps the one-byte-per-weight count)."""
    if layer.kind == "reduce" or layer.op in ("GlobalAveragePool", "ReduceMean"):
        return _mean_bytes(layer, graph)
    if layer.kind not in ("conv", "depthwise_conv", "gemm", "matmul") or layer.params <= 0:
        return None
    found = weights.get(layer.outputs[0]) if layer.outputs else None
    if found is None or found[0].ndim not in (2, 3, 4):
        return None
    w = _oihw(layer, found[0])
    if w is None:
        return None
    cout = w.shape[0]
    depthwise = layer.kind == "depthwise_conv"
    # an fp32 weight is quantized as the deploy recipe would; a QDQ graph's int8 one is kept
    q = w.astype(np.int16) if found[1] else quantize_per_channel(w)
    # OHWI; a depthwise kernel is one input channel per output channel
    ohwi = q.transpose(0, 2, 3, 1)
    return _align(BIAS_RECORD_BYTES * cout) + weight_stream_bytes(ohwi, depthwise=depthwise)


def _oihw(layer, w: np.ndarray) -> np.ndarray | None:
    """The weight as (out, in, kh, kw): conv weights as stored, a FC's (out, in) as (out, in, 1,
    1)."""
    if layer.kind in ("conv", "depthwise_conv"):
        return w.reshape(*w.shape, 1) if w.ndim == 3 else w
    return w.reshape(*w.shape, 1, 1) if w.ndim == 2 else None


def _mean_bytes(layer, graph) -> float | None:
    """A global average as Vela runs it: a depthwise convolution with all-one weights over the
    input map, plus its bias records."""
    shape = graph.tensors.get(layer.inputs[0], ((), ""))[0] if layer.inputs else ()
    if len(shape) != 4:
        return None
    c, h, w = (int(d) for d in shape[1:])
    ones = np.ones((c, h, w, 1), np.int16)
    return _align(BIAS_RECORD_BYTES * c) + weight_stream_bytes(ones, depthwise=True)


def node_weights(graph) -> dict[str, tuple[np.ndarray, bool]]:
    """Node output → (its weight, already int8): the constant second input of each Conv / Gemm /
    MatMul, read through a DequantizeLinear, a FC's as (out, in) (empty where the graph holds no
    model)."""
    model = getattr(graph, "model", None)
    if model is None:
        return {}
    inits = {i.name: i for i in model.graph.initializer}
    dq = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        name = node.input[1]
        quantized = name in dq
        name = dq.get(name, name)
        if name not in inits:
            continue
        w = numpy_helper.to_array(inits[name])
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        if w.ndim == 2 and (node.op_type == "MatMul" or not trans_b):
            w = w.T  # stored (in, out): the FC's weight is (out, in)
        out[node.output[0]] = (w, quantized)
    return out


def vela_weight_elems(graph, kernels: list[dict], counted: np.ndarray) -> np.ndarray:
    """Per integer kernel, the bytes of its weights in Vela's flash image (int8: one element per
    byte); ``counted`` (weights plus bias records at one byte each) where the weights are not in
    the model."""
    weights = node_weights(graph)
    out = np.array(counted, float)
    for i, kern in enumerate(kernels):
        got = kernel_flash_bytes(kern["anchor"], weights, graph)
        if got is not None:
            out[i] = got
        kern["flash_bytes"] = float(out[i])  # what the arena's weight buffer holds
    return out
