"""Exercises of the word-embeddings chapter: an analogy solver and the negative-sampling loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs

LOG2 = math.log(2)

# An analogy solver (3CosAdd) -------------------------------------------------------------------


def analogy_solver(vectors: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    unit = vectors / vectors.norm(dim=1, keepdim=True)  # cosine = dot product of unit rows
    target = unit[b] - unit[a] + unit[c]  # (Q, d): b - a + c
    scores = target @ unit.T  # (Q, V)
    rows = torch.arange(len(a))
    for words in (a, b, c):
        scores[rows, words] = -torch.inf  # never answer with a query word
    return scores.argmax(dim=1)  # (Q,): one word per question


def _solve(vectors, a, b, c, *, normalise=True, exclude=True, sign=1, euclid=False, axis=1):
    unit = vectors / vectors.norm(dim=1, keepdim=True) if normalise else vectors
    target = sign * (unit[b] - unit[a]) + unit[c]
    scores = torch.cdist(target, unit) if euclid else target @ unit.T
    if exclude:
        rows = torch.arange(len(a))
        for words in (a, b, c):
            scores[rows, words] = -torch.inf
    return scores.argmax(dim=axis)


def _analogy_cases() -> list[Case]:
    def case(label, seed, vocabulary, dim, questions, *, planted=True):
        g = torch.Generator().manual_seed(seed)
        # rows of very different lengths, so that an unnormalised solver picks long rows
        vectors = torch.randn(vocabulary, dim, generator=g) * torch.rand(vocabulary, 1, generator=g).mul(4).add(0.2)
        ids = torch.stack([torch.randperm(vocabulary, generator=g)[:4] for _ in range(questions)])
        a, b, c, d = ids.unbind(1)
        if planted:  # d = c + (b - a) plus a little noise: a real analogy to find
            unit = vectors / vectors.norm(dim=1, keepdim=True)
            vectors[d] = (unit[c] + unit[b] - unit[a] + 0.1 * torch.randn(questions, dim, generator=g)) * 3
        return Case(label, (vectors, a, b, c))

    def close_queries(seed):  # a, b and c nearly the same word: a is the best word left after b and c
        g = torch.Generator().manual_seed(seed)
        vectors = torch.randn(20, 5, generator=g)
        a, b, c = torch.tensor([0, 3, 6]), torch.tensor([1, 4, 7]), torch.tensor([2, 5, 8])
        vectors[a] = vectors[c] + 0.05 * torch.randn(3, 5, generator=g)
        vectors[b] = vectors[c] + 0.05 * torch.randn(3, 5, generator=g)
        return Case("a, b and c nearly the same word, 20 words, 3 questions", (vectors, a, b, c))

    def all_negative(seed):  # every other word points away from b - a + c: its best score is below 0
        g = torch.Generator().manual_seed(seed)
        a, b, c = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
        vectors = torch.randn(12, 4, generator=g)
        unit = vectors / vectors.norm(dim=1, keepdim=True)
        target = unit[1] - unit[0] + unit[2]
        vectors[3:] = -target * (1 + torch.rand(9, 1, generator=g)) + 0.1 * torch.randn(9, 4, generator=g)
        return Case("one question whose best answer has a negative cosine, 12 words", (vectors, a, b, c))

    return rungs(
        [
            case("40 words in 6 dimensions, 5 questions with planted answers", 0, 40, 6, 5),
            case("a single question over 30 words", 1, 30, 5, 1),
            case("25 words, 7 questions, random (no planted answer)", 2, 25, 4, 7, planted=False),
            close_queries(3),
            all_negative(4),
        ],
        "a single question (look at any squeeze(): the answer is still a tensor of shape (1,))",
        "questions without a planted answer (look at the cosine: normalise every row, the vocabulary's too, "
        "before the dot products)",
        "questions whose query words are each other's neighbours (look at the exclusion: a, b and c, "
        "all three, may never be the answer)",
        "an answer whose cosine is negative (look at how you exclude: -inf, not 0, which a negative score never beats)",
    )


ANALOGY_SOLVER = Exercise(
    name="analogy_solver",
    task="3CosAdd: for each question (a, b, c), the word x maximising cos(x, b - a + c) over unit "
    "vectors, the three query words excluded; return one index per question",
    forbidden=("backbones.words.answer_analogies", "backbones.words.analogy", "backbones.words.evaluate_analogies"),
    reference=analogy_solver,
    cases=_analogy_cases,
    mistakes={
        "not_normalised": Mistake(
            "normalise the rows first (vectors / vectors.norm(dim=1, keepdim=True)): "
            "a raw dot product favours long vectors (frequent words), not close ones",
            lambda *x: _solve(*x, normalise=False),
        ),
        "not_excluded": Mistake(
            "exclude the query words a, b and c: b - a + c is usually closest to b or c "
            "itself (king - man + woman returns king)",
            lambda *x: _solve(*x, exclude=False),
        ),
        "reversed": Mistake(
            "a is to b as c is to ?: the offset is b - a, added to c (you computed a - b + c)",
            lambda *x: _solve(*x, sign=-1),
        ),
        "euclidean_argmax": Mistake(
            "the argmax of a Euclidean distance is the *farthest* word: use cosine "
            "similarity (or the argmin of the distance)",
            lambda *x: _solve(*x, euclid=True),
        ),
        "wrong_axis": Mistake(
            "scores are (questions, vocabulary): take the argmax over the vocabulary, dim=1",
            lambda *x: _solve(*x, axis=0),
        ),
    },
    rtol=0,
    atol=0,
)


# The negative-sampling loss --------------------------------------------------------------------


def sgns_loss(centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    positive = F.logsigmoid((context * centre).sum(-1))  # (B,)
    negative = F.logsigmoid(-torch.einsum("bkd,bd->bk", negatives, centre)).sum(-1)  # (B,)
    return -(positive + negative).mean()


def _loss(centre, context, negatives, *, sign=-1, negate=True, negatives_mean=False, batch_sum=False, softmax=False):
    pos_score = (context * centre).sum(-1)
    neg_score = torch.einsum("bkd,bd->bk", negatives, centre)
    if softmax:
        scores = torch.cat([pos_score[:, None], neg_score], dim=1)
        return F.cross_entropy(scores, torch.zeros(len(scores), dtype=torch.long))
    negative = F.logsigmoid(-neg_score if negate else neg_score)
    negative = negative.mean(-1) if negatives_mean else negative.sum(-1)
    per_pair = F.logsigmoid(pos_score) + negative
    return sign * (per_pair.sum() if batch_sum else per_pair.mean())


def _loss_cases() -> list[Case]:
    def case(label, seed, batch, k, dim, scale=1.0):
        g = torch.Generator().manual_seed(seed)
        return Case(
            label,
            tuple(scale * torch.randn(*shape, generator=g) for shape in ((batch, dim), (batch, dim), (batch, k, dim))),
        )

    return rungs(
        [
            case("a batch of 8 pairs, 5 negatives each, 10 dimensions", 0, 8, 5, 10),
            case("a single pair with 3 negatives", 1, 1, 3, 6),
            case("16 pairs, 2 negatives, large scores (log-sigmoid must not overflow)", 2, 16, 2, 4, scale=6.0),
        ],
        "a single pair (look at any squeeze() and at the batched dot products: (1, K, d) with (1, d))",
        "large scores (look at log(sigmoid(s)): for s near -100 it is log(0); use F.logsigmoid)",
    )


def _diagnose_sgns(got: list, expected: list) -> str | None:
    """Zero vectors: every score is 0 and the loss is (1 + K) log 2. Then a context equal to its
    centre (score 25) and zero negatives: the positive term vanishes and the loss is K log 2."""
    values = [float(g) if isinstance(g, torch.Tensor) and g.numel() == 1 else None for g in got]
    if None in values or not all(math.isfinite(v) for v in values):
        return None
    zero, aligned = values
    batch, k = 4, 3
    seen = f"(a probe: with all vectors zero the loss is (1 + K) log 2 = {(1 + k) * LOG2:.4f}, K = {k})"
    for value, what in (
        (-(1 + k) * LOG2, "your loss has the wrong sign: it is minus the log-likelihood"),
        (batch * (1 + k) * LOG2, "you summed over the pairs: take the mean"),
        (2 * LOG2, "you averaged over the negatives: sum their terms"),
        (2 * LOG2 * batch, "you summed over the pairs and averaged over the negatives"),
    ):
        if abs(zero - value) < 1e-4:
            return f"{what} {seen}"
    if abs(zero - (1 + k) * LOG2) >= 1e-4:
        return (
            f"your loss with all vectors zero is {zero:.4f} {seen}: "
            f"look at how many terms you add, and their log sigmoids"
        )
    if abs(aligned - k * LOG2) > 1e-3:
        return (
            f"with the context equal to its centre (a score of 25) your loss is {aligned:.4f}, not K log 2 = "
            f"{k * LOG2:.4f}: the positive pair's term is -log sigmoid(+score), which vanishes when the score is large"
        )
    return None


def _sgns_probes() -> list[Probe]:
    batch, k, dim = 4, 3, 5
    zeros = Case("all vectors zero", (torch.zeros(batch, dim), torch.zeros(batch, dim), torch.zeros(batch, k, dim)))
    centre = torch.full((batch, dim), 5**0.5)  # u . v = 25
    aligned = Case(
        "the context equal to its centre, zero negatives", (centre, centre.clone(), torch.zeros(batch, k, dim))
    )
    return [Probe("scores of 0, then a positive score of 25", (zeros, aligned), _diagnose_sgns)]


SGNS_LOSS = Exercise(
    name="sgns_loss",
    task="skip-gram negative sampling: mean over pairs of -log sigmoid(u_o . v_c) - sum_k log sigmoid(-u_k . v_c)",
    forbidden=("backbones.word2vec.sgns_loss",),
    reference=sgns_loss,
    cases=_loss_cases,
    probes=_sgns_probes,
    mistakes={
        "sign": Mistake(
            "the loss is the *negative* log-likelihood: minus (log sigmoid(u_o . v_c) + ...)",
            lambda *x: _loss(*x, sign=1),
        ),
        "negatives_not_negated": Mistake(
            "a negative word's term is log sigmoid(-u_k . v_c): negate its score "
            "inside the log-sigmoid, so that training pushes it down",
            lambda *x: _loss(*x, negate=False),
        ),
        "mean_over_negatives": Mistake(
            "sum the k negative terms of a pair (each is its own logistic "
            "decision); average over the pairs of the batch, not over the negatives",
            lambda *x: _loss(*x, negatives_mean=True),
        ),
        "sum_over_batch": Mistake(
            "average over the pairs of the batch (.mean()), so that the loss does not grow with the batch size",
            lambda *x: _loss(*x, batch_sum=True),
        ),
        "softmax": Mistake(
            "negative sampling is 1 + k independent yes/no decisions (sigmoids), not a softmax: "
            "a softmax over the candidates (or over the whole vocabulary, the cost it avoids) "
            "is a different loss",
            lambda *x: _loss(*x, softmax=True),
        ),
    },
    rtol=1e-5,
    atol=1e-6,
)
