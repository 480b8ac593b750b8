"""Core ML backend: .mlpackage conversion and weight compression (any OS); prediction refused off macOS."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from typer.testing import CliRunner

from edgefit.cli import main
from edgefit.cli._app import app
from edgefit.errors import EdgefitError
from edgefit.runtimes import RuntimeUnavailableError, TorchModel, get_runtime
from edgefit.runtimes._coreml import CoreMLOptions, bundle_bytes

rt = get_runtime("coreml")
needs_coremltools = pytest.mark.skipif(not rt.available().ok, reason=f"coreml: {rt.available().reason}")
linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal to predict off macOS")


def test_options_are_validated():
    for bad in ({"compress": "int3"}, {"nbits": 5}, {"deployment_target": "iOS9"}, {"compute_units": "GPU"},
                {"compress": "int4", "deployment_target": "iOS17"}):
        with pytest.raises(EdgefitError):
            CoreMLOptions(**bad)
    assert "W8A16" in rt.precisions()["int8-dynamic"]


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "coremltools" else real(name, *a))
    status = rt.available()
    assert not status.ok and "edgefit[coreml]" in status.reason


@linux_only
@needs_coremltools
def test_converts_here_but_runs_only_on_macos():
    assert rt.available().ok and "prediction needs macOS" in rt.available().reason
    status = rt.runnable()
    assert not status.ok and "needs macOS" in status.reason


@pytest.fixture(scope="module")
def kws():
    pytest.importorskip("torch")
    return TorchModel.from_example("ds-cnn-kws")


@needs_coremltools
@pytest.mark.slow
def test_int8_weights_make_a_smaller_mlpackage(kws, tmp_path):
    fp32 = rt.convert(kws, "fp32", tmp_path)
    int8 = rt.convert(kws, "int8", tmp_path)
    assert int8.path.name == "ds-cnn-kws.int8.mlpackage" and int8.path.is_dir()
    assert (int8.path / "Manifest.json").is_file()
    assert int8.metadata["size_bytes"] == bundle_bytes(int8.path) < fp32.metadata["size_bytes"] / 1.8
    assert "int8 linear symmetric per-channel" in int8.metadata["weights"]
    import coremltools as ct

    spec = ct.models.MLModel(str(int8.path), skip_model_load=True).get_spec()
    assert [i.name for i in spec.description.input] == ["x"] and [o.name for o in spec.description.output] == ["y"]
    if sys.platform != "darwin":
        assert int8.metadata["parity"] is None and "needs macOS" in int8.metadata["parity_note"]


@needs_coremltools
@pytest.mark.slow
@pytest.mark.parametrize("options, weights", [({"compress": "int4"}, "int4 linear symmetric per-block"),
                                              ({"compress": "palettize"}, "4-bit kmeans palette"),
                                              ({"compress": "palettize-uniform", "nbits": 2}, "2-bit uniform")])
def test_int4_and_palettized_weights(kws, tmp_path, options, weights):
    pytest.importorskip("sklearn")
    art = rt.convert(kws, "fp16", tmp_path, **options)
    assert weights in art.metadata["weights"] and art.metadata["options"]["compress"] == options["compress"]
    assert art.metadata["size_bytes"] < rt.convert(kws, "fp16", tmp_path / "plain").metadata["size_bytes"]


@needs_coremltools
def test_int8_with_extra_compression_is_refused(kws, tmp_path):
    with pytest.raises(EdgefitError, match="already compresses"):
        rt.convert(kws, "int8", tmp_path, compress="int4")


@linux_only
@needs_coremltools
@pytest.mark.slow
def test_bench_on_linux_exits_2_saying_it_needs_macos(tmp_path, capsys):
    from edgefit.runtimes.testing import tiny_model

    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model().SerializeToString())
    result = CliRunner().invoke(app, ["bench", str(path), "--runtime", "coreml", "--precision", "int8", "--json"])
    assert isinstance(result.exception, RuntimeUnavailableError) and result.exception.exit_code == 2
    assert "needs macOS" in str(result.exception)
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(path), "--runtime", "coreml"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the "converting …" progress lines
    assert last.startswith("edgefit: error: ") and "needs macOS" in last


@linux_only
@needs_coremltools
def test_measure_and_infer_refuse_before_starting_a_child(tmp_path):
    from edgefit.runtimes import Artifact

    art = Artifact(tmp_path / "m.mlpackage", "mlpackage", "fp32", "coreml", {})
    art.path.mkdir()
    for call in (lambda: rt.measure(art), lambda: rt.infer(art, {})):
        with pytest.raises(RuntimeUnavailableError, match="needs macOS") as info:
            call()
        assert info.value.exit_code == 2


def test_runtimes_list_shows_the_new_backends_with_availability():
    result = CliRunner().invoke(app, ["runtimes", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"litert", "coreml", "vela"} <= set(rows)
    for name in ("litert", "coreml", "vela"):
        assert isinstance(rows[name]["available"], bool) and rows[name]["reason"], rows[name]
    assert rows["vela"]["available"] == get_runtime("vela").available().ok
