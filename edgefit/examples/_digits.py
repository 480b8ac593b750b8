"""The built-in trained example: a small VGG-style CNN for the shipped digits data.

Dense 3×3 convolutions on purpose (where int8 pays off), three stages of two conv-BN-act layers
with 32 / 64 / 128 channels, max-pool after each stage, global average pool, linear head: about 38
M MACs and 0.29 M parameters at 1×1×32×32. Trained on first use (20-30 s on two idle CPU cores),
then loaded from the cache.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from edgefit.examples._cache import cache_key, examples_cache_dir, load_state_dict, save_state_dict
from edgefit.examples._data import SPLIT_FRACTIONS, SPLIT_SEED, data_sha256, load_digits_splits
from edgefit.examples._layers import ConvBNAct, init_weights, kept, make_divisible
from edgefit.examples._registry import Knobs
from edgefit.examples._train import TrainRecipe, train_digits_cnn

ARCH_VERSION = 1  # bump when DigitsCNN's layout changes: old cached weights no longer apply
RECIPE = TrainRecipe()


class DigitsCNN(nn.Module):
    """VGG-style digits classifier; ``depth`` keeps 1 or 2 convs per stage, ``width`` scales
    channels.

    >>> DigitsCNN()(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 10])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", num_classes: int = 10
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in (32, 64, 128):
            c_out = make_divisible(c * width)
            for _ in range(kept(2, depth)):
                layers.append(ConvBNAct(c_in, c_out, 3, act=act))
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def weights_path(
    knobs: Knobs, recipe: TrainRecipe | None = None, threads: int | None = None
) -> Path:
    """Cache file of the trained weights: the name hashes the architecture knobs, the training
    recipe, the data file's checksum and a fixed training thread count if one was asked for (torch
    reduces in another order on 1 and 2 threads: the weights differ), so changing any of them
    trains anew."""
    payload = {
        "example": "digits-cnn",
        "arch_version": ARCH_VERSION,
        "knobs": knobs.to_dict(),
        "recipe": asdict(recipe or RECIPE),
        "data_sha256": data_sha256(),
        "split": [list(SPLIT_FRACTIONS), SPLIT_SEED],
        # the initial weights come from the recipe's seed (weights cached before were drawn from
        # the process's generator, a different draw in every process)
        "init": "recipe-seed",
    }
    if threads is not None:
        payload["threads"] = threads
    return examples_cache_dir() / f"digits-cnn-{cache_key(payload)}.pt"


def _announce(path: Path) -> None:
    if sys.stderr.isatty():
        print(
            f"digits-cnn: no cached weights; training once (about 30 s on 2 CPU cores) → {path}",
            file=sys.stderr,
        )


def build_digits_cnn(
    knobs: Knobs, pretrained: bool, progress: bool | None = None, threads: int | None = None
) -> DigitsCNN:
    """The digits CNN for ``knobs``; with ``pretrained``, the trained weights (loaded from the
    cache, or trained now and cached). ``threads`` fixes the training thread count, so the weights
    are the same whatever the machine's load when they were trained (the default,
    ``default_threads()``, drops to 1 thread on a busy machine)."""
    model = DigitsCNN(knobs.width, knobs.depth, knobs.activation)
    if not pretrained:
        return model
    path = weights_path(knobs, threads=threads)
    state = load_state_dict(path)
    if state is not None:
        try:
            model.load_state_dict(state)
            return model.eval()
        except RuntimeError:  # a stale file under a colliding name: retrain and overwrite it
            pass
    # the initial weights drawn from the recipe's seed, not from the process's generator (torch
    # seeds that from the OS: two fresh processes trained the cascade example's tiers 2.9 apart
    # in weights, and its acceptance test passed in one fresh-clone CI run and failed in the next)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE.seed)
        model = DigitsCNN(knobs.width, knobs.depth, knobs.activation)
    _announce(path)
    train_digits_cnn(
        model,
        load_digits_splits(knobs.resolution),
        recipe=RECIPE,
        progress=progress,
        threads=threads,
    )
    save_state_dict(model.state_dict(), path)
    return model.eval()
