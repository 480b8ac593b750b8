"""LiteRT backend: litert-torch fp32/int8 conversion, LiteRT timing in the child, parity, int8 I/O for the caller."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgefit.errors import EdgefitError
from edgefit.runtimes import TorchModel, UnsupportedPrecisionError, get_runtime
from edgefit.runtimes._litert import LiteRTOptions

needs_litert = pytest.mark.skipif(not get_runtime("litert").available().ok,
                                  reason=f"litert: {get_runtime('litert').available().reason}")


def test_options_and_precisions_are_explicit():
    rt = get_runtime("litert")
    assert rt.precisions()["fp32"] is None and rt.precisions()["int8"] is None
    assert "fp16" in rt.precisions()["fp16"]
    with pytest.raises(EdgefitError, match="≥ 1"):
        LiteRTOptions(calibration_samples=0)
    with pytest.raises(EdgefitError, match="unknown litert option"):
        rt.options(threads=2)


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "litert_torch" else real(name, *a))
    status = get_runtime("litert").available()
    assert not status.ok and "litert-torch" in status.reason and "edgefit[litert-convert]" in status.reason


@pytest.fixture(scope="module")
def kws():
    pytest.importorskip("torch")
    return TorchModel.from_example("ds-cnn-kws")


@needs_litert
@pytest.mark.slow
def test_fp32_and_int8_convert_measure_and_keep_parity(kws, tmp_path):
    rt = get_runtime("litert")
    fp32 = rt.convert(kws, "fp32", tmp_path)
    int8 = rt.convert(kws, "int8", tmp_path)
    assert fp32.path.name == "ds-cnn-kws.fp32.tflite" and int8.path.name == "ds-cnn-kws.int8.tflite"
    assert int8.path.stat().st_size < fp32.path.stat().st_size / 1.5  # int8 weights
    p32, p8 = fp32.metadata["parity"], int8.metadata["parity"]
    assert p32["sqnr_db"] > 100 and p32["top1_agreement"] == 1.0
    assert p8["sqnr_db"] > 25 and p8["top1_agreement"] >= 0.75, p8
    assert "PT2E" in int8.metadata["recipe"] and "random" in int8.metadata["warning"]
    assert int8.metadata["parity_reference"].startswith("the fp32 torch module")
    for art in (fp32, int8):
        t = rt.measure(art, warmup=2, runs=30, min_runs=30, threads=1, timeout_s=120)
        assert t.provenance.startswith("measured on litert ") and t.provenance.endswith("1 thread")
        assert 0 < t.p50 < 0.05 and t.environment["timed"].startswith("Interpreter.invoke()")


@needs_litert
@pytest.mark.slow
def test_int8_model_takes_and_returns_float_for_the_caller(kws, tmp_path):
    rt = get_runtime("litert")
    art = rt.convert(kws, "int8", tmp_path, calibration=[{"x": kws.example_inputs[0].numpy()}] * 2)
    from ai_edge_litert.interpreter import Interpreter

    raw = Interpreter(model_path=str(art.path))
    assert raw.get_input_details()[0]["dtype"] == np.int8 and raw.get_output_details()[0]["dtype"] == np.int8
    x = np.random.default_rng(0).standard_normal((1, 1, 49, 10)).astype(np.float32)
    out = rt.infer(art, {"x": x})
    assert out["y"].dtype == np.float32 and out["y"].shape == (1, 12)
    assert art.metadata["parity_inputs"] == "2 calibration inputs (in-sample)"
    assert art.metadata["calibration"].startswith("2 samples: given")


@needs_litert
@pytest.mark.slow
def test_channel_last_io_gives_an_nhwc_tflite_with_the_same_outputs(tmp_path):
    import torch

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))
    tm = TorchModel(module, torch.randn(1, 3, 12, 12))
    rt = get_runtime("litert")
    art = rt.convert(tm, "fp32", tmp_path, channel_last_io=True)
    from ai_edge_litert.interpreter import Interpreter

    raw = Interpreter(model_path=str(art.path))
    assert list(raw.get_input_details()[0]["shape"]) == [1, 12, 12, 3]
    assert art.metadata["io"]["channel_last"] == {"inputs": ["x"], "outputs": ["y"]}
    assert art.metadata["parity"]["sqnr_db"] > 100  # the caller still speaks NCHW
    ops = {op["op_name"] for op in raw._get_ops_details()}
    assert "TRANSPOSE" not in ops, ops


@needs_litert
def test_sources_it_cannot_take_are_clear_errors(tmp_path):
    import torch

    rt = get_runtime("litert")
    with pytest.raises(EdgefitError, match="no input shape"):
        rt.convert(torch.nn.Linear(2, 2), "fp32", tmp_path)
    with pytest.raises(UnsupportedPrecisionError, match="fp16"):
        rt.convert(torch.nn.Linear(2, 2), "fp16", tmp_path)
