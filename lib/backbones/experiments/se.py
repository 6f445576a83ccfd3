"""The SE/EfficientNet chapter's experiments (chapter 05): does Squeeze-and-Excitation help, what
do its gates do, and what do pretrained features transfer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from backbones.data import ImageData
from backbones.experiments.recipe import train_recipe
from backbones.models.resnet import CifarResNet


def se_comparison(
    data: ImageData,
    *,
    seeds: tuple[int, ...] = (0, 1),
    depth: int = 8,
    reduction: int = 4,
    steps: int = 150,
    lr: float = 0.05,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    networks: tuple[str, ...] = ("ResNet", "SE-ResNet"),
) -> dict[str, list[tuple[CifarResNet, float]]]:
    """A CIFAR ResNet with and without SE in every block, trained alike for each seed (same
    initialisation of the shared layers' random stream, data order, schedule). Returns
    ``{"ResNet": [(model, test accuracy), ...], "SE-ResNet": [...]}``, one entry per seed
    (``networks`` trains only some of the two)."""
    runs: dict[str, list[tuple[CifarResNet, float]]] = {name: [] for name in networks}
    for name, se in (("ResNet", None), ("SE-ResNet", reduction)):
        if name not in networks:
            continue
        for seed in seeds:
            trained = train_recipe(
                lambda: CifarResNet(
                    depth=depth, num_classes=data.num_classes, in_channels=data.in_channels, se_reduction=se
                ),
                lambda: data.loaders(batch_size, seed=seed),
                seed=seed,
                steps=steps,
                lr=lr,
                desc=f"{name} seed {seed}",
                device=device,
            )
            runs[name].append((trained.model, trained.accuracy))
    return runs


@torch.no_grad()
def se_gates(model: nn.Module, images: torch.Tensor, *, squeezed: bool = False) -> dict[str, torch.Tensor]:
    """Every SE block's gates for a batch, in evaluation mode: ``{block name: (B, channels)}``.
    ``squeezed=True`` returns what the gates are computed from instead: the block's input
    averaged over H and W (the squeeze), one number per channel."""
    from backbones.layers.se import SqueezeExcitation

    found: dict[str, torch.Tensor] = {}
    names = {m: n for n, m in model.named_modules() if isinstance(m, SqueezeExcitation)}

    def record(module, args, output):  # returns None: the output is left as it is
        x = args[0]
        found[names[module]] = (module.avgpool(x) if squeezed else module.gates(x)).flatten(1).cpu()

    hooks = [m.register_forward_hook(record) for m in names]
    was_training = model.training
    try:
        model.eval()(images)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return found


def excitation_profiles(
    gates: dict[str, torch.Tensor], labels: torch.Tensor, num_classes: int
) -> dict[str, torch.Tensor]:
    """Each block's gates averaged per class: ``{block name: (classes, channels)}``.

    Hu et al.'s figure 6: the mean excitation of each channel over the images of one class.
    """
    one_hot = F.one_hot(labels.cpu(), num_classes).float()  # (B, classes)
    counts = one_hot.sum(dim=0).clamp_min(1).unsqueeze(1)  # (classes, 1)
    return {name: (one_hot.T @ g) / counts for name, g in gates.items()}


def gate_class_share(gates: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """How class-specific each block's gates are: the share of their variance over images that
    lies between the class means (eta squared, averaged over channels; 0: every class gets the
    same gates on average, 1: the class alone sets them)."""
    labels = labels.cpu()
    classes = labels.unique()
    shares = {}
    for name, g in gates.items():  # g: (B, C)
        total = g.var(dim=0, unbiased=False)  # (C,)
        means = torch.stack([g[labels == c].mean(dim=0) for c in classes])  # (K, C)
        weights = torch.stack([(labels == c).float().mean() for c in classes])  # (K,)
        between = (weights[:, None] * (means - g.mean(dim=0)) ** 2).sum(dim=0)  # (C,)
        keep = total > 1e-12  # a gate that never moves says nothing about classes
        shares[name] = float((between[keep] / total[keep]).mean()) if keep.any() else 0.0
    return shares


@torch.no_grad()
def linear_probe(
    features: torch.Tensor, labels: torch.Tensor, test_features: torch.Tensor, test_labels: torch.Tensor
) -> float:
    """Test accuracy of a logistic regression on frozen features (scikit-learn, standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    probe.fit(features.numpy(), labels.numpy())
    return float(probe.score(test_features.numpy(), test_labels.numpy()))


@torch.no_grad()
def pooled_features(model: nn.Module, images: torch.Tensor, *, batch_size: int = 128) -> torch.Tensor:
    """An EfficientNet's pooled features (before the classifier) for a batch of images: ``(N, D)``."""
    model.eval()
    out = [
        model.avgpool(model.features(images[i : i + batch_size])).flatten(1) for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)
