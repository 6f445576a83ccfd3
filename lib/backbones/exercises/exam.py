"""The "Test yourself" chapter's questions: answer values, a variant per student (see
``core.ValueExercise``). Numbers with seeded variants, choices whose wrong options explain
themselves, and two questions that read a figure the chapter draws. Each names the section of
the book that teaches it. Order: ResNet, attention, ViT, figures."""

from __future__ import annotations

import math
import random

import torch

from backbones.exercises.core import Mistake, ValueExercise, choice

RESNET = "chapter 4, {}"
ATTENTION = "chapter 7, {}"
TRANSFORMER = "chapter 8, {}"
VIT = "chapter 9, {}"


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


# Vanishing gradients and ResNet ------------------------------------------------------------------


def _block_question(seed: int) -> dict:
    r = _rng(seed)
    c = r.choice([16, 32, 64, 128, 256])
    stride = r.choice([1, 2])
    return {"in_channels": c, "out_channels": c * stride, "stride": stride}


def block_params(
    in_channels: int,
    out_channels: int,
    stride: int,
    *,
    kernel: int = 9,
    bn: int = 2,
    bias: int = 0,
    projection: bool = True,
    convs: int = 2,
) -> int:
    """A BasicBlock's parameters: two 3x3 convolutions without bias, two batch norms (scale and
    shift), and when the shape changes a 1x1 projection with its batch norm."""
    total = kernel * in_channels * out_channels + (convs - 1) * kernel * out_channels * out_channels
    total += convs * (bn * out_channels + bias * out_channels)
    if stride != 1 and projection:
        total += in_channels * out_channels + bn * out_channels
    return total


BLOCK_PARAMS = ValueExercise(
    name="block_params",
    task="the parameters of a ResNet BasicBlock",
    question=_block_question,
    answer=block_params,
    prompt=lambda in_channels, out_channels, stride: (
        f"How many parameters (weights that training changes) does a ResNet BasicBlock have with "
        f"{in_channels} channels in, {out_channels} out and stride {stride}? Its convolutions have no bias; "
        + (
            "a 1x1 projection with its batch norm forms the shortcut."
            if stride != 1
            else "the shortcut is the identity."
        )
    ),
    mistakes={
        "no_batch_norm": Mistake(
            "each batch norm has a scale and a shift per channel: 2 x channels parameters",
            lambda **p: block_params(**p, bn=0),
        ),
        "running_statistics": Mistake(
            "a batch norm's running mean and variance are buffers, not parameters: count 2 per channel, not 4",
            lambda **p: block_params(**p, bn=4),
        ),
        "conv_bias": Mistake(
            "a convolution followed by batch norm has no bias (the norm's shift replaces it)",
            lambda **p: block_params(**p, bias=1),
        ),
        "kernel_not_squared": Mistake(
            "a 3x3 kernel has 9 weights per input and output channel, not 3", lambda **p: block_params(**p, kernel=3)
        ),
        "no_projection": Mistake(
            "with stride 2 the shortcut is a 1x1 convolution (in x out weights) and a batch norm",
            lambda **p: block_params(**p, projection=False),
        ),
        "one_convolution": Mistake("a BasicBlock has two 3x3 convolutions", lambda **p: block_params(**p, convs=1)),
    },
    section=RESNET.format("section 3, The ResNet family, from scratch"),
)


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
            "Plain-56 fits its own training data worse than plain-20 does: deeper plain networks "
            "are harder to optimise.",
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
            "ResNet-56 overfits: its training loss is the lowest, so its test accuracy must be the worst.",
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
    "A residual layer's Jacobian is I + J, J the branch's Jacobian. For which J does the skip NOT keep "
    "the gradient of a deep stack alive?",
    {
        "minus_identity": ("J close to -I: the branch undoes the identity.", None),
        "zero": (
            "J = 0, a branch that does nothing yet.",
            "then I + J = I: the gradient passes every layer unchanged, the case the skip is for",
        ),
        "small": (
            "J with small random entries, as at initialisation.",
            "then I + J is close to I and its product stays near I: the skip keeps the gradient alive",
        ),
        "half": ("J = 0.5 I.", "then I + J = 1.5 I: the product grows like 1.5^L, it does not vanish"),
        "plain_small": (
            "J with entries of size 0.01, in a plain network without skips.",
            "that is a plain network: the question asks when the skip itself fails, and with a skip "
            "these J would give I + J close to I",
        ),
    },
    section=RESNET.format("section 2, Why: how the gradient travels back"),
)


# Self-attention and Transformers -------------------------------------------------------------------


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
        "variance": (
            "q . k has variance d for unit-variance entries; dividing by sqrt(d) keeps the softmax "
            "from saturating as d grows.",
            None,
        ),
        "sum_to_one": (
            "So that each query's attention weights sum to 1 over the keys, as the weights of an average must.",
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
            "Without them self-attention ignores order: shuffling the patches only shuffles the "
            "outputs, and [CLS]'s output stays the same.",
            None,
        ),
        "contents": (
            "Patches of different images differ, and the position embeddings help tell them apart.",
            "that is the patch embedding's job (what a patch shows); positions say where it is",
        ),
        "inside_patch": (
            "The patch embedding, a strided convolution, loses the order of the pixels inside each patch.",
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

CLS = choice(
    "what_cls_does",
    "What does the [CLS] token do in a ViT?",
    {
        "collects": (
            "A learned vector with no image content: attention gathers information from every patch "
            "into it, and the classifier reads it.",
            None,
        ),
        "first_patch": (
            "It is the embedding of the top-left patch, which the classifier reads as the image's summary.",
            "it is prepended to the patches and carries none of them",
        ),
        "label": (
            "It carries the class label into the network during training, so attention can match patches to it.",
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
        BLOCK_PARAMS,
        CANCELLATION,
        ATTENTION_OUTPUT,
        SQRT_D,
        VIT_TOKENS,
        VIT_ATTENTION,
        POSITIONS,
        CLS,
    )
}
