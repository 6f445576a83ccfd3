"""The smallest useful convolutional classifier: the Getting-started chapter trains it."""

from __future__ import annotations

import torch
from torch import nn


class SimpleCNN(nn.Module):
    """Two 3x3 conv blocks (conv, batch norm, ReLU), global average pooling and a linear head.

    Works for any image size, since the pooling is global.

    Args:
        in_channels: 1 for grey images, 3 for colour.
        num_classes: the number of logits.
        width: channels of the first block; the second has twice as many.
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, num_classes)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SimpleCNN expects images of shape (batch, {self.in_channels}, height, width), "
                f"got {tuple(x.shape)}. Hint: a single image needs a batch dimension: x.unsqueeze(0)."
            )
        x = self.features(x)  # (B, 2w, H/2, W/2)
        x = self.pool(x)  # (B, 2w, 1, 1)
        x = x.flatten(1)  # (B, 2w)
        return self.head(x)  # (B, num_classes)
