"""The Vision Transformer chapter's experiments (chapter 09): does a ViT need more data than a CNN
of its size, and what does it learn (attention distance, position embeddings, rollout)?"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from backbones.data import ImageData
from backbones.experiments.recipe import adamw_one_cycle, train_recipe
from backbones.models.simple_cnn import SimpleCNN
from backbones.stats import spearman


class Shifted:
    """A loader whose images come shifted by up to ``pixels`` in each direction at random
    (zeros come in at the edge): the one augmentation both networks of :func:`vit_vs_cnn` train
    with. ``step`` > 1 shifts by its multiples only: ``pixels=2, step=2`` moves a ViT's
    2-pixel patches by a whole patch or not at all. Shifts a whole batch at once (per image, per
    item, costs more than the tiny nets)."""

    def __init__(self, loader, pixels: int = 1, *, step: int = 1, seed: int = 0):
        if step < 1 or pixels % step:
            raise ValueError(f"shifts of up to {pixels} pixels cannot come in steps of {step}")
        self.loader, self.pixels, self.step = loader, pixels, step
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        p, step = self.pixels, self.step
        for images, labels in self.loader:
            if p:
                height, width = images.shape[-2:]
                padded = F.pad(images, [p] * 4)
                # where each crop of the padded batch starts: 0..2p, in steps
                shifts = step * torch.randint(0, 2 * p // step + 1, (len(images), 2), generator=self.generator)
                shifted = torch.empty_like(images)
                for dy in range(0, 2 * p + 1, step):
                    for dx in range(0, 2 * p + 1, step):
                        chosen = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                        shifted[chosen] = padded[chosen, :, dy : dy + height, dx : dx + width]
                images = shifted
            yield images, labels


def tiny_vit(
    data: ImageData, *, patch_size: int = 2, embed_dim: int = 32, depth: int = 4, num_heads: int = 4, mlp_ratio: int = 2
) -> nn.Module:
    """The chapter's small ViT for ``data``'s images (8x8 digits: a 4x4 grid of 2x2 patches)."""
    from backbones.models.vit import ViT

    return ViT(
        image_size=data.image_size,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        num_classes=data.num_classes,
        channels=data.in_channels,
    )


def matched_cnn(data: ImageData, parameters: int) -> SimpleCNN:
    """The :class:`SimpleCNN` whose parameter count is nearest to ``parameters``."""

    def count(width: int) -> int:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            net = SimpleCNN(in_channels=data.in_channels, num_classes=data.num_classes, width=width)
        return sum(p.numel() for p in net.parameters())

    width = min(range(4, 256), key=lambda w: abs(count(w) - parameters))
    return SimpleCNN(in_channels=data.in_channels, num_classes=data.num_classes, width=width)


def split_train(data: ImageData, *, validation: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A fixed split of the training set's indices into ``(train pool, validation)``: learning
    rates are chosen on the validation part, never on the test set."""
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed)).tolist()
    cut = round(validation * len(order))
    return order[cut:], order[:cut]


def train_one(
    make_model,
    data: ImageData,
    indices: list[int],
    *,
    lr: float,
    seed: int,
    steps: int,
    batch_size: int = 64,
    weight_decay: float = 0.05,
    shift: int = 0,
    shift_step: int = 1,
    evaluate_on=None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, float]:
    """Train ``make_model()`` on ``data.train[indices]`` (shifted by up to ``shift`` pixels, in
    steps of ``shift_step``) with
    AdamW and a one-cycle schedule peaking at ``lr``; returns the model and its accuracy on
    ``evaluate_on`` (a dataset; the test set by default)."""
    from torch.utils.data import DataLoader, Subset

    def loaders():
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            Subset(data.train, indices),
            batch_size=min(batch_size, len(indices)),
            shuffle=True,
            drop_last=True,
            generator=generator,
        )
        test = DataLoader(evaluate_on if evaluate_on is not None else data.test, batch_size=256)
        return Shifted(loader, shift, step=shift_step, seed=seed), test

    trained = train_recipe(
        make_model,
        loaders,
        seed=seed,
        steps=steps,
        lr=lr,
        desc=f"lr {lr:g} seed {seed}",
        optimizer=adamw_one_cycle(lr, steps, weight_decay=weight_decay, foreach=True),
        device=device,
    )
    return trained.model, trained.accuracy


