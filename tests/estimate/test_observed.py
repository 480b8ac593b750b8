"""The closed loop (#13 deliverable 5): what `edgefit bench` measured is kept with its kernels, and
`edgefit calibrate --refit` learns from the runs of the profile's own machine."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgefit.calibrate import _observed
from edgefit.calibrate._learn import measurements_path, refit_learned, runs_to_dict
from edgefit.estimate._fingerprint import this_machine
from edgefit.estimate._learned import learned_path
from test_learned import _small_profile, _synthetic_runs


def _mlp(path: Path, width: int) -> Path:
    rng = np.random.default_rng(width)
    w1 = numpy_helper.from_array(rng.standard_normal((32, width)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((width, 8)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def test_a_recorded_run_comes_back_with_its_kernels_and_a_torn_line_is_skipped(tmp_path):
    here = this_machine()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder, width in (("a", 64), ("b", 128)):  # two files of one name: two networks
        run = _observed.record(_mlp(tmp_path / folder / "model.onnx", width), threads=1, measured_s=5e-6,
                               source="bench", machine=here, folder=tmp_path / "measured")
        assert run.recipe == "fp32" and run.lowered.nodes
        assert all(n.time_s is not None and n.time_s > 0 for n in run.lowered.nodes)
    path = _observed.observed_path(here, tmp_path / "measured")
    with path.open("a") as f:
        f.write('{"at": "2026-12-07T00:00:00Z", "source": "bench", "run": {"name": "cut sh')  # a kill mid-write
    back = _observed.load(here, tmp_path / "measured")
    assert len(back.runs) == 2 and len({r.name for r in back.runs}) == 2
    assert all(r.measured_s == 5e-6 and r.family == "measured bench" for r in back.runs)
    assert back.summary() == {"runs": 2, "sources": {"bench": 2}, "unreadable_lines": 1}
    other = replace(here, cpu_id="GenuineIntel family 6 model 143", int8_path="amx")
    assert _observed.load(other, tmp_path / "measured").runs == []  # another machine's file, not this one's


def test_a_refit_learns_from_the_runs_measured_on_the_profiles_machine(tmp_path):
    here = this_machine()
    path = learned_path("host-cpu", "onnxruntime", here, root=tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(replace(_small_profile(), fingerprint=here).to_dict()))
    stored = _synthetic_runs(12)
    measurements_path(path).write_bytes(gzip.compress(json.dumps(runs_to_dict(stored)).encode()))
    _observed.record(_mlp(tmp_path / "m.onnx", 64), threads=1, measured_s=9e-6, source="bench", machine=here,
                     folder=tmp_path / "measured")
    refit = refit_learned(path, observed_folder=tmp_path / "measured")
    assert refit.training["model_runs"] == len(stored) + 1 and refit.training["networks"] == 13
    assert refit.training["observed"] == {"runs": 1, "sources": {"bench": 1}, "unreadable_lines": 0}
    alone = refit_learned(path, observed_folder=tmp_path / "nothing-here")
    assert alone.training["model_runs"] == len(stored) and alone.training["observed"]["runs"] == 0


def test_bench_records_an_onnxruntime_run_unless_told_not_to(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFIT_MEASURED_DIR", str(tmp_path / "measured"))
    model = _mlp(tmp_path / "m.onnx", 64)
    code, out, err = run_cli("bench", str(model), "--runs", "20", "--warmup", "2", "--json")
    assert code == 0, err
    recorded = json.loads(out)["recorded"]
    assert recorded["error"] is None and Path(recorded["path"]).parent == tmp_path / "measured"
    lines = Path(recorded["path"]).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["source"] == "bench"
    code, out, err = run_cli("bench", str(model), "--runs", "20", "--warmup", "2", "--no-record", "--json")
    assert code == 0 and json.loads(out)["recorded"] is None
    assert len(Path(recorded["path"]).read_text().splitlines()) == 1


def test_check_records_its_host_cpu_measurement_unless_told_not_to(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFIT_MEASURED_DIR", str(tmp_path / "measured"))
    model = _mlp(tmp_path / "m.onnx", 64)
    code, out, err = run_cli("check", str(model), "--target", "host-cpu", "--json")
    assert code in (0, 1), err
    recorded = json.loads(out)["measured"]["recorded"]
    assert recorded["error"] is None and Path(recorded["path"]).parent == tmp_path / "measured"
    (line,) = Path(recorded["path"]).read_text().splitlines()
    assert json.loads(line)["source"] == "check"
    code, out, err = run_cli("check", str(model), "--target", "host-cpu", "--no-record", "--json")
    assert code in (0, 1) and "recorded" not in json.loads(out)["measured"]
    assert len(Path(recorded["path"]).read_text().splitlines()) == 1
