"""word2vec from scratch: skip-gram with negative sampling (Mikolov et al. 2013), in torch.

A corpus becomes (centre, context) pairs: every word within a window of a centre word, the window
shrunk at random per centre so that near words count more, frequent words dropped at random
(subsampling). For each pair the model raises the score ``u_context . v_centre`` and lowers the
scores of ``negative`` words drawn from the unigram distribution raised to 3/4:

    loss = -log sigmoid(u_o . v_c) - sum_k log sigmoid(-u_k . v_c)

:func:`sgns_loss` is that line; :func:`train_word2vec` applies its gradient by hand (sparse rows
of two embedding tables, plain SGD with a linearly falling learning rate, as the original C tool
and gensim do). The corpora ship with gensim's wheel.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from backbones.words import WordVectors

CORPORA = {
    "lee": ("lee_background.cor", "300 Australian news articles (Lee et al. 2005), gensim's test data"),
    "head500": (
        "head500.noblanks.cor",
        "the first 500 articles of a Wikipedia dump, lower-cased and Porter-stemmed, gensim's test data",
    ),
    "text8": ("text8", "the first 10^8 characters of English Wikipedia (Mahoney), 17M words, downloaded"),
}


@dataclass
class Corpus:
    """Documents as lists of words, with the vocabulary of the words seen ``min_count`` times."""

    name: str
    documents: list[list[str]]
    words: list[str]
    counts: np.ndarray
    note: str
    min_count: int = 5
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def tokens(self) -> int:
        """Every word of the corpus, in the vocabulary or not (what words per second counts)."""
        return sum(map(len, self.documents))

    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        """``(word ids, document ids)`` of the in-vocabulary words, in reading order."""
        ids = [np.array([self.index[w] for w in d if w in self.index], dtype=np.int64) for d in self.documents]
        return np.concatenate(ids), np.concatenate([np.full(len(a), i) for i, a in enumerate(ids)])

    def __str__(self) -> str:
        head = f"{self.name}: {self.tokens:,} tokens, {len(self.words):,} words seen {self.min_count}+ times\n"
        return head + textwrap.fill(self.note, 88)


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers (apostrophes kept: ``"don't"``)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def load_corpus(name: str = "head500", *, min_count: int = 5) -> Corpus:
    """A corpus by name (:data:`CORPORA`): ``lee`` and ``head500`` ship with gensim's wheel (one
    document per line; head500 comes tokenised and stemmed); ``text8`` is downloaded once when the
    network allows, and otherwise head500 is loaded instead, with a note that says so."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}: choose one of {tuple(CORPORA)}")
    file, note = CORPORA[name]
    if name == "text8":
        words, why = _text8()
        if words is None:
            corpus = load_corpus("head500", min_count=min_count)
            corpus.note += f" (text8 unavailable: {why})"
            return corpus
        # one long document, cut into 10,000-word pieces (as gensim's Text8Corpus does)
        documents = [words[i : i + 10_000] for i in range(0, len(words), 10_000)]
        return corpus_from(documents, name=name, note=f"{note} ({why})" if why else note, min_count=min_count)
    from gensim.test.utils import datapath

    lines = Path(datapath(file)).read_text(encoding="utf-8").splitlines()
    split = str.split if name == "head500" else tokenize
    documents = [d for d in (split(line) for line in lines) if d]
    return corpus_from(documents, name=name, note=note, min_count=min_count)


def _text8() -> tuple[list[str] | None, str]:
    """text8's words, through :func:`backbones.sources.fetch`; ``(None, why)`` when it cannot be had."""
    import zipfile

    from backbones import sources

    fetched = sources.fetch("text8")
    if not fetched:
        return None, fetched.note
    with zipfile.ZipFile(fetched.path) as archive:
        return archive.read("text8").decode("ascii").split(), fetched.note if fetched.standin else ""


def corpus_from(documents: list[list[str]], *, name: str = "corpus", note: str = "", min_count: int = 5) -> Corpus:
    """A :class:`Corpus` from tokenised documents; the vocabulary is sorted by count, then alphabetically."""
    counts = Counter(w for d in documents for w in d)
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return Corpus(name, documents, kept, np.array([counts[w] for w in kept], dtype=np.int64), note, min_count)


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """The chance of keeping each occurrence of a word (the word2vec C tool's subsampling rule):
    ``(sqrt(f / t) + 1) t / f`` for a word of frequency ``f``, capped at 1, with ``t = sample``:
    the released C tool's rule, and gensim's (Mikolov et al. 2013b state another: discard with
    probability ``1 - sqrt(t / f)``, ``t`` about 1e-5). At ``sample=1e-3`` a word making up 5% of
    the text keeps about 16% of its occurrences (the paper's rule: 1.4%)."""
    if sample <= 0:
        return np.ones(len(counts))
    threshold = sample * counts.sum()
    return np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> torch.Tensor:
    """Where negatives are drawn from: the unigram distribution raised to ``power`` (3/4 lifts rare words)."""
    weights = torch.as_tensor(counts, dtype=torch.float64) ** power
    return (weights / weights.sum()).float()


