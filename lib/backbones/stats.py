"""Statistics the chapters share: the WEAT-style association test (word embeddings, chapter 06,
and attention, chapter 07), Spearman's rank correlation (word similarity, chapter 06, and the
ViT's position embeddings, chapter 09), and the interval of an accuracy measured on a few test
images (chapter 05). Imports nothing of the library.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def effect_size(x: np.ndarray, y: np.ndarray) -> float:
    """WEAT's effect size (Caliskan et al. 2017): the difference of the two groups' mean scores
    over the standard deviation of all scores."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float((x.mean() - y.mean()) / np.concatenate([x, y]).std())


def accuracy_interval(accuracy: float, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of an accuracy measured on ``n`` test items:
    how far another draw of ``n`` items could move it. Two accuracies whose intervals overlap
    widely cannot be told apart on this test set."""
    if n <= 0 or not 0 <= accuracy <= 1:
        raise ValueError(f"an accuracy in [0, 1] on n > 0 items, not {accuracy} on {n}")
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def spearman(x, y) -> float:
    """Spearman's rank correlation (ties share their mean rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def association_test(
    scores: dict[str, float], group_a: list[str], group_b: list[str], *, max_permutations: int = 20_000, seed: int = 0
) -> tuple[float, float]:
    """A WEAT-style test (Caliskan et al. 2017) of whether ``group_a``'s scores exceed ``group_b``'s.

    Returns ``(effect_size, p_value)``: the difference of the group means over the standard
    deviation of all scores, and the one-sided permutation p-value, the share of relabellings of
    the words into groups of the same sizes whose effect is at least as large (exact when there are
    at most ``max_permutations`` relabellings, sampled otherwise).
    """
    words = list(group_a) + list(group_b)
    values = np.array([scores[w] for w in words], dtype=np.float64)
    spread, total, k = values.std(), values.sum(), len(group_a)

    def effect(sum_a: np.ndarray) -> np.ndarray:  # mean of a minus mean of b, over the spread
        return (sum_a / k - (total - sum_a) / (len(words) - k)) / spread

    observed = float(effect(values[:k].sum()))  # = effect_size(values[:k], values[k:])
    if math.comb(len(words), k) <= max_permutations:
        relabellings = np.array(list(itertools.combinations(range(len(words)), k)))
    else:
        rng = np.random.default_rng(seed)
        relabellings = np.array([rng.choice(len(words), k, replace=False) for _ in range(max_permutations)])
    at_least = int((effect(values[relabellings].sum(axis=1)) >= observed - 1e-12).sum())
    return observed, at_least / len(relabellings)
