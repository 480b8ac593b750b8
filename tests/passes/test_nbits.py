"""The MatMulNBits pass (edgefit/passes/_nbits.py), added as the proof of #15's "adding a pass touches its own
module and its test only": its config, its handler, and the precision it adds to the search."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgefit.errors import EdgefitError
from edgefit.passes import (PassContext, PassNotApplicable, PassPlan, apply_pass, get_pass, get_precision,
                            list_passes, materialize)
from edgefit.passes._nbits import NBitsConfig
from edgefit.search import Choice, SpaceOptions, build_space

import toy_onnx

PRECISION = "int4-weight-int8-compute"


@pytest.fixture
def mlp(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(toy_onnx.mlp(sizes=(64, 128, 128, 16)), str(path))
    return path


def outputs(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, f)[0] for f in feeds])


def sqnr_db(reference, test):
    return 10 * np.log10(np.sum(reference**2) / max(np.sum((reference - test) ** 2), 1e-30))


def test_the_pass_registers_itself_and_its_precision():
    assert get_pass("matmul-nbits").config_type is NBitsConfig and "matmul-nbits" in [p.name for p in list_passes()]
    row = get_precision(PRECISION)
    assert row.slot == "quantize" and row.estimate_dtype == "int4" and row.config() == NBitsConfig()


@pytest.mark.parametrize("bits, min_db", [(4, 12.0), (8, 30.0)])  # random weights: measured ~19 dB and ~40 dB
def test_matmul_weights_become_matmulnbits_with_int8_compute(mlp, tmp_path, bits, min_db):
    feeds = toy_onnx.feeds(onnx.load(str(mlp)), n=16)
    out = apply_pass(mlp, NBitsConfig(bits=bits), PassContext(work_dir=tmp_path / "out"))
    graph = onnx.load(str(out.model)).graph
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == 3 and not [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    attrs = {a.name: a.i for a in nbits[0].attribute}
    assert attrs["bits"] == bits and attrs["block_size"] == 32 and attrs["accuracy_level"] == 4
    assert out.change_kind == "quantization" and "3 MatMulNBits" in out.metadata["recipe"]
    assert sqnr_db(outputs(mlp, feeds), outputs(out.model, feeds)) > min_db


def test_a_model_without_matmul_weights_is_not_applicable(tmp_path):
    path = tmp_path / "conv.onnx"
    model = toy_onnx.convnet()
    model.graph.node[-1].op_type = "Identity"  # drop the Gemm head: Conv only
    del model.graph.node[-1].input[1:]
    del model.graph.node[-1].attribute[:]
    onnx.save(model, str(path))
    with pytest.raises(PassNotApplicable, match="no MatMul/Gemm"):
        apply_pass(path, NBitsConfig(), PassContext(work_dir=tmp_path / "out"))


def test_bad_fields_are_one_line_naming_the_field():
    for bad in ({"bits": 3}, {"block_size": 48}, {"accuracy_level": 9}, {"symmetric": "yes"}):
        with pytest.raises(EdgefitError, match=f"NBitsConfig.{next(iter(bad))}"):
            NBitsConfig(**bad)


def test_the_search_offers_it_where_matmuls_carry_the_macs_and_materializes_it(mlp, tmp_path):
    int8 = ("fp32", "int8")
    assert PRECISION in {c.precision for c in build_space(SpaceOptions(target_dtypes=int8, has_matmul=True))}
    assert PRECISION not in {c.precision for c in build_space(SpaceOptions(target_dtypes=int8))}
    assert PRECISION not in {c.precision for c in build_space(SpaceOptions(target_dtypes=("fp32",), has_matmul=True))}
    assert Choice(precision=PRECISION).label == PRECISION

    plan = PassPlan(quantize=get_precision(PRECISION).config())
    assert PassPlan.from_dict(plan.to_dict()) == plan  # the allow-list knows it: results.json plans load back
    done = materialize(str(mlp), plan, PassContext(work_dir=tmp_path / "cand"))
    assert "MatMulNBits" in {n.op_type for n in onnx.load(str(done.onnx_path)).graph.node}
    assert done.change_kinds == ("quantization",)
