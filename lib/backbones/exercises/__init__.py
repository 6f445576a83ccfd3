"""Exercises with checks that teach. A chapter calls one check per exercise::

    bb.exercises.check_top_k_accuracy(top_k_accuracy)

and reads one line: what was verified, or which mistake was made. See ``core`` for the engine,
``student`` for the student notebooks and ``grader`` for grading submissions.
"""
from __future__ import annotations

from collections.abc import Callable

from backbones.exercises import basics, resnet
from backbones.exercises.core import Case, Exercise, Mistake, Result, check, run_check

# Every exercise of the book, by name: the tests run each one's reference and its catalogue.
EXERCISES: dict[str, Exercise] = {exercise.name: exercise for exercise in (
    basics.TOP_K_ACCURACY,
    basics.CROSS_ENTROPY,
    resnet.RESIDUAL_BLOCK,
    resnet.CHAIN_GRADIENT,
    resnet.FILTER_NORMALIZE,
)}


def check_top_k_accuracy(top_k_accuracy: Callable) -> None:
    """Check ``top_k_accuracy(logits, labels, k)``: the fraction of rows whose label is in the top k."""
    check(basics.TOP_K_ACCURACY, top_k_accuracy)


def check_cross_entropy(cross_entropy: Callable) -> None:
    """Check ``cross_entropy(logits, labels)`` against ``torch.nn.functional.cross_entropy``."""
    check(basics.CROSS_ENTROPY, cross_entropy)


def check_residual_block_forward(residual_block_forward: Callable) -> None:
    """Check ``residual_block_forward(x, block)``: a BasicBlock's forward pass, skip included."""
    check(resnet.RESIDUAL_BLOCK, residual_block_forward)


def check_chain_gradient(chain_gradient: Callable) -> None:
    """Check ``chain_gradient(local_gradients, skip)``: dz/dx through a chain, with or without skips."""
    check(resnet.CHAIN_GRADIENT, chain_gradient)


def check_filter_normalize(filter_normalize: Callable) -> None:
    """Check ``filter_normalize(direction, weight)`` (Li et al. 2018's filter normalisation)."""
    check(resnet.FILTER_NORMALIZE, filter_normalize)


__all__ = ["EXERCISES", "Case", "Exercise", "Mistake", "Result", "check", "run_check",
           "check_top_k_accuracy", "check_cross_entropy", "check_residual_block_forward",
           "check_chain_gradient", "check_filter_normalize"]
