"""Loss landscapes (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape
of Neural Nets").

The loss of a trained network around its weights theta* is drawn along random directions:
``L(theta* + alpha delta)`` on a line, ``L(theta* + alpha delta + beta eta)`` on a plane. Raw random
directions mislead, because a network's scale is arbitrary (batch norm makes each filter's
scale irrelevant); Li et al. rescale every *filter* of a random direction to the norm of the
same filter in theta* (filter normalisation) and leave biases and BN parameters at zero.

Evaluation is where the time goes: one forward pass over the data per grid point.
:func:`loss_surface` does it fast: the data is one tensor, batch norm (in eval mode, so its
statistics do not depend on the batch) is folded into the convolutions once, the data is laid
out channels-last, and the weights of each grid point are written in place.
:func:`reference_loss_surface` is the reference repository's approach (rebuild the weights, loop
over a DataLoader), kept to prove both give the same numbers and to measure the speed-up
(benchmarks/landscape_speed.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

Direction = dict[str, torch.Tensor]


def filter_normalize(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Rescale each filter (slice along dim 0) of ``direction`` to the norm of that filter in
    ``weight``; a bias or BN parameter (``ndim <= 1``) gets a zero direction."""
    if weight.ndim <= 1:
        return torch.zeros_like(weight)
    dims = tuple(range(1, weight.ndim))
    weight_norm = torch.linalg.vector_norm(weight, dim=dims, keepdim=True)  # (out, 1, 1, 1)
    direction_norm = torch.linalg.vector_norm(direction, dim=dims, keepdim=True).clamp_min(1e-12)
    return direction * weight_norm / direction_norm


def random_direction(model: nn.Module, *, seed: int = 0) -> Direction:
    """A Gaussian direction in weight space, filter-normalised to ``model``'s weights."""
    generator = torch.Generator().manual_seed(seed)
    direction = {}
    for name, weight in model.named_parameters():
        noise = torch.randn(weight.shape, generator=generator).to(weight)
        direction[name] = filter_normalize(noise, weight.detach())
    return direction


def _fold_batchnorm(model: nn.Module, directions: Sequence[Direction]) -> tuple[nn.Module, list[Direction]]:
    """An eval-mode copy of ``model`` with every ``convN``/``bnN`` pair folded into one convolution,
    and the directions mapped onto the folded weights (a filter's direction scales with its BN)."""
    fused = copy.deepcopy(model).eval()
    directions = [dict(d) for d in directions]
    for parent_name, parent in list(fused.named_modules()):
        for conv_name, conv in list(parent.named_children()):
            bn_name = conv_name.replace("conv", "bn")
            bn = getattr(parent, bn_name, None)
            if not (conv_name.startswith("conv") and isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().view(-1, 1, 1, 1)
            prefix = f"{parent_name}." if parent_name else ""
            for d in directions:
                d[f"{prefix}{conv_name}.weight"] = d[f"{prefix}{conv_name}.weight"] * scale
                for key in ("weight", "bias"):
                    d.pop(f"{prefix}{bn_name}.{key}", None)
            setattr(parent, conv_name, torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn))
            setattr(parent, bn_name, nn.Identity())
    return fused, directions


