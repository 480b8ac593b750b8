"""`edgefit bench` and `edgefit runtimes list` through Typer's CliRunner, and exit codes through main()."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgefit.cli import main
from edgefit.cli._app import app
from edgefit.cli._bench import parse_cpus
from edgefit.errors import EdgefitError
from edgefit.runtimes.testing import tiny_model

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny.onnx"
    path.write_bytes(tiny_model().SerializeToString())
    return path


def test_bench_json_reports_timing_with_provenance_and_parity(model_path, tmp_path):
    result = runner.invoke(app, ["bench", str(model_path), "--runtime", "onnxruntime", "--precision", "int8",
                                 "--threads", "1", "--runs", "20", "--warmup", "2", "--out-dir", str(tmp_path),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    t = report["timing"]
    assert t["unit"] == "s" and t["provenance"].startswith("measured on onnxruntime ") and "1 thread" in t["provenance"]
    assert 0 < t["p50"] <= t["p90"] <= t["p99"] <= t["max"] and t["n_runs"] >= 20
    assert t["jitter"] == pytest.approx(t["p99"] - t["p50"])
    assert report["parity"]["top1_agreement"] == 1.0 and report["precision"] == "int8"
    assert (tmp_path / "tiny.int8.onnx").is_file() and report["artifact"]["path"].endswith("tiny.int8.onnx")


def test_bench_table_labels_every_number(model_path):
    result = runner.invoke(app, ["bench", str(model_path), "--threads", "1", "--runs", "10", "--warmup", "1"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "measured on onnxruntime" in out and "1 thread" in out
    assert "p99" in out and ("µs" in out or "ms" in out)
    assert "parity vs the fp32 source" in out and "SQNR identical" in out


def test_runtimes_list_shows_tensorrt_unavailable_with_reason():
    result = runner.invoke(app, ["runtimes", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["onnxruntime"]["available"] is True
    trt = rows["tensorrt"]
    if trt["available"]:
        pytest.skip("tensorrt is available on this machine")
    assert trt["reason"] and ("tensorrt" in trt["reason"] or "CUDA" in trt["reason"])
    table = runner.invoke(app, ["runtimes", "list"])
    assert "tensorrt" in table.stdout and "no" in table.stdout


def test_unavailable_runtime_exits_2_with_the_reason(model_path, capsys):
    from edgefit.runtimes import get_runtime

    status = get_runtime("tensorrt").available()
    if status.ok:
        pytest.skip("tensorrt is available on this machine")
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(model_path), "--runtime", "tensorrt"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not available" in err and status.reason in err


@pytest.mark.parametrize("args, message", [
    (["--runtime", "coreml-typo"], "unknown runtime 'coreml-typo'"),
    (["--precision", "int4"], "unknown precision 'int4'"),
    (["--cpus", "a-b"], "cannot read CPU list"),
    (["--runs", "0"], "runs=0 is not allowed"),
])
def test_bad_input_is_one_line_exit_2(model_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(model_path), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("edgefit: error: ") and message in err and err.count("\n") == 1


def test_cli_runner_surfaces_edgefit_errors():
    result = runner.invoke(app, ["bench", "--runtime", "nope", "--example", "resnet18"])
    assert isinstance(result.exception, EdgefitError) and result.exception.exit_code == 2


def test_parse_cpus():
    assert parse_cpus("1") == (1,) and parse_cpus("0-2,5") == (0, 1, 2, 5) and parse_cpus(None) is None
    with pytest.raises(EdgefitError):
        parse_cpus(",")
