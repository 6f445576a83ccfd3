"""Squeeze-and-Excitation (Hu et al. 2018, "Squeeze-and-Excitation Networks"): channel attention.

A block computes one number per channel from the whole feature map and rescales the channel by it:

- squeeze: global average pooling, ``(B, C, H, W) -> (B, C, 1, 1)``;
- excitation: a bottleneck of two fully connected layers, ``C -> C/r -> C``, with an activation
  between them and a sigmoid after, so that each gate lies in (0, 1);
- scale: multiply every channel of the input by its gate.

The fully connected layers are 1x1 convolutions and the modules carry torchvision's names
(``avgpool``, ``fc1``, ``activation``, ``fc2``, ``scale_activation``), so that
``torchvision.ops.SqueezeExcitation``'s weights load as they are (the tests prove the outputs
equal). Hu et al. size the bottleneck as ``C / r`` with ``r = 16`` and use ReLU; EfficientNet's
MBConv sizes it from the block's *input* channels (``in / 4``) and uses SiLU: both are
arguments here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


# fmt: off
class SqueezeExcitation(nn.Module):
    """Rescale each channel by a gate in (0, 1) computed from the whole feature map.

    Args:
        channels: C, the channels of the feature map.
        squeeze_channels: the width of the bottleneck (Hu et al.: ``C // r``).
        activation: the activation between the two layers (Hu et al.: ReLU; EfficientNet: SiLU).
        scale_activation: the gate (Hu et al.: sigmoid).
    """

    def __init__(self, channels: int, squeeze_channels: int, *,
                 activation: Callable[[], nn.Module] = nn.ReLU,
                 scale_activation: Callable[[], nn.Module] = nn.Sigmoid):
        super().__init__()
        if channels < 1 or squeeze_channels < 1:
            raise ValueError(f"channels and squeeze_channels must be positive, "
                             f"got {channels} and {squeeze_channels}")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, kernel_size=1)
        self.activation = activation()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, kernel_size=1)
        self.scale_activation = scale_activation()

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """The excitation: one gate per image and channel, ``(B, C, 1, 1)``."""
        s = self.avgpool(x)                      # squeeze: (B, C, 1, 1)
        s = self.activation(self.fc1(s))         # (B, C/r, 1, 1)
        return self.scale_activation(self.fc2(s))  # (B, C, 1, 1), in (0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gates(x)                 # scale: (B, C, H, W)
# fmt: on


def se_parameters(channels: int, squeeze_channels: int) -> int:
    """Parameters of an SE block: two weight matrices and their biases, ``2 C s + s + C``."""
    return 2 * channels * squeeze_channels + squeeze_channels + channels
