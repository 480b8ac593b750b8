"""TensorRT backend: what needs no TensorRT (flag mapping, cache key, availability reasons) runs everywhere;
building and timing an engine runs only where tensorrt imports and a CUDA device is visible."""

from __future__ import annotations

import sys
import types

import pytest

from edgefit.errors import EdgefitError
from edgefit.runtimes import RuntimeUnavailableError, UnsupportedPrecisionError, get_runtime
from edgefit.runtimes._tensorrt import BuildPlan, TrtOptions, build_plan, engine_cache_key
from edgefit.runtimes.testing import tiny_model


@pytest.mark.parametrize("precision, options, sets, clears, network, pre, calibrator", [
    ("fp32", {}, (), (), (), None, False),
    ("fp32", {"tf32": False}, (), ("TF32",), (), None, False),
    ("fp16", {}, ("FP16",), (), (), None, False),
    ("fp16", {"sparse_weights": True}, ("FP16", "SPARSE_WEIGHTS"), (), (), None, False),
    ("int8", {}, ("INT8", "FP16"), (), (), "qdq", False),
    ("int8", {"fp16_fallback": False}, ("INT8",), (), (), "qdq", False),
    ("int8", {"int8_mode": "implicit"}, ("INT8", "FP16"), (), (), None, True),
    ("fp16", {"strongly_typed": True}, (), (), ("STRONGLY_TYPED",), "fp16", False),
    ("int8", {"strongly_typed": True}, (), (), ("STRONGLY_TYPED",), "qdq", False),
    ("fp32", {"strongly_typed": True}, (), (), ("STRONGLY_TYPED",), None, False),
])
def test_options_map_to_builder_flags(precision, options, sets, clears, network, pre, calibrator):
    assert build_plan(precision, TrtOptions(**options)) == BuildPlan(sets, clears, network, pre, calibrator)


def test_flag_names_are_tensorrt_names():
    # The names are looked up on tensorrt.BuilderFlag / NetworkDefinitionCreationFlag at build time.
    documented = {"FP16", "INT8", "TF32", "SPARSE_WEIGHTS", "STRONGLY_TYPED"}
    for precision in ("fp32", "fp16", "int8"):
        for opts in (TrtOptions(), TrtOptions(tf32=False, sparse_weights=True), TrtOptions(strongly_typed=True)):
            plan = build_plan(precision, opts)
            assert set(plan.set_flags + plan.clear_flags + plan.network_flags) <= documented


def test_int8_dynamic_and_bad_options_are_refused():
    with pytest.raises(EdgefitError, match="int8-dynamic"):
        build_plan("int8-dynamic", TrtOptions())
    assert "no dynamic int8" in get_runtime("tensorrt").precisions()["int8-dynamic"]
    for bad in ({"int8_mode": "auto"}, {"optimization_level": 7}, {"workspace_bytes": 0},
                {"strongly_typed": True, "int8_mode": "implicit"}):
        with pytest.raises(EdgefitError):
            TrtOptions(**bad)


def test_engine_cache_key_covers_everything_that_changes_the_engine():
    base = dict(onnx_bytes=b"model", precision="fp16", trt_version="10.9.0.34", gpu_name="NVIDIA H100 80GB HBM3",
                options=TrtOptions())
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base) and len(key) == 64
    for change in (dict(onnx_bytes=b"model2"), dict(precision="int8"), dict(trt_version="10.10.0"),
                   dict(gpu_name="NVIDIA H200"), dict(options=TrtOptions(optimization_level=5))):
        assert engine_cache_key(**{**base, **change}) != key, change


def _without_tensorrt(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorrt" else real(name, *a))


def test_not_installed_says_how_to_install(monkeypatch, tmp_path):
    _without_tensorrt(monkeypatch)
    rt = get_runtime("tensorrt")
    status = rt.available()
    assert not status.ok and "'tensorrt' is not installed" in status.reason and "pypi.nvidia.com" in status.reason
    with pytest.raises(RuntimeUnavailableError, match="not installed") as info:
        rt.convert(tiny_model(), "fp16", tmp_path)
    assert info.value.exit_code == 2


def test_importable_tensorrt_without_cuda_names_the_device(monkeypatch):
    import importlib.machinery

    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.9.0.34"
    fake.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr("edgefit.runtimes._tensorrt._cuda_status", lambda: (False, "no CUDA device is visible"))
    status = get_runtime("tensorrt").available()
    assert (status.ok, status.reason, status.version) == (False, "no CUDA device is visible", "10.9.0.34")


def test_broken_tensorrt_install_is_reported(monkeypatch):
    import builtins
    import importlib.machinery
    import importlib.util

    real_find, real_import = importlib.util.find_spec, builtins.__import__
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: importlib.machinery.ModuleSpec(name, None)
                        if name == "tensorrt" else real_find(name, *a))

    def fake_import(name, *args, **kwargs):
        if name == "tensorrt":
            raise ImportError("libnvonnxparser.so.11: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    status = get_runtime("tensorrt").available()
    assert not status.ok and "libnvonnxparser" in status.reason


def test_unsupported_precision_error_before_building(monkeypatch, tmp_path):
    rt = get_runtime("tensorrt")
    from edgefit.runtimes import Availability

    monkeypatch.setattr(type(rt), "available", lambda self: Availability(True, "pretend"))
    with pytest.raises(UnsupportedPrecisionError, match="no dynamic int8"):
        rt.convert(tiny_model(), "int8-dynamic", tmp_path)


def test_implicit_int8_on_a_tensorrt_without_its_calibrator_is_one_clear_error(monkeypatch, tmp_path):
    """TensorRT removed the implicit-int8 entropy calibrator in newer releases: asking for
    int8_mode='implicit' there is an EdgefitError that names the fix, not an AttributeError from
    subclassing a class that is gone."""
    from edgefit.runtimes import _tensorrt_engine

    monkeypatch.setattr(_tensorrt_engine, "trt", types.SimpleNamespace(__version__="11.0"))
    with pytest.raises(EdgefitError, match="no implicit int8 calibrator") as err:
        _tensorrt_engine._make_calibrator([], tmp_path / "calibration.cache")
    assert "explicit" in err.value.fix


def _require_tensorrt():
    status = get_runtime("tensorrt").available()
    if not status.ok:
        pytest.skip(f"tensorrt: {status.reason}")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_builds_caches_and_times_on_gpu(precision, tmp_path, monkeypatch):
    _require_tensorrt()
    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(tmp_path / "cache"))
    rt = get_runtime("tensorrt")
    first = rt.convert(tiny_model(), precision, tmp_path / "a")
    again = rt.convert(tiny_model(), precision, tmp_path / "b")
    assert not first.metadata["cache_hit"] and again.metadata["cache_hit"]
    assert first.metadata["cache_key"] == again.metadata["cache_key"]
    assert first.metadata["parity"]["top1_agreement"] == 1.0
    t = rt.measure(first, warmup=5, runs=50, min_runs=50)
    assert 0 < t.p50 <= t.p99 <= t.max and t.environment["runtime"] == "tensorrt"
