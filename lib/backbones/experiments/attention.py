"""Controls for what attention heads do (the self-attention chapter, 07). Each takes a loaded
``backbones.text.TextModel``."""

from __future__ import annotations

import torch

from backbones.stats import association_test  # noqa: F401  (the chapter's test, with its scores)
from backbones.text import weights_to

NAME_JOB_TEMPLATES = (
    "{n1} is {j1} and {n2} is {j2}.",  # the slide's sentence: name first
    "{n1} works as a {j1} and {n2} works as a {j2}.",
    "The {j1} is {n1} and the {j2} is {n2}.",
)  # the job first: offsets reversed


def name_job_margins(
    text,
    *,
    templates: tuple[str, ...] = NAME_JOB_TEMPLATES,
    names: tuple[str, str] = ("Karel", "Mario"),
    jobs: tuple[tuple[str, str], ...] = (("teacher", "plumber"), ("doctor", "farmer")),
) -> tuple[torch.Tensor, list[int]]:
    """For every sentence the templates make (each name pair and job pair, in both orders), how
    much more of each name's attention goes to *its own* job than to the other person's, per head.

    A head that links a person to what is said about them has a positive margin in every sentence,
    whichever job is whose and wherever the job stands; a head that looks a fixed number of tokens
    ahead is positive only in the templates where the own job sits at that offset.

    Returns ``(margins, template_of_row)``: margins ``(rows, layers, heads)``, two rows a sentence.
    """
    cases = []  # (template index, sentence, name, own job, other job)
    for t, template in enumerate(templates):
        for n1, n2 in (names, names[::-1]):
            for pair in jobs:
                for j1, j2 in (pair, pair[::-1]):
                    sentence = template.format(n1=n1, n2=n2, j1=j1, j2=j2)
                    cases += [(t, sentence, n1, j1, j2), (t, sentence, n2, j2, j1)]
    unique = sorted({sentence for _, sentence, *_ in cases})
    attentions = dict(zip(unique, text.attentions(unique)))
    margins, template_of_row = [], []
    for t, sentence, name, own, other in cases:
        weights = weights_to(*attentions[sentence], name, [own, other])  # (layers, heads, 2)
        margins.append(weights[..., 0] - weights[..., 1])
        template_of_row.append(t)
    return torch.stack(margins), template_of_row


def pronoun_job_scores(
    text,
    jobs: list[str],
    *,
    partners: tuple[str, ...] = ("student", "visitor"),
    template: str = "The {a} asked the {b} a question. {pronoun} said that the plan was fine.",
) -> dict[str, float]:
    """For each job word, how much more attention *she* gives it than *he* does, averaged over all
    layers and heads, over the job in either noun slot and over neutral ``partners`` in the other.
    A score depends on its own word only, so groups of words can be compared by permutation."""
    sentences = {
        (job, a, b, pronoun): template.format(a=a, b=b, pronoun=pronoun)
        for job in jobs
        for partner in partners
        for a, b in ((job, partner), (partner, job))
        for pronoun in ("She", "He")
    }
    attentions = dict(zip(sentences, text.attentions(list(sentences.values()))))
    scores = {}
    for job in jobs:
        differences = [
            weights_to(*attentions[(j, a, b, "She")], "she", [job]).mean()
            - weights_to(*attentions[(j, a, b, "He")], "he", [job]).mean()
            for (j, a, b, pronoun) in sentences
            if j == job and pronoun == "She"
        ]
        scores[job] = torch.stack(differences).mean().item()
    return scores


# Winograd-style pairs: one word changes the referent of "it" (Levesque et al. 2012).
# Each: the sentence with a slot, the two candidate referents, and the word that makes "it" the
# first candidate and the one that makes it the second.
COREFERENCE_PAIRS = (
    ("The animal didn't cross the street because it was too {}.", ("animal", "street"), ("tired", "wide")),
    ("The trophy didn't fit in the suitcase because it was too {}.", ("trophy", "suitcase"), ("big", "small")),
    ("The ball broke the window because it was too {}.", ("ball", "window"), ("heavy", "fragile")),
)


def coreference_weights(text, pairs=COREFERENCE_PAIRS) -> torch.Tensor:
    """How much of "it"'s attention goes to each candidate referent, in both sentences of every
    pair: ``(pairs, 2 sentences, layers, heads, 2 candidates)``; in sentence 0 "it" is candidate 0,
    in sentence 1 candidate 1."""
    cases = [(template.format(word), list(candidates)) for template, candidates, words in pairs for word in words]
    attentions = text.attentions([sentence for sentence, _ in cases])  # one padded batch
    weights = [weights_to(*attention, "it", candidates) for attention, (_, candidates) in zip(attentions, cases)]
    return torch.stack(weights).view(len(pairs), 2, *weights[0].shape)


def coreference_switch(weights: torch.Tensor) -> torch.Tensor:
    """How far each head moves towards the right referent when one word changes it, per pair:
    ``(pairs, layers, heads)``. Positive: the head prefers candidate 0 more when "it" is candidate 0
    than when "it" is candidate 1. A head that resolves "it" is positive in every pair."""
    preference = weights[..., 0] - weights[..., 1]  # (pairs, 2, layers, heads)
    return preference[:, 0] - preference[:, 1]
