"""Mark the conformance runs of the PyTorch-based converters slow: each converts a model (several seconds),
and the torch runtime compiles it with inductor before timing."""

from __future__ import annotations

import pytest

HEAVY_RUNTIMES = ("litert", "coreml", "vela", "torch")  # torch: inductor compiles in measure


def pytest_collection_modifyitems(items):
    for item in items:
        spec = getattr(item, "callspec", None)
        if item.name.startswith("test_runtime_conformance") and spec and spec.params.get("name") in HEAVY_RUNTIMES:
            item.add_marker(pytest.mark.slow)
