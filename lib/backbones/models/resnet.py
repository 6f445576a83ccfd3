"""ResNet (He et al. 2016, "Deep Residual Learning for Image Recognition"), from scratch.

Two families, one file:

- ImageNet ResNet-18/34/50/101/152: the same modules, names and parameter counts as
  torchvision's, so ``model.load_state_dict(torchvision_model.state_dict())`` loads its weights
  (the tests prove the outputs then agree). Like torchvision (ResNet "v1.5"), a Bottleneck
  downsamples in its 3x3 convolution, where the paper did it in the first 1x1.
- CIFAR ResNet-20/32/44/56/110 (the paper's Section 4.2): three stages of 16, 32 and 64
  channels, ``6n + 2`` layers, and the paper's option-A shortcut (identity, subsampled and
  zero-padded when the shape changes), which adds no parameters.

Every block takes ``skip``: with ``skip=False`` the same network has no skip connections, the
paper's "plain" baseline. Every block also takes ``se_reduction``: with a number r, the block
rescales its residual branch's channels by Squeeze-and-Excitation (``C -> C/r -> C``) before the
addition, as Hu et al. 2018 built SE-ResNet. Order: blocks, shortcuts, models, factories.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from backbones.layers.se import SqueezeExcitation


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


# fmt: off
class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a skip connection: ``relu(F(x) + shortcut(x))``.

    Args:
        in_channels, out_channels: channels in and out.
        stride: 2 halves the resolution (in the first convolution).
        downsample: the projection shortcut when the shape changes (None: identity).
        skip: False removes the skip connection (a block of a plain network).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        skip: bool = True,
        se_reduction: int | None = None,
    ):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample
        self.stride = stride
        self.skip = skip
        if se_reduction:  # only then: a block without SE keeps torchvision's names
            self.se = _se(out_channels, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if hasattr(self, "se"):
            out = self.se(out)  # channel attention on the branch, before the addition
        if self.skip:
            if self.downsample is not None:
                identity = self.downsample(x)
            out = out + identity  # the skip: added before the last ReLU, as in the paper
        return self.relu(out)
# fmt: on


class PreActBlock(nn.Module):
    """The pre-activation block of He et al. 2016b ("Identity Mappings in Deep Residual Networks"):
    ``x + F(x)`` with ``F = conv2(relu(bn2(conv1(relu(bn1(x))))))``. Batch norm and ReLU move
    before each convolution, so nothing follows the addition and the identity path is clean: a
    stack of these blocks returns ``x + sum of the branches``.

    When the shape changes, ``shortcut`` (a strided 1x1 convolution) takes the pre-activated
    input ``relu(bn1(x))``, as in the authors' code; otherwise the shortcut is ``x`` itself.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.relu = nn.ReLU()
        self.shortcut = (
            conv1x1(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))  # pre-activation, shared with the projection
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut  # no ReLU after the addition


