"""edgefit optimize end to end on device targets, whose latency is estimated (slow: materializes and
trains real candidates). Nothing here times the host, so it runs in the parallel lane; the host-cpu
runs, which measure and compare timings, are in test_optimize.py."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_hearable_marks_candidates_over_budget_with_the_reason(run_cli, run_ok, tmp_path):
    code, out, err = run_cli("optimize", "--target", "hearable", "--example", "mobilenetv2", "--trials", "2",
                              "--out", str(tmp_path), "--json", "-q")
    assert code == 3 and "no candidate qualified" in err  # documented exit code; results still written
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["rejected_at_estimate"]
    reasons = " ".join(r for rej in res["rejected_at_estimate"] for r in rej["reasons"])
    assert "memory" in reasons or "power" in reasons or "energy" in reasons
    measured = res["candidates"]
    assert measured and all(not c["fits"] for c in measured if c["status"] == "done")
    assert res["selection"]["best_found"] is not None


def test_winner_is_exported_in_the_targets_own_formats(run_ok, tmp_path):
    res = run_ok("optimize", "--target", "glasses", "--trials", "2", "--out", str(tmp_path), "--json", "-q")
    exports = {e["runtime"]: e for e in res["exports"]}
    assert set(exports) == {"litert", "coreml"}  # the glasses target's native runtimes (onnxruntime: model.onnx)
    lite = exports["litert"]
    assert lite["status"] == "written" and lite["path"].endswith(".tflite")
    assert (tmp_path / "export" / "litert").is_dir() and lite["parity"]["top1_agreement"] >= 0.99
    assert exports["coreml"]["status"] in ("written", "skipped")
    if exports["coreml"]["status"] == "skipped":
        assert exports["coreml"]["reason"]
