"""The library does what the CLI does: `edgefit.optimize` / `edgefit.check` from Python give the same
pick, results.json and files as `edgefit optimize` / `edgefit check`, and bad input is one
EdgefitError line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgefit
from edgefit.errors import EdgefitError
from edgefit.search import OptimizeConfig, OptimizeResult, Selection

DATA = Path(__file__).resolve().parents[1] / "report" / "data"


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """The runtime conformance model (a 2-conv classifier): cheap candidates, each measured."""
    import onnx

    from edgefit.runtimes.testing import tiny_model

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


@pytest.mark.slow
def test_optimize_from_python_matches_the_cli(tiny_onnx, tmp_path, run_cli):
    out = tmp_path / "run"
    # sqnr is set only in the config: the scores must follow it (they once read a field the CLI set)
    config = OptimizeConfig(trials=2, out_dir=out, metric="sqnr", max_drop=20)
    result = edgefit.optimize(str(tiny_onnx), "orin", config=config)

    assert isinstance(result, OptimizeResult) and result.ok and result.exit_code == 0
    res = result.to_dict()
    assert res == json.loads((out / "results.json").read_text())  # its serialization is the file
    assert res["config"]["metric"] == "sqnr" and res["target"]["id"] == "jetson-agx-orin-64gb"
    done = [c for c in res["candidates"] if c["status"] == "done"]
    assert done and all(c["accuracy"]["kind"] == "sqnr" for c in done)
    assert result.chosen is not None and result.chosen.key == res["selection"]["winner"]
    assert result.chosen.accuracy_kind == "sqnr" and Path(result.chosen.path).is_file()
    assert result.frontier == tuple(res["frontier"]) and result.chosen.key in result.frontier
    assert result.selection == Selection.from_dict(res["selection"])
    assert result.notes == tuple(res["notes"])
    for name in ("results", "model", "report", "html"):
        assert Path(result.files[name]).is_file(), name

    # the CLI with the same arguments, in the same folder: every candidate reused, the same outcome
    code, stdout, err = run_cli("optimize", str(tiny_onnx), "--target", "orin", "--trials", "2",
                                "--metric", "sqnr", "--max-drop", "20", "--out", str(out), "--json",
                                "-q")
    assert code == 0, err[-2000:]
    cli = json.loads(stdout)
    assert set(cli) == set(res) | {"files"} and set(cli["files"]) == set(result.files)
    assert cli["counts"]["reused"] == cli["counts"]["materialized"] == res["counts"]["materialized"]
    for block in ("schema", "target", "model", "data", "config", "baseline", "frontier",
                  "rejected_at_estimate"):
        assert cli[block] == res[block], block
    assert {c["key"]: c["accuracy"] for c in cli["candidates"]} == \
        {c["key"]: c["accuracy"] for c in res["candidates"]}
    ties = {k for r in (cli, res) for t in r["selection"].get("protocol", {}).get("ties", [])
            for k in (t["key"], t["with"])}
    winner = cli["selection"]["winner"]
    assert winner == result.chosen.key or {winner, result.chosen.key} <= ties
    assert OptimizeResult.load(out / "results.json").chosen.key == winner


def test_bad_input_is_one_edgefit_error_line_before_any_work(tmp_path):
    out = tmp_path / "never"
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 1, 16, 16), np.float32), y=np.zeros(4, np.int64))
    cases = [
        (lambda: OptimizeConfig(metric="f1"), "unknown metric 'f1'"),
        (lambda: OptimizeConfig(max_drop=1.5), "--max-drop"),
        (lambda: edgefit.optimize("no-such-net", config=OptimizeConfig(out_dir=out)),
         "unknown example 'no-such-net'"),
        (lambda: edgefit.optimize(None, "orin", config=OptimizeConfig(target="glasses", out_dir=out)),
         "two targets given"),
        (lambda: edgefit.optimize(None, "orn", config=OptimizeConfig(out_dir=out)), "unknown target"),
        (lambda: edgefit.optimize(np.zeros(3), config=OptimizeConfig(out_dir=out)),
         "cannot optimize a ndarray"),
        (lambda: edgefit.optimize(None, data=bad, config=OptimizeConfig(out_dir=out)),
         "per-sample shape"),
        (lambda: edgefit.optimize("fc-autoencoder", config=OptimizeConfig(out_dir=out, metric="top1")),
         "needs labelled data"),
        (lambda: edgefit.check("ds-cnn-kws", max_regression=-1), "--max-regression"),
        (lambda: edgefit.check(None), "no model given"),
    ]
    for call, fragment in cases:
        with pytest.raises(EdgefitError) as info:
            call()
        line = str(info.value)
        assert fragment in line and "\n" not in line, line
    assert not out.exists()  # refused before anything was written


def test_a_results_json_from_an_earlier_edgefit_loads_as_a_result():
    path = DATA / "results-host-cpu.json"
    result = OptimizeResult.load(path)
    res = json.loads(path.read_text())
    assert result.to_dict() == res  # nothing lost, nothing added
    assert result.chosen is not None and result.chosen.key == res["selection"]["winner"]
    record = next(c for c in res["candidates"] if c["key"] == result.chosen.key)
    assert result.chosen.to_dict() == record and result.chosen.p50_s == record["latency"]["p50_s"]
    assert result.chosen.accuracy == record["accuracy"]["value"] and result.chosen.fits
    assert [c.key for c in result.candidates] == [c["key"] for c in res["candidates"]]
    assert result.selection.to_dict() == res["selection"] and result.selection.protocol is None
    assert result.frontier == tuple(res["frontier"]) and result.files == {"results": str(path)}
    assert result.baseline_accuracy == res["baseline"]["accuracy"] and result.exit_code == 0


@pytest.mark.slow
def test_check_from_python_matches_the_cli(run_cli):
    outcome = edgefit.check("ds-cnn-kws", "orin")
    code, stdout, err = run_cli("check", "--example", "ds-cnn-kws", "--target", "orin", "--json")
    assert code == outcome.exit_code == 0, err
    assert json.loads(stdout) == json.loads(json.dumps(outcome.to_dict()))