# fmt: off
class Bottleneck(nn.Module):
    """1x1 (reduce), 3x3, 1x1 (expand by 4) convolutions and a skip connection.

    Args: as :class:`BasicBlock`, but ``planes`` (torchvision's name) is the width of the 3x3
    convolution, not the output: the block outputs ``4 * planes`` channels.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        skip: bool = True,
        se_reduction: int | None = None,
    ):
        super().__init__()
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.skip = skip
        if se_reduction:
            self.se = _se(planes * self.expansion, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if hasattr(self, "se"):
            out = self.se(out)
        if self.skip:
            if self.downsample is not None:
                identity = self.downsample(x)
            out = out + identity
        return self.relu(out)
# fmt: on


def _se(channels: int, reduction: int) -> SqueezeExcitation:
    """Hu et al.'s SE for a ResNet block: ``C -> max(1, C // r) -> C``, ReLU, sigmoid."""
    return SqueezeExcitation(channels, max(1, channels // reduction), activation=nn.ReLU)


class PadShortcut(nn.Module):
    """The paper's option A: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))  # (B, C', H/s, W/s)


class ResNet(nn.Module):
    """The ImageNet ResNet: a 7x7 stem, four stages of blocks, global pooling and a classifier.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``[3, 4, 6, 3]`` for ResNet-34 and -50.
        num_classes: outputs of the classifier.
        skip: False builds the plain network of the same depth: no skips and no projection
            shortcuts, so it has fewer parameters (ResNet-50: 2,776,576 fewer).
        se_reduction: r, to add Squeeze-and-Excitation to every block (SE-ResNet; Hu et al.: 16).
    """

    def __init__(
        self,
        *,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        skip: bool = True,
        in_channels: int = 3,
        se_reduction: int | None = None,
    ):
        super().__init__()
        self.skip = skip
        self.se_reduction = se_reduction
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_weights(self)

    def _make_stage(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        needs_projection = stride != 1 or self.in_planes != planes * block.expansion
        if self.skip and needs_projection:  # projection shortcut (option B); a plain net has no shortcuts
            downsample = nn.Sequential(
                conv1x1(self.in_planes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        options = dict(skip=self.skip, se_reduction=self.se_reduction)
        stage = [block(self.in_planes, planes, stride=stride, downsample=downsample, **options)]
        self.in_planes = planes * block.expansion
        stage += [block(self.in_planes, planes, **options) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H/2, W/2)
        x = self.maxpool(x)  # (B, 64, H/4, W/4)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)  # (B, 512e, H/32, W/32)
        x = self.avgpool(x).flatten(1)  # (B, 512e)
        return self.fc(x)  # (B, num_classes)


class CifarResNet(nn.Module):
    """The paper's CIFAR-10 ResNet: ``6n + 2`` layers, stages of 16, 32 and 64 channels.

    Args:
        depth: 20, 32, 44, 56, 110 (any ``6n + 2``).
        num_classes: outputs of the classifier.
        skip: False builds the plain network of the same depth (it has no shortcuts at all).
        in_channels: 3 for colour images, 1 for grey.
        width: channels of the first stage (16 in the paper).
        zero_init_residual: start each residual branch's last BN at zero, so every block starts as
            the identity (Goyal et al. 2017); only with ``skip`` (it would silence a plain net).
        se_reduction: r, to add Squeeze-and-Excitation to every block (an SE-ResNet).
    """

    def __init__(
        self,
        *,
        depth: int = 20,
        num_classes: int = 10,
        skip: bool = True,
        in_channels: int = 3,
        width: int = 16,
        zero_init_residual: bool = False,
        se_reduction: int | None = None,
    ):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"a CIFAR ResNet has 6n + 2 layers (20, 32, 44, 56, 110), not {depth}")
        n = (depth - 2) // 6
        self.depth, self.skip = depth, skip
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        widths = [width, 2 * width, 4 * width]
        stages, in_planes = [], width
        for stage, planes in enumerate(widths):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                reshapes = stride != 1 or in_planes != planes
                shortcut = PadShortcut(in_planes, planes, stride) if skip and reshapes else None
                blocks.append(
                    BasicBlock(
                        in_planes, planes, stride=stride, downsample=shortcut, skip=skip, se_reduction=se_reduction
                    )
                )
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        _init_weights(self)
        if zero_init_residual and skip:
            for block in self.modules():
                if isinstance(block, BasicBlock):
                    nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, w, H, W)
        x = self.layer1(x)  # (B, w, H, W)
        x = self.layer2(x)  # (B, 2w, H/2, W/2)
        x = self.layer3(x)  # (B, 4w, H/4, W/4)
        x = self.avgpool(x).flatten(1)  # (B, 4w)
        return self.fc(x)  # (B, num_classes)


def _init_weights(model: nn.Module) -> None:
    """He (Kaiming) normal initialisation of convolutions, BN at identity: as torchvision."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# Named factories: the ImageNet family (as torchvision) and the CIFAR family (the paper's Table 6).


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlocks ``[2, 2, 2, 2]``, 11.7M parameters."""
    return ResNet(block=BasicBlock, layers=[2, 2, 2, 2], **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlocks ``[3, 4, 6, 3]``, 21.8M parameters."""
    return ResNet(block=BasicBlock, layers=[3, 4, 6, 3], **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottlenecks ``[3, 4, 6, 3]``, 25.6M parameters."""
    return ResNet(block=Bottleneck, layers=[3, 4, 6, 3], **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottlenecks ``[3, 4, 23, 3]``, 44.5M parameters."""
    return ResNet(block=Bottleneck, layers=[3, 4, 23, 3], **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152: Bottlenecks ``[3, 8, 36, 3]``, 60.2M parameters."""
    return ResNet(block=Bottleneck, layers=[3, 8, 36, 3], **kwargs)


def cifar_resnet(depth: int, **kwargs) -> CifarResNet:
    """A CIFAR ResNet of ``depth`` layers (``skip=False``: the plain net of that depth)."""
    return CifarResNet(depth=depth, **kwargs)
