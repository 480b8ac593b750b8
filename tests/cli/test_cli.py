"""The CLI end to end (Typer CliRunner): outputs, --json, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgefit.cli._app import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))



def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.output.startswith("edgefit ")


def test_targets_list_json_has_the_six_targets():
    r = run("targets", "list", "--json")
    assert r.exit_code == 0
    ids = {row["id"] for row in json.loads(r.output)}
    assert ids == {"h100", "jetson-agx-orin-64gb", "glasses-npu", "gap9", "ethos-u55", "host-cpu"}


def test_targets_show_schema_export_validate(tmp_path):
    show = run("targets", "show", "orin")
    assert show.exit_code == 0 and "MAXN" in show.output and "ISO 26262" in show.output
    schema = json.loads(run("targets", "schema").output)
    assert schema["title"] == "Target" and "envelope" in schema["properties"]
    exported = run("targets", "export", "hearable", "--format", "json")
    doc = json.loads(exported.output)
    assert doc["id"] == "gap9"
    out = tmp_path / "mine.yaml"
    assert run("targets", "export", "orin", "--format", "yaml", "--out", str(out)).exit_code == 0
    valid = run("targets", "validate", str(out), "--json")
    assert valid.exit_code == 0 and json.loads(valid.output)[0]["id"] == "jetson-agx-orin-64gb"


@pytest.mark.parametrize("args, fragment", [
    (("targets", "show", "orn"), "unknown target 'orn'"),
    (("inspect", "/nonexistent/model.onnx"), "model file not found"),
    (("inspect", "--example", "nope"), "unknown example 'nope'"),
    (("estimate", "--example", "ds-cnn-kws", "--target", "orin", "--dtype", "int3"), "unknown dtype 'int3'"),
    (("estimate", "--example", "ds-cnn-kws", "--target", "orin", "--power-mode", "7W"), "no power mode '7W'"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, fragment):
    code, out, err = run_cli(*args)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_target_yaml_names_file_line_and_field(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: x\nkind: edge_soc\nenvelope:\n  latency_budget_s: {value: -1, estimated: true, reason: r}\n")
    code, _, err = run_cli("targets", "validate", str(bad))
    assert code == 2 and str(bad) in err and "Traceback" not in err


def test_truncated_onnx_via_cli(run_cli, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x04trun")
    code, _, err = run_cli("inspect", str(path))
    assert code == 2 and "not" in err and "ONNX" in err


@pytest.mark.slow
def test_inspect_resnet18_counts():
    r = run("inspect", "--example", "resnet18", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["inputs"] == {next(iter(doc["inputs"])): [1, 3, 224, 224]}
    assert doc["macs"] == pytest.approx(1.82e9, rel=0.01)
    assert doc["params"] == pytest.approx(11.7e6, rel=0.01)


@pytest.mark.slow
def test_inspect_mobilenetv2_counts():
    doc = json.loads(run("inspect", "--example", "mobilenetv2", "--json").output)
    assert doc["macs"] == pytest.approx(300e6, rel=0.02)
    assert doc["params"] == pytest.approx(3.5e6, rel=0.02)


@pytest.mark.slow
def test_estimate_hearable_kws_energy_and_power_at_rate():
    r = run("estimate", "--example", "ds-cnn-kws", "--target", "hearable", "--dtype", "int8", "--json")
    assert r.exit_code == 0, r.output
    est = json.loads(r.output)["estimates"][0]
    assert est["target"] == "gap9" and est["energy_j"] > 0
    power = next(c for c in est["checks"] if c["constraint"].startswith("average power at"))
    assert power["limit"] == pytest.approx(1e-3)
    assert power["value"] == pytest.approx(est["energy_j"] * est["inference_rate_hz"])
    human = run("estimate", "--example", "ds-cnn-kws", "--target", "hearable", "--dtype", "int8")
    assert "µJ/inference" in human.output and "inferences/s" in human.output


@pytest.mark.slow
def test_estimate_orin_power_modes_differ():
    def latency(mode: str) -> float:
        r = run("estimate", "--example", "resnet18", "--target", "orin", "--power-mode", mode, "--dtype", "int8", "--json")
        return json.loads(r.output)["estimates"][0]["latency_s"]

    assert latency("15W") > 3 * latency("MAXN")


@pytest.mark.slow
def test_estimate_all_targets_and_missing_dtype_warning():
    r = run("estimate", "--example", "ds-cnn-kws", "--target", "all", "--dtype", "fp8", "--json")
    assert r.exit_code == 0, r.output
    estimates = json.loads(r.output)["estimates"]
    assert len(estimates) == 6
    # a target without fp8 says so among its warnings (host-cpu may also warn that its profile was
    # calibrated on another machine)
    lacking = [e for e in estimates if any("does not support fp8" in w for w in e["warnings"])]
    assert lacking and all(e["plan"]["dtype"] != "fp8" for e in lacking)
    assert all(e["latency_s"] > 0 for e in estimates)


def test_what_model_intake_noticed_is_said_once_however_many_targets(run_cli, tmp_path):
    """A NaN weight is the model's warning, not each target's: one line, after the targets."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.ones((4, 4), np.float32)
    w[0, 0] = np.nan
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(w, "w")])
    path = tmp_path / "nan.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    code, _, err = run_cli("estimate", str(path), "--target", "ethos-u55", "--target", "orin")
    assert code == 0, err
    said = [line for line in err.splitlines() if "hold NaN or infinity" in line]
    assert len(said) == 1, err
