"""Model intake: an ONNX model plus its per-layer cost table and activation liveness.

>>> from edgefit.graph import load_graph
>>> g = load_graph("model.onnx", input_shape="1x3x224x224")  # doctest: +SKIP
>>> print(g.macs, g.params, g.peak_activation_bytes)         # doctest: +SKIP
"""

from edgefit.graph._build import Graph, build_graph
from edgefit.graph._layer import COMPUTE_KINDS, KINDS, Layer
from edgefit.graph._liveness import Lifetime, lifetimes, peak_memory
from edgefit.graph._load import load_graph
from edgefit.graph._read import read_onnx
from edgefit.graph._shapes import parse_input_shape

__all__ = [
    "COMPUTE_KINDS",
    "KINDS",
    "Graph",
    "Layer",
    "Lifetime",
    "build_graph",
    "lifetimes",
    "load_graph",
    "parse_input_shape",
    "peak_memory",
    "read_onnx",
]
