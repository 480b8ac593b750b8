"""`edgefit optimize --threads` (#16): one count keeps today's output; a list prints the pick per
count (or, with --json, the combined result); bad lists are one line and exit 2 before any work; a
count above the machine's cores is a warning line, not an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefit.search._config import usable_cores

FAST = ("--target", "orin", "--trials", "2", "--metric", "sqnr", "--max-drop", "20")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import onnx

    from edgefit.runtimes.testing import tiny_model

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


@pytest.mark.parametrize(("threads", "message"), [
    ("0", "0 threads cannot run a model"),
    ("-1", "-1 threads cannot run a model"),
    ("a", "cannot read 'a' as a thread count"),
    ("1,,2", "'1,,2' has an empty item"),
])
def test_bad_threads_are_one_line_before_any_work(run_cli, tiny_onnx, tmp_path, threads, message):
    out = tmp_path / "never"
    code, stdout, err = run_cli("optimize", str(tiny_onnx), *FAST, "--threads", threads,
                                "--out", str(out), "-q")
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "--threads: " in err and message in err, err
    assert not out.exists()


@pytest.mark.slow
def test_one_count_keeps_the_layout_and_says_whose_choice(run_cli, tiny_onnx, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli("optimize", str(tiny_onnx), *FAST, "--threads", "2,2",
                                "--out", str(out), "-q")
    assert code == 0, err[-2000:]
    assert "threads: 2 (your choice; --threads)" in stdout
    assert (out / "results.json").is_file() and not (out / "threads.json").exists()
    assert not any(p.name.startswith("threads-") for p in out.iterdir())
    assert json.loads((out / "results.json").read_text())["config"]["threads"] == 2


@pytest.mark.slow
def test_a_list_prints_the_combined_result(run_cli, tiny_onnx, tmp_path):
    out = tmp_path / "run"
    over = usable_cores() + 1  # above this machine's cores: a warning, and the run goes on
    code, stdout, err = run_cli("optimize", str(tiny_onnx), *FAST, "--threads", f"1,{over},1",
                                "--out", str(out), "--json")
    assert code == 0, err[-2000:]
    combined = json.loads(stdout)
    assert combined["schema"] == "edgefit-threads/1" and combined["threads"] == [1, over]
    assert [r["threads"] for r in combined["runs"]] == [1, over]
    assert all(r["chosen"]["p50_s"] > 0 and r["chosen"]["accuracy"] is not None
               for r in combined["runs"])
    assert combined["files"]["threads"] == str(out / "threads.json")
    assert {k: v for k, v in combined.items() if k != "files"} == \
        json.loads((out / "threads.json").read_text())
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and f"--threads {over} is more than the" in warning[0]

    code, stdout, err = run_cli("optimize", str(tiny_onnx), *FAST, "--threads", f"1,{over}",
                                "--out", str(out), "-q")  # the table, from reused candidates
    assert code == 0, err[-2000:]
    assert "the pick per deployment thread count" in stdout and "threads-1/" in stdout
    assert f"threads: 1, {over} (your choice; --threads)" in stdout
