"""A deep sigmoid MLP and its residual twin: the smallest network where gradients vanish.

The sigmoid's slope is at most 1/4, so without skips the gradient reaching layer l from the top
shrinks by a factor of roughly ``1/4 * ||W||`` per layer. With ``residual=True`` each layer adds
its output to its input, ``h = h + sigmoid(W h + b)``, and the chain rule's factor becomes
``I + J``: the identity carries the gradient down unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class SigmoidMLP(nn.Module):
    """``depth`` layers of width ``width`` (sigmoid), then a linear classifier.

    Args:
        in_features, width, depth, num_classes: the shape.
        residual: False, ``h = sigmoid(layer(h))``; True, ``h = h + sigmoid(layer(h))``.
    """

    def __init__(
        self, *, in_features: int = 64, width: int = 32, depth: int = 20, num_classes: int = 10, residual: bool = False
    ):
        super().__init__()
        self.residual = residual
        self.stem = nn.Linear(in_features, width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.flatten(1))
        for layer in self.layers:
            h = h + torch.sigmoid(layer(h)) if self.residual else torch.sigmoid(layer(h))
        return self.head(h)

    @classmethod
    def twins(cls, seed: int = 0, **kwargs) -> tuple[SigmoidMLP, SigmoidMLP]:
        """A plain network and its residual twin with the same weights."""
        torch.manual_seed(seed)
        plain = cls(residual=False, **kwargs)
        twin = cls(residual=True, **kwargs)
        twin.load_state_dict(plain.state_dict())
        return plain, twin
