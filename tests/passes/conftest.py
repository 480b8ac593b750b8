"""Shared fixtures: a private cache, the digits data at 16×16 and a small trained digits-cnn teacher."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Never read or write the user's real cache from tests."""
    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def digits():
    """The digits splits at 16×16 (4× cheaper than the example's 32×32; the net is resolution-free)."""
    from edgefit.examples import load_digits_splits

    return load_digits_splits(16)


@pytest.fixture(scope="session")
def teacher(digits):
    """digits-cnn at width 0.5, trained 3 epochs (about 2 s; ~98 % test accuracy). One thread: on a
    shared 2-core machine a contended 2-thread run is several times slower."""
    from edgefit.examples import TrainRecipe, get_example, train_digits_cnn

    model = get_example("digits-cnn").build(width=0.5, pretrained=False)
    train_digits_cnn(model, digits, recipe=TrainRecipe(epochs=3, max_shift=1), threads=1, progress=False)
    return model.eval()
