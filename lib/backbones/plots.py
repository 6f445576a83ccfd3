"""The book's look: one figure style, and the plots several chapters draw.

Colours are the Okabe-Ito palette (distinguishable by colour-blind readers and in grey by
lightness), images use viridis, every axis is labelled.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

# Okabe & Ito (2008), "Color Universal Design": safe for the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
CMAP = "viridis"

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "image.cmap": CMAP,
    "lines.linewidth": 1.8,
}


def use_style() -> None:
    """Apply the book's figure style to every later matplotlib figure."""
    mpl.rcParams.update(STYLE)


def plot_history(*histories, labels: Sequence[str] | None = None, window: int = 20,
                 log_loss: bool = False, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    """Learning curves: smoothed training loss per step (left), training and test accuracy (right).

    Args:
        histories: one or more :class:`backbones.train.History`.
        labels: a legend entry per history.
        window: steps the training loss is averaged over.
        log_loss: a logarithmic loss axis (for losses that span decades).
    """
    labels = list(labels) if labels is not None else [None] * len(histories)
    if len(labels) != len(histories):
        raise ValueError(f"{len(histories)} histories but {len(labels)} labels")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    fig = axes[0].figure
    loss_ax, acc_ax = axes
    for color, history, label in zip(PALETTE, histories, labels):
        loss_ax.plot(history.steps, history.smoothed_loss(window), color=color, label=label)
        acc_ax.plot(history.steps, _smooth(history.accuracy, window), color=color, label=label and f"{label} (train)")
        if history.eval:
            acc_ax.plot(history.eval_steps, [m.accuracy for m in history.eval], "o--", color=color,
                        label=f"{label} (test)" if label else "test")
    loss_ax.set(xlabel="optimiser step", ylabel=f"training loss (mean of {window} steps)",
                title="Training loss")
    if log_loss:
        loss_ax.set_yscale("log")
    acc_ax.set(xlabel="optimiser step", ylabel="accuracy", ylim=(0, 1.02), title="Accuracy")
    acc_ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
    if any(labels) or any(h.eval for h in histories):
        acc_ax.legend(loc="lower right")
    if any(labels):
        loss_ax.legend()
    return fig


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def show_images(images: torch.Tensor | np.ndarray, titles: Sequence[str] | None = None, *, ncols: int = 8,
                size: float = 1.1, cmap: str = "gray") -> plt.Figure:
    """A grid of images: a ``(B, C, H, W)`` tensor in [0, 1] or a list of ``(H, W[, 3])`` arrays."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(images.shape)}")
        images = [img.permute(1, 2, 0).squeeze(-1).cpu().numpy() for img in images]
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap if np.ndim(images[i]) == 2 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    return fig
