"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep
Convolutional Neural Networks"), as torchvision builds it.

Five convolutions (the first 11x11 with stride 4 on a 224x224 image) and three fully connected
layers: 8 learned layers, 61.1M parameters, 58.6M of them in the fully connected layers.
torchvision follows the "one weird trick" variant (Krizhevsky 2014): 64/192 channels in the first
two convolutions instead of the paper's 96/256, no local response normalisation, one GPU's
worth of model. The module indices equal torchvision's, so its weights load as they are.
"""

from __future__ import annotations

import torch
from torch import nn


# fmt: off
class AlexNet(nn.Module):
    """AlexNet for ``image_size`` 224 (any size >= 63 works: the pooling before the classifier is adaptive).

    Args:
        num_classes: outputs of the last layer.
        dropout: before the first two fully connected layers.
    """

    def __init__(self, *, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),    # 0: (B, 64, 55, 55)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 2: (B, 64, 27, 27)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),             # 3: (B, 192, 27, 27)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 5: (B, 192, 13, 13)
            nn.Conv2d(192, 384, kernel_size=3, padding=1),            # 6: (B, 384, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),            # 8: (B, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),            # 10: (B, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 12: (B, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),                             # 1: 37.8M parameters
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),                                    # 4: 16.8M
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),                             # 6: 4.1M
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)           # (B, 256, 6, 6) for a 224x224 image
        x = self.avgpool(x)
        x = torch.flatten(x, 1)        # (B, 9216)
        return self.classifier(x)      # (B, num_classes)
# fmt: on


def alexnet(**kwargs) -> AlexNet:
    """AlexNet, 61,100,840 parameters (torchvision's)."""
    return AlexNet(**kwargs)
