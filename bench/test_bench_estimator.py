"""Estimator throughput: 10,000 plans × 100 kernels, Numba vs the NumPy reference (ratios, not times).

Acceptance (issue #3): the Numba estimator (parallel over plans, as shipped) ≥ 10× the NumPy reference,
and ≥ 5e7 layer·plans per second on one core after warm-up, with results equal to the reference to
1e-9 relative. The one-core speed-up is printed as well.
"""

from __future__ import annotations

import time

import numba
import numpy as np
import pytest

from edgefit.estimate import Estimator, PlanBatch
from edgefit.estimate._kernels import estimate_numba
from edgefit.estimate._reference import estimate_reference
from edgefit.graph import load_graph
from edgefit.targets import load_target

N_PLANS = 10_000


@pytest.fixture(scope="module")
def workload(chain100):
    est = Estimator(load_graph(chain100), load_target("orin"), profile=None)
    assert len(est.table) == 100
    rng = np.random.default_rng(0)
    supported = np.flatnonzero(est.hw.supported)
    batch = PlanBatch(dtype=rng.choice(supported, size=(N_PLANS, 100)).astype(np.int8),
                      sparse=rng.integers(0, 2, size=(N_PLANS, 100)).astype(np.uint8),
                      scale=rng.uniform(0.25, 1.0, size=(N_PLANS, 100)))
    return est, batch


def _best_of(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_numpy_reference(benchmark, workload):
    est, batch = workload
    benchmark.pedantic(estimate_reference, args=(batch, est.table, est.hw), rounds=5, iterations=1)


def test_numba_one_core(benchmark, workload):
    est, batch = workload
    numba.set_num_threads(1)
    try:
        estimate_numba(batch, est.table, est.hw)  # warm-up (compile or cache load)
        benchmark.pedantic(estimate_numba, args=(batch, est.table, est.hw), rounds=10, iterations=1)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_numba_speedup_and_throughput(workload):
    est, batch = workload
    reference = estimate_reference(batch, est.table, est.hw)
    fast = estimate_numba(batch, est.table, est.hw)
    for key in reference:
        np.testing.assert_allclose(fast[key], reference[key], rtol=1e-9, atol=0)
    t_numpy = _best_of(lambda: estimate_reference(batch, est.table, est.hw), 5)
    t_parallel = _best_of(lambda: estimate_numba(batch, est.table, est.hw), 10)
    numba.set_num_threads(1)
    try:
        t_one = _best_of(lambda: estimate_numba(batch, est.table, est.hw), 10)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    throughput = N_PLANS * 100 / t_one
    print(f"\nnumpy {t_numpy * 1e3:.1f} ms; numba {numba.config.NUMBA_NUM_THREADS} threads {t_parallel * 1e3:.2f} ms "
          f"({t_numpy / t_parallel:.1f}×); numba 1 core {t_one * 1e3:.2f} ms ({t_numpy / t_one:.1f}×, "
          f"{throughput:.3g} layer·plans/s)")
    assert t_numpy / t_parallel >= 10
    assert throughput >= 5e7


def test_graph_intake(benchmark, chain100):
    benchmark.pedantic(load_graph, args=(chain100,), rounds=5, iterations=1)
