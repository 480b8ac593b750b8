"""Measurement runs in a child process: crashes and hangs become MeasurementError, edgefit keeps running."""

from __future__ import annotations

import os
import time

import pytest

from edgefit.errors import EdgefitError
from edgefit.runtimes import MeasurementError, MeasureSettings, get_runtime
from edgefit.runtimes._child import FAULT_ENV
from edgefit.runtimes.testing import tiny_model

QUICK = dict(warmup=1, runs=5, min_runs=5, threads=1)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return get_runtime("onnxruntime").convert(tiny_model(), "fp32", tmp_path_factory.mktemp("art"))


@pytest.mark.parametrize("fault, expected", [
    ("abort", r"killed by signal SIGABRT \(-6\)"),
    ("segv", r"killed by signal SIGSEGV \(-11\)"),
    ("exit", r"exited with status 3"),
])
def test_child_crash_is_reported_and_survived(artifact, monkeypatch, fault, expected):
    rt = get_runtime("onnxruntime")
    monkeypatch.setenv(FAULT_ENV, fault)
    with pytest.raises(MeasurementError, match=expected) as info:
        rt.measure(artifact, timeout_s=60, **QUICK)
    err = info.value
    assert err.returncode == {"abort": -6, "segv": -11, "exit": 3}[fault]
    assert err.exit_code == 1 and isinstance(err, EdgefitError)
    monkeypatch.delenv(FAULT_ENV)
    assert rt.measure(artifact, timeout_s=60, **QUICK).n_runs >= 5  # this process is fine


def test_python_error_in_child_carries_its_traceback(artifact, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "raise")
    with pytest.raises(MeasurementError, match="RuntimeError: deliberate failure") as info:
        get_runtime("onnxruntime").measure(artifact, timeout_s=60, **QUICK)
    assert "Traceback" in info.value.stderr_tail


def test_hanging_child_is_killed_at_the_timeout(artifact, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "hang")
    start = time.monotonic()
    with pytest.raises(MeasurementError, match="timed out after 4 s") as info:
        get_runtime("onnxruntime").measure(artifact, timeout_s=4, **QUICK)
    assert info.value.returncode is None
    assert time.monotonic() - start < 20


def test_run_count_rule_extends_to_min_runs_within_budget(artifact):
    rt = get_runtime("onnxruntime")
    assert rt.measure(artifact, warmup=0, runs=3, min_runs=50, threads=1).n_runs == 50
    assert rt.measure(artifact, warmup=0, runs=30, min_runs=5, threads=1).n_runs == 30  # runs is never cut short
    # budget exhausted at once: stop right after `runs`
    assert rt.measure(artifact, warmup=0, runs=4, min_runs=10**6, budget_s=1e-9, threads=1).n_runs == 4


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU pinning needs os.sched_setaffinity (Linux)")
def test_pinning_is_applied_and_reported(artifact):
    cpu = sorted(os.sched_getaffinity(0))[-1]
    t = get_runtime("onnxruntime").measure(artifact, cpus=(cpu,), threads=None, warmup=1, runs=5, min_runs=5)
    assert t.environment["cpus"] == [cpu] and t.environment["threads"] == 1  # None: one per pinned CPU


def test_peak_rss_is_the_childs_own(artifact):
    ballast = bytearray(300 * 1024 * 1024)  # a large parent must not inflate the child's figure
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    t = get_runtime("onnxruntime").measure(artifact, **QUICK)
    assert 10 * 2**20 < t.peak_rss_bytes < 290 * 2**20
    del ballast


@pytest.mark.parametrize("bad", [dict(runs=0), dict(warmup=-1), dict(threads=0), dict(cpus=()), dict(cpus=(4096,)),
                                 dict(timeout_s=0)])
def test_settings_are_validated(bad):
    with pytest.raises(EdgefitError):
        MeasureSettings(**bad)


def test_foreign_or_missing_artifact_is_a_usage_error(artifact, tmp_path):
    from dataclasses import replace

    rt = get_runtime("onnxruntime")
    with pytest.raises(EdgefitError, match="made for tensorrt"):
        rt.measure(replace(artifact, runtime="tensorrt"), **QUICK)
    with pytest.raises(EdgefitError, match="not found"):
        rt.measure(replace(artifact, path=tmp_path / "gone.onnx"), **QUICK)
