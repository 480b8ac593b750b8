"""Built-in examples as graphs: export once per (example, knobs, torch version), then reuse the
file."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import onnx

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir
from edgefit.examples import get_example
from edgefit.graph._build import Graph
from edgefit.graph._load import load_graph, parse_input_shape
from edgefit.graph._torch import export_torch

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch")


def example_onnx_path(name: str, *, input_shape: tuple[int, ...] | None = None, **knobs):
    """Path of the cached ONNX export of example ``name`` (exported on first use)."""
    spec = get_example(name)
    shape = tuple(input_shape or spec.shape_for(knobs.get("resolution")))
    key = json.dumps(
        {
            "name": name,
            "shape": shape,
            "knobs": knobs,
            "torch": torch.__version__,
            "trained": spec.trained,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = user_cache_dir() / "onnx" / f"{name}-{digest}.onnx"
    if not path.exists():
        module = spec.build(**knobs)
        write_atomic(
            path, export_torch(module, shape, input_dtype=spec.input_dtype).SerializeToString()
        )
        onnx.checker.check_model(str(path))
    return path


def example_graph(name: str, *, input_shape=None, **knobs) -> Graph:
    """The Graph of built-in example ``name`` at its default (or the given) input shape."""
    shape = parse_input_shape(input_shape)
    if isinstance(shape, dict):
        shape = next(iter(shape.values()))
    path = example_onnx_path(name, input_shape=shape, **knobs)
    return load_graph(path, source=f"example:{name}")
