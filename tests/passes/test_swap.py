"""The swap pass: rebuilds through an example or a user "module:function" factory, activation swaps."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

from edgefit.errors import EdgefitError
from edgefit.examples import get_example
from edgefit.passes import PassContext, PassNotApplicable, SwapConfig, apply_pass, swap_activations

FACTORY = textwrap.dedent("""
    import torch
    from torch import nn

    CALLS = []

    def build(width=1.0, depth=1.0, resolution=16, activation="gelu"):
        CALLS.append(dict(width=width, depth=depth, resolution=resolution, activation=activation))
        act = {"gelu": nn.GELU, "relu": nn.ReLU, "hardswish": nn.Hardswish}[activation]
        c = max(2, int(16 * width))
        blocks = [nn.Conv2d(c, c, 3, padding=1) for _ in range(max(1, round(4 * depth)))]
        return nn.Sequential(nn.Conv2d(1, c, 3, padding=1), act(), *blocks, nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(c, 3))

    def not_a_model(**knobs):
        return "oops"
""")


@pytest.fixture
def factory(tmp_path, monkeypatch):
    (tmp_path / "user_factory_mod.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_factory_mod:build"
    sys.modules.pop("user_factory_mod", None)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_swap_through_an_example_factory():
    spec = get_example("digits-cnn")
    base = spec.build(pretrained=False)
    out = apply_pass(base, SwapConfig(width=0.5, depth=0.5), PassContext(factory="digits-cnn"))
    convs = [m for m in out.model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and convs[0].out_channels == 16 and n_params(out.model) < n_params(base) / 4
    assert out.model(spec.example_input()).shape == (1, 10) and out.change_kind == "architecture"
    assert "recover to train" in out.metadata["weights"] and out.metadata["width"] == 0.5


def test_swap_through_a_module_function_factory(factory):
    import user_factory_mod

    base = user_factory_mod.build()
    out = apply_pass(base, SwapConfig(width=0.5, activation="relu"), PassContext(factory=factory))
    assert user_factory_mod.CALLS[-1] == {"width": 0.5, "depth": 1.0, "resolution": 16, "activation": "relu"}
    assert n_params(out.model) < n_params(base) and any(isinstance(m, nn.ReLU) for m in out.model.modules())
    assert out.model(torch.zeros(1, 1, 16, 16)).shape == (1, 3)
    apply_pass(base, SwapConfig(depth=0.5), PassContext(factory=factory))
    assert user_factory_mod.CALLS[-1]["activation"] == "gelu", "unset knobs keep the factory's defaults"


def test_weights_carry_over_when_every_shape_matches(factory):
    import user_factory_mod

    base = user_factory_mod.build()
    out = apply_pass(base, SwapConfig(resolution=8), PassContext(factory=factory))
    assert out.metadata["weights"] == "carried over from the base"
    assert all(torch.equal(a, b) for a, b in zip(out.model.state_dict().values(), base.state_dict().values()))


@pytest.mark.parametrize(("bad", "match"), [("no_such_module_xyz:build", "cannot import"),
                                            ("user_factory_mod:missing", "cannot import"),
                                            ("user_factory_mod:CALLS", "not callable"),
                                            ("user_factory_mod:not_a_model", "not an nn.Module"),
                                            ("no-such-example", "unknown example")])
def test_bad_factories_say_what_to_fix(factory, bad, match):
    with pytest.raises(EdgefitError, match=match):
        apply_pass(nn.Linear(2, 2), SwapConfig(width=0.5), PassContext(factory=bad))


def test_activation_swap_in_place_without_a_factory():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Sequential(nn.Linear(8, 8), nn.SiLU()), nn.Linear(8, 2))
    out = apply_pass(base, SwapConfig(activation="hardswish"))
    kinds = [type(m).__name__ for m in out.model.modules() if not isinstance(m, (nn.Linear, nn.Sequential))]
    assert kinds == ["Hardswish", "Hardswish"] and out.metadata["weights"] == "carried over from the base"
    assert isinstance(base[1], nn.GELU), "the input must not change"
    assert torch.equal(out.model[0].weight, base[0].weight)


def test_swap_activations_counts_and_skips_the_target_kind():
    net = nn.Sequential(nn.ReLU(), nn.GELU(), nn.SiLU(), nn.ReLU6())
    assert swap_activations(net, "relu") == 3 and all(isinstance(m, nn.ReLU) for m in net)
    with pytest.raises(EdgefitError, match="swap_activations.to"):
        swap_activations(net, "tanh")


def test_swaps_that_cannot_apply():
    with pytest.raises(PassNotApplicable, match="no activation module"):
        apply_pass(nn.Linear(2, 2), SwapConfig(activation="relu"))
    with pytest.raises(PassNotApplicable, match="PassContext.factory"):
        apply_pass(nn.Linear(2, 2), SwapConfig(width=0.5))


def test_identity_swap_changes_nothing():
    base = nn.Linear(2, 2)
    out = apply_pass(base, SwapConfig())
    assert out.model is base and out.change_kind is None
