"""The experiments behind the book's claims, as functions: a chapter runs them and shows the
result, a test runs the same code and checks the claim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from backbones.data import ImageData
from backbones.models.resnet import BasicBlock, CifarResNet
from backbones.runtime import seed_everything
from backbones.train import History, fit


def degradation(data: ImageData, *, depths: tuple[int, ...] = (20, 56), steps: int = 300, lr: float = 0.05,
                batch_size: int = 64, width: int = 16, seed: int = 0,
                device: torch.device | str = "cpu") -> dict[str, tuple[CifarResNet, History]]:
    """He et al.'s degradation experiment: plain and residual CIFAR nets of each depth, trained
    alike (same seed, data order, schedule). Returns ``{"plain-20": (model, history), ...}``.

    Each residual branch's last BN starts at zero (the block starts as the identity), which keeps
    the deep ResNet stable at a high learning rate; the plain nets cannot use it (it would cut them).
    """
    runs = {}
    for skip in (False, True):
        for depth in depths:
            name = f"{'ResNet' if skip else 'plain'}-{depth}"
            seed_everything(seed)
            model = CifarResNet(depth=depth, num_classes=data.num_classes, in_channels=data.in_channels,
                                width=width, skip=skip, zero_init_residual=True).to(device)
            train_loader, test_loader = data.loaders(batch_size, seed=seed)
            history = fit(model, train_loader, steps=steps, lr=lr, test_loader=test_loader, desc=name)
            runs[name] = (model, history)
    return runs


def gradient_flow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                  block_type: type[nn.Module] = BasicBlock) -> list[float]:
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