# fmt: off
def skipgram_pairs(ids: np.ndarray, documents: np.ndarray, *, window: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(centre, context)`` pair within a reduced window: each centre draws its
    window ``b`` from 1 to ``window`` and pairs with the words up to ``b`` away on both
    sides, in its own document."""
    n = len(ids)
    reach = rng.integers(1, window + 1, n)
    centres, contexts = [], []
    for offset in range(1, window + 1):
        same = documents[:n - offset] == documents[offset:]
        # centre i, context i + offset; then centre i, context i - offset
        right = np.nonzero(same & (reach[:n - offset] >= offset))[0]
        left = np.nonzero(same & (reach[offset:] >= offset))[0] + offset
        centres += [ids[right], ids[left]]
        contexts += [ids[right + offset], ids[left - offset]]
    return np.concatenate(centres), np.concatenate(contexts)
# fmt: on


# fmt: off
def sgns_loss(centre: torch.Tensor, context: torch.Tensor,
              negatives: torch.Tensor) -> torch.Tensor:
    """The negative-sampling loss of a batch, averaged over its pairs.

    ``centre`` ``(B, d)``: the centre words' input vectors v_c; ``context`` ``(B, d)``:
    the true context words' output vectors u_o; ``negatives`` ``(B, k, d)``: the output
    vectors u_k of k noise words per pair.
    """
    positive = F.logsigmoid((context * centre).sum(-1))  # log sigmoid(u_o . v_c)
    noise_scores = torch.einsum("bkd,bd->bk", negatives, centre)  # u_k . v_c
    negative = F.logsigmoid(-noise_scores).sum(-1)  # sum_k log sigmoid(-u_k . v_c)
    return -(positive + negative).mean()
# fmt: on


# fmt: off
@torch.no_grad()
def sgns_step(
    inputs: torch.Tensor,
    outputs: torch.Tensor,
    centres: torch.Tensor,
    targets: torch.Tensor,
    rate: float,
    *,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """One SGD step on a batch, in place: ``centres`` ``(B,)`` index rows of ``inputs``,
    ``targets`` ``(B, 1 + k)`` rows of ``outputs`` (the true context first, then the noise words).

    The step is ``rate`` times minus the gradient of :func:`sgns_loss` *summed* over the batch (the
    C tool's per-pair update, applied to B pairs at once): for a score s = u . v with label y (1 for
    the context, 0 for noise), d(loss)/ds = sigmoid(s) - y. Returns the scores before the step.
    """
    batch, dim = targets.shape[0], inputs.shape[1]
    if labels is None:
        labels = torch.zeros(1, targets.shape[1], device=inputs.device)
        labels[0, 0] = 1.0
    v = inputs.index_select(0, centres)  # (B, d)
    u = outputs.index_select(0, targets.reshape(-1)).view(batch, -1, dim)  # (B, 1 + k, d)
    scores = torch.linalg.vecdot(u, v[:, None, :])  # (B, 1 + k)
    step = (labels - torch.sigmoid(scores)) * rate  # -d(loss)/d(score), times the rate
    grad_v = torch.matmul(step[:, None, :], u)[:, 0]  # (B, d), before the outputs move
    grad_u = (step[:, :, None] * v[:, None, :]).view(-1, dim)  # (B (1 + k), d)
    outputs.index_add_(0, targets.reshape(-1), grad_u)
    inputs.index_add_(0, centres, grad_v)
    return scores
# fmt: on


@dataclass
class Word2Vec:
    """A trained skip-gram model: its input vectors (the word vectors), losses, and speed."""

    vectors: WordVectors
    output: torch.Tensor
    losses: list[tuple[float, float]]
    seconds: float
    words_per_second: float
    pairs: int

    def __str__(self) -> str:
        return (
            f"{len(self.vectors):,} words x {self.vectors.dim} d, {self.pairs:,} pairs, "
            f"{self.seconds:.1f} s ({self.words_per_second:,.0f} words/s)"
        )


@torch.no_grad()
def train_word2vec(
    corpus: Corpus,
    *,
    dim: int = 100,
    window: int = 5,
    negative: int = 5,
    epochs: int = 5,
    sample: float = 1e-3,
    lr: float = 0.025,
    min_lr: float = 1e-4,
    batch: int = 4096,
    seed: int = 0,
    log_every: int = 50,
    device: torch.device | str = "cpu",
) -> Word2Vec:
    """Skip-gram with negative sampling on ``corpus``, the hyperparameters named as gensim's.

    Input vectors start uniform in ±0.5/dim, output vectors at zero (as in the C tool). Each
    batch is one :func:`sgns_step`: the derivative of :func:`sgns_loss` (summed over the batch)
    with respect to the rows it touches, added in place; no autograd graph, no dense gradient.
    On a GPU (``device``) the same steps run there; the pairs are still drawn on the CPU.
    """
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    size = len(corpus.words)
    if size == 0:
        raise ValueError(f"corpus {corpus.name!r} has no word seen often enough to train on")
    inputs = ((torch.rand(size, dim, generator=generator) - 0.5) / dim).to(device)
    outputs = torch.zeros(size, dim, device=device)
    noise = torch.multinomial(noise_distribution(corpus.counts), 1 << 21, replacement=True, generator=generator)
    noise = noise.to(device)
    keep = keep_probability(corpus.counts, sample)
    ids, documents = corpus.ids()
    labels = torch.zeros(1, negative + 1, device=device)
    labels[0, 0] = 1.0
    losses, total_pairs, start = [], 0, time.perf_counter()
    for epoch in range(epochs):
        kept = rng.random(len(ids)) < keep[ids]
        centres, contexts = skipgram_pairs(ids[kept], documents[kept], window=window, rng=rng)
        order = torch.from_numpy(rng.permutation(len(centres)))
        centres = torch.from_numpy(centres)[order].to(device)
        contexts = torch.from_numpy(contexts)[order].to(device)
        for step, first in enumerate(range(0, len(centres), batch)):
            progress = (epoch + first / len(centres)) / epochs
            rate = max(lr * (1 - progress), min_lr)
            c = centres[first : first + batch]
            noise_words = noise[torch.randint(0, len(noise), (len(c), negative), generator=generator).to(device)]
            targets = torch.cat([contexts[first : first + batch, None], noise_words], dim=1)  # (B, 1 + k)
            scores = sgns_step(inputs, outputs, c, targets, rate, labels=labels)
            if step % log_every == 0:
                loss = -(F.logsigmoid(scores[:, 0]) + F.logsigmoid(-scores[:, 1:]).sum(1)).mean()
                losses.append((epoch + first / len(centres), float(loss)))
        total_pairs += len(centres)
    seconds = time.perf_counter() - start
    note = (
        f"skip-gram with negative sampling, trained here on {corpus.name} ({dim} d, window {window}, "
        f"{negative} negatives, {epochs} epochs, seed {seed})"
    )
    vectors = WordVectors("word2vec-" + corpus.name, list(corpus.words), inputs.cpu(), note)
    return Word2Vec(vectors, outputs.cpu(), losses, seconds, corpus.tokens * epochs / seconds, total_pairs)


def train_gensim(
    corpus: Corpus,
    *,
    dim: int = 100,
    window: int = 5,
    negative: int = 5,
    epochs: int = 5,
    sample: float = 1e-3,
    lr: float = 0.025,
    min_lr: float = 1e-4,
    seed: int = 0,
    workers: int = 2,
) -> tuple[WordVectors, float]:
    """gensim's ``Word2Vec`` (skip-gram) with the same hyperparameters: ``(vectors, words per second)``."""
    from gensim.models import Word2Vec as GensimWord2Vec

    start = time.perf_counter()
    model = GensimWord2Vec(
        corpus.documents,
        vector_size=dim,
        window=window,
        negative=negative,
        epochs=epochs,
        sample=sample,
        alpha=lr,
        min_alpha=min_lr,
        sg=1,
        hs=0,
        min_count=corpus.min_count,
        seed=seed,
        workers=workers,
    )
    seconds = time.perf_counter() - start
    words = list(corpus.words)
    vectors = torch.from_numpy(np.stack([model.wv[w] for w in words]))
    note = f"gensim {__import__('gensim').__version__} Word2Vec, skip-gram, {workers} workers"
    return WordVectors("gensim-" + corpus.name, words, vectors, note), corpus.tokens * epochs / seconds
