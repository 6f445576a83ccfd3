"""Exercises of the Getting-started chapter: top-k accuracy and the cross-entropy loss."""

from __future__ import annotations

import math

import torch

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs


def _logits(batch: int, classes: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, classes, generator=generator) * scale


def _labels(batch: int, classes: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed + 1)
    return torch.randint(classes, (batch,), generator=generator)


# Top-k accuracy --------------------------------------------------------------------------------


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    top_k = logits.topk(k, dim=1).indices  # (B, k)
    hits = (top_k == labels.unsqueeze(1)).any(dim=1)  # (B,)
    return hits.float().mean().item()


def _top_k_cases() -> list[Case]:
    cases = []
    for label, batch, classes, k, seed in [
        ("a batch of 64 with 10 classes, k=1", 64, 10, 1, 0),
        ("a batch of 64 with 10 classes, k=5", 64, 10, 5, 1),
        ("a batch of one, k=3", 1, 7, 3, 2),
        ("an odd batch of 33 with 1000 classes, k=5", 33, 1000, 5, 3),
        ("k equal to the number of classes", 16, 4, 4, 4),
    ]:
        logits = _logits(batch, classes, seed)
        labels = _labels(batch, classes, seed)
        # Make about half the rows correct at top-1, so accuracies are far from 0.
        labels[::2] = logits[::2].argmax(dim=1)
        cases.append(Case(label, (logits, labels), {"k": k}))
    return rungs(
        cases,
        "k > 1 (look at how you test whether the label is among the k highest scores: "
        "topk(k).indices compared with labels[:, None])",
        "a batch of one (look at squeeze() and at the axis you take the top k over: the classes, dim 1)",
        "an odd batch and 1000 classes (look at the mean: divide by this batch's size)",
        "k equal to the number of classes, where every label is among the top k (look at the comparison)",
    )


def _top_k_hits(logits, labels, k, largest=True):
    top_k = logits.topk(k, dim=1, largest=largest).indices
    return (top_k == labels.unsqueeze(1)).any(dim=1)


TOP_K_ACCURACY = Exercise(
    name="top_k_accuracy",
    task="the fraction of rows whose true label is among the k largest logits, as a float",
    reference=top_k_accuracy,
    cases=_top_k_cases,
    mistakes={
        "smallest": Mistake(
            "you took the k *smallest* logits: the prediction is the largest ones (topk's largest=True)",
            lambda lg, lb, k=1: _top_k_hits(lg, lb, k, largest=False).float().mean().item(),
        ),
        "ignored_k": Mistake(
            "you computed top-1 accuracy whatever k is: a row is a hit when its label is anywhere among the k best",
            lambda lg, lb, k=1: (lg.argmax(1) == lb).float().mean().item(),
        ),
        "count": Mistake(
            "you returned the number of hits; accuracy is the fraction of the batch (divide by its size)",
            lambda lg, lb, k=1: _top_k_hits(lg, lb, k).sum().item(),
        ),
        "percent": Mistake(
            "you returned a percentage; return a fraction between 0 and 1",
            lambda lg, lb, k=1: 100 * _top_k_hits(lg, lb, k).float().mean().item(),
        ),
        "k_minus_one": Mistake(
            "off by one: you looked at the top k-1 classes",
            lambda lg, lb, k=1: _top_k_hits(lg, lb, k - 1).float().mean().item() if k > 1 else 0.0,
        ),
        "k_plus_one": Mistake(
            "off by one: you looked at the top k+1 classes",
            lambda lg, lb, k=1: _top_k_hits(lg, lb, k + 1).float().mean().item(),
        ),
        "error_rate": Mistake(
            "you returned the error rate (1 - accuracy)",
            lambda lg, lb, k=1: 1 - _top_k_hits(lg, lb, k).float().mean().item(),
        ),
    },
)


# Cross-entropy ------------------------------------------------------------------------------


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits, labels)


