"""The prune pass: unstructured sparsity reached, the exact 2:4 pattern, real channel pruning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgefit.errors import EdgefitError
from edgefit.examples import get_example
from edgefit.passes import PassContext, PassNotApplicable, PruneConfig, apply_pass, sparsity, two_four_mask


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_unstructured_reaches_the_amount_and_keeps_the_input(amount):
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = apply_pass(model, PruneConfig(method="unstructured", amount=amount))
    assert sparsity(out.model) == pytest.approx(amount, abs=0.01)
    assert out.metadata["weight_sparsity"] == pytest.approx(amount, abs=0.01) and out.change_kind == "pruning"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()), "the input must not change"
    assert not any(n.endswith("_orig") for n, _ in out.model.named_parameters()), "prune.remove bakes zeros in"
    originals = dict(model.named_modules())
    for name, layer in out.model.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            w, zero = originals[name].weight.abs(), layer.weight == 0
            assert int((~zero).sum()) == layer.weight.numel() - round(layer.weight.numel() * amount)
            assert w[zero].max() <= w[~zero].min()  # per layer, the smallest |w| went
    assert out.model(torch.zeros(1, 4, 6, 6)).shape == (1, 4)


def check_two_four(weight: torch.Tensor) -> None:
    groups = weight.detach().movedim(1, -1).reshape(-1, 4)
    assert bool(((groups == 0).sum(dim=1) >= 2).all())


def test_two_four_pattern_is_exact_and_keeps_the_largest():
    out = apply_pass(tiny(), PruneConfig(method="2:4")).model
    layers = [m for m in out.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        check_two_four(layer.weight)
    w = torch.tensor([[0.1, -3.0, 0.2, 2.0, 5.0, 0.0, -0.5, 0.4]])
    mask = two_four_mask(w)
    assert mask.tolist() == [[False, True, False, True, True, False, True, False]]
    conv = torch.randn(2, 8, 3, 3)
    mask = two_four_mask(conv)  # along input channels at every kernel position
    assert bool((mask.movedim(1, -1).reshape(-1, 4).sum(dim=1) == 2).all())
    assert two_four_mask(torch.randn(4, 6)) is None


def test_two_four_leaves_layers_without_groups_of_four_dense():
    model = get_example("digits-cnn").build(width=0.25, pretrained=False)
    out = apply_pass(model, PruneConfig(method="2:4"))
    assert out.metadata["dense_layers"] == ["features.0.0"]  # one input channel
    for name, layer in out.model.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and name != "features.0.0":
            check_two_four(layer.weight)


@pytest.mark.parametrize(("example", "shape"), [("digits-cnn", (1, 1, 16, 16)), ("resnet18", (1, 3, 64, 64))])
def test_channel_pruning_really_shrinks_the_model(example, shape):
    pytest.importorskip("torch_pruning", reason="the 'prune' extra")
    spec = get_example(example)
    model = spec.build(width=0.25 if example == "resnet18" else 0.5, pretrained=False)
    out = apply_pass(model, PruneConfig(method="channel", amount=0.5), PassContext(input_shape=shape))
    meta = out.metadata
    assert meta["macs_after"] < 0.5 * meta["macs_before"] and meta["params_after"] < 0.5 * meta["params_before"]
    x = torch.randn(shape)
    assert out.model(x).shape == model(x).shape == (1, spec.num_classes)  # classifier outputs kept
    assert sum(p.numel() for p in out.model.parameters()) == meta["params_after"]
    assert sum(p.numel() for p in model.parameters()) == meta["params_before"], "the input must not change"


def test_channel_pruning_rounds_channels():
    pytest.importorskip("torch_pruning", reason="the 'prune' extra")
    model = get_example("digits-cnn").build(width=1.0, pretrained=False)
    config = PruneConfig(method="channel", amount=0.4, round_to=8)
    out = apply_pass(model, config, PassContext(input_shape=(1, 1, 16, 16)))
    assert all(m.out_channels % 8 == 0 for m in out.model.modules() if isinstance(m, nn.Conv2d))


def test_channel_pruning_needs_an_input_shape_and_a_module():
    with pytest.raises(EdgefitError, match="PassContext.input_shape"):
        apply_pass(tiny(), PruneConfig(method="channel"))
    with pytest.raises(PassNotApplicable, match="torch module"):
        apply_pass("model.onnx", PruneConfig())


def test_missing_torch_pruning_gives_the_install_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch_pruning", None)  # import fails as if not installed
    with pytest.raises(EdgefitError, match=r'pip install "edgefit\[prune\]"'):
        apply_pass(tiny(), PruneConfig(method="channel"), PassContext(input_shape=(1, 4, 6, 6)))
