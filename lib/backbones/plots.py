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


def plot_history(
    *histories,
    labels: Sequence[str] | None = None,
    window: int = 20,
    log_loss: bool = False,
    axes: Sequence[plt.Axes] | None = None,
) -> plt.Figure:
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
            acc_ax.plot(
                history.eval_steps,
                [m.accuracy for m in history.eval],
                "o--",
                color=color,
                label=f"{label} (test)" if label else "test",
            )
    loss_ax.set(xlabel="optimiser step", ylabel=f"training loss (mean of {window} steps)", title="Training loss")
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


def show_images(
    images: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    size: float = 1.1,
    cmap: str = "gray",
) -> plt.Figure:
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


def plot_training_loss(histories: dict, *, ax: plt.Axes | None = None, title: str = "", window: int = 20) -> plt.Axes:
    """Smoothed training loss per step of several runs, log scale (losses that span decades)."""
    if ax is None:
        _, ax = plt.subplots()
    for color, (name, history) in zip(PALETTE, histories.items()):
        ax.plot(history.steps, history.smoothed_loss(window), color=color, label=name)
    ax.set(yscale="log", xlabel="optimiser step", ylabel=f"training loss (mean of {window} steps)", title=title)
    ax.legend()
    return ax


def plot_loss_surfaces(
    surfaces: dict[str, np.ndarray], alphas: np.ndarray, betas: np.ndarray, *, levels: int = 20
) -> plt.Figure:
    """Li et al.'s figure: for each surface a contour plot (top) and a 3-D surface (bottom), of
    log10 loss, side by side on one colour scale so the surfaces can be compared."""
    logs = {name: np.log10(surface) for name, surface in surfaces.items()}
    low, high = min(s.min() for s in logs.values()), max(s.max() for s in logs.values())
    n = len(surfaces)
    fig = plt.figure(figsize=(4.6 * n, 8.4))
    grid_a, grid_b = np.meshgrid(alphas, betas)
    for i, (name, log_loss) in enumerate(logs.items()):
        ax = fig.add_subplot(2, n, i + 1)
        contour = ax.contourf(grid_a, grid_b, log_loss, levels=np.linspace(low, high, levels), cmap=CMAP)
        ax.contour(grid_a, grid_b, log_loss, levels=np.linspace(low, high, levels), colors="white", linewidths=0.4)
        ax.plot(0, 0, "w*", markersize=10)
        ax.set(
            title=name, xlabel=r"$\alpha$ (direction $\delta$)", ylabel=r"$\beta$ (direction $\eta$)", aspect="equal"
        )
        ax.grid(False)
        ax3 = fig.add_subplot(2, n, n + i + 1, projection="3d")
        ax3.plot_surface(grid_a, grid_b, log_loss, cmap=CMAP, vmin=low, vmax=high, linewidth=0, antialiased=True)
        ax3.set(xlabel=r"$\alpha$", ylabel=r"$\beta$", zlabel="log10 loss", zlim=(low, high))
        ax3.view_init(elev=35, azim=-60)
    fig.colorbar(contour, ax=fig.axes[0::2] if n > 1 else fig.axes[0], label="log10 training loss", shrink=0.8)
    return fig


