"""#16 item 4: a model that arrives as an ONNX file gets channel pruning (on its graph, recovered on --train-data)
in the optimizer's space, and a pruned candidate is materialized through the onnx-prune and onnx-recover passes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgefit.search import Choice, build_space, resolve_base
from edgefit.search._engine import space_options
from edgefit.search._space import skipped_levers
from edgefit.targets import load_target


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """digits-cnn (width 0.5, seeded, untrained: the flow is under test, not the accuracy) as an ONNX file, and
    the digits splits at 16×16 as the user's train and eval .npz."""
    from edgefit.examples import get_example, load_digits_splits
    from edgefit.graph._torch import export_torch

    folder = tmp_path_factory.mktemp("onnx-prune")
    model = get_example("digits-cnn").build(width=0.5, pretrained=False).eval()
    onnx.save(export_torch(model, (1, 1, 16, 16)), str(folder / "digits.onnx"))
    splits = load_digits_splits(16)
    np.savez(folder / "train.npz", x=splits["train"][0][:128], y=splits["train"][1][:128])
    np.savez(folder / "eval.npz", x=splits["test"][0][:64], y=splits["test"][1][:64])
    return folder


def test_an_onnx_file_with_training_data_gets_channel_pruning_in_its_space(files):
    host = load_target("host-cpu")
    with_train = space_options(resolve_base(files / "digits.onnx", None, None, None, files / "eval.npz",
                                            files / "train.npz"), host)
    assert with_train.can_prune and with_train.can_retrain and not with_train.can_swap
    space = build_space(with_train)
    assert {(c.prune, c.prune_amount) for c in space} >= {("channel", 0.25), ("channel", 0.5)}
    assert not any(c.swaps or c.prune == "2:4" for c in space)  # no factory: nothing rebuilds the model
    (said,) = skipped_levers(with_train)
    assert "channel pruning of the ONNX graph (recovered on --train-data) and quantization were searched" in said

    alone = space_options(resolve_base(files / "digits.onnx", None, None, None, files / "eval.npz", None), host)
    assert not alone.can_prune and {c.prune for c in build_space(alone)} == {"none"}
    assert "pruned only with --train-data" in skipped_levers(alone)[0]


@pytest.mark.slow
def test_a_pruned_candidate_goes_through_onnx_prune_recover_and_quantize(files, tmp_path):
    from edgefit.search._candidate import RunSettings, run_candidate

    base = resolve_base(files / "digits.onnx", None, None, None, files / "eval.npz", files / "train.npz")
    settings = RunSettings(target=load_target("orin"), power_mode=None, measure_runtime=None, recover_epochs=1)
    choice = Choice(prune="channel", prune_amount=0.25, precision="int8")
    record = run_candidate(base, choice, settings, tmp_path, None, None)
    passes = [step["pass"] for step in record["materialize"]["passes"]]
    assert passes[:2] == ["onnx-prune", "onnx-recover"] and passes[-1] == "quantize"
    assert set(record["change_kinds"]) == {"pruning", "weights", "quantization"}
    pruned = record["materialize"]["passes"][0]
    assert pruned["macs_after"] < 0.7 * pruned["macs_before"]
    graph = onnx.load(record["onnx"]).graph
    assert any(n.op_type in ("QLinearConv", "QuantizeLinear") for n in graph.node)
    assert record["status"] == "done" and record["latency"]["source"] == "estimated"
