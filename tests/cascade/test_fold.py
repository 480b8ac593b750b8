"""The calibrated confidence: the numpy reference against hand-worked values, and the folded ONNX graph
and the sidecar against the reference on random outputs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from edgefit.cascade._fold import (CALIBRATED_PROBABILITIES, CONFIDENCE, CannotFold, apply_sidecar,
                                   calibrated_probabilities, calibrator_confidence, fold_calibrator, fold_or_sidecar,
                                   read_sidecar, write_sidecar)
from edgefit.cascade._types import Calibrator
from edgefit.errors import EdgefitError

# by path: with tests/report on sys.path too, the name "conftest" can mean the other folder's
_spec = importlib.util.spec_from_file_location("cascade_conftest_models", Path(__file__).with_name("conftest.py"))
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
gemm_model = _conftest.gemm_model


def test_reference_by_hand():
    # softmax([2, 0] / 2) = e / (e + 1)
    t = Calibrator("temperature", "logits", temperature=2.0)
    assert calibrator_confidence([[2.0, 0.0]], t)[0] == pytest.approx(np.e / (np.e + 1))
    # probabilities: softmax(log p / 2) = sqrt(p) normalized; p = (0.2, 0.8) -> 2 / 3
    tp = Calibrator("temperature", "probabilities", temperature=2.0)
    assert calibrator_confidence([[0.2, 0.8]], tp)[0] == pytest.approx(2 / 3)
    iso = Calibrator("isotonic", "probabilities", knots_x=(0.5, 0.9), knots_y=(0.4, 1.0))
    got = calibrator_confidence([[0.2, 0.8], [0.45, 0.55], [0.01, 0.99], [0.6, 0.4]], iso)
    np.testing.assert_allclose(got, [0.85, 0.475, 1.0, 0.55])
    # huge logits: max-subtraction keeps it finite
    assert calibrator_confidence([[1000.0, 0.0]], Calibrator("none", "logits"))[0] == 1.0


@pytest.mark.parametrize("bad", [
    Calibrator("temperature", "logits", temperature=0.0),
    Calibrator("temperature", "logits", temperature=float("nan")),
    Calibrator("isotonic", "logits"),
    Calibrator("isotonic", "logits", knots_x=(0.5, 0.5), knots_y=(0.1, 0.2)),
    Calibrator("isotonic", "logits", knots_x=(0.5,), knots_y=(0.1, 0.2)),
    Calibrator("platt", "logits"),  # type: ignore[arg-type]
])
def test_reference_refuses_bad_calibrators(bad):
    with pytest.raises(EdgefitError, match="calibrator"):
        calibrator_confidence([[1.0, 0.0]], bad)


def test_reference_refuses_wrong_rank():
    with pytest.raises(EdgefitError, match=r"shape \(3,\)"):
        calibrator_confidence([1.0, 2.0, 3.0], Calibrator("none", "logits"))


# --- the folded graph against the reference ----------------------------------------------------------

CALIBRATORS = {
    "temperature": lambda kind: Calibrator("temperature", kind, temperature=1.7),
    "isotonic": lambda kind: Calibrator("isotonic", kind, knots_x=(0.22, 0.3, 0.5, 0.62, 0.9),
                                        knots_y=(0.05, 0.35, 0.6, 0.61, 0.97)),
    "none": lambda kind: Calibrator("none", kind),
}


def _run(path, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))


@pytest.mark.parametrize("opset", [7, 9, 11, 13, 17, 18, 21])
@pytest.mark.parametrize("kind", ["logits", "probabilities"])
@pytest.mark.parametrize("method", sorted(CALIBRATORS))
def test_folded_graph_matches_reference(tmp_path, opset, kind, method):
    import onnx

    src, dst = tmp_path / "m.onnx", tmp_path / "m.cal.onnx"
    onnx.save(gemm_model(opset=opset, softmax=kind == "probabilities"), src)
    cal = CALIBRATORS[method](kind)
    assert fold_calibrator(src, cal, dst) == dst
    onnx.checker.check_model(onnx.load(dst), full_check=True)
    rng = np.random.default_rng(opset)
    x = (rng.normal(0, 1, (400, 64)) * rng.uniform(0.02, 2.0, (400, 1))).astype(np.float32)  # flat to peaked
    before, after = _run(src, x), _run(dst, x)
    np.testing.assert_array_equal(after["scores"], before["scores"])  # the first output is untouched
    ref = calibrator_confidence(before["scores"], cal)
    assert after[CONFIDENCE].dtype == np.float32 and after[CONFIDENCE].shape == (400,)
    np.testing.assert_allclose(after[CONFIDENCE], ref, atol=1e-5, rtol=0)
    if method == "temperature":
        np.testing.assert_allclose(after[CALIBRATED_PROBABILITIES],
                                   calibrated_probabilities(before["scores"], cal), atol=1e-5, rtol=0)
    else:
        assert CALIBRATED_PROBABILITIES not in after
    if method == "isotonic":  # the inputs reach both clipped ends and the inside
        assert (ref == 0.05).any() and (ref == 0.97).any() and ((ref > 0.05) & (ref < 0.97)).any()


def _identity(tmp_path, classes: int):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["scores"])], "id",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", classes])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", classes])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "id.onnx")
    return tmp_path / "id.onnx"


def test_isotonic_lookup_on_the_knots_and_between(tmp_path):
    """Probabilities given as they are (an Identity model), so the top-1 lands exactly on each knot,
    between knots and past both ends: the lookup is np.interp there too."""
    cal = Calibrator("isotonic", "probabilities", knots_x=(0.5, 0.625, 0.75, 0.875), knots_y=(0.25, 0.5, 0.5, 1.0))
    fold_calibrator(_identity(tmp_path, 2), cal, tmp_path / "cal.onnx")
    top = np.array([0.5, 0.5625, 0.625, 0.6875, 0.75, 0.8125, 0.875, 0.9375, 1.0], np.float32)
    x = np.stack([top, 1 - top], axis=1)
    got = _run(tmp_path / "cal.onnx", x)[CONFIDENCE]
    np.testing.assert_allclose(got, [0.25, 0.375, 0.5, 0.5, 0.5, 0.75, 1.0, 1.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(got, calibrator_confidence(x, cal), atol=1e-7)


def test_fp16_output_is_cast_before_calibrating(tmp_path):
    import onnx
    from onnx import TensorProto

    onnx.save(gemm_model(out_type=TensorProto.FLOAT16), tmp_path / "h.onnx")
    cal = CALIBRATORS["temperature"]("logits")
    fold_calibrator(tmp_path / "h.onnx", cal, tmp_path / "h.cal.onnx")
    x = np.random.default_rng(0).normal(size=(50, 64)).astype(np.float32)
    out = _run(tmp_path / "h.cal.onnx", x)
    assert out["scores"].dtype == np.float16
    np.testing.assert_allclose(out[CONFIDENCE], calibrator_confidence(out["scores"], cal), atol=1e-5)


def _external(tmp_path):
    import onnx

    onnx.save(gemm_model(), tmp_path / "ext.onnx", save_as_external_data=True, size_threshold=0,
              location="ext.onnx.data")
    return tmp_path / "ext.onnx"


def _rank3(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "r3",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 10])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "r3.onnx")
    return tmp_path / "r3.onnx"


def _named_confidence(tmp_path):
    import onnx

    model = gemm_model()
    model.graph.node[-1].output[0] = "confidence"
    model.graph.output[0].name = "confidence"
    onnx.save(model, tmp_path / "named.onnx")
    return tmp_path / "named.onnx"


def _int_output(tmp_path):
    import onnx
    from onnx import TensorProto

    onnx.save(gemm_model(out_type=TensorProto.INT32), tmp_path / "int.onnx")
    return tmp_path / "int.onnx"


@pytest.mark.parametrize("make, reason", [
    (_external, "external data"), (_rank3, "rank 3, not (N, classes)"),
    (_named_confidence, "already has a value named 'confidence'"), (_int_output, "is INT32, not a float"),
])
def test_unfoldable_models_get_a_sidecar(tmp_path, make, reason):
    src = make(tmp_path)
    cal = CALIBRATORS["isotonic"]("logits")
    with pytest.raises(CannotFold, match=re.escape(reason)):
        fold_calibrator(src, cal, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
    model, sidecar = fold_or_sidecar(src, cal, tmp_path / "out.onnx", tmp_path / "out.calibrator.json")
    assert model is None and sidecar == tmp_path / "out.calibrator.json"
    doc = read_sidecar(sidecar)
    assert doc["schema"] == "edgefit-calibrator/1" and reason in doc["not_folded_because"]
    assert Calibrator.from_dict(doc) == cal


def test_fold_or_sidecar_folds_when_it_can(tmp_path):
    import onnx

    onnx.save(gemm_model(), tmp_path / "m.onnx")
    model, sidecar = fold_or_sidecar(tmp_path / "m.onnx", CALIBRATORS["none"]("logits"), tmp_path / "c.onnx",
                                     tmp_path / "c.json")
    assert model == tmp_path / "c.onnx" and sidecar is None and not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("method", sorted(CALIBRATORS))
@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_sidecar_round_trip_is_the_reference(tmp_path, method, kind):
    cal = CALIBRATORS[method](kind)
    rng = np.random.default_rng(3)
    outputs = rng.normal(0, 2, (200, 10))
    if kind == "probabilities":
        outputs = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    doc = read_sidecar(write_sidecar(cal, tmp_path / "s.json"))
    np.testing.assert_array_equal(apply_sidecar(outputs, doc), calibrator_confidence(outputs, cal))


def test_bad_model_and_bad_sidecar_are_one_line(tmp_path):
    whole = gemm_model().SerializeToString()
    (tmp_path / "junk.onnx").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(EdgefitError, match="junk.onnx.*truncated"):
        fold_calibrator(tmp_path / "junk.onnx", Calibrator("none", "logits"), tmp_path / "o.onnx")
    with pytest.raises(EdgefitError, match="model file not found"):
        fold_calibrator(tmp_path / "missing.onnx", Calibrator("none", "logits"), tmp_path / "o.onnx")
    with pytest.raises(EdgefitError, match="sidecar.schema"):
        apply_sidecar([[1.0, 0.0]], {"schema": "something-else/1", "method": "none", "output_kind": "logits"})
    with pytest.raises(EdgefitError, match="sidecar"):
        apply_sidecar([[1.0, 0.0]], {"schema": "edgefit-calibrator/1"})


@pytest.mark.parametrize("cal", [
    Calibrator("temperature", "probabilities", temperature=0.6),  # log(0) = -inf: a zero stays zero
    Calibrator("isotonic", "probabilities", knots_x=(0.7,), knots_y=(0.8,)),  # one knot: a constant
])
def test_zero_probabilities_and_a_single_knot(tmp_path, cal):
    src = _identity(tmp_path, 3)
    fold_calibrator(src, cal, tmp_path / "cal.onnx")
    x = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.9, 0.1]], np.float32)
    got = _run(tmp_path / "cal.onnx", x)[CONFIDENCE]
    ref = calibrator_confidence(x, cal)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, atol=1e-6)
