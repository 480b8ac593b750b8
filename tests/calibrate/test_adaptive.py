"""Adaptive sampling of the learned calibration: the kernel ops the first fit predicts worst get
networks of their own, and a recurrent kernel's reference time counts its per-step weight reads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgefit.calibrate import _learn
from edgefit.calibrate._corpus import base_op, can_focus, focused_specs
from edgefit.calibrate._learn import ModelRun, adaptive_specs, fit, weak_ops
from edgefit.estimate._lower_ort import Lowered, LoweredNode
from edgefit.estimate._node_features import REF_BYTES_PER_S, node_features


def _lstm(t: int, i: int, h: int) -> LoweredNode:
    return LoweredNode(
        "lstm", "LSTM", "",
        ((t, 1, i), (1, 4 * h, i), (1, 4 * h, h), (1, 8 * h)), ("fp32",) * 4,
        ((t, 1, 1, h),), ("fp32",), {}, {1: (1, 4 * h, i), 2: (1, 4 * h, h), 3: (1, 8 * h)},
    )  # fmt: skip


def _conv(c: int, s: int) -> LoweredNode:
    return LoweredNode(
        "conv", "Conv", "", ((1, c, s, s), (c, c, 3, 3)), ("fp32", "fp32"),
        ((1, c, s, s),), ("fp32",), {"group": 1}, {1: (c, c, 3, 3)},
    )  # fmt: skip


def _runs(n: int, seed: int = 0) -> list[ModelRun]:
    """Networks of convolutions whose time follows a law the features capture, and LSTMs whose
    time is that law times a random factor of 0.3–3 (nothing in their features predicts it)."""
    rng = np.random.default_rng(seed)
    runs = []
    for m in range(n):
        nodes = []
        for _ in range(4):
            c, s = int(rng.choice([8, 16, 32, 64])), int(rng.choice([8, 16, 32]))
            nodes.append(replace(_conv(c, s), time_s=3e-6 + c * s * s * c * 9 / 4e10))
        t, h = int(rng.choice([16, 64, 256])), int(rng.choice([16, 64, 128]))
        law = 1e-6 + t * (0.1e-6 + 16 * h * h / 1e11)
        nodes.append(replace(_lstm(t, 16, h), time_s=law * float(np.exp(rng.uniform(-1.2, 1.1)))))
        total = sum(nd.time_s for nd in nodes)
        runs.append(ModelRun(f"net{m}", "corpus", "fp32", 1, Lowered(tuple(nodes), 1), total + 10e-6))
    return runs


def test_a_recurrent_kernels_reference_counts_its_recurrence_weights_at_every_step():
    short, long = _lstm(16, 32, 128), _lstm(256, 32, 128)
    _, ref_short = node_features(short, 1)
    _, ref_long = node_features(long, 1)
    recurrence = 4 * 128 * 128 * 4  # fp32 bytes of R, read again at each of the 240 extra steps
    macs = 240 * 4 * 128 * (32 + 128)
    moved = 240 * 32 * 4 + 240 * 128 * 4  # the extra steps' inputs and outputs
    from edgefit.estimate._node_features import REF_OPS_PER_S

    expected = macs / REF_OPS_PER_S + (240 * recurrence + moved) / REF_BYTES_PER_S
    assert ref_long - ref_short == pytest.approx(expected, rel=1e-6)
    # a convolution's reference is untouched: weights once
    conv = _conv(16, 8)
    _, ref_conv = node_features(conv, 1)
    assert ref_conv == pytest.approx(
        16 * 64 * 16 * 9 / REF_OPS_PER_S + (2 * 16 * 64 * 4 + 16 * 16 * 9 * 4) / REF_BYTES_PER_S + 1e-6
    )


def test_the_ops_predicted_worst_out_of_fold_are_found_and_only_those():
    weak = weak_ops(_runs(30), folds=3)
    assert [w.op for w in weak] == ["LSTM/fp32"]  # the convolutions follow their law
    lstm = weak[0]
    assert lstm.error > _learn.ADAPT_MIN_ERROR and lstm.networks == 30 and lstm.kernels == 30
    assert 0 < lstm.share < 1


def test_an_op_the_grammar_cannot_draw_is_not_chased():
    assert can_focus("LSTM/fp32") and can_focus("QLinearConv/u8s8") and can_focus("Upsample@nchwc/fp32")
    assert not can_focus("Transpose/u8") and focused_specs("Transpose/u8", 4) == []
    assert base_op("Upsample@nchwc/fp32") == "Upsample" and base_op("QGemm/u8s8") == "QGemm"


def test_focused_networks_contain_the_op_and_are_drawn_the_same_way_twice():
    specs = focused_specs("LSTM/fp32", 3)
    assert len(specs) == 3 and [s.name for s in specs] == [s.name for s in focused_specs("LSTM/fp32", 3)]
    for spec in specs:
        assert spec.family == "adaptive LSTM/fp32"
        assert any(type(m).__name__ == "LSTM" for m in spec.build().modules())
    # another round draws other seeds
    later = {s.name for s in focused_specs("LSTM/fp32", 3, start=60_000)}
    assert later.isdisjoint(s.name for s in specs)


def test_an_adaptive_round_adds_networks_for_the_weak_op_only(monkeypatch):
    runs = _runs(30)
    monkeypatch.setattr(_learn, "ADAPT_NETWORKS", 2)
    monkeypatch.setattr(_learn, "weak_ops", lambda r, seed=0: weak_ops(r, seed=seed, folds=3))
    specs = adaptive_specs(runs)
    assert len(specs) == 2 and {s.family for s in specs} == {"adaptive LSTM/fp32"}
    assert not {s.name for s in specs} & {r.name for r in runs}


def test_the_profile_says_how_many_networks_each_focused_op_got():
    runs = _runs(12)
    runs += [replace(r, name=f"focus{i}", family="adaptive LSTM/fp32") for i, r in enumerate(_runs(3, seed=2))]
    assert fit(runs, folds=3).training["adaptive"] == {"LSTM/fp32": 3}
    assert "adaptive" not in fit(_runs(12), folds=3).training


def test_focused_networks_are_drawn_under_the_corpus_mac_cap():
    """Upsampling networks grow their maps; one over the cap would only be dropped at export."""
    import torch

    from edgefit.calibrate._corpus import MAX_MACS, _build, module_macs

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ConvTranspose2d(8, 4, 2, 2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 16 * 16, 10))
    assert module_macs(net, (1, 3, 8, 8)) == 8 * 64 * 3 * 9 + 8 * 64 * 4 * 4 + 10 * 1024
    lstm = torch.nn.LSTM(16, 32, batch_first=True)
    assert module_macs(lstm, (1, 50, 16)) == 50 * 4 * 32 * (16 + 32)
    for spec in focused_specs("ConvTranspose/fp32", 4):
        assert module_macs(*_build(int(spec.name.rsplit("-", 1)[1]))) <= MAX_MACS
