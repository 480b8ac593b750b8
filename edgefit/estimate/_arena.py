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
  separate tensors), live from its first producer to its last consumer;
* an elementwise kernel's output *in place* of an input that dies there with the same size (Vela's
  ``Add`` staging equals its two inputs, not three tensors);
* the weight buffer of a convolution: Vela streams a convolution's encoded weights and its 10-byte
  per-channel bias/scale records into SRAM (fully connected layers read theirs from flash
  directly): all of them up to :data:`FULL_BUFFER_BYTES`, else a 16-output-channel slice. These two
  constants were read off Vela's per-layer "Staging Usage" on the MCU zoo (not fitted
  leave-one-family-out).

The estimator's peak over kernels of these live bytes (:mod:`edgefit.estimate._reference`) is then
Vela's SRAM figure; it takes the plan's channel scales and dtypes like any other tensor.

Flash (:func:`flash_weight_elems`): Vela's off-chip flash holds each weight-bearing kernel's weight
stream plus :data:`BIAS_RECORD_BYTES` per output channel (the int8 plan charges one byte per
element).
"""

from __future__ import annotations

import numpy as np

ALIGN = 16  # bytes: Vela aligns every tensor in the arena
BIAS_RECORD_BYTES = 10  # Ethos-U55 per output channel: 40-bit bias + 32-bit scale + shift
BRICK = 16  # channels per brick of Vela's NHCWB16 feature-map layout
RESHAPES = frozenset(
    {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
)  # their input stays NHWC (linear)
BUFFER_CHANNELS = 16  # a large weight stream is buffered one 16-channel depth slice at a time
FULL_BUFFER_BYTES = 32768  # up to this size Vela buffers the whole encoded weight stream
BUFFERED_KINDS = frozenset({"conv", "depthwise_conv", "conv_transpose"})


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


def weight_buffer(layer) -> float:
    """SRAM bytes of a convolution's weight buffer: the encoded weights and bias records of up to
    :data:`BUFFER_CHANNELS` output channels (Vela streams larger weights through SRAM in depth
    slices)."""
    cout, full = max(out_channels(layer), 1), flash_weight_elems(layer, layer.params)
    return full if full <= FULL_BUFFER_BYTES else full / cout * min(cout, BUFFER_CHANNELS)


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
    )
    elems = [_align(_elems(graph, t) if t in nhwc else _brick_elems(graph, t)) for t in names]
    t_born = [born[t] for t in names]
    t_dies = [max(dies.get(t, born[t]), born[t]) for t in names]
    t_prod = [born[t] for t in names]
    for i, kern in enumerate(kernels):  # a convolution's weight buffer, live while it runs
        anchor = kern["anchor"]
        if anchor.kind in BUFFERED_KINDS and anchor.params > 0:
            elems.append(_align(weight_buffer(anchor)))
            t_born.append(i)
            t_dies.append(i)
            t_prod.append(i)
    return (
        np.array(t_born, np.int32),
        np.array(t_dies, np.int32),
        np.array(elems, float),
        np.array(t_prod, np.int32),
    )


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
