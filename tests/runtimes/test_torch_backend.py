"""torch backend: torch.export .pt2 in fp32/fp16/torchao int8-dynamic, parity, timing under torch.compile in the
child, and the listing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgefit.errors import EdgefitError
from edgefit.runtimes import TorchModel, UnsupportedPrecisionError, get_runtime, list_runtimes
from edgefit.runtimes._torch import TorchOptions

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 16))
    return TorchModel(module, torch.randn(4, 64))


def test_options_and_precisions_are_explicit():
    rt = get_runtime("torch")
    assert rt.precisions()["fp32"] is None and "int8-dynamic" in rt.precisions()["int8"]
    with pytest.raises(EdgefitError, match="torchao_config"):
        TorchOptions(torchao_config="int4-weight")
    with pytest.raises(EdgefitError, match="unknown torch option"):
        rt.options(threads=2)
    with pytest.raises(UnsupportedPrecisionError, match="int8"):
        rt.convert(TorchModel(torch.nn.Linear(2, 2), torch.zeros(1, 2)), "int8", "unused")


def test_missing_torch_and_torchao_say_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a))
    assert "edgefit[torchao]" in get_runtime("torch").precisions()["int8-dynamic"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    status = get_runtime("torch").available()
    assert not status.ok and "'torch'" in status.reason and "pip install" in status.reason


def test_runtimes_list_shows_torch():
    rows = {r.name: r for r in list_runtimes()}
    assert rows["torch"].availability.ok and "torch.export" in rows["torch"].description


@pytest.mark.parametrize("precision, min_sqnr", [("fp32", 100.0), ("fp16", 40.0), ("int8-dynamic", 25.0)])
def test_convert_round_trips_with_parity(mlp, tmp_path, precision, min_sqnr):
    if precision == "int8-dynamic":
        pytest.importorskip("torchao")
    rt = get_runtime("torch")
    art = rt.convert(mlp, precision, tmp_path)
    assert art.path.suffix == ".pt2" and art.format == "torch-export" and art.metadata["options"]["compile"]
    p = art.metadata["parity"]
    assert p["sqnr_db"] == float("inf") or p["sqnr_db"] > min_sqnr, p
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    out = rt.infer(art, {"x": x})
    assert set(out) == {"y"} and out["y"].shape == (4, 16) and out["y"].dtype == np.float32


def test_torchao_int8_is_measured_compiled_in_the_child(mlp, tmp_path):
    pytest.importorskip("torchao")
    rt = get_runtime("torch")
    art = rt.convert(mlp, "int8-dynamic", tmp_path, torchao_config="int8-weight")
    assert "Int8WeightOnlyConfig" in art.metadata["recipe"]
    t = rt.measure(art, warmup=2, runs=10, min_runs=10, threads=1, timeout_s=300)
    env = t.environment
    assert env["runtime"] == "torch" and env["compile"].startswith("torch.compile") and env["compile_s"] > 0
    assert env["precision"] == "int8-dynamic" and t.provenance.startswith("measured on torch ")
    assert 0 < t.p50 <= t.p99 < 1


def test_a_foreign_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a program")
    from edgefit.runtimes._torch import load_program

    with pytest.raises(EdgefitError, match="cannot load the exported program"):
        load_program(bad)


def test_torchao_import_is_silent():
    import subprocess
    import sys

    pytest.importorskip("torchao")
    code = "from edgefit.runtimes._torch import import_torchao; import_torchao(); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n" and out.stderr == "", out.stderr
