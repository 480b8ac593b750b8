"""A run folder for report tests, without running the optimizer.

``data/results-*.json`` are real results.json files (edgefit optimize on host-cpu, measured; and on
orin, estimated) with the run folder replaced by ``{run}``. The fixture writes them into a temporary
folder next to small ONNX models at the candidates' paths, and the winner's file as model.onnx, so the
report can re-estimate the winner and compare the exported file with the evaluated one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def tiny_conv_model(n_layers: int = 3, channels: int = 8, size: int = 16):
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], "x"
    rng = np.random.default_rng(0)
    for i in range(n_layers):
        w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           [1, channels, size, size])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def make_run(folder: Path, fixture: str = "host-cpu", *, edit=None) -> Path:
    """Write results.json (from ``data/results-<fixture>.json``) and its model files into ``folder``."""
    res = json.loads((DATA / f"results-{fixture}.json").read_text().replace("{run}", str(folder)))
    if edit is not None:
        edit(res)
    blob = tiny_conv_model().SerializeToString()
    for c in res["candidates"]:
        if c.get("onnx"):
            Path(c["onnx"]).parent.mkdir(parents=True, exist_ok=True)
            Path(c["onnx"]).write_bytes(blob)
    winner = next((c for c in res["candidates"] if c["key"] == res["selection"]["winner"]), None)
    if winner is not None:
        shutil.copyfile(winner["onnx"], folder / "model.onnx")
    (folder / "results.json").write_text(json.dumps(res, indent=1))
    return folder / "results.json"


@pytest.fixture(scope="session")
def tiny_model():
    """``tiny_model(n_layers=3)`` → a small conv ONNX model (serializable, runs on onnxruntime)."""
    return tiny_conv_model


@pytest.fixture(scope="session")
def new_run(tmp_path_factory):
    """``new_run(fixture="host-cpu", edit=None)`` → a fresh run folder (``edit`` changes results first)."""
    def make(fixture: str = "host-cpu", *, edit=None) -> Path:
        folder = tmp_path_factory.mktemp("run")
        make_run(folder, fixture, edit=edit)
        return folder

    return make


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A host-cpu run (measured latency) with its files; returns the folder."""
    make_run(tmp_path)
    return tmp_path


@pytest.fixture
def results(run_dir) -> dict:
    return json.loads((run_dir / "results.json").read_text())
