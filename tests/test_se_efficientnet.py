"""Squeeze-and-Excitation and EfficientNet from scratch: torchvision's counts and outputs, the
multiply-add arithmetic against torch's counter and torchvision's metadata, compound scaling's
budgets, the SE switch, EfficientNet-Lite0's offline ImageNet weights, and the chapter's claims."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torchvision.ops import stochastic_depth

import backbones as bb
from backbones.layers.mbconv import Conv2dSame, MBConv, StochasticDepth, make_divisible, same_padding
from backbones.models import efficientnet as E
from backbones.summary import multiply_adds


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Squeeze-and-Excitation ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels, squeeze", [(64, 16), (96, 4), (8, 1)])
def test_se_equals_torchvision_with_the_same_weights(channels, squeeze):
    torch.manual_seed(0)
    ours = bb.layers.SqueezeExcitation(channels, squeeze)
    reference = torchvision.ops.SqueezeExcitation(channels, squeeze)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, channels, 5, 7)
    torch.testing.assert_close(ours(x), reference(x))
    assert count(ours) == bb.layers.se_parameters(channels, squeeze) == 2 * channels * squeeze + squeeze + channels
    gates = ours.gates(x)
    assert gates.shape == (3, channels, 1, 1) and ((gates > 0) & (gates < 1)).all()


def test_se_resnet_50_has_hu_et_al_s_size_and_resnet_50_keeps_torchvision_s():
    plain, se = bb.models.resnet50(), bb.models.resnet50(se_reduction=16)
    assert count(plain) == 25_557_032
    assert count(se) == 28_088_024
    assert list(plain.state_dict()) == list(torchvision.models.resnet50().state_dict())
    blocks = [m for m in se.modules() if isinstance(m, bb.models.Bottleneck)]
    assert len(blocks) == 16 and all(isinstance(b.se, bb.layers.SqueezeExcitation) for b in blocks)


def test_se_switch_in_the_cifar_resnet_scales_the_branch():
    torch.manual_seed(0)
    plain = bb.models.CifarResNet(depth=8, in_channels=1)
    se = bb.models.CifarResNet(depth=8, in_channels=1, se_reduction=4)
    assert not any(isinstance(m, bb.layers.SqueezeExcitation) for m in plain.modules())
    assert sum(isinstance(m, bb.layers.SqueezeExcitation) for m in se.modules()) == 3
    block = se.layer1[0].eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        torch.testing.assert_close(block(x), torch.relu(block.se(branch) + x))


# MBConv's parts -------------------------------------------------------------------------------------


def test_make_divisible_rounds_to_the_nearest_multiple_never_10_percent_down():
    assert [make_divisible(v) for v in (44.0, 26.4, 17.6, 12.0, 3.0)] == [48, 24, 16, 16, 8]
    assert make_divisible(17.6, 4) == 16 and make_divisible(20.5, 4) == 20


def test_tensorflow_same_padding_is_asymmetric_on_stride_2():
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(14, 5, 1) == (2, 2)
    conv = Conv2dSame(3, 4, 3, stride=2, bias=False)
    x = torch.randn(1, 3, 224, 224)
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(torch.randn(1, 3, 15, 15)).shape[-1] == 8  # ceil(15 / 2)


def test_stochastic_depth_drops_whole_samples_and_matches_torchvision():
    layer = StochasticDepth(0.5)
    x = torch.ones(64, 3, 2, 2)
    torch.manual_seed(1)
    out = layer.train()(x)
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 2).all(1)).all()  # dropped, or kept and scaled by 2
    torch.manual_seed(1)
    torch.testing.assert_close(out, stochastic_depth(x, 0.5, "row", training=True))
    assert torch.equal(layer.eval()(x), x)


def test_mbconv_adds_its_input_only_when_the_shapes_match():
    assert MBConv(16, 16, expand_ratio=6, kernel_size=3, stride=1).use_residual
    assert not MBConv(16, 24, expand_ratio=6, kernel_size=3, stride=1).use_residual
    assert not MBConv(16, 16, expand_ratio=6, kernel_size=3, stride=2).use_residual
    block = MBConv(16, 16, expand_ratio=1, kernel_size=3, stride=1, se=False).eval()
    assert len(block.block) == 2  # no expansion at t = 1: depthwise, projection
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.block(x) + x)


# EfficientNet B0-B7 and V2-S against torchvision --------------------------------------------------

RELEASED = {
    "b0": 5_288_548,
    "b1": 7_794_184,
    "b2": 9_109_994,
    "b3": 12_233_232,
    "b4": 19_341_616,
    "b5": 30_389_784,
    "b6": 43_040_704,
    "b7": 66_347_960,
}


@pytest.mark.parametrize("name", list(RELEASED))
def test_b0_to_b7_have_torchvision_s_parameters_names_and_multiply_adds(name):
    with torch.device("meta"):
        ours, reference = (E.efficientnet(name), torchvision.models.get_model(f"efficientnet_{name}"))
    assert count(ours) == count(reference) == RELEASED[name]
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]
    meta = torchvision.models.get_model_weights(f"efficientnet_{name}").IMAGENET1K_V1.meta
    crop = torchvision.models.get_model_weights(f"efficientnet_{name}").IMAGENET1K_V1.transforms().crop_size[0]
    resolution = E.SCALINGS[name].resolution
    assert ours.multiply_adds(resolution) == multiply_adds(ours, resolution)  # arithmetic = torch's counter
    assert round(ours.multiply_adds(crop) / 1e9, 3) == meta["_ops"]  # = torchvision's metadata


def test_b0_computes_what_torchvision_s_b0_computes_with_its_weights():
    torch.manual_seed(0)
    ours, reference = (bb.models.efficientnet_b0().eval(), torchvision.models.efficientnet_b0().eval())
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_v2_s_is_parameter_exact_and_computes_what_torchvision_s_does():
    torch.manual_seed(0)
    ours, reference = (bb.models.efficientnet_v2_s().eval(), torchvision.models.efficientnet_v2_s().eval())
    assert count(ours) == count(reference) == 21_458_488
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)
    assert ours.multiply_adds(97) == multiply_adds(ours, 97)  # odd sizes: ceil at every stride


def test_compound_rule_and_the_released_family_s_flops():
    assert math.isclose(E.ALPHA * E.BETA**2 * E.GAMMA**2, 1.92, abs_tol=0.005)
    assert E.compound_scaling(1) == (1.2, 1.1, 258)
    family = bb.scaling.family_table()
    ratios = [row["ratio"] for row in family]
    assert ratios == sorted(ratios) and ratios[0] == 1.0
    assert 90 < ratios[-1] < 105  # B7: about 1.92**7 = 96, well short of 2**7 = 128
    assert (family[1]["width"], family[1]["depth"], family[1]["resolution"]) == (1.0, 1.1, 240)


def test_the_scaling_lab_s_variants_share_one_budget_within_10_percent():
    variants = bb.scaling.lab_variants(phi=1.0)
    budget = variants["compound"].macs
    for mode in ("depth", "width", "resolution"):
        assert abs(variants[mode].macs / budget - 1) <= 0.10, mode
    v = variants
    assert v["depth"].width == 1.0 and v["depth"].resolution == 16 and v["depth"].depth > 1
    assert v["width"].depth == 1.0 and v["width"].width > 1 and v["resolution"].resolution > 16
    with torch.device("meta"):
        model = v["compound"].build(8)
    assert model.multiply_adds(v["compound"].resolution) == multiply_adds(
        model, v["compound"].resolution, in_channels=1
    )


def test_texture_patches_are_normalised_and_resolution_is_checked():
    data = bb.load_textures(12, train_per_class=3, test_per_class=2)
    x, y = data.tensors()
    assert x.shape == (24, 1, 12, 12) and data.num_classes == 8 and len(data.test) == 16
    torch.testing.assert_close(x.mean(dim=(1, 2, 3)), torch.zeros(24), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="resolution"):
        bb.load_textures(100)


# EfficientNet-Lite0 with the registry package's ImageNet weights ------------------------------------


@pytest.fixture(scope="module")
def lite0():
    return bb.pretrained.load_lite0()


def test_lite0_weights_load_and_every_tensor_finds_its_place(lite0):
    from backbones.pretrained import lite0_key_map, lite0_weights_path

    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    keys = lite0_key_map(lite0)
    assert {name.rpartition(".")[0] for name in state} == set(keys)
    assert len(state) == len(lite0.state_dict()) == 296
    assert sum(t.numel() for t in state.values() if t.is_floating_point()) == 4_694_024
    ours = lite0.state_dict()
    for name, tensor in state.items():
        module, _, leaf = name.rpartition(".")
        assert torch.equal(ours[f"{keys[module]}.{leaf}"], tensor), name


@pytest.mark.parametrize("photo, label, probability", [("coffee", "espresso", 0.95), ("chelsea", "tiger cat", 0.39)])
def test_lite0_names_the_offline_photos(lite0, photo, label, probability):
    x = bb.pretrained.lite0_preprocess(bb.load_photo(photo))[None]
    ((top, *_),) = bb.pretrained.top_k(lite0, x, 5, check=bb.pretrained.check_lite0_input)
    assert top[0] == label
    assert abs(top[1] - probability) < 0.03


def test_lite0_needs_tensorflow_s_padding(lite0):
    symmetric = E.efficientnet_lite0(padding="symmetric").eval()
    symmetric.load_state_dict(lite0.state_dict())
    x = torch.stack([bb.pretrained.lite0_preprocess(bb.load_photo(name)) for name in bb.PHOTOS])
    with torch.no_grad():
        right, shifted = lite0(x).softmax(1), symmetric(x).softmax(1)
    distance = (right - shifted).abs().sum(dim=1) / 2  # total variation, per photo
    assert distance.mean() > 0.1  # a one-pixel shift of every stride-2 grid changes the answers
    assert (right.argmax(1) != shifted.argmax(1)).any()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x: x.permute(0, 2, 3, 1), "channels last"),
        (lambda x: (x * 128 + 127.5).round().to(torch.uint8), "float"),
        (lambda x: (x * 128 + 127.5 - 123.7) / 58.4, "ImageNet mean/std"),
        (lambda x: (x * 128 + 127.5) / 255, "scaled to \\[0, 1\\]"),
        (lambda x: x[0], "batch"),
    ],
)
def test_lite0_input_in_the_wrong_layout_or_range_gets_a_clear_error(lite0, make, message):
    x = bb.pretrained.lite0_preprocess(bb.load_photo("coffee"))[None]
    bb.pretrained.check_lite0_input(x)  # the right input passes
    with pytest.raises(ValueError, match=message):
        bb.pretrained.top_k(lite0, make(x), check=bb.pretrained.check_lite0_input)


def test_lite0_preprocess_rejects_floats_and_grey():
    photo = bb.load_photo("coffee")
    with pytest.raises(ValueError, match="uint8"):
        bb.pretrained.lite0_preprocess(photo / 255.0)
    with pytest.raises(ValueError, match="RGB"):
        bb.pretrained.lite0_preprocess(photo[..., 0])


# The chapter's claims ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_late_se_gates_are_class_specific_but_no_more_than_the_features_they_squeeze():
    data = bb.load_digits()
    runs = bb.experiments.se_comparison(data, seeds=(0, 1, 2), depth=8, steps=120, networks=("SE-ResNet",))
    images, labels = data.tensors(split="test")
    bb.seed_everything(0)
    untrained = bb.models.CifarResNet(depth=8, in_channels=1, se_reduction=4)
    control = bb.experiments.gate_class_share(bb.experiments.se_gates(untrained, images), labels)
    for model, _ in runs["SE-ResNet"]:  # three seeds
        gates = bb.experiments.gate_class_share(bb.experiments.se_gates(model, images), labels)
        squeezed = bb.experiments.gate_class_share(bb.experiments.se_gates(model, images, squeezed=True), labels)
        first, last = list(gates)[0], list(gates)[-1]
        assert gates[first] < gates[last] and gates[last] > 2 * control[last]
        assert gates[first] < 1.5 * control[first] + 0.1
        assert abs(gates[last] - squeezed[last]) < 0.05  # the gates carry their input's class signal, no more
    last_gates = bb.experiments.se_gates(runs["SE-ResNet"][0][0], images)[last]
    assert 0.5 < last_gates.mean() < 0.7 and (last_gates > 0.9).float().mean() < 0.3  # not saturated


def test_the_squeeze_is_the_blocks_input_averaged_over_h_and_w():
    torch.manual_seed(0)
    net = bb.models.CifarResNet(depth=8, in_channels=1, se_reduction=4)
    images = torch.randn(4, 1, 8, 8)
    seen = {}
    blocks = [m for m in net.modules() if isinstance(m, bb.layers.SqueezeExcitation)]
    hooks = [
        b.register_forward_pre_hook(lambda m, args, i=i: seen.setdefault(i, args[0])) for i, b in enumerate(blocks)
    ]
    squeezed = bb.experiments.se_gates(net, images, squeezed=True)
    gates = bb.experiments.se_gates(net, images)
    for hook in hooks:
        hook.remove()
    for i, name in enumerate(squeezed):
        torch.testing.assert_close(squeezed[name], seen[i].mean(dim=(2, 3)))
        assert squeezed[name].shape == gates[name].shape and not torch.equal(squeezed[name], gates[name])


@pytest.mark.slow
def test_pretrained_lite0_features_transfer_to_natural_patches_far_better_than_random_ones(lite0):
    data = bb.load_textures(64, train_per_class=30, test_per_class=15)
    x, y = data.tensors()
    tx, ty = data.tensors(split="test")
    torch.manual_seed(0)
    accuracies = {}
    for name, net in (("pretrained", lite0), ("random", E.efficientnet_lite0().eval())):
        features, test_features = (
            bb.experiments.pooled_features(net, bb.pretrained.to_lite0_input(v)) for v in (x, tx)
        )
        accuracies[name] = bb.experiments.linear_probe(features, y, test_features, ty)
    assert accuracies["pretrained"] > 0.9
    assert accuracies["pretrained"] > accuracies["random"] + 0.2

    digits = bb.load_digits()  # the control: handwriting is far from ImageNet's photographs
    x, y = digits.tensors(n=500)
    tx, ty = digits.tensors(split="test", n=250)
    for name, net in (("pretrained", lite0), ("random", E.efficientnet_lite0().eval())):
        features, test_features = (
            bb.experiments.pooled_features(net, bb.pretrained.to_lite0_input(v)) for v in (x, tx)
        )
        accuracies[f"digits {name}"] = bb.experiments.linear_probe(features, y, test_features, ty)
    assert accuracies["digits pretrained"] < accuracies["digits random"] + 0.02, accuracies


def test_the_recorded_runs_say_how_they_were_made():
    record = bb.records.load_record("se_efficientnet_runs")
    se = [r for r in record["runs"] if r["experiment"] == "se"]
    assert {r["depth"] for r in se} == {8, 20}
    assert all(len(r["test_accuracy"]["ResNet"]) == len(r["test_accuracy"]["SE-ResNet"]) >= 5 for r in se)
    scaling = [r for r in record["runs"] if r["experiment"] == "scaling"]
    assert {r["mode"] for r in scaling} == set(bb.scaling.MODES) and {r["phi"] for r in scaling} == {1.0, 2.0}


@pytest.mark.slow
def test_training_spreads_the_effective_field_s_tail_not_its_core(lite0):
    bb.seed_everything(0)
    untrained = E.efficientnet_lite0().eval()
    radii = {}
    for name, net in (("trained", lite0), ("untrained", untrained)):
        field = bb.receptive_field.effective_receptive_field(net, "features.5", input_size=193, samples=8)
        radii[name] = [bb.receptive_field.mass_radius(field, f) for f in (0.5, 0.95)]
    assert radii["trained"][1] > radii["untrained"][1] + 10, radii  # the 95% radius grows
    assert radii["trained"][0] <= radii["untrained"][0], radii  # the half-mass core does not


def test_the_recorded_runs_hold_what_the_chapter_says_of_them():
    import numpy as np

    record = bb.records.load_record("se_efficientnet_runs")
    for row in (r for r in record["runs"] if r["experiment"] == "se"):
        gap = np.array(row["test_accuracy"]["SE-ResNet"]) - np.array(row["test_accuracy"]["ResNet"])
        error = gap.std(ddof=1) / np.sqrt(len(gap))
        assert abs(gap.mean()) < 2 * error, row["depth"]  # no effect measurable at this scale
    accuracy: dict[tuple[str, float], float] = {}
    for row in (r for r in record["runs"] if r["experiment"] == "scaling"):
        accuracy.setdefault((row["mode"], row["phi"]), []).append(row["accuracy"])
    mean = {key: float(np.mean(values)) for key, values in accuracy.items()}
    base = mean["base", 1.0]
    for phi in (1.0, 2.0):
        assert mean["resolution", phi] > mean["compound", phi] > mean["width", phi] > base
        assert mean["depth", phi] < base + 0.02
    assert mean["compound", 2.0] > mean["compound", 1.0]


def test_the_se_record_has_the_seeds_the_page_counts(chapter_text):
    """Chapter 05 says how many seeds were recorded for each network: the record holds them."""
    record = bb.records.load_record("se_efficientnet_runs")
    seeds = {run["depth"]: len(run["seeds"]) for run in record["runs"] if run.get("experiment") == "se"}
    assert seeds == {8: 10, 20: 5}
    text = chapter_text("05_se_efficientnet.ipynb")
    assert "ten seeds were recorded for ResNet-8 and five for ResNet-20" in text
    assert "23.29% top-1 error on ImageNet against 24.80%" in text and "1.5 points" in text  # Hu et al., table 2


def test_the_scaling_record_shows_what_the_page_says_of_one_dimension_at_a_time(chapter_text):
    record = bb.records.load_record("se_efficientnet_runs")
    accuracy = {}
    for run in (r for r in record["runs"] if r.get("experiment") == "scaling"):
        accuracy.setdefault(run["mode"], {}).setdefault(run["macs"], []).append(run["accuracy"])
    mean = {mode: [sum(v) / len(v) for _, v in sorted(budgets.items())] for mode, budgets in accuracy.items()}
    (base,) = mean["base"]
    width, depth, resolution = mean["width"], mean["depth"], mean["resolution"]
    assert width[0] - base == pytest.approx(0.08, abs=0.015) and width[1] <= width[0] + 0.01  # gains, then no more
    assert max(depth) <= base and depth[1] < depth[0]  # depth never gains: no saturation to see
    assert resolution[1] > resolution[0] > width[0]  # still gaining at phi = 2
    text = chapter_text("05_se_efficientnet.ipynb")
    assert "width gains about eight points at $\\phi = 1$ and nothing more at $\\phi = 2$" in text
    assert "depth does not saturate, it never gains" in text
    assert "depth or width alone saturate quickly" not in text


def test_an_accuracy_on_a_hundred_images_is_known_to_about_six_points(chapter_text):
    low, high = bb.stats.accuracy_interval(0.9, 100)
    assert (round(low, 4), round(high, 4)) == (0.8256, 0.9448)  # Wilson's interval, by hand
    assert bb.stats.accuracy_interval(0.0, 10)[0] == pytest.approx(0, abs=1e-12)
    assert bb.stats.accuracy_interval(1.0, 10)[1] == pytest.approx(1)
    for accuracy in (0.87, 0.89):  # the page's digits: within each other's intervals
        low, high = bb.stats.accuracy_interval(accuracy, 100)
        assert low < 0.90 < high and high - low > 0.1
    with pytest.raises(ValueError, match="n > 0"):
        bb.stats.accuracy_interval(0.5, 0)
    assert "the three probes' 95% intervals overlap almost entirely" in chapter_text("05_se_efficientnet.ipynb")
