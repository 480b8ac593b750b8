"""The one onnxruntime session builder (edgefit/_ort.py, #15 "one measurement path")."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgefit._ort import ort_session, session_options
from edgefit.runtimes.testing import tiny_model


def test_every_session_runs_sequentially_with_the_threads_and_level_asked_for():
    so = session_options(2, opt_level="basic")
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert session_options(None).intra_op_num_threads == 0  # onnxruntime's own default
    assert session_options().graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with pytest.raises(ValueError, match="opt_level 'max'"):
        session_options(opt_level="max")


def test_a_path_bytes_or_proto_open_the_same_model(tmp_path):
    model = tiny_model()
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(0).normal(size=(1, *[d.dim_value for d in
                                                   model.graph.input[0].type.tensor_type.shape.dim][1:]))
    feed = {model.graph.input[0].name: x.astype(np.float32)}
    outs = [ort_session(m).run(None, feed)[0] for m in (path, str(path), path.read_bytes(), model)]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_profiling_and_the_optimized_graph_are_written_where_asked(tmp_path):
    sess = ort_session(tiny_model(), profile_prefix=tmp_path / "prof", optimized_path=tmp_path / "opt.onnx")
    assert (tmp_path / "opt.onnx").is_file()
    inp = sess.get_inputs()[0]
    sess.run(None, {inp.name: np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], np.float32)})
    assert sess.end_profiling().startswith(str(tmp_path / "prof"))


def test_no_other_module_builds_its_own_session():
    """One measurement path: a second hand-built SessionOptions drifts (threads, level, execution mode)."""
    from pathlib import Path

    import edgefit

    root = Path(edgefit.__file__).parent
    builders = [str(p.relative_to(root)) for p in root.rglob("*.py") if p.name != "_ort.py"
                and ("InferenceSession(" in p.read_text() or "SessionOptions()" in p.read_text())]
    assert builders == []
