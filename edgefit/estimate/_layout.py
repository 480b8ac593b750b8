"""The data moves an int8 deployment adds to the lowered graph, which an ONNX graph does not have.

* litert-torch keeps a 1-D sequence in NCL and runs each Conv1d as a 2-D convolution over NLC, so
  it writes layout transposes around it (:func:`layout_transposes`); Vela runs each as one or two
  1×1 average-pool passes with swapped strides;
* at a Concat, litert-torch requantizes an input that another op also reads into the concat's
  scale, and Vela copies a tensor concatenated twice (:func:`concat_requantize`).

They are ``datamove`` kernels (op ``Transpose`` / ``Reshape`` / ``Quantize``) of
:mod:`edgefit.estimate._lower_integer`'s internal format, whose NPU work is their elements × the
passes read from Vela 5.2's per-layer cycles on hand-built nets.

>>> TRANSPOSE_OUT > TRANSPOSE_IN_RANK4 > TRANSPOSE_IN
True
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgefit.graph import Layer

# Vela 5.2's per-layer cycles for the layout moves around a Conv1d, per element, in units of one
# transpose pass (a 1×1 average pool writing with swapped strides, 0.375 cycles per int8 element on
# Ethos-U55-128): NCL → NLC from a rank-3 tensor is one pass; the same from a convolution's rank-4
# output two; NLC → NCL two passes, the second writing a depth-1 map at 1.0 cycle per element;
# a Reshape that Vela must copy ~2 cycles per element. Read on hand-built Conv1d nets (8–64
# channels, lengths 33–512, 1×1, 3-tap and depthwise, with and without residual adds), not on the
# zoo; the datamove class's fitted efficiency prices the pass.
TRANSPOSE_IN, TRANSPOSE_IN_RANK4 = 1.0, 2.0
TRANSPOSE_OUT = 1.0 + 1.0 / 0.375
RESHAPE_COPY = 2.0 / 0.375
# Vela 5.2's Quantize (and MemoryCopy) at a Concat: 1.0–1.06 cycles per int8 element (8352 for
# 8192, 16640 for 16384, 32928 for 32768, 4352 for 4096; hand-built U-Net levels with a transposed
# conv or nearest upsample, three seeds, and 3-input concats; the zoo's U-Net agrees)
REQUANTIZE = 1.0 / 0.375


def concat_requantize(
    concat: Layer, inputs: list[str], uses: list[int], shapes: dict[str, tuple]
) -> tuple[list[dict], list[str]]:
    """``(kernels, parts)``: the requantize kernels a Concat of ``inputs`` costs, and the tensors
    placed in its slices (an input, or its requantized copy ``<input>#concat<i>``).

    litert-torch's PT2E quantizer gives a Concat's inputs and output one scale, shared with the
    producers of its inputs, so each producer writes its slice directly and the Concat is free —
    unless another op also reads that input (``uses`` > 1, counted through free views): the
    tensor keeps its own scale for that reader, and the converter writes a QUANTIZE into the
    concat's scale (Vela's ``Quantize``, over the input's elements, scheduled when the concat is
    made; a U-Net's skip beside its max-pool, the middle of three inputs read by another conv:
    every such input on the hand-built nets, at every seed). A tensor concatenated twice counts
    twice and is copied for each slice (Vela's ``MemoryCopy``, the same cost). A Concat whose
    output a MaxPool reads is sometimes requantized before the pool, as the calibrated ranges fall
    (4 of 10 seeds of a Fire module + max-pool; 1 of SqueezeNet-s's 2), which the graph cannot
    tell: it is left free, the common case."""
    kernels: list[dict] = []
    parts: list[str] = []
    for i, (t, n) in enumerate(zip(inputs, uses)):
        if n <= 1:
            parts.append(t)
            continue
        shape = shapes.get(t, ())
        name, label = f"{t}#concat{i}", f"quantize{i}"
        kernels.append(_move(concat, t, name, shape, "Quantize", REQUANTIZE, label))
        parts.append(kernels[-1]["outputs"][0])
    return kernels, parts


def layout_transposes(
    kernels: list[dict], graph_outputs: set[str], shapes: dict[str, tuple]
) -> list[dict]:
    """``kernels`` with the layout moves litert-torch and Vela add around 1-D convolutions.

    litert-torch keeps a sequence in NCL and runs a Conv1d as Reshape → TRANSPOSE (to NLC) →
    CONV_2D → TRANSPOSE (back to NCL) → Reshape; between two Conv1d whose tensor has no other
    reader (conv → ReLU → conv) the pair cancels. So a Conv1d kernel gets a transpose in unless it
    reads the sole output of another, and a transpose out unless its output feeds only one Conv1d.
    Where a transposed-back tensor feeds both a Conv1d and another op (a TCN's first residual
    block), Vela copies the Reshape for the other op and transposes in with two passes. The moves
    are ``datamove`` kernels (op ``Transpose`` / ``Reshape``) whose NPU work is their elements ×
    the passes of :data:`TRANSPOSE_OUT` etc.; an ONNX graph has none of them (ONNX convolutions
    read NCL directly). ``shapes``: tensor → shape (a move's own tensors are named
    ``<tensor>#<move>``, with that tensor's shape)."""

    def move(kern: dict, src: str, op: str, passes: float, dst: str = "") -> dict:
        dst = dst or f"{src}#{op.lower()}"
        return _move(kern["anchor"], src, dst, shapes.get(src.split("#")[0], ()), op, passes)

    readers: dict[str, list[int]] = {}
    for i, kern in enumerate(kernels):
        for t in dict.fromkeys(kern["inputs"] + kern["extra_in"]):
            readers.setdefault(t, []).append(i)

    def kept_nlc(t: str) -> bool:  # a Conv1d output read by one Conv1d only: no transposes
        r = readers.get(t, [])
        return t not in graph_outputs and len(r) == 1 and kernels[r[0]]["conv1d"]

    out: list[dict] = []
    back: dict[str, str] = {}  # NCL tensor made by a transpose out → its copy for other readers
    made: dict[str, bool] = {}  # tensor → produced by a Conv1d (then transposed back)
    for kern in kernels:
        src = kern["inputs"][0] if kern["inputs"] else None
        if kern["conv1d"] and src is not None and not (made.get(src) and kept_nlc(src)):
            rank4 = bool(made.get(src))
            out.append(move(kern, src, "Transpose", TRANSPOSE_IN_RANK4 if rank4 else TRANSPOSE_IN))
            kern["inputs"] = [out[-1]["outputs"][0], *kern["inputs"][1:]]
        elif not kern["conv1d"]:
            kern["inputs"] = [back.get(t, t) for t in kern["inputs"]]
            kern["extra_in"] = [back.get(t, t) for t in kern["extra_in"]]
        out.append(kern)
        for t in kern["outputs"]:
            made[t] = kern["conv1d"]
        y = kern["outputs"][0] if kern["conv1d"] and kern["outputs"] else None
        if y is None or kept_nlc(y):
            continue
        kern["outputs"] = [f"{y}#nlc", *kern["outputs"][1:]]
        out.append(move(kern, f"{y}#nlc", "Transpose", TRANSPOSE_OUT, dst=y))
        r = readers.get(y, [])
        if any(kernels[j]["conv1d"] for j in r) and not all(kernels[j]["conv1d"] for j in r):
            out.append(move(kern, y, "Reshape", RESHAPE_COPY))
            back[y] = out[-1]["outputs"][0]
    return out


def _move(
    conv: Layer, src: str, name: str, shape: tuple, op: str, passes: float, label: str = ""
) -> dict:
    """A data move of ``src`` (of ``shape``) into ``name`` beside the layer ``conv`` (a Conv1d, a
    Concat), named ``<conv>/<label or op>``."""
    elems = float(np.prod(shape)) if shape else 0.0
    layer = replace(
        conv,
        name=f"{conv.name}/{label or op.lower()}",
        op=op,
        kind="shape",
        macs=0,
        ops=int(elems),
        params=0,
        weight_bytes=0,
        output_shape=tuple(shape),
        inputs=(src,),
        outputs=(name,),
        attrs={},
    )
    return {
        "layers": [conv.index],
        "anchor": layer,
        "ops": elems,
        "npu_ops": elems * passes,
        "macs": 0.0,
        "inputs": [src],
        "extra_in": [],
        "outputs": [name],
        "fusable": False,
        "conv1d": False,
        "layout_move": True,
    }
