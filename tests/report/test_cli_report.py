"""`edgefit report`: render from results.json (default subcommand), --html/--md, --out -, schema; exit codes."""

from __future__ import annotations

import json

import pytest




def test_report_renders_both_by_default(run_cli, run_dir):
    code, out, err = run_cli("report", str(run_dir / "results.json"), "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert set(files) == {"html", "md"}
    assert 'id="frontier-plot"' in (run_dir / "report.html").read_text()
    assert "## Pareto frontier" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("flag, written, absent", [("--html", "report.html", "report.md"),
                                                   ("--md", "report.md", "report.html")])
def test_one_format(run_cli, new_run, flag, written, absent):
    run = new_run()
    (run / "report.md").unlink(missing_ok=True)
    code, out, _ = run_cli("report", "render", str(run / "results.json"), flag, "-q")
    assert code == 0 and (run / written).is_file() and not (run / absent).exists()
    assert "wrote" in out


def test_out_folder_and_stdout(run_cli, run_dir, tmp_path):
    out_dir = tmp_path / "elsewhere"
    code, _, _ = run_cli("report", str(run_dir / "results.json"), "--out", str(out_dir), "-q")
    assert code == 0 and (out_dir / "report.html").is_file()
    assert "layer-latency-plot" in (out_dir / "report.html").read_text()  # the model is still found in the run
    code, out, _ = run_cli("report", str(run_dir / "results.json"), "--md", "--out", "-")
    assert code == 0 and out.startswith("# edgefit: digits-cnn on host-cpu")
    code, _, err = run_cli("report", str(run_dir / "results.json"), "--out", "-")
    assert code == 2 and "add --html or --md" in err


def test_schema_command_prints_the_shipped_schema(run_cli):
    code, out, _ = run_cli("report", "schema")
    from edgefit.report import results_schema

    assert code == 0 and json.loads(out) == results_schema()


def test_bad_results_exit_2_in_one_line(run_cli, tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"schema": "something-else"}))
    code, _, err = run_cli("report", str(bad))
    assert code == 2 and "something-else" in err and err.count("\n") == 1
    code, _, err = run_cli("report", str(tmp_path / "missing.json"))
    assert code == 2 and "not found" in err
