"""`edgefit serve-plan`: the JSON document, the human table and one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgefit.cli import main
from edgefit.cli._app import app
from edgefit.cli._common import console

runner = CliRunner()
BASE = ["serve-plan", "--model", "llama-3-70b", "--target", "h100"]


def test_json_llama70_on_one_h100():
    result = runner.invoke(app, [*BASE, "--context", "8192", "--slo-tpot", "50ms", "--json"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    assert p["schema"] == "edgefit.serve-plan/1" and p["source"] == "datasheet estimate"
    assert p["model"]["params"] == 70_553_706_496 and p["objective"]["tpot_s"] == 0.05
    rows = {(r["weights"], r["kv"]): r for r in p["rows"]}
    assert rows["fp16", "fp16"]["verdict"] == "does not fit" and "141 GB" in rows["fp16", "fp16"]["reason"]
    fp8 = rows["fp8", "fp8"]
    assert fp8["verdict"] == "fits" and fp8["kv_budget_bytes_per_gpu"] == pytest.approx(5.44e9, rel=0.01)
    assert fp8["kv_bytes_per_token_per_gpu"] == 163_840 and fp8["max_batch"] == 4
    assert fp8["batch1"]["floor_tokens_per_s"] == pytest.approx(47, rel=0.05)
    assert p["best"]["tokens_per_s"] == max(r["tokens_per_s"] for r in p["rows"])
    assert p["iteration"]["egress"]["usd_per_iteration"] == 90_000


def test_human_table_shows_fit_reasons_best_and_tax(monkeypatch):
    # a 250-column terminal: rich reads COLUMNS once, when the CLI's console is made, which is
    # whenever the first test in this process imported the CLI; so the width is set on the console
    monkeypatch.setattr(console, "_width", 250)
    result = runner.invoke(app, [*BASE, "--weights", "fp16,fp8", "--kv", "fp8", "--slo-tpot", "50ms"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "datasheet estimate" in out and "4 GB held back for the runtime" in out
    assert "fp16/fp8: does not fit: weights 141 GB + 4 GB overhead > 80 GB hbm" in out
    assert "5.44 GB" in out and "best: weights fp8, KV fp8: batch 4" in out
    assert "iteration tax: data egress $90,000 per retraining iteration (1 PB × $90,000/PB)" in out
    assert "assumptions:" in out and "bandwidth_efficiency: 0.8" in out


def test_flags_reach_the_plan():
    result = runner.invoke(app, [*BASE, "--gpus", "2", "-w", "fp16", "--kv", "fp16", "--overhead", "2GB",
                                 "--dataset-pb", "2", "--usd-per-pb", "20000", "--context", "4096", "--json"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    r = p["rows"][0]
    assert p["gpus"] == 2 and r["verdict"] == "fits" and r["weight_bytes_per_gpu"] == pytest.approx(70.56e9, rel=1e-3)
    assert p["hardware"]["overhead_bytes"]["value"] == 2e9
    assert p["iteration"]["egress"]["usd_per_iteration"] == 40_000


def test_host_cpu_small_decoder():
    result = runner.invoke(app, ["serve-plan", "--model", "gpt2", "--target", "host-cpu", "--json"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    assert p["context"] == 1024 and p["best"] is not None and p["iteration"]["egress"] is None


@pytest.mark.parametrize("args, where", [
    (["--context", "200000"], "--context"),
    (["--context", "0"], "--context"),
    (["--prompt", "9000"], "--prompt"),
    (["--weights", "fp7"], "--weights"),
    (["--kv", "int4"], "--kv"),
    (["--gpus", "3"], "--gpus"),
    (["--slo-tpot", "fast"], "--slo-tpot"),
    (["--overhead", "lots"], "--overhead"),
    (["--target", "nowhere"], "--target"),
])
def test_bad_input_is_one_line_exit_2(args, where, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*BASE, *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"edgefit: error: {where}")


def test_config_missing_fields_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"hidden_size": 4096, "num_hidden_layers": 32}))
    with pytest.raises(SystemExit) as exc:
        main(["serve-plan", "--model", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config lacks num_attention_heads" in err


def test_unsupported_dtype_on_target_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve-plan", "--model", "gpt2", "--target", "host-cpu", "--weights", "fp8"])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("edgefit: error: --weights")
