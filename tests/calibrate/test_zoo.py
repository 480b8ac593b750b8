"""The fidelity zoo: enough diverse architectures, each builds; the CI subset exports and quantizes as promised."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edgefit.calibrate._zoo import RECIPES, ZOO, zoo_onnx, zoo_specs
from edgefit.errors import EdgefitError

torch = pytest.importorskip("torch")


def test_zoo_is_large_and_diverse_enough_for_leave_one_family_out():
    families = Counter(s.family for s in ZOO)
    assert len(ZOO) >= 24 and len(families) >= 10
    assert min(families.values()) >= 2, families
    assert len({s.name for s in ZOO}) == len(ZOO)
    assert {"vgg", "mbconv", "resnet", "unet", "tcn", "rnn", "mlp", "mixer", "transformer", "kws", "autoencoder",
            "squeezenet"} <= set(families)
    for family in families:  # members differ in size or shape, not only in name
        members = zoo_specs(families={family})
        sizes = {(s.input_shape, sum(p.numel() for p in s.build().parameters())) for s in members}
        assert len(sizes) == len(members), family


def test_ci_and_mcu_subsets():
    ci, mcu = zoo_specs("ci"), zoo_specs("mcu")
    assert 6 <= len(ci) <= 8 and len({s.family for s in ci}) >= 5
    assert len(mcu) >= 9 and len({s.family for s in mcu}) >= 6
    assert not any(s.family == "rnn" for s in mcu + zoo_specs("mcu-partial"))  # no int8 GRU/LSTM on Ethos-U
    assert not {s.name for s in mcu} & {s.name for s in zoo_specs("mcu-partial")}
    assert zoo_specs(families={"kws"}) == [s for s in ZOO if s.family == "kws"]
    assert zoo_specs("mcu", families={"kws"}) == [s for s in mcu if s.family == "kws"]


def test_mcu_models_avoid_what_litert_torch_int8_leaves_in_float():
    """Found with litert-torch PT2E int8 + Vela (ethos-u55-128): these stay float and run on the CPU.

    (A ConvTranspose is int8 only where a Concat consumes it, as in the U-Net; not before a ReLU.)
    """
    from torch import nn

    float_only = (nn.LayerNorm, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.GRU, nn.LSTM)
    for spec in zoo_specs("mcu"):
        module = spec.build()
        assert not [type(m).__name__ for m in module.modules() if isinstance(m, float_only)], spec.name
        weights = sum(p.numel() for p in module.parameters())  # bytes once int8
        assert weights <= 1_000_000, spec.name


def test_bad_tag_family_or_recipe_is_one_clear_error(tmp_path):
    with pytest.raises(EdgefitError, match="unknown zoo tag 'gpu'.*ci"):
        zoo_specs("gpu")
    with pytest.raises(EdgefitError, match="unknown zoo families.*'yolo'"):
        zoo_specs(families={"yolo", "mlp"})
    with pytest.raises(EdgefitError, match="unknown zoo recipe 'int4'.*int8-default"):
        zoo_onnx(ZOO[0], "int4", tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("spec", ZOO, ids=lambda s: s.name)
def test_every_spec_builds_in_eval_mode_and_runs(spec):
    module = spec.build()
    assert not module.training
    with torch.no_grad():
        y = module(torch.randn(spec.input_shape))
    assert y.shape[0] == 1 and torch.isfinite(y).all()


def test_build_is_seeded():
    spec = zoo_specs("ci")[0]
    a, b = spec.build().state_dict(), spec.build().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def ci_exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return {(s.name, r): zoo_onnx(s, r, folder) for s in zoo_specs("ci") for r in RECIPES}


@pytest.mark.slow
def test_ci_subset_exports_and_quantizes_into_files_onnxruntime_runs(ci_exports):
    import onnx
    import onnxruntime as ort

    for (name, recipe), path in ci_exports.items():
        spec = next(s for s in ZOO if s.name == name)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (inp,) = sess.get_inputs()
        outputs = sess.run(None, {inp.name: np.random.default_rng(0).standard_normal(spec.input_shape,
                                                                                     dtype=np.float32)})
        assert all(np.isfinite(o).all() for o in outputs), (name, recipe)
        ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
        if recipe == "fp32":
            assert not ops["QuantizeLinear"] and not ops["DequantizeLinear"], name
        else:
            assert ops["QuantizeLinear"] and ops["DequantizeLinear"], (name, recipe)


@pytest.mark.slow
def test_cached_file_is_reused(ci_exports, tmp_path):
    (name, recipe), path = next(iter(ci_exports.items()))
    before = path.stat().st_mtime_ns
    assert zoo_onnx(next(s for s in ZOO if s.name == name), recipe, path.parent) == path
    assert path.stat().st_mtime_ns == before


def _weight_dequantizers(path):
    """(weight int8 array, scale, zero point, axis) of every DequantizeLinear fed by a ≥ 2-D int8 initializer."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        w = inits.get(node.input[0])
        if node.op_type == "DequantizeLinear" and w is not None and w.dtype == np.int8 and w.ndim >= 2:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            yield w, inits[node.input[1]], inits[node.input[2]], axis


def _activation_zero_point_dtypes(path):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    return {inits[n.input[2]].dtype for n in graph.node if n.op_type == "QuantizeLinear"}


@pytest.mark.slow
def test_int8_recipes_are_the_promised_ones(ci_exports):
    for (name, recipe), path in ci_exports.items():
        if recipe == "fp32":
            continue
        weights = list(_weight_dequantizers(path))
        assert weights, (name, recipe)
        if recipe == "int8-default":  # quantize_static defaults: S8 activations, per-tensor S8 weights
            assert _activation_zero_point_dtypes(path) == {np.dtype(np.int8)}, name
            assert all(scale.ndim == 0 and zp.ndim == 0 for _, scale, zp, _ in weights), name
        else:  # U8 activations, per-channel S8 weights: one scale and zero point per output channel
            assert _activation_zero_point_dtypes(path) == {np.dtype(np.uint8)}, name
            for w, scale, zp, axis in weights:
                assert scale.ndim == 1 and zp.ndim == 1 and scale.shape == zp.shape == (w.shape[axis],), name
                assert zp.dtype == np.int8
