"""The reference architectures behind published points: built offline, the published shapes and sizes."""

from __future__ import annotations

import pytest

from edgefit.graph._reference import REFERENCES, build_reference, reference_graph, reference_names
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
    # the mobile set: counted by hooks on the torch model (an export takes 10-20 s each)
    "mobilenet-v3-large": 2.19e8,  # Howard et al. 2019, Table 3: 219 M MAdds
    "mobilenet-v3-small": 5.6e7,  # Howard et al. 2019, Table 3: 56 M MAdds
    "efficientnet-b0": 3.9e8,  # Tan & Le 2019, Table 2: 0.39 B FLOPs (multiply-adds)
    # MobileNet-v2 0.35 is 59 M MACs at 224 with 1000 classes (Sandler et al. / TF-slim table):
    # features (59 M - the 1280x1000 head) scale with the image area, plus a 1280 x classes head
    **{
        f"mobilenet-v2-0.35-{size}": (59e6 - 1.28e6) * (size / 224) ** 2 + 1280 * classes
        for size, classes in ((96, 2), (64, 2), (32, 10))
    },
}
# torchvision's parameter counts (BatchNorm included) for the models written out by hand
TORCHVISION_PARAMS = {
    "mobilenet-v3-large": 5_483_032,
    "mobilenet-v3-small": 2_542_856,
    "efficientnet-b0": 5_288_548,
    "mobilenet-v2": 3_504_872,
}
HOOK_COUNTED = sorted(
    n for n in NOMINAL_MACS if n.startswith(("mobilenet-v3", "efficientnet", "mobilenet-v2-0.35"))
)


def test_every_reference_has_a_nominal_size():
    assert set(NOMINAL_MACS) == set(reference_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(REFERENCES) - set(HOOK_COUNTED)))
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


def _torch_macs(model, shape) -> int:
    """Multiply-accumulates of every Conv2d and Linear in one forward pass (what the graph counts
    for these models: the activations and the squeeze-excite rescale are not MACs)."""
    import torch

    total = 0

    def conv(m, _inp, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv)
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(linear)
    with torch.no_grad():
        model(torch.zeros(shape))
    return total


@pytest.mark.parametrize("name", HOOK_COUNTED)
def test_mobile_reference_counts_the_published_model(name):
    model = build_reference(name)
    macs = _torch_macs(model, REFERENCES[name].input_shape)
    assert macs == pytest.approx(NOMINAL_MACS[name], rel=0.03)
    if name in TORCHVISION_PARAMS:
        assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS[name]


def test_mobilenet_v3_and_efficientnet_have_their_signature_layers():
    import torch

    large, b0 = build_reference("mobilenet-v3-large"), build_reference("efficientnet-b0")
    kinds = {type(m).__name__ for m in large.modules()}
    assert {"Hardswish", "Hardsigmoid", "ReLU"} <= kinds and "SiLU" not in kinds
    assert {"SiLU", "Sigmoid"} <= {type(m).__name__ for m in b0.modules()}
    depthwise = [m for m in b0.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 16 and {m.kernel_size for m in depthwise} == {(3, 3), (5, 5)}
    narrow = build_reference("mobilenet-v2-0.35-96")
    assert narrow.features[0][0].out_channels == 16  # the stem's 32 x 0.35, rounded up to 8s
    assert narrow.classifier[-1].out_features == 2
