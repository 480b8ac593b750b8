"""Each Numba kernel against its NumPy reference, compiled and under NUMBA_DISABLE_JIT=1."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgefit.estimate import Estimator, PlanBatch
from edgefit.estimate._kernels import estimate_numba
from edgefit.estimate._reference import estimate_reference
from edgefit.targets import list_targets

from toy_models import conv_chain


def random_batch(est: Estimator, n: int, seed: int = 0) -> PlanBatch:
    rng = np.random.default_rng(seed)
    k = len(est.table)
    supported = np.flatnonzero(est.hw.supported)
    return PlanBatch(dtype=rng.choice(supported, size=(n, k)).astype(np.int8),
                     sparse=rng.integers(0, 2, size=(n, k)).astype(np.uint8),
                     scale=rng.uniform(0.1, 1.0, size=(n, k)))


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=0, err_msg=key)


@pytest.mark.parametrize("target", [t.id for t in list_targets()])
def test_numba_equals_reference_on_random_plans(target):
    g = conv_chain(6, channels=32, size=32, depthwise_every=3)
    est = Estimator(g, next(t for t in list_targets() if t.id == target), profile=None)
    batch = random_batch(est, 300)
    assert_same(estimate_reference(batch, est.table, est.hw, record=5), estimate_numba(batch, est.table, est.hw, record=5))


def test_numba_equals_reference_without_jit():
    script = textwrap.dedent("""
        import numpy as np, sys
        sys.path.insert(0, %r)
        from toy_models import conv_chain
        from test_kernels import random_batch, assert_same
        from edgefit.estimate import Estimator
        from edgefit.estimate._kernels import estimate_numba
        from edgefit.estimate._reference import estimate_reference
        from edgefit.targets import load_target
        import numba
        assert numba.config.DISABLE_JIT
        est = Estimator(conv_chain(4, depthwise_every=2), load_target("ethos-u55"), profile=None)
        batch = random_batch(est, 20)
        assert_same(estimate_reference(batch, est.table, est.hw, 2), estimate_numba(batch, est.table, est.hw, 2))
        print("same")
    """) % os.path.dirname(__file__)
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "same"


def test_estimator_switch_to_numpy_reference(monkeypatch):
    est = Estimator(conv_chain(3), list_targets("orin")[0], profile=None)
    batch = random_batch(est, 50)
    numba_out = est.evaluate(batch)
    monkeypatch.setenv("EDGEFIT_ESTIMATOR", "numpy")
    assert_same(numba_out, est.evaluate(batch))
