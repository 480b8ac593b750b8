"""A torchao candidate end to end on host-cpu: materialized as a .pt2, scored and measured on the torch runtime
(slow: torch.compile in the measurement child)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_tiny_transformer_torchao_int8_is_scored_and_measured_on_torch(tmp_path, monkeypatch):
    pytest.importorskip("torchao")
    from edgefit.search import Choice, resolve_base
    from edgefit.search._candidate import RunSettings, reference_outputs, run_candidate
    from edgefit.search._engine import _base_onnx
    from edgefit.targets import load_target

    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(tmp_path / "cache"))
    base = resolve_base(None, "tiny-transformer", None, None, None, None)
    settings = RunSettings(target=load_target("host-cpu"), power_mode=None, measure_runtime="onnxruntime")
    reference = reference_outputs(base, _base_onnx(base, settings, tmp_path), 1)
    record = run_candidate(base, Choice(precision="torchao-int8-dynamic"), settings, tmp_path, reference, None)

    assert record["status"] == "done" and record["plan"]["torchao"]["config"] == "int8-dynamic"
    artifact = record["artifact"]
    assert artifact["runtime"] == "torch" and artifact["format"] == "torch-export"
    assert Path(artifact["path"]).name == "model.pt2" and Path(artifact["path"]).is_file()
    assert Path(record["onnx"]).name == "model.fp32.onnx"  # the estimator's graph
    acc = record["accuracy"]
    assert acc["source"].startswith("measured (torch, torchao int8-dynamic")
    assert acc["kind"] == "agreement" and acc["value"] >= 0.9 and acc["sqnr_db"] > 25 and "fidelity" in acc["label"]
    lat = record["latency"]
    assert lat["source"] == "measured" and lat["runtime"] == "torch" and lat["threads"] == 1
    assert 0 < lat["p50_s"] <= lat["p99_s"] < 1 and lat["n_runs"] >= 50
    est = record["estimate"]
    assert est["source"] in ("calibrated", "datasheet") and "fp32 ONNX graph" in est["note"]
    assert record["change_kinds"] == ["quantization"]
    assert all(c["source"] for c in record["checks"]) and any(c["source"] == "measured" for c in record["checks"])
    assert record["materialize"]["artifact_runtime"] == "torch"
