"""Fuzzing the ONNX intake: onnx's own backend node-test models, hand-made hostile files, random graphs.

Every input must end in exit 0 (a valid model, maybe with warnings) or exit 2 with one line — never a
traceback and never a hang (each input runs under a time limit). The backend models are regenerated
from onnx's code at test time (no download); all of them go through ``load_graph`` and a sample of
them through ``edgefit inspect --json`` in-process.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx_corpus import CASES, Case

from edgefit.errors import EdgefitError
from edgefit.graph import load_graph

CLI_SAMPLE_EVERY = 8  # one backend model in 8 also goes through the CLI round trip


@pytest.fixture(scope="module")
def backend_models() -> list[tuple[str, onnx.ModelProto]]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):  # the reference outputs overflow on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [(c.name, c.model) for c in cases]


def _assert_sane(graph, label: str) -> None:
    for name in ("macs", "params", "weight_bytes", "peak_activation_bytes"):
        value = getattr(graph, name)
        assert isinstance(value, int) and 0 <= value < 2**53, f"{label}: {name} = {value}"
    assert all(layer.macs >= 0 and layer.ops >= 0 for layer in graph.layers), label


@pytest.mark.slow
def test_every_backend_node_model_loads_or_is_refused_in_one_line(backend_models, time_limit):
    assert len(backend_models) >= 300
    tally = {"loaded": 0, "refused": 0}
    for name, model in backend_models:
        with time_limit(name):
            try:
                graph = load_graph(model, source=name)
            except EdgefitError as exc:
                assert "\n" not in str(exc), name
                tally["refused"] += 1
                continue
        _assert_sane(graph, name)
        tally["loaded"] += 1
    print(f"\nbackend node models: {len(backend_models)}, {tally}")
    # onnx's own test models are valid; a few legitimately need a shape or hit onnx limits, not more
    assert tally["refused"] <= len(backend_models) // 50, tally


@pytest.mark.slow
def test_a_sample_of_backend_models_through_the_cli(backend_models, tmp_path, run_cli, time_limit,
                                                     one_line_error):
    codes = {0: 0, 2: 0}
    for name, model in backend_models[::CLI_SAMPLE_EVERY]:
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        with time_limit(name):
            code, out, err = run_cli("inspect", str(path), "--json")
        if code == 0:
            assert "Traceback" not in err, name
            summary = json.loads(out)
            assert summary["macs"] >= 0 and math.isfinite(summary["macs"]), name
        else:
            one_line_error(code, out, err, name)
        codes[code] += 1
    print(f"\nbackend models through the CLI: {sum(codes.values())}, exit codes {codes}")
    assert codes[0] > 0.95 * sum(codes.values())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_and_odd_models_through_the_cli(case: Case, tmp_path, run_cli, time_limit, one_line_error):
    path = case.make(tmp_path)
    with time_limit(case.name):
        code, out, err = run_cli("inspect", str(path), "--json")
    if case.code == 2:
        line = one_line_error(code, out, err, case.name)
        assert re.search(case.says, line), f"{case.name}: {line}"
    else:
        assert code == 0 and "Traceback" not in err, f"{case.name}: exit {code}: {err}"
        summary = json.loads(out)
        said = " | ".join(summary["warnings"] + summary["notes"])
        assert re.search(case.says, said), f"{case.name}: {said!r}"
        assert 0 <= summary["macs"] < 2**53


@pytest.mark.slow
def test_estimate_gives_the_same_verdict_as_inspect_on_every_hostile_model(tmp_path, run_cli, time_limit,
                                                                            one_line_error):
    for case in CASES:
        folder = tmp_path / case.name
        folder.mkdir()
        path = case.make(folder)
        # numpy's RuntimeWarnings (a NaN cast to int8) would print a source line to the user
        with time_limit(case.name), warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            code, out, err = run_cli("estimate", str(path), "--target", "ethos-u55", "--json")
        if case.code == 2:
            assert re.search(case.says, one_line_error(code, out, err, case.name)), case.name
        else:
            assert code == 0 and "Traceback" not in err, f"{case.name}: exit {code}: {err}"


def test_a_pickle_named_onnx_is_never_unpickled(tmp_path, run_cli):
    path = next(c for c in CASES if c.name == "pickle").make(tmp_path)
    code, _, err = run_cli("inspect", str(path), "--json")
    assert code == 2 and "pickle" in err
    assert not (tmp_path / "UNPICKLED").exists()


def test_external_data_outside_the_folder_is_never_read(tmp_path, monkeypatch):
    """The refusal comes before any read: opening the outside file would fail this test."""
    import builtins

    secret = (tmp_path / "secret.bin").resolve()
    path = next(c for c in CASES if c.name == "external-dotdot").make(tmp_path)
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        assert str(file) != str(secret) and "secret" not in str(file), f"opened {file}"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    with pytest.raises(EdgefitError, match="outside the model's folder"):
        load_graph(path)


# --- property: random small graphs, sometimes inconsistent ---------------------------------------------


@st.composite
def random_graphs(draw) -> tuple[onnx.ModelProto, bool]:
    """A chain of Conv/Gemm/Relu/Add/Reshape over a random input. Each node fits the shape so far
    unless a 1-in-6 draw makes it wrong (a mismatched weight, an unbroadcastable operand, a bad
    reshape, an op of the wrong rank); the declared output is sometimes wrong, the input now and then
    absurd. So about half the graphs are valid and half broken in one or more places. Returns the model
    and whether it was built valid (a wrong draw may still fit by chance: False means "not known")."""
    dim = st.integers(1, 6)
    shape = draw(st.sampled_from([[draw(dim), draw(dim)],
                                  [draw(dim), draw(dim), draw(st.integers(1, 8)), draw(st.integers(1, 8))]]))
    if draw(st.integers(0, 20)) == 0:
        shape[0] = draw(st.sampled_from([0, 2**31, 2**41, 2**62]))
    nodes, inits, cur, believed = [], [], "x", list(shape)
    valid = shape[0] <= 6
    for i in range(draw(st.integers(1, 6))):
        wrong = draw(st.integers(0, 5)) == 0
        valid = valid and not wrong
        fits = ["Conv", "Relu", "Add", "Reshape"] if len(believed) == 4 else ["Gemm", "Relu", "Add"]
        op = draw(st.sampled_from(["Conv", "Gemm", "Relu", "Add", "Reshape"] if wrong else fits))
        out, w_name = f"t{i}", f"w{i}"
        if op == "Conv":
            ok = len(believed) == 4 and not wrong
            k = draw(st.integers(1, min(believed[2:]) if ok else 3))
            w = np.ones((draw(dim), believed[1] if ok else draw(dim), k, k), np.float32)
            inits.append(numpy_helper.from_array(w, w_name))
            nodes.append(helper.make_node("Conv", [cur, w_name], [out], name=f"n{i}"))
            if len(believed) == 4:
                believed = [believed[0], w.shape[0], believed[2] - k + 1, believed[3] - k + 1]
        elif op == "Gemm":
            w = np.ones((believed[-1] if not wrong else draw(dim), draw(dim)), np.float32)
            inits.append(numpy_helper.from_array(w, w_name))
            nodes.append(helper.make_node("Gemm", [cur, w_name], [out], name=f"n{i}"))
            believed = [believed[0], w.shape[1]]
        elif op == "Add":
            other = [draw(dim) for _ in believed] if wrong else [1] + believed[1:]
            inits.append(numpy_helper.from_array(np.ones(other, np.float32), w_name))
            nodes.append(helper.make_node("Add", [cur, w_name], [out], name=f"n{i}"))
        elif op == "Reshape":
            target = [believed[0], -1] if not wrong else draw(st.sampled_from([[draw(dim), 7], [draw(dim)], [-1, -1]]))
            inits.append(numpy_helper.from_array(np.array(target, np.int64), w_name))
            nodes.append(helper.make_node("Reshape", [cur, w_name], [out], name=f"n{i}"))
            believed = [believed[0], math.prod(believed[1:])]
        else:
            nodes.append(helper.make_node("Relu", [cur], [out], name=f"n{i}"))
        cur = out
    declared = draw(st.sampled_from([None, believed, believed, [draw(dim)]]))
    valid = valid and declared in (None, believed)
    graph = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, declared)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model, valid


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])  # time_limit holds no state
@given(case=random_graphs())
def test_random_graphs_load_with_sane_counts_or_raise_edgefit_error(case, time_limit):
    model, valid = case
    with time_limit("random graph"):
        try:
            graph = load_graph(model)
        except EdgefitError as exc:
            assert "\n" not in str(exc)
            assert not valid, f"a valid graph was refused: {exc}"
            return
    _assert_sane(graph, "random graph")
    if valid and math.prod(graph.inputs["x"]) and any(n.op_type in ("Conv", "Gemm") for n in model.graph.node):
        assert graph.macs > 0  # an empty batch (a 0 dim) is valid and does no work


def _small_convnet() -> bytes:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "s"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.array([1, -1], np.int64), "s"),
             numpy_helper.from_array(np.ones((32, 5), np.float32), "g")]
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


SEED_MODEL = _small_convnet()


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixtures hold no state
@given(edits=st.lists(st.tuples(st.sampled_from(["set", "drop", "insert"]), st.integers(0, len(SEED_MODEL) - 1),
                                st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
def test_byte_mutations_of_a_valid_file_load_or_raise_one_line(edits, tmp_path, time_limit):
    data = bytearray(SEED_MODEL)
    for kind, at, chunk in edits:
        at = min(at, len(data))
        if kind == "set":
            data[at:at + len(chunk)] = chunk
        elif kind == "drop":
            del data[at:at + len(chunk)]
        else:
            data[at:at] = chunk
    path = tmp_path / "mutated.onnx"
    path.write_bytes(bytes(data))
    with time_limit("mutated file"):
        try:
            graph = load_graph(path)
        except EdgefitError as exc:
            assert "\n" not in str(exc)
            return
    _assert_sane(graph, "mutated file")
    assert all("\n" not in line for line in graph.warnings + graph.notes)
