"""AlexNet and VGG equal torchvision's; receptive fields match the published numbers and the
gradient probe; the layer summary counts what the networks hold."""

from __future__ import annotations

import pytest
import torch
import torchvision

import backbones as bb
from backbones import receptive_field as rf


@pytest.mark.parametrize(
    "name, params",
    [
        ("alexnet", 61_100_840),
        ("vgg11", 132_863_336),
        # vgg11 and vgg16 in the inner loop (make check); the other depths repeat their code path
        pytest.param("vgg13", 133_047_848, marks=pytest.mark.slow),
        ("vgg16", 138_357_544),
        pytest.param("vgg19", 143_667_240, marks=pytest.mark.slow),
    ],
)
def test_equals_torchvision(name, params):
    torch.manual_seed(0)
    ours, reference = (getattr(bb.models, name)().eval(), getattr(torchvision.models, name)().eval())
    assert (
        sum(p.numel() for p in ours.parameters()) == params == bb.pretrained.imagenet_weights(name).meta["num_params"]
    )
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "model, layer, size, probe_size",
    [
        (bb.models.alexnet, "features.12", 195, 451),
        (bb.models.vgg16, "features.30", 212, 320),
        (bb.models.resnet50, "layer4.2.conv3", 427, 640),
    ],
)
def test_receptive_field_of_the_last_layer(model, layer, size, probe_size):
    net = model()
    last = rf.receptive_fields(net)[-1]
    assert (last.name, last.size, last.jump) == (layer, size, 32)
    assert rf.gradient_receptive_field(net, layer, input_size=probe_size) == size


def test_alexnet_field_layer_by_layer():
    sizes = [f.size for f in rf.receptive_fields(bb.models.alexnet())]
    assert sizes == [11, 19, 51, 67, 99, 131, 163, 195]


def test_dilation_and_the_gradient_probe_agree():
    stack = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=4, dilation=4),
    )
    fields = rf.receptive_fields(stack, input_size=64)
    assert [f.size for f in fields] == [3, 7, 15]
    assert rf.stack_receptive_field([(3, 1, 1), (3, 1, 2), (3, 2, 4)]) == 15
    assert rf.gradient_receptive_field(stack, "4", input_size=64) == 15


def test_three_3x3_see_what_one_7x7_sees_with_fewer_weights():
    c = 64
    stack = torch.nn.Sequential(*[torch.nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
    single = torch.nn.Conv2d(c, c, 7, padding=3, bias=False)
    assert (
        rf.receptive_fields(stack, input_size=16)[-1].size == rf.receptive_fields(single, input_size=16)[-1].size == 7
    )
    assert sum(p.numel() for p in stack.parameters()) == 27 * c * c
    assert sum(p.numel() for p in single.parameters()) == 49 * c * c


def test_probe_refuses_an_image_too_small():
    with pytest.raises(ValueError, match="reaches the image border"):
        rf.gradient_receptive_field(bb.models.alexnet(), "features.12", input_size=224)


def test_effective_field_is_a_shrinking_fraction():
    fractions = []
    for n in (4, 16):
        bb.seed_everything(0)
        layers = []
        for i in range(n):
            layers += [torch.nn.Conv2d(1 if i == 0 else 8, 8, 3, padding=1), torch.nn.ReLU()]
        stack = torch.nn.Sequential(*layers)
        field = rf.effective_receptive_field(stack, f"{2 * n - 2}", input_size=65, samples=8)
        theory = 2 * n + 1
        fractions.append((2 * rf.mass_radius(field) + 1) ** 2 / theory**2)
    assert fractions[1] < 0.6 < fractions[0]  # measured: 100% at 4 layers, 40% at 16


def test_layer_summary_counts_alexnet():
    rows = bb.summary.layer_summary(bb.models.alexnet())
    assert sum(r.params for r in rows) == 61_100_840
    assert rows[0].output_shape == (64, 55, 55) and rows[-1].output_shape == (1000,)
    total = sum(r.flops for r in rows)
    macs = bb.pretrained.imagenet_weights("alexnet").meta["_ops"] * 1e9  # torchvision counts multiply-adds
    assert total == pytest.approx(2 * macs, rel=0.01)
    fully_connected = sum(r.params for r in rows if r.layer.startswith("linear"))
    assert fully_connected / 61_100_840 > 0.95


def test_chapter_03_flags_the_slides_vgg_that_joins_vgg19s_depth_to_vgg16s_count(chapter_text):
    from torchvision.models.vgg import cfgs

    layers = {name: sum(isinstance(v, int) for v in cfgs[cfg]) + 3 for name, cfg in (("vgg16", "D"), ("vgg19", "E"))}
    params = {name: bb.pretrained.imagenet_weights(name).meta["num_params"] for name in layers}
    assert layers == {"vgg16": 16, "vgg19": 19}
    text = chapter_text("03_alexnet_vgg.ipynb")
    assert "\"19 layers, 138M parameters\": that joins VGG-19's depth to VGG-16's count" in text
    assert (
        f"VGG-19 has {params['vgg19'] / 1e6:.1f} million, VGG-16 (16 layers) {params['vgg16'] / 1e6:.1f} million"
        in text
    )
