"""Evaluation data checks and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.errors import EdgefitError
from edgefit.evaluate import check_data, load_npz, run_outputs, score, sqnr_db


def test_load_and_check(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((5, 1, 4, 4), np.float32), y=np.array([0, 1, 2, 1, 0]))
    data = check_data(load_npz(path), (1, 1, 4, 4), "float32", 3)
    assert len(data) == 5 and data.y.tolist() == [0, 1, 2, 1, 0]


@pytest.mark.parametrize("arrays, shape, n_out, fragment", [
    ({"x": np.zeros((3, 2, 4))}, (1, 1, 4, 4), 3, "per-sample shape"),
    ({"x": np.zeros((3, 1, 4, 4)), "y": np.array([0, 1, 7])}, (1, 1, 4, 4), 3, r"labels range over \[0, 7\]"),
    ({"x": np.zeros((3, 1, 4, 4)), "y": np.array([0, 1])}, (1, 1, 4, 4), 3, "one per input"),
    ({"x": np.zeros((3, 1, 4, 4)), "y": np.array([0.0, 1.0, 2.0])}, (1, 1, 4, 4), 3, "integer class ids"),
    ({"x": np.zeros((3, 1, 4, 4), np.int64)}, (1, 1, 4, 4), 3, "the model takes float32"),
    ({"images": np.zeros((3, 1, 4, 4))}, (1, 1, 4, 4), 3, "no inputs array"),
])
def test_bad_data_is_one_clear_line(tmp_path, arrays, shape, n_out, fragment):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(EdgefitError, match=fragment) as info:
        check_data(load_npz(path), shape, "float32", n_out)
    assert "--data" in str(info.value) and "\n" not in str(info.value)


def test_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(EdgefitError, match="cannot read"):
        load_npz(path)


def test_scores():
    ref = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    out = np.array([[0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labelled = score(out, np.array([1, 0, 1]), ref)
    assert labelled.kind == "top1" and labelled.value == pytest.approx(2 / 3)
    fidelity = score(out, None, ref)
    assert fidelity.kind == "agreement" and fidelity.value == pytest.approx(2 / 3) and "not accuracy" in fidelity.label
    assert sqnr_db(ref, ref) == float("inf") and 0 < sqnr_db(ref, out) < 30


def test_run_outputs_pads_fixed_batches():
    class Sess:
        class I:
            shape, name = [2, 3], "x"

        def get_inputs(self):
            return [self.I]

        def run(self, _, feeds):
            assert feeds["x"].shape[0] == 2
            return [feeds["x"] * 2]

    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    assert np.array_equal(run_outputs(Sess(), x), x * 2)


def test_sqnr_metric_and_its_errors():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    s = score(ref + 0.01, None, ref, "sqnr")
    assert s.kind == "sqnr" and 40 < s.value < 60 and "dB" in s.label
    with pytest.raises(ValueError, match="needs the original"):
        score(ref, None, None, "sqnr")
    with pytest.raises(ValueError, match="needs labels"):
        score(ref, None, ref, "top1")
