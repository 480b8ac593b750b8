"""Model intake for the commands that take MODEL or --example.

Kept apart from :mod:`edgefit.cli._common` because it imports :mod:`edgefit.graph` (and with it
onnx, about 0.6 s of CPU): only the commands that read a model load this module, so `edgefit
targets list` and `edgefit --version` never pay for it.
"""

from __future__ import annotations

from pathlib import Path

from edgefit.errors import EdgefitError
from edgefit.graph import Graph, load_graph
from edgefit.graph._examples import example_graph


def resolve_model(
    model: Path | None,
    example: str | None,
    input_shape: str | None,
    *,
    default_example: str | None = None,
) -> Graph:
    """MODEL path or --example → Graph (examples are exported once and cached)."""
    if model is not None and example is not None:
        raise EdgefitError(
            "give either MODEL or --example, not both", where="MODEL", fix="drop one of them"
        )
    if model is None:
        example = example or default_example
        if example is None:
            raise EdgefitError(
                "no model given", where="MODEL", fix="pass an .onnx file or --example NAME"
            )
        return example_graph(example, input_shape=input_shape)
    return load_graph(model, input_shape)