def training_subset(pool: list[int], size: int, seed: int) -> list[int]:
    """``size`` indices of the pool, drawn for this seed: each seed trains on its own subset (and
    order), so the spread over seeds includes which images were drawn."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1000 + seed)).tolist()
    return [pool[i] for i in order[:size]]


def vit_vs_cnn(
    data: ImageData,
    *,
    fractions: tuple[float, ...] = (0.1, 0.3, 1.0),
    seeds: tuple[int, ...] = (0,),
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2),
    chosen: dict | None = None,
    steps: int = 300,
    shift: int = 0,
    shift_step: int = 1,
    device: torch.device | str = "cpu",
    **vit_shape,
) -> list[dict]:
    """A small ViT against a CNN of about the same parameter count, trained alike (AdamW,
    one-cycle, ``steps`` steps, batch 64, the same random shifts of up to ``shift`` pixels in
    steps of ``shift_step``) on a fraction of the training pool.

    For each network and fraction the learning rate is the one of ``lrs`` with the best
    validation accuracy (seed 0; the validation images are never trained on), unless ``chosen``
    gives it (``{(network, fraction): lr}``, e.g. from a recorded sweep). Then every seed trains at
    that rate and is scored on the test set. Returns one row per network, fraction and seed:
    ``network, parameters, fraction, images, lr, seed, accuracy, model``, and on the rows that
    ran the sweep ``validation``, its accuracy for each rate.
    """
    from torch.utils.data import Subset

    vit_parameters = sum(p.numel() for p in tiny_vit(data, **vit_shape).parameters())
    makers = {"ViT": lambda: tiny_vit(data, **vit_shape), "CNN": lambda: matched_cnn(data, vit_parameters)}
    pool, validation = split_train(data)
    rows = []
    for fraction in fractions:
        size = max(round(fraction * len(pool)), 10)
        for network, make in makers.items():
            for seed in seeds:
                indices = training_subset(pool, size, seed)
                sweep = None
                if chosen is not None and (network, fraction) in chosen:
                    lr = chosen[(network, fraction)]
                elif seed == seeds[0]:
                    sweep = {
                        rate: train_one(
                            make,
                            data,
                            indices,
                            lr=rate,
                            seed=seed,
                            steps=steps,
                            shift=shift,
                            shift_step=shift_step,
                            device=device,
                            evaluate_on=Subset(data.train, validation),
                        )[1]
                        for rate in lrs
                    }
                    lr = max(sweep, key=sweep.get)
                model, accuracy = train_one(
                    make,
                    data,
                    indices,
                    lr=lr,
                    seed=seed,
                    steps=steps,
                    shift=shift,
                    shift_step=shift_step,
                    device=device,
                )
                rows.append(
                    {
                        "network": network,
                        "parameters": sum(p.numel() for p in model.parameters()),
                        "fraction": fraction,
                        "images": size,
                        "lr": lr,
                        "seed": seed,
                        "accuracy": accuracy,
                        "model": model.cpu(),
                    }
                )
                if sweep is not None:
                    rows[-1]["validation"] = {str(rate): score for rate, score in sweep.items()}
    return rows


def position_similarity(position: torch.Tensor) -> torch.Tensor:
    """The cosine similarity of a ViT's patch position embeddings ``(1, 1 + N, E)`` (its
    ``position``), ``(N, N)`` in the patch grid's reading order ([CLS] left out):
    Dosovitskiy et al. fig. 7, centre."""
    unit = F.normalize(position.detach()[0, 1:].float().cpu(), dim=-1)
    return unit @ unit.T


def position_structure(position: torch.Tensor) -> float:
    """How much position embeddings ``(1, 1 + N, E)`` follow the 2-D grid: the Spearman
    correlation, over all pairs of patches, between their embeddings' cosine and minus their
    distance on the grid (1: nearer patches always more alike; about 0 for random vectors)."""
    similarity = position_similarity(position)
    grid = math.isqrt(len(similarity))
    centres = patch_centres(grid, 1)
    distance = torch.cdist(centres, centres)
    i, j = torch.triu_indices(len(similarity), len(similarity), offset=1)
    return spearman(similarity[i, j].numpy(), -distance[i, j].numpy())


def patch_centres(grid: int, patch_size: int) -> torch.Tensor:
    """The pixel coordinates ``(N, 2)`` of a ``grid x grid`` patch grid's centres, reading order."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return (torch.stack([rows.flatten(), cols.flatten()], dim=1).float() + 0.5) * patch_size


# fmt: off
def mean_attention_distance(attention: list[torch.Tensor],
                            patch_size: int) -> torch.Tensor:
    """Dosovitskiy et al.'s "attention distance" (fig. 7, right): per layer and
    head, the distance in pixels between a patch and the patches it attends to,
    weighted by the attention and averaged over the patches and the batch.
    ``attention``: per layer ``(B, H, T, T)`` with the [CLS] token first (left out
    here). Returns ``(layers, heads)``."""
    tokens = attention[0].shape[-1] - 1
    grid = math.isqrt(tokens)
    centres = patch_centres(grid, patch_size)
    distance = torch.cdist(centres, centres)                       # (N, N) pixels
    out = []
    for weights in attention:
        a = weights[..., 1:, 1:].float().cpu()                     # patches to patches
        a = a / a.sum(dim=-1, keepdim=True)  # shares of the patch-to-patch attention
        out.append((a * distance).sum(dim=-1).mean(dim=(0, 2)))    # (H,)
    return torch.stack(out)
# fmt: on


@torch.no_grad()
def deletion_test(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    *,
    patch_size: int,
    k: int,
    fill: float = 0.0,
    seed: int = 0,
) -> dict[str, float]:
    """Is a saliency map right about which patches matter? Replace ``k`` patches of each image
    with ``fill`` -- those the map ``scores`` (``(B, N)``) ranks highest, lowest, or ``k`` at
    random -- and return the accuracy left in each case (and with nothing removed)."""
    from backbones.models.vit import patchify, unpatchify

    model.eval()
    height, width = images.shape[-2:]
    generator = torch.Generator().manual_seed(seed)
    choices = {
        "none": None,
        "highest": scores.argsort(dim=1, descending=True)[:, :k],
        "lowest": scores.argsort(dim=1)[:, :k],
        "random": torch.stack([torch.randperm(scores.shape[1], generator=generator)[:k] for _ in range(len(images))]),
    }
    out = {}
    for name, chosen in choices.items():
        patches = patchify(images, patch_size).clone()
        if chosen is not None:
            patches[torch.arange(len(images))[:, None], chosen] = fill
        logits = model(unpatchify(patches, patch_size, height, width))
        out[name] = (logits.argmax(dim=1) == labels).float().mean().item()
    return out
