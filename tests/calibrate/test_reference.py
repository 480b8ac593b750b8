"""The reference architectures behind published points: built offline, the published shapes and sizes."""

from __future__ import annotations

import pytest

from edgefit.calibrate._reference import REFERENCES, build_reference, reference_graph, reference_names
from edgefit.errors import EdgefitError

# nominal multiply-accumulates of each reference (papers / MLPerf): the graph must count the same model
NOMINAL_MACS = {
    "resnet50-v1.5": 4.09e9,  # torchvision / MLPerf ResNet-50 v1.5: 4.1 GMACs
    "mobilenet-v2": 3.0e8,  # 300 M MACs (Sandler et al. 2018)
    "ds-cnn-kws": 2.66e6,  # MLPerf Tiny KWS DS-CNN: ~2.7 M MACs
    "mobilenet-v1-0.25-vww": 7.5e6,  # MLPerf Tiny VWW: ~7.5 M MACs
    "resnet8-cifar": 1.25e7,  # MLPerf Tiny IC: ~12.5 M MACs
    "fc-autoencoder": 2.64e5,  # MLPerf Tiny AD: ~0.26 M MACs
    "yamnet": 6.92e7,  # YAMNet model card: 69.2 M multiply-adds
    # no published count: by hand from the architecture at 800x800, backbone 54.4 G (ResNeXt-50's 4.26 G at
    # 224 x (800/224)^2) + FPN 10.1 G + heads 137 G (13,343 anchor positions x 10.28 M MACs)
    "retinanet-resnext50-800": 2.016e11,
}


def test_every_reference_has_a_nominal_size():
    assert set(NOMINAL_MACS) == set(reference_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_graph_counts_the_published_model(name):
    graph = reference_graph(name)
    assert graph.macs == pytest.approx(NOMINAL_MACS[name], rel=0.03)


def test_resnet50_is_v1_5_with_seeded_weights():
    import torch

    a, b = build_reference("resnet50-v1.5"), build_reference("resnet50-v1.5")
    assert sum(p.numel() for p in a.parameters()) == 25_557_032  # torchvision resnet50's count
    first_downsampling = a[7]  # stem (4 modules) + stage 1 (3 blocks): stage 2's first bottleneck
    convs = [m for m in first_downsampling.body if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (1, 1)]  # v1.5: stride on the 3x3, not the 1x1
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with torch.no_grad():
        assert a(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_unknown_reference_is_one_clear_error():
    with pytest.raises(EdgefitError, match="unknown reference model 'resnet51'.*resnet50-v1.5"):
        build_reference("resnet51")
