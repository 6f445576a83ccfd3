"""The "Test yourself" chapter's questions: answer values, a variant per student (see
``core.ValueExercise``). Numbers with seeded variants, choices whose wrong options explain
themselves, and two questions that read a figure the chapter draws. Each names the section of
the book that teaches it. Order: ResNet, attention, ViT, figures."""

from __future__ import annotations

import math
import random

import torch

from backbones.exercises.core import Mistake, ValueExercise, choice, variant_seed

RESNET = "chapter 4, {}"
ATTENTION = "chapter 7, {}"
TRANSFORMER = "chapter 8, {}"
VIT = "chapter 9, {}"


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


# Vanishing gradients and ResNet ------------------------------------------------------------------


def _chain_question(seed: int) -> dict:
    r = _rng(seed)
    return {"local_gradients": [round(r.uniform(0.1, 0.6), 1) for _ in range(r.randint(5, 8))]}


def chain_answer(local_gradients: list[float]) -> tuple[float, float]:
    return math.prod(local_gradients), math.prod(1 + g for g in local_gradients)


CHAIN = ValueExercise(
    name="chain_skips",
    task="dz/dx through a chain without and with skips",
    question=_chain_question,
    answer=chain_answer,
    prompt=lambda local_gradients: (
        f"A chain of {len(local_gradients)} layers has local derivatives {local_gradients} (input side first). "
        "Give dz/dx as a pair (without skips, with skips), where a skip makes each layer y = x + f(x)."
    ),
    mistakes={
        "swapped": Mistake(
            "the pair is (without skips, with skips)",
            lambda local_gradients: tuple(reversed(chain_answer(local_gradients))),
        ),
        "sum": Mistake(
            "the chain rule multiplies the local derivatives; you added them",
            lambda local_gradients: (sum(local_gradients), sum(1 + g for g in local_gradients)),
        ),
        "one_outside": Mistake(
            "with skips every factor is (1 + g), not 1 + the product",
            lambda local_gradients: (math.prod(local_gradients), 1 + math.prod(local_gradients)),
        ),
        "skip_ignored": Mistake(
            "with a skip the local factor is 1 + f'(x): the identity adds 1",
            lambda local_gradients: (math.prod(local_gradients),) * 2,
        ),
    },
    rtol=1e-3,
    atol=1e-9,
    section=RESNET.format("section 2, Why: how the gradient travels back"),
)

DEGRADATION = choice(
    "read_degradation_plot",
    "The degradation figure shows, for 3 seeds, the final training loss and the test accuracy of plain "
    "and residual networks of 20 and 56 layers trained alike. Which reading does it support?",
    {
        "optimisation": (
            "Plain-56 fits its training data worse than plain-20: deeper plain nets are harder to optimise.",
            None,
        ),
        "overfitting": (
            "The 56-layer plain network overfits: it has more parameters than it needs.",
            "overfitting shows as a low training loss with a worse test score; plain-56's training "
            "loss is far higher than plain-20's, so it fits the training data worse. That is an "
            "optimisation problem, not overfitting",
        ),
        "capacity": (
            "56 layers of this kind can represent fewer functions than 20 layers.",
            "a 56-layer network can represent all a 20-layer one can (its extra layers could be "
            "identities); training fails to find such weights, which is the degradation problem",
        ),
        "resnet_overfits": (
            "ResNet-56 overfits: its training loss is the lowest of all, so its test accuracy must be the "
            "worst of the four.",
            "read the right panel: ResNet-56's test accuracy is within two "
            "points of the best network's in every seed; a low training loss "
            "alone is not overfitting",
        ),
        "noise": (
            "The differences are within seed-to-seed noise.",
            "each dot is a seed: plain-56's training losses lie orders of magnitude above every other "
            "network's, for every seed",
        ),
    },
    section=RESNET.format("section 1, Deeper plain networks train worse"),
)

