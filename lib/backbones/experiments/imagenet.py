"""The ImageNet chapter's experiment (chapter 02): how much of a ranking of classes is noise."""

from __future__ import annotations

import torch

from backbones.data import ImageData
from backbones.experiments.recipe import train_recipe
from backbones.models.simple_cnn import SimpleCNN


def per_class_accuracy(
    data: ImageData,
    *,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    steps: int = 300,
    width: int = 16,
    lr: float = 0.1,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same small CNN trained with several seeds: each seed's test accuracy per class and the
    confusion matrix summed over the seeds. Returns ``(per_class (seeds, classes), confusion)``,
    ``confusion[true, predicted]`` counting test images.

    One run's per-class accuracy rests on a handful of errors per class; the spread over seeds
    says how much of a ranking of classes is noise.
    """
    images, labels = data.tensors(split="test")
    confusion = torch.zeros(data.num_classes, data.num_classes, dtype=torch.long)
    accuracies = []
    for seed in seeds:
        model = train_recipe(
            lambda: SimpleCNN(in_channels=data.in_channels, num_classes=data.num_classes, width=width),
            lambda: (data.loaders(batch_size=64, seed=seed)[0], None),
            seed=seed,
            steps=steps,
            lr=lr,
            desc=f"seed {seed}",
            device=device,
        ).model
        with torch.no_grad():
            predicted = model.eval()(images.to(device)).argmax(dim=1).cpu()
        seed_confusion = torch.zeros_like(confusion)
        seed_confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
        confusion += seed_confusion
        accuracies.append(seed_confusion.diag() / seed_confusion.sum(dim=1))
    return torch.stack(accuracies), confusion
