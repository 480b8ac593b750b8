"""`edgefit check`: exit 1 over a budget or on a regression, 0 inside, 2 on usage errors; CI annotations; --json."""

from __future__ import annotations

import json

import pytest
import yaml

from edgefit.report import Finding, parse_fraction, pick_baseline



def _orin_with_budget(tmp_path, budget_s: float):
    from edgefit.targets._load import resolve_target_path

    doc = yaml.safe_load(resolve_target_path("orin").read_text())
    doc["envelope"]["latency_budget_s"] = {"value": budget_s, "estimated": True, "reason": "a test's tiny budget"}
    path = tmp_path / "tight-orin.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.slow
def test_resnet18_on_the_hearable_exits_1_with_one_annotation_per_violation(run_cli):
    code, out, err = run_cli("check", "--example", "resnet18", "--target", "hearable", "-q")
    assert code == 1, err
    lines = out.strip().splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert any(line.startswith("::error title=edgefit check (latency)::resnet18 on gap9") for line in errors)
    assert any("memory" in line for line in errors) and len(errors) >= 3
    assert lines[-1].startswith("edgefit check: resnet18 on gap9: FAIL") and "(exit 1)" in lines[-1]


@pytest.mark.slow
def test_ds_cnn_on_host_cpu_is_measured_and_exits_0(run_cli):
    code, out, err = run_cli("check", "--example", "ds-cnn-kws", "--target", "host-cpu", "-q")
    assert code == 0, out + err
    assert "::error" not in out
    assert "ok: latency (p99 budget, measured p99)" in out and "measured on onnxruntime" in out
    assert out.strip().splitlines()[-1].endswith("(exit 0)")


def test_user_target_with_a_tiny_budget_exits_1(run_cli, tmp_path):
    path = _orin_with_budget(tmp_path, 1e-7)
    code, out, _ = run_cli("check", "--example", "ds-cnn-kws", "--target", str(path), "-q")
    assert code == 1 and "::error title=edgefit check (latency)::" in out
    loose = _orin_with_budget(tmp_path, 1.0)
    code, out, _ = run_cli("check", "--example", "ds-cnn-kws", "--target", str(loose), "-q")
    assert code == 0 and "::error" not in out


def test_latency_budget_flag_and_plain_format(run_cli):
    code, out, _ = run_cli("check", "--example", "ds-cnn-kws", "--target", "host-cpu", "--no-measure",
                            "--latency-budget", "1us", "--format", "plain", "-q")
    assert code == 1
    assert "error: edgefit check (latency): ds-cnn-kws on host-cpu: latency" in out and "1 µs" in out


def test_model_file_is_named_in_the_annotation(run_cli, tmp_path, tiny_model):
    model = tmp_path / "tiny.onnx"
    model.write_bytes(tiny_model().SerializeToString())
    code, out, _ = run_cli("check", str(model), "--target", "orin", "--latency-budget", "1e-9", "-q")
    assert code == 1 and f",file={str(model).replace(':', '%3A')}::" in out


def test_json_output(run_cli):
    code, out, _ = run_cli("check", "--example", "ds-cnn-kws", "--target", "orin", "--json")
    doc = json.loads(out)
    assert code == doc["exit_code"] == 0
    assert doc["target"] == "jetson-agx-orin-64gb" and doc["measured"] is None
    assert all(f["level"] in ("ok", "notice", "warning") for f in doc["findings"])
    assert doc["checks"][0]["constraint"].startswith("latency") and doc["checks"][0]["unit"] == "s"


@pytest.mark.parametrize("latency, code", [(1e-9, 1), (10.0, 0)])
def test_regression_against_a_baseline_run(run_cli, new_run, latency, code):
    def set_winner_latency(res):
        win = next(c for c in res["candidates"] if c["key"] == res["selection"]["winner"])
        win["estimate"]["latency_s"] = latency

    results = new_run("orin", edit=set_winner_latency) / "results.json"
    got, out, err = run_cli("check", "--example", "ds-cnn-kws", "--target", "orin", "--baseline", str(results),
                             "--max-regression", "5%", "-q")
    assert got == code, out + err
    if code:
        assert "::error title=edgefit check (latency regression)::" in out and "chosen candidate 'fp16'" in out
    else:
        assert "ok: latency vs baseline: estimated latency" in out


@pytest.mark.parametrize("args, fragment", [
    ((), "no model given"),
    (("--example", "ds-cnn-kws", "--target", "orn"), "unknown target 'orn'"),
    (("--example", "ds-cnn-kws", "--max-regression", "lots"), "--max-regression"),
    (("--example", "ds-cnn-kws", "--baseline", "/nonexistent/results.json"), "results file not found"),
    (("--example", "ds-cnn-kws", "--format", "xml"), "unknown format 'xml'"),
    (("--example", "ds-cnn-kws", "--target", "orin", "--measure"), "cannot measure for"),
    (("--example", "ds-cnn-kws", "--latency-budget", "fast"), "--latency-budget"),
])
def test_usage_errors_exit_2(run_cli, args, fragment):
    code, _, err = run_cli("check", *args)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_baseline_for_another_target_or_unmeasured_is_a_usage_error(run_cli, run_dir, new_run):
    code, _, err = run_cli("check", "--example", "ds-cnn-kws", "--target", "orin", "--baseline",
                            str(run_dir / "results.json"))
    assert code == 2 and "baseline was run for target 'host-cpu'" in err
    orin = new_run("orin") / "results.json"
    code, _, err = run_cli("check", "--example", "ds-cnn-kws", "--target", "orin", "--baseline", str(orin),
                            "--compare", "measured")
    assert code == 2 and "--compare measured" in err


def test_annotation_escaping():
    f = Finding("error", "a: b, c", "50% over\nsecond line", file="models/m,1.onnx")
    assert f.annotation() == "::error title=a%3A b%2C c,file=models/m%2C1.onnx::50%25 over%0Asecond line"
    assert f.annotation("plain") == "error: a: b, c: 50% over\nsecond line"
    with pytest.raises(ValueError):
        Finding("fatal", "t", "m")


def test_parse_fraction_and_pick_baseline(results):
    assert parse_fraction("5%", where="x") == 0.05 and parse_fraction("0.2", where="x") == 0.2
    cand, role = pick_baseline(results)
    assert role == "chosen" and cand.key == results["selection"]["winner"]
    results["selection"]["winner"] = None
    assert pick_baseline(results)[1] == "unchanged baseline"


def test_fit_within_the_error_bar_only_is_a_warning(run_cli, tmp_path):
    from edgefit.estimate import Estimator
    from edgefit.graph._examples import example_graph
    from edgefit.targets import load_target

    est = Estimator(example_graph("ds-cnn-kws"), load_target("orin")).estimate()
    assert est.source == "datasheet" and est.error == 0.5
    path = _orin_with_budget(tmp_path, est.latency_s * 1.2)  # fits the estimate, not its +50% end
    code, out, _ = run_cli("check", "--example", "ds-cnn-kws", "--target", str(path), "-q")
    assert code == 0
    assert "::warning title=edgefit check (latency)::" in out and "only within the error bar" in out