CANCELLATION = choice(
    "skip_cancellation",
    "A residual layer's Jacobian is I + J, J the branch's Jacobian, the same J in every one of L layers. "
    "For which J does the product (I + J)^L shrink towards zero as L grows, so that the skip does NOT "
    "keep the gradient alive?",
    {
        "minus_identity": ("J close to -I: the branch undoes what the skip passes.", None),
        "zero": (
            "J = 0: a branch that does nothing yet.",
            "then I + J = I: the gradient passes every layer unchanged, the case the skip is for",
        ),
        "small": (
            "J with small random entries, as at initialisation.",
            "then I + J is close to I and its product stays near I: the skip keeps the gradient alive",
        ),
        "half": (
            "J = 0.5 I: a branch that adds half its input again.",
            "then I + J = 1.5 I: the product grows like 1.5^L; it explodes (a problem of its own), it does not shrink",
        ),
        "deep": (
            "Any small J, once the network is deep enough (1,000 layers).",
            "a product of factors close to I stays close to I at any depth: depth alone does not make it "
            "vanish; it takes a branch that cancels the skip",
        ),
    },
    section=RESNET.format("section 2, Why: how the gradient travels back"),
)


# Self-attention and Transformers -------------------------------------------------------------------


def _mha_question(seed: int) -> dict:
    r = _rng(seed)
    width = r.choice([64, 96, 128, 192, 256, 384, 512, 768])
    return {"width": width, "heads": r.choice([h for h in (2, 3, 4, 6, 8, 12, 16) if width % h == 0])}


def mha_params(width: int, heads: int) -> int:
    """nn.MultiheadAttention's parameters: q, k, v and output projections, E x E each, with biases;
    the heads split the width, so their number does not change the count."""
    return 4 * width * width + 4 * width


