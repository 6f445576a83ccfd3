"""The ResNet chapter's experiments (chapter 04): the degradation problem, and how the gradient
flows with and without skip connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from backbones.data import ImageData
from backbones.experiments.recipe import step_decay, train_recipe
from backbones.models.resnet import BasicBlock, CifarResNet
from backbones.train import History

SCHEDULES = ("one-cycle", "paper")


# The page shows this function from `runs = {}`: lines within its 88 characters.
# fmt: off
def degradation(
    data: ImageData,
    *,
    depths: tuple[int, ...] = (20, 56),
    steps: int = 300,
    lr: float = 0.05,
    batch_size: int = 64,
    width: int = 16,
    seed: int = 0,
    zero_init_residual: bool = False,
    schedule: str = "one-cycle",
    device: torch.device | str = "cpu",
) -> dict[str, tuple[CifarResNet, History]]:
    """He et al.'s degradation experiment: plain and residual CIFAR nets of each depth, trained
    alike (same seed, initialisation, data order, schedule). Returns ``{"plain-20": (model, history), ...}``.

    Args:
        zero_init_residual: start each residual branch's last BN at zero (Goyal et al. 2017), which
            steadies deep ResNets at high learning rates. He et al. did not; a plain net cannot
            use it (it would cut the signal), so with it the two families are no longer trained alike.
        schedule: ``"one-cycle"`` (SGD, Nesterov momentum 0.9, weight decay 5e-4, one-cycle learning
            rate peaking at ``lr``: what fits a few hundred steps) or ``"paper"`` (He et al.'s: SGD,
            momentum 0.9, weight decay 1e-4, ``lr`` divided by 10 at 50% and 75% of the steps, i.e.
            at 32k and 48k of 64k).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: choose one of {SCHEDULES}")
    runs = {}
    for skip in (False, True):
        for depth in depths:
            name = f"{'ResNet' if skip else 'plain'}-{depth}"

            def build():  # built after the same seed: the same initialisation
                return CifarResNet(depth=depth, num_classes=data.num_classes,
                                   in_channels=data.in_channels, width=width, skip=skip,
                                   zero_init_residual=zero_init_residual)

            paper = step_decay(lr, steps) if schedule == "paper" else None  # else fit's
            trained = train_recipe(build, lambda: data.loaders(batch_size, seed=seed),
                                   seed=seed, steps=steps, lr=lr, desc=name,
                                   optimizer=paper, track_test=True, device=device)
            runs[name] = (trained.model, trained.history)
    return runs
# fmt: on


def gradient_flow(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, block_type: type[nn.Module] = BasicBlock
) -> list[float]:
    """The norm of the loss gradient at the input of every block, from the input side to the output.

    The ratio of neighbouring values is how much one block scales the gradient on its way back
    (the chain rule's local factor); their product is what reaches the first layer.
    """
    inputs: list[torch.Tensor] = []

    def keep_input(module, args):
        args[0].retain_grad()
        inputs.append(args[0])

    hooks = [m.register_forward_pre_hook(keep_input) for m in model.modules() if isinstance(m, block_type)]
    try:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
    finally:
        for hook in hooks:
            hook.remove()
    return [x.grad.norm().item() for x in inputs]


@contextmanager
def padding_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Run ``model``'s padded convolutions with another padding (``"circular"``: the map wraps
    around, so no tap falls on a border of zeros), the weights unchanged; restored on exit. The
    control for "the zero padding, not the depth" on small maps."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and any(m.padding)]
    before = [m.padding_mode for m in convs]
    for m in convs:
        m.padding_mode = mode
    try:
        yield model
    finally:
        for m, old in zip(convs, before):
            m.padding_mode = old


@torch.no_grad()
def identity_path_open(
    model: nn.Module, images: torch.Tensor, *, block_type: type[nn.Module] = BasicBlock
) -> list[float]:
    """For every block, the share of its outputs where the ReLU after the addition is open.

    A block of the original ResNet returns ``relu(F(x) + x)``: where the sum is negative the ReLU
    passes no gradient, to the branch *or* to the identity path. So this is the share of units
    through which the identity path carries the gradient back (He et al. 2016b remove the ReLU
    from the path for this reason).
    """
    shares: list[float] = []

    def keep_share(module, args, output) -> None:
        shares.append((output > 0).float().mean().item())

    hooks = [m.register_forward_hook(keep_share) for m in model.modules() if isinstance(m, block_type)]
    try:
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return shares
