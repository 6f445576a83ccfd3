"""ImageNet weights from torchvision, when they can be had (Colab); offline, a note saying why not.

torchvision's weight *metadata* (accuracy, parameter count, the 1000 class names) ships with
the package; the weights themselves are a download, cached in torch's hub folder.
"""
from __future__ import annotations

import torch
from torch import nn

from backbones.data import offline_forced, reachable

WEIGHTS_HOST = ("download.pytorch.org", 443)


def imagenet_weights(name: str):
    """torchvision's default ImageNet weights enum for a model name, e.g. ``"resnet50"``."""
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def load_imagenet_weights(model: nn.Module, name: str) -> str:
    """Copy torchvision's ImageNet weights for ``name`` into ``model`` (same module names).

    Returns a note saying what happened; ``model`` is left untouched when the weights cannot be had.
    """
    weights = imagenet_weights(name)
    try:
        state = weights.get_state_dict(progress=False, check_hash=False) if _cached_or_reachable(weights) else None
    except Exception as error:  # a broken download must not stop the chapter
        return f"ImageNet weights for {name} could not be downloaded ({type(error).__name__}): random weights kept."
    if state is None:
        why = "BACKBONES_OFFLINE=1" if offline_forced() else "offline: not cached, download.pytorch.org unreachable"
        return f"ImageNet weights for {name} unavailable ({why}): random weights kept."
    model.load_state_dict(state)
    return f"loaded torchvision's {weights} (ImageNet top-1 {weights.meta['_metrics']['ImageNet-1K']['acc@1']}%)."


def _cached_or_reachable(weights) -> bool:
    from pathlib import Path

    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    return cached.is_file() or (not offline_forced() and reachable(WEIGHTS_HOST))


# The leaderboard of the lecture's slide: torchvision models with the year of their paper.
YEARS = {
    "alexnet": 2012, "vgg16": 2014, "googlenet": 2014, "inception_v3": 2015, "resnet50": 2015, "resnet152": 2015,
    "densenet121": 2016, "resnext50_32x4d": 2016, "mobilenet_v2": 2018, "efficientnet_b0": 2019,
    "efficientnet_b4": 2019, "regnet_y_16gf": 2020, "vit_b_16": 2020, "swin_t": 2021, "efficientnet_v2_s": 2021,
    "convnext_tiny": 2022,
}


def leaderboard(names: list[str] | None = None) -> list[dict]:
    """ImageNet top-1/top-5, GFLOPs (multiply-adds) and parameters of each model's first published
    torchvision weights (``IMAGENET1K_V1``: the paper-era recipe; later versions were retrained with
    modern recipes), read from the metadata that ships with torchvision (no download)."""
    import torchvision

    rows = []
    for name in names or list(YEARS):
        meta = getattr(torchvision.models.get_model_weights(name), "IMAGENET1K_V1").meta
        metrics = meta["_metrics"]["ImageNet-1K"]
        rows.append({"name": name, "year": YEARS.get(name), "top1": metrics["acc@1"], "top5": metrics["acc@5"],
                     "gflops": meta["_ops"], "params": meta["num_params"]})
    return rows
