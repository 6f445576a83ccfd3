"""VGG (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition"), as torchvision builds it.

Only 3x3 convolutions (stride 1, padding 1, so a stage keeps its size) and 2x2 max pools that
halve it: two stacked 3x3 convolutions see a 5x5 region and three see 7x7, with fewer
parameters and more non-linearities than one large kernel. The configurations are the paper's
Table 1 columns, as plain data; "M" is a max pool.
"""

from __future__ import annotations

import torch
from torch import nn

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # A
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # B
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # D
    "vgg19": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],  # E
}


# The page shows this function: its signature stays within the page's 88 characters.
# fmt: off
def make_features(config: list[int | str], *, in_channels: int = 3,
                  batch_norm: bool = False) -> nn.Sequential:
    """The convolutional part of a VGG from its configuration row."""
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, item, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        in_channels = item
    return nn.Sequential(*layers)
# fmt: on


class VGG(nn.Module):
    """A VGG: ``features`` from a configuration row, then three fully connected layers.

    Args:
        config: a row of :data:`CONFIGS`.
        num_classes: outputs of the last layer.
        batch_norm: BatchNorm after every convolution (torchvision's ``vgg16_bn``; not in the paper).
        dropout: before the second and third fully connected layers.
    """

    def __init__(
        self, *, config: list[int | str], num_classes: int = 1000, batch_norm: bool = False, dropout: float = 0.5
    ):
        super().__init__()
        self.features = make_features(config, batch_norm=batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),  # 102.8M parameters: most of the network
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 512, 7, 7) for a 224x224 image
        x = self.avgpool(x)
        x = torch.flatten(x, 1)  # (B, 25088)
        return self.classifier(x)  # (B, num_classes)


def vgg11(**kwargs) -> VGG:
    """VGG-11 (configuration A), 132.9M parameters."""
    return VGG(config=CONFIGS["vgg11"], **kwargs)


def vgg13(**kwargs) -> VGG:
    """VGG-13 (configuration B), 133.0M parameters."""
    return VGG(config=CONFIGS["vgg13"], **kwargs)


def vgg16(**kwargs) -> VGG:
    """VGG-16 (configuration D), 138,357,544 parameters."""
    return VGG(config=CONFIGS["vgg16"], **kwargs)


def vgg19(**kwargs) -> VGG:
    """VGG-19 (configuration E), 143,667,240 parameters."""
    return VGG(config=CONFIGS["vgg19"], **kwargs)