MHA_PARAMS = ValueExercise(
    name="mha_params",
    task="the parameters of a multi-head attention layer",
    question=_mha_question,
    answer=mha_params,
    prompt=lambda width, heads: (
        f"A multi-head attention layer of width E = {width} with H = {heads} heads, as nn.MultiheadAttention "
        "builds it (query, key, value and output projections, each with a bias). How many parameters has it?"
    ),
    mistakes={
        "per_head": Mistake(
            "the heads split the width: each head projects to E/H features, so all H heads together have "
            "E x E weights per projection, whatever H is",
            lambda width, heads: heads * (3 * width * width + 3 * width) + width * width + width,
        ),
        "no_biases": Mistake("each of the four projections has a bias of E", lambda width, heads: 4 * width * width),
        "no_output": Mistake(
            "the output projection W_O (E x E, with its bias) counts too",
            lambda width, heads: 3 * width * width + 3 * width,
        ),
        "head_square": Mistake(
            "a head's projections are not d x d: each maps all E features to its d = E/H, so its W_q is "
            "E x d, and the H heads' together make E x E",
            lambda width, heads: 4 * heads * (width // heads) ** 2 + 4 * width,
        ),
        "divided": Mistake(
            "H heads of E/H features each make E features: splitting into heads does not shrink the layer",
            lambda width, heads: (4 * width * width + 4 * width) // heads,
        ),
    },
    section=ATTENTION.format("section 2, Multi-head attention"),
)


def _causal_question(seed: int) -> dict:
    return {"tokens": _rng(seed).randint(5, 40)}


CAUSAL_MASKED = ValueExercise(
    name="causal_masked",
    task="the (query, key) pairs a causal mask removes",
    question=_causal_question,
    answer=lambda tokens: tokens * (tokens - 1) // 2,
    prompt=lambda tokens: (
        f"A decoder reads {tokens} tokens with a causal mask. How many (query, key) pairs of its attention matrix "
        "does the mask remove (give zero weight)?"
    ),
    mistakes={
        "kept": Mistake(
            "that is how many pairs the mask keeps (key j <= query i, the diagonal included); it removes j > i",
            lambda tokens: tokens * (tokens + 1) // 2,
        ),
        "both_sides": Mistake(
            "only the future is removed (j > i): each token still sees the ones before it",
            lambda tokens: tokens * (tokens - 1),
        ),
        "half": Mistake(
            "not half the matrix: a token may attend to itself, so the T diagonal pairs are kept and the "
            "mask removes (T^2 - T) / 2",
            lambda tokens: tokens * tokens / 2,
        ),
    },
    section=TRANSFORMER.format("exercise 1, a causal mask"),
)

NORM_ORDER = choice(
    "norm_order",
    "A pre-norm block computes x + f(LN(x)), a post-norm block LN(x + f(x)) (LN without learned scale "
    "and shift). Give both x = [1, 2, 3] and a branch f that outputs zeros. What do they return?",
    {
        "right": ("Pre-norm: [1, 2, 3]. Post-norm: about [-1.22, 0, 1.22].", None),
        "both_x": (
            "Both [1, 2, 3]: with f = 0, the residual passes x through.",
            "post-norm normalises after the addition: LN(x + 0) = LN(x), about [-1.22, 0, 1.22]",
        ),
        "both_ln": (
            "Both about [-1.22, 0, 1.22]: each block normalises.",
            "pre-norm normalises only the branch's input; its residual path adds x itself, untouched",
        ),
        "swapped": (
            "Pre-norm: about [-1.22, 0, 1.22]. Post-norm: [1, 2, 3].",
            "the other way round: pre-norm's residual path carries x untouched, post-norm's LN sits on the sum",
        ),
        "zeros": (
            "Both [0, 0, 0], since the branch outputs zeros.",
            "the residual adds x: the block returns x plus the branch (normalised, in post-norm)",
        ),
    },
    section=TRANSFORMER.format("section 1, The encoder block"),
)


def _attention_question(seed: int) -> dict:
    r = _rng(seed)

    def matrix(rows, cols):
        return [[r.randint(-2, 2) for _ in range(cols)] for _ in range(rows)]

    return {"Q": matrix(2, 4), "K": matrix(3, 4), "V": matrix(3, 2)}


def _attend(Q, K, V, *, scale=True, axis=-1, weights=False, divide_by_d=False):
    q, k, v = (torch.tensor(m, dtype=torch.float64) for m in (Q, K, V))
    d = q.shape[-1]
    scores = q @ k.T / (d if divide_by_d else math.sqrt(d) if scale else 1.0)
    w = scores.softmax(dim=axis)
    return float((w if weights else w @ v)[0, 0])


ATTENTION_OUTPUT = ValueExercise(
    name="attention_output",
    task="the first feature of the first query's attention output",
    question=_attention_question,
    answer=_attend,
    prompt=lambda Q, K, V: (
        f"Queries Q = {Q}, keys K = {K}, values V = {V} (one row per token, d = 4). What is the first "
        "feature of the first query's output of softmax(Q K^T / sqrt(d)) V? Give 3 decimals or more."
    ),
    mistakes={
        "no_scaling": Mistake(
            "the scores are divided by sqrt(d) = 2 before the softmax", lambda **p: _attend(**p, scale=False)
        ),
        "divided_by_d": Mistake("the scaling is 1/sqrt(d) = 1/2, not 1/d", lambda **p: _attend(**p, divide_by_d=True)),
        "wrong_axis": Mistake(
            "each query's weights sum to 1 over the keys: softmax along each row of Q K^T",
            lambda **p: _attend(**p, axis=0),
        ),
        "weight_not_output": Mistake(
            "you gave an attention weight; the output is the weights times V", lambda **p: _attend(**p, weights=True)
        ),
        "uniform": Mistake(
            "you averaged the values: the weights come from the softmax of the scores, not 1/3 each",
            lambda Q, K, V: sum(row[0] for row in V) / len(V),
        ),
    },
    rtol=1e-3,
    atol=1e-3,
    section=ATTENTION.format("section 1, Self-attention, step by step"),
)

SQRT_D = choice(
    "why_sqrt_d",
    "Why does scaled dot-product attention divide q . k by sqrt(d)?",
    {
        "variance": ("q . k has variance d; dividing by sqrt(d) keeps the softmax from saturating as d grows.", None),
        "sum_to_one": (
            "So that each query's attention weights sum to 1 over all the keys, as the weights of any average must.",
            "the softmax makes the weights sum to 1 at any scale; the scale sets how peaked they are",
        ),
        "cost": (
            "To make the softmax cheaper to compute when there are many keys.",
            "it adds a division; it changes how peaked the softmax is, not what it costs",
        ),
        "divide_by_d": (
            "Because q . k grows like d, and dividing by its growth makes the scores independent of d.",
            "the spread of q . k grows like sqrt(d) (its variance like d): dividing by d would push "
            "the scores to 0 as d grows and make every softmax uniform",
        ),
        "keys": (
            "Because each query averages over d keys, and the spread of an average falls like 1/sqrt(d).",
            "d is the length of each query and key vector, not the number of keys",
        ),
    },
    section=ATTENTION.format("section 1, Self-attention, step by step"),
)


# The Vision Transformer ------------------------------------------------------------------------------


def _vit_question(seed: int) -> dict:
    r = _rng(seed)
    patch = r.choice([8, 14, 16, 32])
    return {"image_size": patch * r.choice([7, 10, 12, 14, 16, 20, 24]), "patch_size": patch}


def vit_tokens(image_size: int, patch_size: int) -> int:
    return (image_size // patch_size) ** 2 + 1


VIT_TOKENS = ValueExercise(
    name="vit_tokens",
    task="the tokens a ViT reads",
    question=_vit_question,
    answer=vit_tokens,
    prompt=lambda image_size, patch_size: (
        f"A ViT with patches of {patch_size}x{patch_size} reads a {image_size}x{image_size} RGB image. How "
        "many tokens enter its first encoder block ([CLS] included)?"
    ),
    mistakes={
        "no_cls": Mistake(
            "[CLS] is a token too: one more than the patches",
            lambda image_size, patch_size: (image_size // patch_size) ** 2,
        ),
        "not_squared": Mistake(
            "the patches tile both dimensions: (size / patch) per side, squared",
            lambda image_size, patch_size: image_size // patch_size + 1,
        ),
        "channels": Mistake(
            "the colour channels go into each patch's vector (16 x 16 x 3 numbers), not into more tokens",
            lambda image_size, patch_size: 3 * (image_size // patch_size) ** 2 + 1,
        ),
        "pixels_per_patch": Mistake(
            "you counted the pixels in a patch; count the patches", lambda image_size, patch_size: patch_size**2 + 1
        ),
    },
    section=VIT.format("section 1, Patches as tokens"),
)


def attention_entries(image_size: int, patch_size: int) -> int:
    return vit_tokens(image_size, patch_size) ** 2


VIT_ATTENTION = ValueExercise(
    name="vit_attention_entries",
    task="the entries of one head's attention matrix in a ViT",
    question=lambda seed: _vit_question(seed + 1),
    answer=attention_entries,
    prompt=lambda image_size, patch_size: (
        f"A ViT with patches of {patch_size}x{patch_size} reads a {image_size}x{image_size} image. "
        "How many entries does one head's attention-weight matrix have, for one image in one block?"
    ),
    mistakes={
        "no_cls": Mistake(
            "[CLS] attends and is attended to: N = patches + 1 tokens, N^2 entries",
            lambda image_size, patch_size: (image_size // patch_size) ** 4,
        ),
        "linear": Mistake(
            "every token attends to every token: N^2 entries, not N",
            lambda image_size, patch_size: vit_tokens(image_size, patch_size),
        ),
        "per_side": Mistake(
            "N counts all tokens, (size / patch)^2 + 1, before it is squared",
            lambda image_size, patch_size: (image_size // patch_size + 1) ** 2,
        ),
        "half": Mistake(
            "attention is not symmetric: a query attends to every key, N x N entries, not half",
            lambda image_size, patch_size: vit_tokens(image_size, patch_size) ** 2 // 2,
        ),
    },
    section=TRANSFORMER.format("section 4, The cost of attention"),
)

POSITIONS = choice(
    "why_positions",
    "Why does a ViT add position embeddings to its patch tokens?",
    {
        "equivariance": (
            "Self-attention ignores order: shuffled patches only shuffle the outputs; [CLS]'s stays the same.",
            None,
        ),
        "contents": (
            "Patches of different images differ, and the position embeddings help tell them apart.",
            "that is the patch embedding's job (what a patch shows); positions say where it is",
        ),
        "inside_patch": (
            "The patch embedding, a strided convolution, loses the order of the pixels inside each of the "
            "patches it embeds.",
            "the patch embedding's weights see each pixel of a patch at its place; what attention "
            "loses is the order between the patches",
        ),
        "cls": (
            "To tell the [CLS] token apart from the patch tokens, which would otherwise look alike.",
            "[CLS] is a learned token of its own, told apart without positions",
        ),
        "regularise": (
            "They add noise to the tokens that regularises the model, as dropout does.",
            "they carry information (where each patch is), they are not a penalty or noise",
        ),
    },
    section=VIT.format("section 1, Patches as tokens"),
)

MORE_DATA = choice(
    "vit_needs_data",
    "Trained from scratch on a small dataset, a ViT does worse than a ResNet of similar size; pre-trained "
    "on far more images (ImageNet-21k, JFT-300M) it matches or beats it. Why does it need more data, "
    "in Dosovitskiy et al.'s explanation (which chapter 9's shift controls support in part)?",
    {
        "inductive": ("It lacks a CNN's built-in locality and translation equivariance: it must learn them.", None),
        "params": (
            "It has far more parameters than any ResNet, and more parameters need more data to fit.",
            "ViT-B/16 (86M) and ResNet-152 (60M) are of a size, and in Dosovitskiy et al.'s figures 3 and 4 "
            "ViTs trail ResNets of their size on the smaller pre-training sets: the gap comes from what the "
            "architecture assumes, not from how big it is",
        ),
        "quadratic": (
            "Attention costs the square of the patches, so each image teaches it less than a CNN.",
            "cost is compute per image, not information per image: a costly layer can learn as much from an image",
        ),
        "cannot_convolve": (
            "Self-attention cannot express a convolution, so on images it needs data to make up for it.",
            "it can: a multi-head attention layer with relative positions can express any convolution "
            "(Cordonnier et al. 2020); it is not built to, and must learn to, from data",
        ),
        "borders": (
            "Cutting the image into patches loses the pixels along the patches' borders.",
            "the patches tile the image exactly: every pixel is in one patch and nothing is lost",
        ),
    },
    section=VIT.format("section 3, What a small ViT learns, and what it needs"),
)

CLS = choice(
    "what_cls_does",
    "What does the [CLS] token do in a ViT?",
    {
        "collects": (
            "A learned vector with no image content: attention gathers every patch into it; the classifier reads it.",
            None,
        ),
        "first_patch": (
            "It is the embedding of the top-left patch, which the classifier reads as the image's summary.",
            "it is prepended to the patches and carries none of them",
        ),
        "label": (
            "It carries the class label into the network during training, so that attention can match the "
            "patches to the label.",
            "the label is never fed in; [CLS] only holds what attention brings to it",
        ),
        "average": (
            "It is the average of the patch tokens, computed before the first block and updated by each.",
            "averaging the patch tokens (global average pooling) is the alternative to [CLS], not what "
            "[CLS] is; ViT-B/16 reads [CLS]",
        ),
        "mask": (
            "It marks where the padding starts, as in a batch of sentences of different lengths.",
            "images of one size have no padding; [CLS] is read, not used as a marker",
        ),
    },
    section=VIT.format("section 2, ViT from scratch, proven"),
)


# Reading a figure the chapter draws: gradient norms per layer ---------------------------------------


def _gradient_question(seed: int) -> dict:
    r = _rng(seed)
    return {"depth": r.randint(6, 12), "seed": r.randint(0, 999)}


def gradient_profile(depth: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient norm at each layer's output (bottom first) of a plain sigmoid MLP and its
    residual twin (``depth`` layers of width 16), on one seeded batch of 32 random inputs."""
    from backbones.exercises.resnet import layer_gradient_norms
    from backbones.models.mlp import SigmoidMLP

    with torch.random.fork_rng():
        plain, twin = SigmoidMLP.twins(seed, in_features=16, width=16, depth=depth, num_classes=5)
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(32, 16, generator=g), torch.randint(0, 5, (32,), generator=g)
        return layer_gradient_norms(plain, x, y), layer_gradient_norms(twin, x, y)


def decades(depth: int, seed: int) -> int:
    plain, _ = gradient_profile(depth, seed)
    return round(math.log10(plain[-1].item() / plain[0].item()))


GRADIENT_PLOT = ValueExercise(
    name="read_gradient_plot",
    task="powers of ten the plain network's gradient falls, read from the gradient figure",
    question=_gradient_question,
    answer=decades,
    prompt=lambda depth, seed: (
        f"The gradient figure (drawn for your variant: {depth} layers, seed {seed}) shows the gradient norm "
        "at each layer "
        "of a plain sigmoid MLP and of its residual twin. Read it: by about how many powers of ten is the plain "
        "network's gradient smaller at layer 1 than at the top layer? Answer a whole number (one off is fine)."
    ),
    mistakes={
        "residual_curve": Mistake(
            "that is the residual network's curve, which stays within a power of ten; read the plain one",
            lambda depth, seed: round(
                math.log10(gradient_profile(depth, seed)[1][-1].item() / gradient_profile(depth, seed)[1][0].item())
            ),
        ),
        "negative": Mistake(
            "count the powers of ten it falls as a positive number", lambda depth, seed: -decades(depth, seed)
        ),
        "layers": Mistake(
            "that is the number of layers; read the gradient's fall off the log-scale axis", lambda depth, seed: depth
        ),
    },
    rtol=0.0,
    atol=1.0,
    section=RESNET.format("section 2, Why: how the gradient travels back"),
)


VALUE_EXERCISES: dict[str, ValueExercise] = {
    exercise.name: exercise
    for exercise in (
        DEGRADATION,
        GRADIENT_PLOT,
        CHAIN,
        CANCELLATION,
        ATTENTION_OUTPUT,
        SQRT_D,
        MHA_PARAMS,
        CAUSAL_MASKED,
        NORM_ORDER,
        VIT_TOKENS,
        VIT_ATTENTION,
        POSITIONS,
        MORE_DATA,
        CLS,
    )
}

# The lecture's three test competencies, each question under the one it examines.
COMPETENCIES: dict[str, tuple[str, ...]] = {
    "vanishing gradients and ResNet": (
        "read_degradation_plot",
        "read_gradient_plot",
        "chain_skips",
        "skip_cancellation",
    ),
    "self-attention and Transformers": ("attention_output", "why_sqrt_d", "mha_params", "causal_masked", "norm_order"),
    "the Vision Transformer": (
        "vit_tokens",
        "vit_attention_entries",
        "why_positions",
        "vit_needs_data",
        "what_cls_does",
    ),
}


# The mock test: a short set drawn from the bank per student, and a summary per competency ---------

MOCK_SIZE = 10
MOCK_MINUTES = 30


def mock_draw(student_id: str, size: int = MOCK_SIZE) -> list[str]:
    """This student's mock test: ``size`` questions of the bank, as evenly spread over the three
    competencies as ``size`` allows (10: three, three and four, the four falling on a competency
    drawn per student), in the bank's order. The grader draws the same from the notebook's
    ``STUDENT_ID``."""
    r = random.Random(variant_seed(student_id, "mock_test"))
    groups = list(COMPETENCIES.values())
    base, extra = divmod(size, len(groups))
    more = set(r.sample(range(len(groups)), extra))
    drawn = {q for i, group in enumerate(groups) for q in r.sample(group, min(len(group), base + (i in more)))}
    return [name for name in VALUE_EXERCISES if name in drawn]


def competency_summary(passed: dict[str, bool]) -> list[tuple[str, int, int, list[str]]]:
    """``(competency, passed, asked, sections to revisit)`` for the bank's questions in ``passed``
    (question name -> passed); the sections are those that teach the questions missed."""
    rows = []
    for competency, questions in COMPETENCIES.items():
        asked = [q for q in questions if q in passed]
        if asked:
            revisit = sorted({VALUE_EXERCISES[q].section for q in asked if not passed[q]})
            rows.append((competency, sum(passed[q] for q in asked), len(asked), revisit))
    return rows


def summary_text(passed: dict[str, bool]) -> str:
    """One line, e.g. "vanishing gradients and ResNet 3/4, ...: revisit chapter 7, section 1, ..."."""
    rows = competency_summary(passed)
    scores = ", ".join(f"{competency} {ok}/{asked}" for competency, ok, asked, _ in rows)
    revisit = [section for *_, sections in rows for section in sections]
    return scores + (f": revisit {'; '.join(revisit)}" if revisit else ": nothing to revisit")
