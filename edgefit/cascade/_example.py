"""The built-in cascade example: three digits classifiers trained on real data, as three tiers.

`edgefit cascade --example digits` plans a glasses-style deployment on the UCI digits set shipped
with edgefit: tier 1 is a 6k-parameter CNN that looks at a 16×16 view (95% accurate alone), tier 2
a 73k-parameter CNN at 32×32 (99%), both on the device; the cloud tier is a 288k-parameter CNN
behind a stated 800 ms round trip and $0.0004 per request. Every tier takes the raw 8×8 pixels
(what the sensor pipeline hands over) and resizes and normalizes inside its graph, exactly as its
training data was prepared, so one input feeds every tier.

The data a cascade sees is the digits split's val + test parts (719 samples), which no model
trained on; the cascade splits them again (calibrate / select / report). Models train once (seconds
each) and are cached under the user cache folder with their ONNX exports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefit._io import ensure_dir, write_atomic
from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir
from edgefit.cascade._types import Objective
from edgefit.errors import EdgefitError
from edgefit.examples import get_example
from edgefit.examples._data import digits_normalization, load_digits_pixel_splits

if TYPE_CHECKING:  # torch and onnx load when the example is built
    import onnx
    import torch

    from edgefit.examples import _digits
    from edgefit.graph import _torch as graph_torch
else:
    onnx, torch = lazy_import("onnx", "torch")
    _digits, graph_torch = lazy_import("edgefit.examples._digits", "edgefit.graph._torch")

EXAMPLES = ("digits",)
EXAMPLE_VERSION = 2
# (name, width, depth, resolution): the resolutions are where each size is most accurate
TIERS = (("tier1", 0.25, 0.5, 16), ("tier2", 0.5, 1.0, 32), ("cloud", 1.0, 1.0, 32))
CLOUD = "latency=800ms,usd=0.0004"
LATENCY_BUDGET_S = 0.100  # "answer in 100 ms on the glasses", the product requirement


@dataclass(frozen=True)
class Example:
    """What the example hands to :func:`edgefit.cascade.cascade`."""

    tiers: tuple[str, ...]
    data: Path
    objective: Objective
    description: str


def _pixel_model(net, resolution: int, mean: float, std: float):
    """``net`` behind the resize and normalization its training data went through (8×8 → R×R
    bilinear, half-pixel centres, then the training split's mean and std)."""

    class FromPixels(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if resolution != x.shape[-1]:
                x = torch.nn.functional.interpolate(
                    x, size=(resolution, resolution), mode="bilinear", align_corners=False
                )
            return self.net((x - mean) / std)

    return FromPixels().eval()


def build_example(name: str, target: str = "glasses", *, folder: Path | None = None) -> Example:
    """Train (or load) the three tiers, export them to ONNX and write the evaluation data."""
    if name not in EXAMPLES:
        raise EdgefitError(
            f"unknown cascade example '{name}'",
            where="--example",
            fix=f"use one of {', '.join(EXAMPLES)}",
        )
    folder = ensure_dir(folder or user_cache_dir() / "cascade-example" / f"v{EXAMPLE_VERSION}")
    defaults = get_example("digits-cnn").defaults
    paths = {}
    for tier, width, depth, resolution in TIERS:
        path = folder / f"digits-{tier}.onnx"
        if not path.is_file():
            knobs = replace(defaults, width=width, depth=depth, resolution=resolution)
            # one training thread whatever the load: the tiers' weights, and so the cascade's
            # figures, do not depend on what else the machine was doing (2 threads differ)
            net = _digits.build_digits_cnn(knobs, True, progress=False, threads=1)
            model = graph_torch.export_torch(
                _pixel_model(net, resolution, *digits_normalization(resolution)), (1, 1, 8, 8)
            )
            write_atomic(path, model.SerializeToString())
        onnx.checker.check_model(str(path))
        paths[tier] = path
    data = folder / "digits-heldout.npz"
    if not data.is_file():
        splits = load_digits_pixel_splits()
        x = np.concatenate([splits["val"][0], splits["test"][0]])
        y = np.concatenate([splits["val"][1], splits["test"][1]])
        tmp = folder / "digits-heldout.tmp.npz"
        np.savez(tmp, x=x, y=y)
        tmp.replace(data)
    tiers = (
        f"{paths['tier1']}@{target}",
        f"{paths['tier2']}@{target}",
        f"cloud:{CLOUD},model={paths['cloud']}",
    )
    return Example(
        tiers,
        data,
        Objective("max-accuracy", latency_budget_s=LATENCY_BUDGET_S),
        f"digits: two on-device CNN tiers on {target} and a cloud CNN ({CLOUD}); "
        f"maximize accuracy at ≤ {LATENCY_BUDGET_S * 1e3:g} ms expected latency",
    )
