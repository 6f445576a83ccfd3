"""The recipe every training experiment of the book follows: seed -> build -> loaders -> fit ->
evaluate. One function, so that "trained alike" means the same code: the same seed before the
model is built (its initialisation), the same seed for the data order, the same schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from backbones.runtime import seed_everything
from backbones.train import History, evaluate, fit


@dataclass
class Trained:
    """What a recipe run gives back: the model, its training history, its test accuracy (None
    when no test loader was given)."""

    model: nn.Module
    history: History
    accuracy: float | None


def train_recipe(
    build: Callable[[], nn.Module],
    loaders: Callable[[], tuple[DataLoader, DataLoader | None]],
    *,
    seed: int,
    steps: int,
    lr: float,
    desc: str,
    optimizer: Callable[[nn.Module], tuple[torch.optim.Optimizer, object]] | None = None,
    track_test: bool = False,
    device: torch.device | str = "cpu",
) -> Trained:
    """Seed everything with ``seed``, ``build()`` the model (on ``device``), make the
    ``loaders()`` ``(train, test)``, ``fit`` for ``steps`` steps (``optimizer(model)`` gives
    ``(optimizer, scheduler)``; default: ``fit``'s SGD with a one-cycle schedule peaking at
    ``lr``), then evaluate on the test loader. ``track_test``: also record the test accuracy in
    the history during training (``fit``'s ``test_loader``)."""
    seed_everything(seed)
    model = build().to(device)
    train_loader, test_loader = loaders()
    chosen, scheduler = optimizer(model) if optimizer is not None else (None, None)
    history = fit(
        model,
        train_loader,
        steps=steps,
        lr=lr,
        optimizer=chosen,
        scheduler=scheduler,
        test_loader=test_loader if track_test else None,
        desc=desc,
    )
    if track_test and history.eval:  # fit evaluated at the end already
        accuracy = history.eval[-1].accuracy
    else:
        accuracy = evaluate(model, test_loader, device=device).accuracy if test_loader is not None else None
    return Trained(model, history, accuracy)


def adamw_one_cycle(lr: float, steps: int, *, weight_decay: float = 0.05, foreach: bool | None = None):
    """``optimizer=`` for :func:`train_recipe`: AdamW with a one-cycle schedule peaking at ``lr``."""

    def make(model: nn.Module):
        kwargs = {} if foreach is None else {"foreach": foreach}
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, **kwargs)
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)

    return make


def step_decay(lr: float, steps: int):
    """``optimizer=`` for :func:`train_recipe`: He et al.'s schedule, SGD with momentum 0.9 and
    weight decay 1e-4, ``lr`` divided by 10 at 50% and 75% of the steps (32k and 48k of 64k)."""

    def make(model: nn.Module):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
        milestones = [steps // 2, steps * 3 // 4]
        return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)

    return make
