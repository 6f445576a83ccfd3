"""ResNet from scratch: torchvision's parameter counts and outputs, the paper's CIFAR sizes,
the skip switch, and the chapter's experiments (degradation ordering, gradient flow)."""
from __future__ import annotations

import pytest
import torch
import torchvision

import backbones as bb
from backbones.models.resnet import BasicBlock, PadShortcut

IMAGENET = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_resnet_equals_torchvision(name):
    torch.manual_seed(0)
    ours, reference = getattr(bb.models, name)().eval(), torchvision.models.get_model(name).eval()
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    assert count == bb.pretrained.imagenet_weights(name).meta["num_params"]
    ours.load_state_dict(reference.state_dict())  # same module names: torchvision's weights load as they are
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("depth, params", [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018),
                                           (110, 1_727_962)])
def test_cifar_resnet_has_the_papers_size(depth, params):
    model = bb.models.cifar_resnet(depth)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == depth  # 6n + 1 convolutions and the classifier


def test_option_a_shortcut_subsamples_and_pads_without_parameters():
    shortcut = PadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4) and list(shortcut.parameters()) == []
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_skip_switch_removes_the_identity_path():
    torch.manual_seed(0)
    residual = BasicBlock(8, 8).eval()
    plain = BasicBlock(8, 8, skip=False).eval()
    plain.load_state_dict(residual.state_dict())
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        branch = residual.bn2(residual.conv2(residual.relu(residual.bn1(residual.conv1(x)))))
        torch.testing.assert_close(plain(x), torch.relu(branch))
        torch.testing.assert_close(residual(x), torch.relu(branch + x))


def test_plain_and_residual_nets_have_the_same_parameters():
    for depth in (20, 56):
        count = [sum(p.numel() for p in bb.models.cifar_resnet(depth, skip=s).parameters()) for s in (True, False)]
        assert count[0] == count[1]


def test_zero_init_makes_every_residual_block_start_as_identity():
    model = bb.models.cifar_resnet(20, zero_init_residual=True).eval()
    block = model.layer1[0]
    x = torch.relu(torch.randn(1, 16, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
    plain = bb.models.cifar_resnet(20, zero_init_residual=True, skip=False)
    assert all(b.bn2.weight.abs().sum() > 0 for b in plain.modules() if isinstance(b, BasicBlock))


def test_wrong_depth_is_a_clear_error():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        bb.models.cifar_resnet(21)


def test_imagenet_weights_offline_leave_the_model_untouched():
    model = bb.models.resnet18()
    before = model.fc.weight.clone()
    note = bb.pretrained.load_imagenet_weights(model, "resnet18")
    assert note.startswith("ImageNet weights for resnet18 unavailable (BACKBONES_OFFLINE=1)")
    assert torch.equal(model.fc.weight, before)


@pytest.fixture(scope="module")
def degradation_runs():
    """The chapter's quick experiment, with the chapter's settings."""
    return bb.experiments.degradation(bb.load_digits(), depths=(20, 56), steps=300, batch_size=64, lr=0.05)


@pytest.mark.slow
def test_deeper_plain_net_trains_worse_deeper_resnet_better(degradation_runs):
    final = {name: history.final_loss() for name, (_, history) in degradation_runs.items()}
    assert final["plain-56"] > 10 * final["plain-20"]   # measured: 1.12 vs 0.0088
    assert final["ResNet-56"] < final["ResNet-20"]      # measured: 0.0039 vs 0.0068
    assert final["ResNet-56"] < final["plain-56"] / 100


@pytest.mark.slow
def test_plain_surface_is_rougher_than_the_residual_one(degradation_runs):
    data = bb.load_digits()
    images, labels = data.tensors(256)
    alphas = torch.linspace(-1, 1, 11).numpy()
    measures = {}
    for name in ("plain-56", "ResNet-56"):
        model = degradation_runs[name][0]
        directions = [bb.landscape.random_direction(model, seed=s) for s in (1, 2)]
        surface = bb.landscape.loss_surface(model, directions, [alphas, alphas], images, labels)
        measures[name] = (surface.max(), *bb.landscape.nonconvexity(surface, alphas[1] - alphas[0]))
    assert measures["plain-56"][0] > 100 * measures["ResNet-56"][0]  # it climbs orders of magnitude higher
    assert measures["plain-56"][1] > measures["ResNet-56"][1] + 0.2  # more non-convex points
    assert measures["plain-56"][2] > measures["ResNet-56"][2]        # and more strongly


def _flow(depth, skip, train):
    bb.seed_everything(0)
    data = bb.load_digits()
    images, labels = data.tensors(256)
    net = bb.models.cifar_resnet(depth, in_channels=1, skip=skip).train(train)
    norms = bb.experiments.gradient_flow(net, images, labels)
    assert len(norms) == (depth - 2) // 2  # one per block
    return norms[0] / norms[-1]


def test_plain_gradient_vanishes_without_normalisation():
    assert _flow(56, skip=False, train=False) < 1e-3   # measured 1.5e-5
    assert _flow(56, skip=True, train=False) > 1       # the identity path: it cannot vanish


def test_plain_gradient_explodes_with_batch_norm_and_the_skip_tames_it():
    assert _flow(56, skip=False, train=True) > 100     # measured 2.4e3
    assert _flow(56, skip=True, train=True) < 100      # measured 23
