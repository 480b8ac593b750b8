"""Search logic without materializing anything: space, screening, prefilter, frontier, selection."""

from __future__ import annotations

import pytest

from edgefit.search import Choice, SpaceOptions, build_space, frontier, pick
from edgefit.search._screen import pareto_fronts, prefilter, screen


def test_space_only_swaps_and_prunes_what_can_be_retrained():
    fixed = build_space(SpaceOptions(can_swap=True, can_prune=True, can_retrain=False, target_dtypes=("fp32", "int8")))
    assert fixed and all(not c.retrains for c in fixed)
    assert {c.precision for c in fixed} == {"fp32", "int8"}
    full = build_space(SpaceOptions(can_swap=True, can_prune=True, can_retrain=True, base_resolution=32,
                                    resolution_range=(8, 128), target_dtypes=("fp32", "fp16", "int8"), sparsity=True))
    assert any(c.width == 0.5 for c in full) and any(c.resolution == 24 for c in full)
    assert any(c.prune == "channel" for c in full) and any(c.prune == "2:4" for c in full)
    assert not any(c.prune == "channel" and c.width != 1.0 for c in full)
    assert Choice() in full


def test_change_kinds_feed_the_iteration_tax():
    assert Choice().change_kinds == ("runtime",)
    assert Choice(precision="int8").change_kinds == ("quantization",)
    assert Choice(width=0.5, precision="int8").change_kinds == ("architecture", "weights", "quantization")
    assert Choice(prune="channel", prune_amount=0.25).change_kinds == ("pruning", "weights")


def test_pareto_fronts():
    assert pareto_fronts([(1, 1), (2, 2), (1, 3), (3, 0)]) == [0, 1, 1, 0]


def _c(name, acc, lat, fits=True, days=10):
    """A whole candidate record named ``name`` (its label; the key is a hash of it)."""
    import hashlib

    from edgefit.records.testing import done_candidate

    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    return done_candidate(key, label=name, accuracy=acc, p50_s=lat, fits=fits, days=days)


def test_frontier_and_selection_rules():
    cands = [_c("base", 0.99, 1.0), _c("int8", 0.985, 0.3), _c("small", 0.975, 0.1), _c("slow", 0.98, 2.0),
             _c("over", 0.99, 0.05, fits=False)]
    assert [c.label for c in frontier(cands)] == ["small", "int8", "base"]  # "over" does not fit
    fastest = pick(cands, 0.99, max_drop=0.01, relative=False, select="latency")
    assert fastest.winner.label == "int8" and fastest.floor == pytest.approx(0.98)
    assert pick(cands, 0.99, max_drop=0.01, relative=False, select="accuracy").winner.label == "base"
    assert pick(cands, 0.99, max_drop=0.03, relative=False, select="latency").winner.label == "small"
    rel = pick(cands, 0.99, max_drop=0.02, relative=True, select="latency")
    assert rel.floor == pytest.approx(0.99 * 0.98) and rel.winner.label == "small"


def test_nothing_qualifies_names_the_best_found():
    cands = [_c("a", 0.5, 1.0, fits=False), _c("b", 0.6, 2.0, fits=False)]
    p = pick(cands, 0.99, max_drop=0.01, relative=False, select="latency")
    assert p.winner is None and "envelope" in p.reason and p.best_found is not None


def test_screen_marks_choices_over_the_envelope_with_the_reason():
    from edgefit.estimate import Estimator
    from edgefit.graph._examples import example_graph
    from edgefit.targets import load_target

    target = load_target("hearable")
    choices = build_space(SpaceOptions(target_dtypes=tuple(target.dtypes)))
    est = Estimator(example_graph("mobilenetv2"), target)
    results = screen(choices, {(1.0, None, None): est})
    assert results and not any(s.feasible for s in results)
    assert all(any("memory" in r or "latency" in r or "power" in r or "energy" in r for r in s.reasons) for s in results)
    kept = prefilter(results, 5)
    assert [s.choice for s in kept] == [Choice()]  # nothing could fit: only the baseline is measured


def test_optimize_config_rejects_impossible_drops():
    from pathlib import Path

    from edgefit.errors import EdgefitError
    from edgefit.search import OptimizeConfig

    with pytest.raises(EdgefitError, match="--max-drop"):
        OptimizeConfig(target="host-cpu", out_dir=Path("."), max_drop=1.5)
    assert OptimizeConfig(target="host-cpu", out_dir=Path("."), max_drop=20, metric="sqnr").max_drop == 20
    with pytest.raises(EdgefitError, match="--select"):
        OptimizeConfig(target="host-cpu", out_dir=Path("."), select="cheapest")


def test_optimize_config_is_whole_by_default_and_the_target_is_given_once(tmp_path):
    from edgefit.errors import EdgefitError
    from edgefit.search import OptimizeConfig
    from edgefit.search._flow import _with_target

    config = OptimizeConfig(out_dir=str(tmp_path))  # a string folder is a path
    assert config.target == "host-cpu" and config.out_dir == tmp_path and config.metric == "auto"
    assert OptimizeConfig().out_dir is None  # decided when the target is known: edgefit-out/<id>
    assert _with_target(None, "orin").target == "orin"
    assert _with_target(config, "orin").target == "orin"  # the default target gives way
    assert _with_target(OptimizeConfig(target="orin"), None).target == "orin"
    with pytest.raises(EdgefitError, match="two targets given"):
        _with_target(OptimizeConfig(target="glasses"), "orin")


