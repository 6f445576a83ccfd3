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
