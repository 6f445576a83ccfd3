"""MBConv and Fused-MBConv: the blocks of EfficientNet (Tan & Le 2019) and EfficientNetV2 (2021).

MBConv (the "inverted residual" of MobileNetV2, with Squeeze-and-Excitation):

1. expansion: a 1x1 convolution widens ``C_in`` to ``t * C_in`` channels (skipped when t = 1);
2. depthwise: a k x k convolution with one filter per channel (``groups = channels``), the only
   layer that looks at neighbouring pixels, and cheap: ``k^2`` weights per channel;
3. Squeeze-and-Excitation on the expanded channels, sized from ``C_in``;
4. projection: a 1x1 convolution back down to ``C_out``, with no activation (a linear bottleneck);
5. a residual connection when the shapes match (stride 1, ``C_in == C_out``), whose branch is
   dropped at random during training (stochastic depth).

Fused-MBConv (V2) replaces expansion and depthwise by one ordinary k x k convolution: more
FLOPs, but faster on accelerators in early, high-resolution stages.

The modules carry torchvision's names and order (``block.0.0`` is the first convolution, ...),
so torchvision's EfficientNet weights load as they are. The switches the EfficientNet-Lite
family needs are arguments: the activation (ReLU6), no SE, batch-norm epsilon (1e-3) and
TensorFlow's "same" padding (:class:`Conv2dSame`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from backbones.layers.se import SqueezeExcitation

PADDINGS = ("symmetric", "same")


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: ``(before, after)``.

    The output has ``ceil(size / stride)`` positions; the padding that needs is split with the
    extra pixel *after*. With stride 2 on an even size the split is uneven, e.g. ``(0, 1)`` for a
    3x3 kernel on 224 pixels, where PyTorch's ``padding=1`` pads ``(1, 1)``: the sampled grid
    moves by a pixel, and weights trained one way give other outputs the other way.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding, computed from the input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ConvBNAct(nn.Sequential):
    """Convolution (no bias), batch norm and an optional activation: ``0``, ``1``, ``2``.

    Args:
        padding: ``"symmetric"`` (``k // 2`` on every side, PyTorch's models) or ``"same"``
            (TensorFlow's, for weights trained in TensorFlow).
        activation: a module factory, or None for a linear layer (the projection).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        activation: Callable[[], nn.Module] | None = nn.SiLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        padding: str = "symmetric",
    ):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
        if padding == "same":
            conv = Conv2dSame(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)
        else:
            conv = nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            )
        layers = [conv, nn.BatchNorm2d(out_channels, eps=norm_eps, momentum=norm_momentum)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class StochasticDepth(nn.Module):
    """Drop the residual branch of a whole sample with probability ``p`` (Huang et al. 2016).

    In training, each sample's branch is kept with probability ``1 - p`` and then divided by it,
    so that its expected value is unchanged; at evaluation the branch always passes.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"the drop probability must be in [0, 1], not {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        mask.bernoulli_(keep)  # (B, 1, 1, 1): one draw per sample
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def expanded_width(in_channels: int, expand_ratio: float) -> int:
    """The expanded channels, rounded to a multiple of 8 as torchvision does."""
    return make_divisible(in_channels * expand_ratio)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to the nearest multiple of ``divisor``, never more than 10% below ``value``.

    The rounding of MobileNet and EfficientNet (hardware likes multiples of 8), e.g.
    ``1.1 * 40 = 44 -> 48``, ``1.1 * 24 = 26.4 -> 24``.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


# fmt: off
class MBConv(nn.Module):
    """The mobile inverted bottleneck: expand 1x1, depthwise k x k, SE, project 1x1, residual.

    Args:
        in_channels, out_channels: ``C_in`` and ``C_out``.
        expand_ratio: t, the expansion (1 skips the expansion convolution).
        kernel_size: k of the depthwise convolution (3 or 5 in EfficientNet).
        stride: 1 or 2 (in the depthwise convolution).
        se: add Squeeze-and-Excitation, ``max(1, C_in // 4)`` wide (Lite models have none).
        activation: SiLU in EfficientNet, ReLU6 in EfficientNet-Lite.
        norm_eps, norm_momentum: batch norm's (TensorFlow-trained weights use eps 1e-3).
        padding: ``"symmetric"`` or ``"same"`` (TensorFlow's, see :class:`Conv2dSame`).
        stochastic_depth: probability of dropping the residual branch in training.
    """

    def __init__(self, in_channels: int, out_channels: int, *, expand_ratio: float,
                 kernel_size: int, stride: int, se: bool = True,
                 activation: Callable[[], nn.Module] = nn.SiLU, norm_eps: float = 1e-5,
                 norm_momentum: float = 0.1, padding: str = "symmetric",
                 stochastic_depth: float = 0.0):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride}")
        self.use_residual = stride == 1 and in_channels == out_channels
        conv = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, padding=padding)
        hidden = expanded_width(in_channels, expand_ratio)
        layers: list[nn.Module] = []
        if hidden != in_channels:  # expansion: 1x1, C_in -> t C_in
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=activation, **conv))
        layers.append(ConvBNAct(hidden, hidden, kernel_size, stride=stride,  # depthwise
                                groups=hidden, activation=activation, **conv))
        if se:  # channel attention, sized from the block's input channels
            squeeze = max(1, in_channels // 4)
            layers.append(SqueezeExcitation(hidden, squeeze, activation=nn.SiLU))
        # projection: 1x1, t C_in -> C_out, linear (no activation)
        layers.append(ConvBNAct(hidden, out_channels, 1, activation=None, **conv))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out
# fmt: on


class FusedMBConv(nn.Module):
    """EfficientNetV2's Fused-MBConv: one k x k convolution expands, a 1x1 projects, residual.

    With ``expand_ratio == 1`` it is a single k x k convolution. Arguments as :class:`MBConv`
    (no SE: V2 uses none in its fused stages).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        expand_ratio: float,
        kernel_size: int,
        stride: int,
        activation: Callable[[], nn.Module] = nn.SiLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        padding: str = "symmetric",
        stochastic_depth: float = 0.0,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride}")
        self.use_residual = stride == 1 and in_channels == out_channels
        conv = dict(norm_eps=norm_eps, norm_momentum=norm_momentum, padding=padding)
        hidden = expanded_width(in_channels, expand_ratio)
        if hidden != in_channels:
            layers = [
                ConvBNAct(in_channels, hidden, kernel_size, stride=stride, activation=activation, **conv),
                ConvBNAct(hidden, out_channels, 1, activation=None, **conv),
            ]
        else:
            layers = [ConvBNAct(in_channels, out_channels, kernel_size, stride=stride, activation=activation, **conv)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out
