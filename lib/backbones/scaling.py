"""Compound scaling (Tan & Le 2019), computed and tried at toy scale.

- :func:`family_table`: B0-B7 as released (width, depth, resolution) next to what the paper's
  rule gives for phi = 1..7, with counted parameters and multiply-adds.
- :func:`lab_variants` and :func:`scaling_lab`: from one small EfficientNet, scale depth only,
  width only, resolution only, and all three by the compound rule to the same multiply-add
  budget, then train each alike on texture patches (:func:`backbones.data.load_textures`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backbones.data import load_textures
from backbones.experiments.recipe import adamw_one_cycle, train_recipe
from backbones.layers.mbconv import MBConv
from backbones.models.efficientnet import (
    SCALINGS,
    EfficientNet,
    Stage,
    compound_scaling,
    efficientnet,
    network_multiply_adds,
    scale_stages,
)


def family_table() -> list[dict]:
    """B0-B7: released multipliers, the rule's for phi = index, parameters and multiply-adds.

    Each model is built on the ``meta`` device (no memory, no arithmetic) and its multiply-adds
    computed from its table at its own resolution (:meth:`EfficientNet.multiply_adds`, which the
    tests hold equal to torch's counter). ``rule`` is ``(depth, width, resolution)`` from :func:`compound_scaling`.
    """
    rows = []
    base = None
    for phi, (name, s) in enumerate(SCALINGS.items()):
        with torch.device("meta"):
            model = efficientnet(name)
        macs = model.multiply_adds(s.resolution)
        base = base or macs
        rows.append(
            {
                "name": name.upper(),
                "phi": phi,
                "width": s.width,
                "depth": s.depth,
                "resolution": s.resolution,
                "rule": compound_scaling(phi),
                "params": sum(p.numel() for p in model.parameters()),
                "macs": macs,
                "ratio": macs / base,
            }
        )
    return rows


# The lab's base: a three-stage EfficientNet for 16x16 grey patches -------------------------

LAB_STAGES: tuple[Stage, ...] = (
    Stage(MBConv, 1, 3, 1, 16, 16, 1),
    Stage(MBConv, 4, 3, 2, 16, 24, 2),
    Stage(MBConv, 4, 5, 2, 24, 40, 2),
)
LAB_RESOLUTION = 16
LAB_DIVISOR = 4  # channels round to multiples of 4: with 8, a 16-channel stage could only jump to 24
MODES = ("base", "depth", "width", "resolution", "compound")


@dataclass(frozen=True)
class Variant:
    """A scaled copy of the lab's base net: its multipliers, input side and counted cost."""

    mode: str
    width: float
    depth: float
    resolution: int
    macs: int
    params: int

    def build(self, num_classes: int) -> EfficientNet:
        return lab_model(self.width, self.depth, num_classes=num_classes)


def lab_model(width: float = 1.0, depth: float = 1.0, *, num_classes: int = 8) -> EfficientNet:
    """The lab's base net scaled by ``width`` and ``depth`` (grey input; no dropout, no SE: the
    lab is about scaling, and SE's five small operations per block would double its CPU time)."""
    return EfficientNet(
        LAB_STAGES,
        width=width,
        depth=depth,
        in_channels=1,
        num_classes=num_classes,
        dropout=0.0,
        stochastic_depth=0.0,
        divisor=LAB_DIVISOR,
        se=False,
    )


def _measure(mode: str, width: float, depth: float, resolution: int, num_classes: int) -> Variant:
    with torch.device("meta"):
        model = lab_model(width, depth, num_classes=num_classes)
    return Variant(
        mode, width, depth, resolution, model.multiply_adds(resolution), sum(p.numel() for p in model.parameters())
    )


def lab_variants(phi: float = 1.0, *, num_classes: int = 8) -> dict[str, Variant]:
    """The base net, its compound scaling by ``phi``, and depth, width and resolution alone at
    the same cost.

    The compound variant follows the rule: depth ``alpha**phi``, width ``beta**phi``,
    resolution ``gamma**phi`` (``phi = 1``: about twice the multiply-adds). Channels round to
    multiples of 4, layers round up and feature maps shrink by ``ceil(size / 2)``, so a toy net's
    realised cost moves in steps and lands near, not on, ``2**phi``. Its *counted* multiply-adds
    are the budget: each single-dimension multiplier is searched on a fine grid, and the variant
    whose counted cost comes nearest the budget is kept.
    """
    base = _measure("base", 1.0, 1.0, LAB_RESOLUTION, num_classes)
    depth, width, resolution = compound_scaling(phi, base_resolution=LAB_RESOLUTION)
    compound = _measure("compound", width, depth, resolution, num_classes)
    grids = {
        "depth": [(1.0, 1.0 + i / 20, LAB_RESOLUTION) for i in range(1, 20 * 4)],
        "width": [(1.0 + i / 40, 1.0, LAB_RESOLUTION) for i in range(1, 40 * 2)],
        "resolution": [(1.0, 1.0, r) for r in range(LAB_RESOLUTION + 1, 4 * LAB_RESOLUTION)],
    }
    variants = {"base": base}
    for mode, grid in grids.items():
        costs = {
            (w, d, r): network_multiply_adds(_scaled(w, d), r, in_channels=1, num_classes=num_classes)
            for w, d, r in grid
        }
        w, d, r = min(costs, key=lambda key: abs(math.log(costs[key] / compound.macs)))
        variants[mode] = _measure(mode, w, d, r, num_classes)
    variants["compound"] = compound
    return variants


def _scaled(width: float, depth: float) -> list[Stage]:
    return scale_stages(LAB_STAGES, width=width, depth=depth, divisor=LAB_DIVISOR)


def scaling_lab(
    variants: dict[str, Variant],
    *,
    seeds: tuple[int, ...] = (0,),
    steps: int = 100,
    lr: float = 3e-3,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Train every variant alike (AdamW, one-cycle, same steps, seeds and patches) and test it.

    Returns one row per variant and seed: mode, multiply-adds, parameters, test accuracy.
    """
    rows = []
    data = {}
    for variant in variants.values():
        if variant.resolution not in data:
            data[variant.resolution] = load_textures(variant.resolution)
        d = data[variant.resolution]
        for seed in seeds:
            accuracy = train_recipe(
                lambda: variant.build(d.num_classes),
                lambda: d.loaders(batch_size, seed=seed),
                seed=seed,
                steps=steps,
                lr=lr,
                desc=f"{variant.mode} seed {seed}",
                optimizer=adamw_one_cycle(lr, steps),
                device=device,
            ).accuracy
            rows.append(
                {
                    "mode": variant.mode,
                    "seed": seed,
                    "macs": variant.macs,
                    "params": variant.params,
                    "width": variant.width,
                    "depth": variant.depth,
                    "resolution": variant.resolution,
                    "accuracy": accuracy,
                }
            )
    return rows
