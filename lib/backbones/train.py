"""A short, readable training loop for classifiers, with a history of loss and accuracy.

``fit`` runs a fixed number of optimiser steps (SGD with momentum and a one-cycle learning
rate by default), cycling through the loader; on CUDA it adds mixed precision (bfloat16 where
the GPU has it in hardware, float16 with loss scaling elsewhere, e.g. Colab's T4) and the
``channels_last`` memory layout, which change speed, not the maths.

Progress: a ``tqdm.auto`` bar in a live notebook. Where no one watches a bar (the static
book, CI) set ``BACKBONES_PROGRESS=summary``: the loop then prints only its closing line.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

PROGRESS_ENV = "BACKBONES_PROGRESS"


@dataclass
class Metrics:
    """Mean cross-entropy loss and top-1 accuracy over a dataset."""

    loss: float
    accuracy: float

    def __str__(self) -> str:
        return f"loss {self.loss:.4f}, accuracy {self.accuracy:.1%}"


@dataclass
class History:
    """What happened during :func:`fit`: per-step training loss and accuracy, periodic evaluations."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval: list[Metrics] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    def smoothed_loss(self, window: int = 20) -> list[float]:
        """Training loss averaged over the last ``window`` steps (what a learning curve shows)."""
        out, total = [], 0.0
        for i, value in enumerate(self.loss):
            total += value
            if i >= window:
                total -= self.loss[i - window]
            out.append(total / min(i + 1, window))
        return out

    def final_loss(self, window: int = 20) -> float:
        return self.smoothed_loss(window)[-1]

    def __str__(self) -> str:
        n = len(self.steps)
        text = (
            f"{n} steps in {self.seconds:.1f} s on {self.device} ({n / max(self.seconds, 1e-9):.0f} steps/s)\n"
            f"final training loss {self.final_loss():.4f}"
        )
        if self.eval:
            text += f"\ntest {self.eval[-1]}"
        return text


def _check_batch(logits: torch.Tensor, labels: torch.Tensor) -> None:
    """Turn the usual shape mistakes into a hint instead of a traceback from inside the loss."""
    if logits.ndim != 2:
        raise ValueError(
            f"the model returned logits of shape {tuple(logits.shape)}; a classifier must return "
            f"(batch, num_classes). Hint: flatten before the last linear layer."
        )
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"the model returned {logits.shape[0]} rows of logits for a batch of {labels.shape[0]} "
            f"labels. Hint: a reshape mixed the batch dimension with another one."
        )
    if int(labels.max()) >= logits.shape[1]:
        raise ValueError(
            f"labels go up to {int(labels.max())} but the model outputs only {logits.shape[1]} "
            f"logits per image. Hint: build the model with num_classes={int(labels.max()) + 1}."
        )


def _per_token(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A sequence model's ``(B, T, C)`` logits and ``(B, T)`` labels as ``B * T`` classifications."""
    if logits.ndim == 3 and labels.ndim == 2:
        return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    return logits, labels


def _prepare(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type for ``device``: bfloat16 on a CUDA GPU that computes it in hardware
    (Ampere, sm_80, and newer), float16 on older ones (a T4 is sm_75: its bfloat16 is emulated and
    slow), None (full precision) elsewhere."""
    if device.type != "cuda":
        return None
    try:
        hardware_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no such argument and reports hardware support only
        hardware_bf16 = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if hardware_bf16 else torch.float16


def _autocast(device: torch.device) -> torch.autocast:
    """Mixed precision in :func:`amp_dtype`; a no-op off CUDA."""
    dtype = amp_dtype(device)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, *, device: torch.device | str | None = None) -> Metrics:
    """Mean cross-entropy and top-1 accuracy of ``model`` over ``loader``, in eval mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = _prepare(x, device), y.to(device)
        with _autocast(device):
            logits = model(x)
        logits, y = _per_token(logits, y)
        _check_batch(logits, y)
        total_loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += y.numel()
    model.train(was_training)
    return Metrics(loss=total_loss / count, accuracy=correct / count)


def _batches(loader: DataLoader):
    """Cycle through the loader for ever (fit counts steps, not epochs)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:  # else this loop would spin for ever without a step
            raise ValueError(
                "the training loader yields no batch: it has fewer samples than one batch "
                "(with drop_last=True). Hint: lower batch_size."
            )


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    *,
    steps: int,
    lr: float = 0.05,
    weight_decay: float = 5e-4,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    test_loader: DataLoader | None = None,
    evals: int = 1,
    device: torch.device | str | None = None,
    desc: str = "train",
) -> History:
    """Train ``model`` for ``steps`` optimiser steps and return its :class:`History`.

    Args:
        model: a classifier returning ``(batch, num_classes)`` logits, or a sequence model returning
            ``(batch, length, num_classes)`` for ``(batch, length)`` labels (each token is classified).
        train_loader: yields ``(images, labels)``; cycled through as often as needed.
        steps: the number of optimiser steps.
        lr: peak learning rate of the one-cycle schedule (Smith & Topin 2017) for the default
            optimiser, SGD with Nesterov momentum 0.9 and ``weight_decay``.
        optimizer: your own optimiser instead (then the learning rate is left as you set it).
        scheduler: with your own optimiser, a learning-rate scheduler stepped after every step.
        test_loader: evaluated ``evals`` times, evenly spaced, the last at the end.
        device: where to train; by default where the model's parameters are.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    if scheduler is not None and optimizer is None:
        raise ValueError("a scheduler needs the optimiser it schedules: pass optimizer= too")
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    eval_at = {round(steps * (i + 1) / evals) for i in range(evals)} if test_loader is not None else set()

    # float16 has too few exponent bits for small gradients: scale the loss up, the gradients back
    # down (a no-op when disabled, as with bfloat16 or on the CPU).
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16)
    history = History(device=str(device))
    progress = _progress(steps, desc)
    model.train()
    start = time.perf_counter()
    for step, (x, y) in zip(range(1, steps + 1), _batches(train_loader)):
        x, y = _prepare(x, device), y.to(device, non_blocking=True)
        with _autocast(device):
            logits = model(x)
        logits, y = _per_token(logits, y)
        if step == 1:
            _check_batch(logits, y)
        loss = F.cross_entropy(logits.float(), y)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"the training loss became {loss.item()} at step {step}. Hint: lower the learning rate (lr={lr})."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()

        history.steps.append(step)
        history.loss.append(loss.item())
        history.accuracy.append((logits.argmax(dim=1) == y).float().mean().item())
        history.lr.append(optimizer.param_groups[0]["lr"])
        if step in eval_at:
            history.eval_steps.append(step)
            history.eval.append(evaluate(model, test_loader, device=device))
        progress.update(step, history)
    history.seconds = time.perf_counter() - start
    progress.close(history)
    return history


class _progress:
    """A tqdm.auto bar, or only a closing line when ``BACKBONES_PROGRESS=summary`` (or ``off``)."""

    def __init__(self, total: int, desc: str):
        self.mode = os.environ.get(PROGRESS_ENV, "bar").strip().lower()
        self.desc = desc
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=True)

    def update(self, step: int, history: History) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.bar.total:
                self.bar.set_postfix(loss=f"{history.smoothed_loss()[-1]:.3f}", refresh=False)

    def close(self, history: History) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.mode != "off":
            print(f"{self.desc}: {history}")