def test_the_model_argument_names_an_example_a_factory_or_a_file(tmp_path):
    from pathlib import Path

    from edgefit.search._flow import model_source

    plain = tmp_path / "model"  # an existing file is a file, whatever its name
    plain.write_bytes(b"")
    assert model_source(None) == (None, None, None)  # the built-in digits classifier
    assert model_source("ds-cnn-kws") == (None, "ds-cnn-kws", None)
    assert model_source("my_pkg.nets:build") == (None, None, "my_pkg.nets:build")
    assert model_source("nets/small.onnx") == (Path("nets/small.onnx"), None, None)
    assert model_source(str(plain)) == (plain, None, None) and model_source(plain) == (plain, None, None)


def test_torchao_precisions_only_for_torch_bases_with_matmuls(tmp_path):
    from dataclasses import replace

    from edgefit.graph._examples import example_graph
    from edgefit.graph._torch import export_torch
    from edgefit.passes import TorchaoConfig
    from edgefit.runtimes._ort_convert import save
    from edgefit.search import resolve_base
    from edgefit.search._candidate import pass_plan
    from edgefit.search._screen import estimator_plan
    from edgefit.passes import precisions
    from edgefit.search._space import matmul_share, torchao_base

    # the precisions the torchao pass declares, and the torchao config each one builds
    TORCHAO_PRECISIONS = {p.name: p.config().config for p in precisions() if p.slot == "torchao"}
    assert TORCHAO_PRECISIONS == {"torchao-int8-dynamic": "int8-dynamic", "torchao-int8-weight": "int8-weight"}

    transformer = resolve_base(None, "tiny-transformer", None, None, None, None)
    assert torchao_base(transformer) and matmul_share(example_graph("tiny-transformer")) > 0.3
    assert not torchao_base(resolve_base(None, "digits-cnn", None, None, None, None))  # convolutions
    import torch

    onnx_path = save(export_torch(torch.nn.Sequential(torch.nn.Linear(8, 8)), (1, 8)), tmp_path / "mlp.onnx")
    assert not torchao_base(resolve_base(onnx_path, None, None, None, None, None))  # an ONNX file: no torch module

    opts = SpaceOptions(target_dtypes=("fp32", "int8"))
    assert not {c.precision for c in build_space(opts)} & set(TORCHAO_PRECISIONS)
    offered = {c.precision for c in build_space(replace(opts, torch_base=True))}
    assert set(TORCHAO_PRECISIONS) <= offered
    assert not {c.precision for c in build_space(SpaceOptions(target_dtypes=("fp32",), torch_base=True))} \
        & set(TORCHAO_PRECISIONS)  # no int8 on the target: no int8 recipe

    for precision, config in TORCHAO_PRECISIONS.items():
        choice = Choice(precision=precision)
        plan = pass_plan(choice, transformer, None)
        assert plan.torchao == TorchaoConfig(config=config) and plan.quantize is None
        assert estimator_plan(choice, [], []).dtype == "int8"
        assert choice.change_kinds == ("quantization",) and choice.label == precision


def test_a_storage_url_whose_driver_is_missing_is_one_line_with_the_install_fix(run_cli, tmp_path):
    code, _, err = run_cli("optimize", "--trials", "1", "--out", str(tmp_path), "--storage",
                           "mysql://edgefit:secret@localhost/edgefit")
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert "--storage" in err and "database driver" in err and "secret" not in err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("opts, says", [
    (SpaceOptions(), "--factory"),
    (SpaceOptions(can_swap=True, can_prune=True), "--train-data"),
    (SpaceOptions(can_swap=True, can_prune=True, can_retrain=True), None),
])
def test_what_the_space_leaves_out_is_said(opts, says):
    """#16: an ONNX file alone gets quantization only; the run says which levers it did not search and
    what would unlock them, and says nothing when every lever was searched."""
    from edgefit.search._space import skipped_levers

    notes = skipped_levers(opts)
    swapped = any(c.width != 1.0 or c.prune != "none" for c in build_space(opts))
    assert (says is None) == swapped  # the note is said exactly when the space has no swap or pruning
    assert (notes == []) if says is None else (len(notes) == 1 and says in notes[0])


@pytest.mark.slow
def test_an_onnx_only_optimize_run_says_which_passes_it_could_not_search(run_cli, tmp_path):
    import json

    import onnx

    from edgefit.runtimes.testing import tiny_model

    onnx.save(tiny_model(), str(tmp_path / "tiny.onnx"))
    code, out, err = run_cli("optimize", str(tmp_path / "tiny.onnx"), "--target", "host-cpu", "--trials", "1",
                             "--out", str(tmp_path / "run"), "--json", "-q")
    assert code in (0, 3), err
    notes = json.loads(out)["notes"]
    assert any(n.startswith("not searched: architecture swaps") and "--factory" in n for n in notes), notes