def plot_gradient_flow(flows: dict[str, list[float]], *, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """The gradient norm at the input of each block (x: block, input side left), log scale."""
    if ax is None:
        _, ax = plt.subplots()
    # One colour per depth; plain nets dashed, ResNets solid. Names look like "plain-56".
    depths = sorted({name.split("-")[-1] for name in flows}, key=lambda d: int(d) if d.isdigit() else 0)
    for name, norms in flows.items():
        kind, depth = name.split("-")[0], name.split("-")[-1]
        ax.plot(
            range(1, len(norms) + 1),
            norms,
            "--" if kind == "plain" else "-",
            color=PALETTE[depths.index(depth) % len(PALETTE)],
            label=name,
        )
    ax.set(
        yscale="log",
        xlabel="block (input side left)",
        ylabel=r"$\|\partial L / \partial x_{\mathrm{block}}\|$",
        title=title,
    )
    ax.legend(ncol=2)
    return ax


def plot_attention(
    weights: torch.Tensor | np.ndarray,
    queries: Sequence[str],
    keys: Sequence[str] | None = None,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
    annotate: bool = True,
) -> plt.Axes:
    """An attention matrix as a heatmap: one row per query, one column per key, rows sum to 1."""
    weights = np.asarray(torch.as_tensor(weights).detach().cpu(), dtype=float)
    keys = list(queries) if keys is None else list(keys)
    if weights.shape != (len(queries), len(keys)):
        raise ValueError(f"weights of shape {weights.shape} for {len(queries)} queries and {len(keys)} keys")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(keys) + 1.5, 0.4 * len(queries) + 1))
    image = ax.imshow(weights, cmap=CMAP, vmin=0, vmax=1)
    ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right")
    ax.set_yticks(range(len(queries)), queries)
    ax.set(xlabel="key (attended to)", ylabel="query (attending)", title=title)
    ax.grid(False)
    if annotate and weights.size <= 144:
        for (i, j), value in np.ndenumerate(weights):
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="black" if value > 0.6 else "white"
            )
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    return ax


def show_receptive_fields(photo: np.ndarray, fields: Sequence, *, ncols: int = 4, size: float = 2.4) -> plt.Figure:
    """Small multiples: for each layer, the receptive field of the unit at the image centre drawn
    on the photograph (``fields``: :class:`backbones.receptive_field.LayerField` rows)."""
    import matplotlib.patches as patches

    n = len(fields)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    height, width = photo.shape[:2]
    for ax, field in zip(axes.flat, fields):
        ax.imshow(photo)
        half = field.size / 2
        ax.add_patch(
            patches.Rectangle(
                (width / 2 - half, height / 2 - half),
                field.size,
                field.size,
                fill=False,
                edgecolor=PALETTE[1],
                linewidth=2.5,
            )
        )
        ax.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), title=f"{field.name}: {field.size}x{field.size}")
        ax.axis("off")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig


def plot_ilsvrc_winners(winners: Sequence, human: float, *, ax: plt.Axes | None = None) -> plt.Axes:
    """The ILSVRC classification winners' top-5 error by year, shallow entries grey, each bar
    labelled with its network and depth, and a line at the human error."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(winners))
    shallow = [w.layers is None and w.network == "shallow" for w in winners]
    colors = ["0.65" if s else plt.get_cmap(CMAP)(0.35) for s in shallow]
    ax.bar(x, [w.top5_error for w in winners], color=colors, edgecolor="black", linewidth=0.5)
    for i, w in enumerate(winners):
        depth = f"\n{w.layers} layers" if w.layers else ""
        ax.annotate(
            f"{w.top5_error:g}%\n{w.network}{depth}",
            (i, w.top5_error),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=7,
        )
    ax.axhline(human, color="C3", ls="--", lw=1, label=f"human, one trained annotator: {human}%")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(x, [f"{w.year}\n(2nd)" if "second" in w.entry else str(w.year) for w in winners])
    ax.set(
        ylabel="top-5 error on the test set (%)",
        ylim=(0, max(w.top5_error for w in winners) * 1.3),
        title="ILSVRC classification: the winners by year (grey: no deep network)",
    )
    return ax


def plot_leaderboard(rows: Sequence[dict], *, ax: plt.Axes | None = None) -> plt.Axes:
    """ImageNet top-1 accuracy against compute (log scale), marker area by parameters, labelled by year."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.6))
    years = sorted({r["year"] for r in rows})
    cmap = plt.get_cmap(CMAP)
    for r in rows:
        color = cmap(years.index(r["year"]) / max(len(years) - 1, 1))
        ax.scatter(
            r["gflops"], r["top1"], s=r["params"] / 2e5, color=color, alpha=0.75, edgecolor="black", linewidth=0.5
        )
        ax.annotate(
            f"{r['name']} ({r['year']})",
            (r["gflops"], r["top1"]),
            textcoords="offset points",
            xytext=(6, -3),
            fontsize=7,
        )
    ax.set(
        xscale="log",
        xlabel="GFLOPs per image (multiply-adds, log scale)",
        ylabel="ImageNet top-1 accuracy (%)",
        title="ImageNet top-1 against compute; marker area = parameters",
    )
    return ax