@torch.inference_mode()
def loss_surface(
    model: nn.Module,
    directions: Sequence[Direction],
    coordinates: Sequence[Sequence[float]],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    precision: str = "float32",
) -> np.ndarray:
    """The mean cross-entropy at every point of a grid around ``model``'s weights.

    Args:
        model: the trained network (not modified).
        directions: one direction (a line) or two (a plane), e.g. from :func:`random_direction`.
        coordinates: the steps along each direction, e.g. ``[alphas]`` or ``[alphas, betas]``.
        images, labels: the data, evaluated as one batch.
        precision: ``"float32"`` (the same numbers as the reference) or ``"bfloat16"`` (about
            twice as fast where the processor supports it; losses within about 0.1%).

    Returns:
        an array of shape ``(len(alphas),)`` or ``(len(betas), len(alphas))``.
    """
    if len(directions) != len(coordinates) or len(directions) not in (1, 2):
        raise ValueError("give one direction and one list of steps (a line), or two of each (a plane)")
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be 'float32' or 'bfloat16', not {precision!r}")
    fused, directions = _fold_batchnorm(model, directions)
    if images.ndim == 4:  # the layout oneDNN and cuDNN convolve fastest
        fused = fused.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    params = dict(fused.named_parameters())
    names = [n for n in params if any(d.get(n) is not None and d[n].any() for d in directions)]
    base = [params[n].detach().clone() for n in names]
    steps = [[d[n] for n in names] for d in directions]
    targets = [params[n] for n in names]
    grid = (
        np.meshgrid(*coordinates[::-1], indexing="ij")[::-1] if len(coordinates) == 2 else [np.asarray(coordinates[0])]
    )
    losses = np.empty(grid[0].shape)
    for index in np.ndindex(losses.shape):
        if targets:  # a zero direction moves no weight
            torch._foreach_copy_(targets, base)
            for step, direction in zip((g[index] for g in grid), steps):
                torch._foreach_add_(targets, direction, alpha=float(step))
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            logits = fused(images)
        losses[index] = F.cross_entropy(logits.float(), labels).item()
    return losses


@torch.no_grad()
def reference_loss_surface(
    model: nn.Module,
    directions: Sequence[Direction],
    coordinates: Sequence[Sequence[float]],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 128,
) -> np.ndarray:
    """The reference repository's approach (loss-landscape's ``crunch``): for each grid point,
    rebuild every weight as ``theta* + sum(step * direction)`` and loop over a DataLoader."""
    net = copy.deepcopy(model).eval()
    weights = [p.detach().clone() for p in net.parameters()]
    dirs = [[d[name] for name, _ in net.named_parameters()] for d in directions]
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)
    grid = (
        np.meshgrid(*coordinates[::-1], indexing="ij")[::-1] if len(coordinates) == 2 else [np.asarray(coordinates[0])]
    )
    losses = np.empty(grid[0].shape)
    for index in np.ndindex(losses.shape):
        step = [float(g[index]) for g in grid]
        for p, w, *ds in zip(net.parameters(), weights, *dirs):  # set_weights
            p.data = w + sum(s * d for s, d in zip(step, ds))
        total, count = 0.0, 0
        for x, y in loader:  # eval_loss
            total += F.cross_entropy(net(x), y).item() * len(y)
            count += len(y)
        losses[index] = total / count
    return losses


def surface_curvature(surface: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``(lambda_min, lambda_max)`` of the 2x2 finite-difference Hessian of a 2-D
    surface at every interior grid point (the curvature of the plotted slice)."""
    f = surface
    d_aa = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / spacing**2
    d_bb = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / spacing**2
    d_ab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * spacing**2)
    mean, gap = (d_aa + d_bb) / 2, np.sqrt(((d_aa - d_bb) / 2) ** 2 + d_ab**2)
    return mean - gap, mean + gap


def nonconvexity(surface: np.ndarray, spacing: float) -> tuple[float, float]:
    """Li et al.'s measure of non-convexity, on the plotted slice of the surface.

    At every interior grid point: the eigenvalues of the 2x2 Hessian of the loss (finite
    differences). Returns ``(fraction, ratio)``: the fraction of points where the slice is not
    convex (``lambda_min < 0``), and the mean over the grid of ``|lambda_min / lambda_max|`` at those
    points (0 at convex points): 0 for a bowl, towards 1 where the surface is as much saddle as bowl.
    Computed on the loss itself, as Li et al. do (the log of a convex function need not be convex).
    """
    low, high = surface_curvature(surface, spacing)
    nonconvex = low < 0
    ratio = np.clip(np.abs(low) / np.maximum(np.abs(high), 1e-12), 0, 1)
    return float(nonconvex.mean()), float(np.where(nonconvex, ratio, 0).mean())


def count_local_minima(surface: np.ndarray) -> int:
    """Grid points lower than all 8 neighbours (interior points only)."""
    centre = surface[1:-1, 1:-1]
    lower = np.ones_like(centre, dtype=bool)
    rows, cols = surface.shape
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                lower &= centre < surface[1 + di : rows - 1 + di, 1 + dj : cols - 1 + dj]
    return int(lower.sum())