def _cross_entropy_cases() -> list[Case]:
    cases = [
        Case("a batch of 8 with 10 classes", (_logits(8, 10, 10), _labels(8, 10, 10))),
        Case("a batch of one", (_logits(1, 5, 11), _labels(1, 5, 11))),
        Case("an odd batch of 7 with 3 classes", (_logits(7, 3, 12, scale=3.0), _labels(7, 3, 12))),
        Case("large logits (around 1000)", (_logits(6, 4, 13, scale=1000.0), _labels(6, 4, 13))),
    ]
    return rungs(
        cases,
        "a batch of one (look at squeeze() and at the axis of the softmax: the classes, dim 1)",
        "another number of classes and an odd batch (look at anything that assumes 10 classes or an even batch)",
        "large logits (look at the log-softmax: exp(1000) is inf; subtract each row's maximum, or use logsumexp)",
    )


def _picked(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return values[torch.arange(len(labels)), labels]


def _scalar(got) -> float | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1 and got.is_floating_point():
        return float(got)
    return float(got) if isinstance(got, float) else None


def _diagnose_uniform(batch: int, classes: int, got, expected) -> str | None:
    """Equal logits: every class has probability 1/C, so the loss is log C whatever the labels."""
    value = _scalar(got)
    if value is None or not math.isfinite(value):
        return None
    log_c = math.log(classes)
    seen = f"(with equal logits every class has probability 1/{classes}, so the loss is log {classes} = {log_c:.4f})"
    if abs(value - log_c) < 1e-4:
        return None
    for wrong, what in (
        (batch * log_c, f"you summed over the batch {seen}, where yours is {value:.4f}: take the mean over the batch"),
        (-log_c, f"your loss has the wrong sign {seen}: the loss is minus the log-probability of the label"),
        (math.log10(classes), f"you took log10 {seen}: the loss uses the natural log"),
        (1 - 1 / classes, f"you did not take the log {seen}: the loss is -log p(label), not 1 - p(label)"),
        (1 / classes, f"you did not take the log {seen}: the loss is -log p(label), not p(label)"),
    ):
        if abs(value - wrong) < 1e-4:
            return what
    return (
        f"your loss for equal logits is {value:.4f} {seen}:"
        f" look at the log-softmax, logits minus logsumexp over the classes (dim 1)"
    )


def _cross_entropy_probes() -> list[Probe]:
    labels = torch.tensor([0, 3, 6, 2, 2])
    return [
        Probe(
            "equal logits",
            (Case("equal logits, a batch of 5, 7 classes", (torch.zeros(5, 7), labels)),),
            lambda got, expected: _diagnose_uniform(5, 7, got[0], expected[0]),
        )
    ]


CROSS_ENTROPY = Exercise(
    name="cross_entropy",
    task="the mean over the batch of -log softmax(logits)[label], stable for large logits",
    forbidden=("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss"),
    reference=cross_entropy,
    cases=_cross_entropy_cases,
    probes=_cross_entropy_probes,
    mistakes={
        "wrong_axis": Mistake(
            "the softmax runs over the batch (dim=0); it must run over the classes (dim=1)",
            lambda lg, lb: -_picked(lg.log_softmax(dim=0), lb).mean(),
        ),
        "no_minus": Mistake(
            "the sign is wrong: the loss is the *negative* log-probability of the label",
            lambda lg, lb: _picked(lg.log_softmax(dim=1), lb).mean(),
        ),
        "sum": Mistake(
            "you summed over the batch; the loss is the mean over the batch",
            lambda lg, lb: -_picked(lg.log_softmax(dim=1), lb).sum(),
        ),
        "no_log": Mistake(
            "you used the probability of the label; the loss takes its log",
            lambda lg, lb: -_picked(lg.softmax(dim=1), lb).mean(),
        ),
        "raw_logit": Mistake(
            "you used the label's raw logit; normalise first (log-softmax)", lambda lg, lb: -_picked(lg, lb).mean()
        ),
        "unstable": Mistake(
            "exp() overflows for large logits: subtract each row's maximum before exp "
            "(the log-sum-exp trick), or use torch.logsumexp",
            lambda lg, lb: -_picked(torch.log(lg.exp() / lg.exp().sum(dim=1, keepdim=True)), lb).mean(),
        ),
    },
    rtol=1e-4,
    atol=1e-4,
)
