"""The ImageNet chapter's experiment (chapter 02): how much of a ranking of classes is noise;
and the challenge's winners by year, each figure with where it is published."""

from __future__ import annotations

from typing import NamedTuple

import torch

from backbones.data import ImageData
from backbones.experiments.recipe import train_recipe
from backbones.models.simple_cnn import SimpleCNN


class Winner(NamedTuple):
    year: int
    entry: str
    network: str  # what it was, as the lecture names it
    layers: int | None  # weight layers of its deepest network; None for the shallow entries and ensembles
    top5_error: float  # classification, ILSVRC test set, percent
    source: str


# The ILSVRC classification winners (and VGG, second in 2014), top-5 error on the test set.
ILSVRC_WINNERS = (
    Winner(2010, "NEC-UIUC", "shallow", None, 28.2, "Russakovsky et al. 2015, the challenge's results"),
    Winner(2011, "XRCE", "shallow", None, 25.8, "Russakovsky et al. 2015, the challenge's results"),
    Winner(
        2012, "SuperVision", "AlexNet", 8, 15.3, "Krizhevsky et al. 2012, table 2 (7 CNNs; 5 CNNs, no extra data: 16.4)"
    ),
    Winner(2013, "Clarifai", "ZF Net", 8, 11.7, "Russakovsky et al. 2015, the challenge's results (Zeiler & Fergus)"),
    Winner(2014, "VGG (second)", "VGG", 19, 7.3, "Simonyan & Zisserman 2015, table 7 (7.32%, the submission)"),
    Winner(2014, "GoogLeNet", "GoogLeNet", 22, 6.7, "Szegedy et al. 2015, table 2 (6.67%)"),
    Winner(2015, "MSRA", "ResNet", 152, 3.57, "He et al. 2016, table 5 (an ensemble)"),
    Winner(2016, "Trimps-Soushen", "ensemble", None, 2.99, "ILSVRC 2016 results, image-net.org"),
    Winner(2017, "WMW", "SENet", 154, 2.25, "Hu et al. 2018 (2.251%, the winning entry)"),
)
HUMAN_TOP5_ERROR = 5.1  # one trained annotator on 1,500 test images: Russakovsky et al. 2015, sec. 6.4


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
