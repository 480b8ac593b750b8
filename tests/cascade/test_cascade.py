"""`edgefit cascade` end to end: the library flow on small models, every bad input as one line with its
exit code, and the built-in digits example against the issue's acceptance figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from edgefit.cascade import NoFeasibleCascade, Objective, cascade, split_indices
from edgefit.errors import EdgefitError

_spec = importlib.util.spec_from_file_location("cascade_conftest", Path(__file__).with_name("conftest.py"))
_conf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conf)
gemm_model = _conf.gemm_model


@pytest.fixture
def two_tiers(tmp_path):
    """Two Gemm classifiers over 64 features and 600 labelled samples: tier 2 is the teacher the labels
    come from (with 5% label noise), tier 1 a noisy copy of it."""
    import onnx
    from onnx import numpy_helper

    big = gemm_model(seed=3)
    small = gemm_model(seed=3)
    w = numpy_helper.to_array(small.graph.initializer[0])
    noisy = w + np.random.default_rng(4).normal(0, 0.35, w.shape).astype(np.float32)
    small.graph.initializer[0].CopyFrom(numpy_helper.from_array(noisy, "W"))
    onnx.save(small, tmp_path / "small.onnx")
    onnx.save(big, tmp_path / "big.onnx")
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (600, 64)).astype(np.float32)
    W, b = numpy_helper.to_array(big.graph.initializer[0]), numpy_helper.to_array(big.graph.initializer[1])
    y = (x @ W + b).argmax(1)
    flip = rng.random(600) < 0.05
    y[flip] = rng.integers(0, 10, flip.sum())
    np.savez(tmp_path / "eval.npz", x=x, y=y)
    return tmp_path


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(4), 50)
    a, b = split_indices(labels, (0.4, 0.3, 0.3), 0), split_indices(labels, (0.4, 0.3, 0.3), 0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(np.concatenate(list(a.values()))) == list(range(200))
    assert [len(a[k]) for k in ("calibrate", "select", "report")] == [80, 60, 60]
    assert all((np.bincount(labels[a["select"]]) == 15).all() for _ in [0])
    with pytest.raises(EdgefitError, match="--splits"):
        split_indices(labels, (0.5, 0.5), 0)


def test_library_flow_on_two_device_tiers_and_a_stated_cloud(two_tiers):
    d = two_tiers
    result = cascade([f"{d / 'small.onnx'}@glasses", f"{d / 'big.onnx'}@glasses",
                      "cloud:latency=800ms,usd=0.0004,accuracy=0.99"], d / "eval.npz",
                     Objective("max-accuracy", latency_budget_s=0.1), seed=0)
    small, big, cloud = result.tiers
    assert sum(result.splits.values()) == 600  # stratified: each class rounds on its own
    assert all(abs(result.splits[k] - n) <= 5 for k, n in (("calibrate", 240), ("select", 180), ("report", 180)))
    assert small.accuracy_alone < big.accuracy_alone and cloud.accuracy_alone == pytest.approx(0.99)
    assert cloud.calibration is None and cloud.threshold is None and small.threshold is not None
    assert small.cost.latency_p50.source.startswith("estimated for glasses") and small.cost.latency_p50.interval
    assert cloud.cost.latency_p50.value == 0.8 and cloud.cost.usd.value == 0.0004
    rep = result.reported
    assert rep.split == "report" and sum(rep.shares) == pytest.approx(1.0) and rep.expected_latency_s <= 0.1 + 0.08
    assert rep.accuracy >= small.accuracy_alone
    for t in (small, big):
        assert t.calibration.calibration_samples == result.splits["calibrate"] and t.calibration.ece_after <= t.calibration.ece_before + 0.02
    assert result.pareto and all(a.expected_latency_s <= b.expected_latency_s
                                 for a, b in zip(result.pareto, result.pareto[1:]))
    json.dumps(result.to_dict())  # plain JSON all the way down


def test_writing_outputs(two_tiers, tmp_path):
    d = two_tiers
    out = tmp_path / "out"
    result = cascade([f"{d / 'small.onnx'}@glasses", f"{d / 'big.onnx'}@glasses"], d / "eval.npz",
                     Objective("min-latency", accuracy_floor=0.5), out_dir=out, command="edgefit cascade (test)")
    assert Path(result.tiers[0].calibrated_model).is_file() and Path(result.tiers[1].calibrated_model).is_file()
    config = json.loads((out / "cascade-config.json").read_text())
    assert config["schema"] == "edgefit-cascade-config/1" and len(config["tiers"]) == 2
    assert json.loads((out / "cascade.json").read_text())["schema"] == "edgefit-cascade/1"
    assert (out / "cascade.html").is_file() and (out / "cascade.md").is_file()
    assert sorted(p.name for p in (out / "model-cards").iterdir()) == ["tier1.md", "tier2.md"]


def bad(run_cli, *args):
    code, out, err = run_cli("cascade", *args)
    return code, err.strip()


def test_bad_input_is_one_line_with_its_exit_code(two_tiers, run_cli, tmp_path):
    import onnx

    d = two_tiers
    t1, t2 = f"{d / 'small.onnx'}@glasses", f"{d / 'big.onnx'}@glasses"
    onnx.save(gemm_model(classes=5), d / "five.onnx")
    onnx.save(gemm_model(features=32), d / "narrow.onnx")
    np.savez(d / "nolabels.npz", x=np.zeros((100, 64), np.float32))
    np.savez(d / "tiny.npz", x=np.zeros((60, 64), np.float32), y=np.arange(60) % 10)
    cases = [
        ((("--tier", t1, "--tier", f"{d / 'five.onnx'}@glasses", "--data", str(d / "eval.npz"), "--latency-budget",
           "1s")), 2, "same label space"),
        ((("--tier", t1, "--tier", f"{d / 'narrow.onnx'}@glasses", "--data", str(d / "eval.npz"), "--latency-budget",
           "1s")), 2, "same input"),
        ((("--tier", t1, "--tier", t2, "--data", str(d / "nolabels.npz"), "--latency-budget", "1s")), 2, "no labels"),
        ((("--tier", t1, "--tier", t2, "--data", str(d / "eval.npz"), "--latency-budget", "1ns")), 2, "duration"),
        ((("--tier", t1, "--tier", t2, "--data", str(d / "eval.npz"), "--latency-budget", "0.000001s")), 3,
         "no threshold choice meets"),
        ((("--tier", t1, "--tier", t2, "--data", str(d / "tiny.npz"), "--latency-budget", "1s")), 2,
         "isotonic regression"),
        ((("--tier", t1, "--tier", t2, "--data", str(d / "eval.npz"))), 2, "no budget given"),
        ((("--tier", t1, "--tier", "cloud:latency=1s", "--data", str(d / "eval.npz"), "--latency-budget", "1s")), 2,
         "a model to measure or a stated accuracy"),
        ((("--tier", "cloud:latency=1s,accuracy=0.9", "--tier", t1, "--data", str(d / "eval.npz"),
           "--latency-budget", "1s")), 2, "only the last tier"),
        ((("--tier", str(d / "small.onnx"), "--tier", t2, "--data", str(d / "eval.npz"), "--latency-budget", "1s")),
         2, "MODEL@TARGET"),
        ((("--tier", t1, "--tier", "cloud:latency=1s,colour=red", "--data", str(d / "eval.npz"), "--latency-budget",
           "1s")), 2, "unknown cloud field"),
        ((("--tier", t1, "--tier", t2, "--data", str(d / "eval.npz"), "--latency-budget", "1s", "--splits",
           "0.5,0.6,0.1")), 2, "--splits"),
        ((("--tier", f"{d / 'missing.onnx'}@glasses", "--tier", t2, "--data", str(d / "eval.npz"), "--latency-budget",
           "1s")), 2, "not found"),
        ((("--tier", t1, "--tier", f"{d / 'big.onnx'}@mars", "--data", str(d / "eval.npz"), "--latency-budget",
           "1s")), 2, "mars"),
    ]
    for args, code, text in cases:
        got, err = bad(run_cli, *args, "--out", str(tmp_path / "o"))
        assert got == code and text in err and len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
    assert not (tmp_path / "o" / "cascade-config.json").exists()  # nothing half-written by a failed run


def test_budgets_and_outputs_read_through_the_unit_parser():
    """--latency-budget, --cloud-share, --energy-budget and --accuracy-floor share edgefit._units;
    --outputs names one of the two kinds the calibrator reads (anything else was passed through)."""
    from edgefit.cli._cascade import _objective, _output_kind

    obj = _objective("100ms", "10%", "2mJ", None, None)
    assert (obj.latency_budget_s, obj.cloud_share_budget, obj.energy_budget_j) == pytest.approx(
        (0.1, 0.1, 0.002))
    assert _objective(None, None, None, None, "98%").accuracy_floor == pytest.approx(0.98)
    for bad, where in ((("2h", None, None, None, None), "--latency-budget"),
                       ((None, "150%", None, None, None), "--cloud-share"),
                       ((None, None, "5W", None, None), "--energy-budget"),
                       ((None, None, None, None, "1.5"), "--accuracy-floor")):
        with pytest.raises(EdgefitError, match=where):
            _objective(*bad)
    assert _output_kind("logits") == "logits" and _output_kind(None) is None
    with pytest.raises(EdgefitError, match="--outputs: unknown output kind 'softmax'"):
        _output_kind("softmax")


def test_schema_is_printed(run_cli):
    code, out, _ = run_cli("cascade", "--schema")
    assert code == 0 and json.loads(out)["$id"].endswith("edgefit-cascade-config/1") or "edgefit-cascade-config/1" in out


@pytest.mark.slow
def test_digits_example_meets_the_acceptance_figures(run_cli, tmp_path):
    """Acceptance (#18): ECE after calibration < 0.05 on held-out data for every tier; the cascade's accuracy
    at least the best on-device tier's alone, at an expected latency within the budget; the routing mix
    reported. The tiers train once on the digits train split (cached); the cascade sees val + test only."""
    code, out, err = run_cli("cascade", "--example", "digits", "--out", str(tmp_path / "c"), "--json")
    assert code == 0, err
    res = json.loads(out)
    for tier in res["tiers"]:
        assert tier["calibration"]["ece_after"] < 0.05, tier["spec"]["name"]
    device = [t["accuracy_alone"] for t in res["tiers"] if t["spec"]["target"] != "cloud"]
    assert res["reported"]["accuracy"] >= max(device)
    assert res["reported"]["expected_latency_s"] <= res["objective"]["latency_budget_s"] * 1.25  # report split
    assert res["chosen"]["expected_latency_s"] <= res["objective"]["latency_budget_s"]
    assert len(res["reported"]["shares"]) == 3 and sum(res["reported"]["shares"]) == pytest.approx(1)


def test_a_tier_from_an_optimize_run_is_its_winner_and_host_cpu_tiers_are_measured(two_tiers, tmp_path):
    """``RESULTS.json@TARGET``: the winner's ONNX file becomes the tier (here a real results.json from the
    report tests, its winner's file replaced by the small classifier); on host-cpu it is measured here."""
    import shutil

    from edgefit.cascade._tiers import parse_tier

    data = Path(__file__).parents[1] / "report" / "data" / "results-host-cpu.json"
    run = tmp_path / "run"
    res = json.loads(data.read_text().replace("{run}", str(run)))
    winner = next(c for c in res["candidates"] if c["key"] == res["selection"]["winner"])
    Path(winner["onnx"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(two_tiers / "small.onnx", winner["onnx"])
    (run / "results.json").write_text(json.dumps(res))
    spec = parse_tier(f"{run / 'results.json'}@host-cpu", 0)
    assert spec.model == winner["onnx"] and spec.results == str(run / "results.json")
    with pytest.raises(EdgefitError, match="optimized for host-cpu, not orin"):
        parse_tier(f"{run / 'results.json'}@orin", 0)
    result = cascade([spec, f"{two_tiers / 'big.onnx'}@glasses"], two_tiers / "eval.npz",
                     Objective("max-accuracy", latency_budget_s=1.0))
    p50, p99 = result.tiers[0].cost.latency_p50, result.tiers[0].cost.latency_p99
    assert p50.source.startswith("measured here: onnxruntime CPU @1t") and p50.interval is None
    assert 0 < p50.value <= p99.value < 0.01
