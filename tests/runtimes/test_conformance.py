"""Every registered runtime runs the library's conformance suite (edgefit.runtimes.testing).

A check is skipped only when the runtime itself says it cannot run here (missing optional package or
device), and the skip carries that reason.
"""

from __future__ import annotations

import pytest

from edgefit.runtimes import get_runtime, runtime_names
from edgefit.runtimes.testing import CHECKS, ConformanceSkip


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("name", runtime_names())
def test_runtime_conformance(name, check, tmp_path):
    try:
        CHECKS[check](get_runtime(name), tmp_path)
    except ConformanceSkip as skip:
        pytest.skip(str(skip))


def test_every_registered_runtime_is_covered():
    assert {"onnxruntime", "tensorrt"} <= set(runtime_names())
