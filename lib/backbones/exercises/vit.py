"""Exercises of the Vision Transformer chapter: patch tokens, the patch embedding as a linear
layer, and attention rollout."""

from __future__ import annotations

import torch

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs
from backbones.models.vit import patchify

# Patch tokens -----------------------------------------------------------------------------------


def patch_tokens(images: torch.Tensor, patch_size: int, cls_token: torch.Tensor) -> torch.Tensor:
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    x = x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)  # reading order
    cls = cls_token.expand(b, 1, -1)
    return torch.cat([cls, x], dim=1)  # (B, 1 + N, C p p)


def _tokens(images, p, cls_token, *, order=(0, 2, 4, 1, 3, 5), transpose=True, cls="first"):
    b, c, h, w = images.shape
    if transpose:
        x = images.reshape(b, c, h // p, p, w // p, p).permute(*order).reshape(b, -1, c * p * p)
    else:  # a reshape alone: the numbers of a "patch" are not a patch
        x = images.reshape(b, (h // p) * (w // p), c * p * p)
    if cls is None:
        return x
    cls_row = cls_token.expand(b, 1, -1)
    return torch.cat([cls_row, x] if cls == "first" else [x, cls_row], dim=1)


def _token_cases() -> list[Case]:
    def case(label, seed, batch, channels, height, width, p):
        g = torch.Generator().manual_seed(seed)
        return Case(
            label,
            (torch.randn(batch, channels, height, width, generator=g), p, torch.randn(channels * p * p, generator=g)),
        )

    return rungs(
        [
            case("two RGB 8x8 images in 4x4 patches", 0, 2, 3, 8, 8, 4),
            case("a single image, 2 channels, 6x12 in 3x3 patches (a 2x4 grid)", 1, 1, 2, 6, 12, 3),
            case("three 1-channel 4x4 images in 2x2 patches", 2, 3, 1, 4, 4, 2),
        ],
        "an image that is not square (look at the grid: H // p rows of W // p patches, read row by row, "
        "and at anything that uses one side for both)",
        "one channel (look at any squeeze(), and at the order inside a patch: channel, then row, then column)",
    )


def _diagnose_reading(c: int, h: int, w: int, p: int, got, expected) -> str | None:
    """Pixels that are their own addresses (value = 10000 + 1000 channel + 10 row + column) show
    where each token's values came from."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    tokens = got.detach()[0, 1:].round().long() - 10000  # the class token (all -1) left out
    if (tokens < 0).any():
        return None  # the class token is not first: the catalogue's business
    channel, row, column = tokens // 1000, tokens % 1000 // 10, tokens % 10
    seen = "(a probe whose pixels hold their own channel, row and column shows it)"
    grid = (row // p) * (w // p) + column // p  # which patch each value came from
    if not (grid == grid[:, :1]).all():
        return (
            f"a token mixes pixels of different patches {seen}: reshape to (B, C, H/p, p, W/p, p) and "
            f"permute to (B, H/p, W/p, C, p, p) before flattening; a reshape straight to (B, N, C p p) mixes them"
        )
    order = grid[:, 0]
    if not torch.equal(order, torch.arange(len(order))):
        column_first = (torch.arange(len(order)) % (h // p)) * (w // p) + torch.arange(len(order)) // (h // p)
        if torch.equal(order, column_first):
            return f"your patches are read column by column {seen}: read the grid row by row, as text is read"
        return f"your patches are out of order {seen}: the grid is read row by row, left to right"
    inside = channel[0] * p * p + (row[0] % p) * p + column[0] % p
    if torch.equal(inside, torch.arange(c * p * p)):
        return None
    channels_last = ((row[0] % p) * p + column[0] % p) * c + channel[0]
    if torch.equal(channels_last, torch.arange(c * p * p)):
        return (
            f"inside a patch your values run row, column, channel {seen}: flatten as channel, then row, then "
            f"column, the order of a convolution's weight (E, C, p, p)"
        )
    return f"inside a patch your values are in another order {seen}: channel, then row, then column"


def _token_probes() -> list[Probe]:
    c, h, w, p = 2, 4, 6, 2
    channel, row, column = torch.meshgrid(torch.arange(c), torch.arange(h), torch.arange(w), indexing="ij")
    images = (10000 + 1000 * channel + 10 * row + column).float()[None]
    case = Case(
        "pixels that hold their own addresses, 2 channels, 4x6 in 2x2 patches", (images, p, -torch.ones(c * p * p))
    )
    return [
        Probe("addressed pixels", (case,), lambda got, expected: _diagnose_reading(c, h, w, p, got[0], expected[0]))
    ]


PATCH_TOKENS = Exercise(
    name="patch_tokens",
    task="an image batch (B, C, H, W) as tokens (B, 1 + N, C*p*p): [CLS] first, then the p x p patches in "
    "reading order, each flattened channel first",
    forbidden=("backbones.models.vit.patchify",),
    reference=patch_tokens,
    cases=_token_cases,
    probes=_token_probes,
    mistakes={
        "no_transpose": Mistake(
            "a reshape alone does not cut patches: reshape to (B, C, H/p, p, W/p, p), permute "
            "to (B, H/p, W/p, C, p, p), then flatten",
            lambda *a: _tokens(*a, transpose=False),
        ),
        "channels_last": Mistake(
            "flatten each patch channel first (C, p, p), as the convolution's weight "
            "(E, C, p, p) is: permute(0, 2, 4, 1, 3, 5)",
            lambda *a: _tokens(*a, order=(0, 2, 4, 3, 5, 1)),
        ),
        "column_order": Mistake(
            "patches go in reading order: along the first row, then the next (rows outer, "
            "columns inner), not column by column",
            lambda *a: _tokens(*a, order=(0, 4, 2, 1, 3, 5)),
        ),
        "missing_cls": Mistake("put the [CLS] token in front: 1 + N tokens, not N", lambda *a: _tokens(*a, cls=None)),
        "cls_last": Mistake(
            "the [CLS] token comes first (position 0), where the head reads it", lambda *a: _tokens(*a, cls="last")
        ),
    },
    rtol=0,
    atol=0,
)


# The patch embedding as a linear layer ---------------------------------------------------------


def patch_embedding(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    embed_dim, _, p, _ = weight.shape
    patches = patchify(images, p)  # (B, N, C p p), channel first
    return patches @ weight.reshape(embed_dim, -1).T + bias  # (B, N, E)


def _embed(
    images, weight, bias, *, channels_last=False, with_bias=True, transpose=False, order="rows", scrambled=False
):
    embed_dim, c, p, _ = weight.shape
    grid = (0, 4, 2, 1, 3, 5) if order == "columns" else (0, 2, 4, 1, 3, 5)
    patches = _tokens(images, p, None, order=grid, transpose=not scrambled, cls=None)
    w = weight.permute(0, 2, 3, 1).reshape(embed_dim, -1) if channels_last else weight.reshape(embed_dim, -1)
    out = patches @ w.T + (bias if with_bias else 0)
    return out.transpose(1, 2) if transpose else out


def _embed_cases() -> list[Case]:
    def case(label, seed, batch, c, size, p, e, width=None):
        g = torch.Generator().manual_seed(seed)
        return Case(
            label,
            (
                torch.randn(batch, c, size, size if width is None else width, generator=g),
                torch.randn(e, c, p, p, generator=g) * 0.2,
                torch.randn(e, generator=g),
            ),
        )

    return rungs(
        [
            case("two 3-channel 8x8 images, 4x4 patches, 6 features", 0, 2, 3, 8, 4, 6),
            case("a single 2-channel 6x6 image, 3x3 patches, 5 features", 1, 1, 2, 6, 3, 5),
            case("four 3-channel 4x4 images, 2x2 patches, 16 features", 2, 4, 3, 4, 2, 16),
            case("two 2-channel 4x8 images, 2x2 patches, 3 features (a 2x4 grid)", 3, 2, 2, 4, 2, 3, width=8),
        ],
        "a single image and another patch size (look at any squeeze(), and at anything fixed to 4)",
        "more features than a patch has values (look at the weight's reshape: (E, C * p * p), in the "
        "order C, then p, then p, as the patch is flattened)",
        "images that are not square (look at the grid: H // p rows of W // p patches, read row by row, "
        "and at anything that uses one side for both)",
    )


PATCH_EMBEDDING = Exercise(
    name="patch_embedding",
    task="a convolution's patch embedding (weight (E, C, p, p), bias (E,), kernel = stride = p) computed as a "
    "linear layer on flattened patches: (B, N, E)",
    forbidden=("torch.nn.functional.conv2d", "torch.nn.Conv2d"),
    reference=patch_embedding,
    cases=_embed_cases,
    mistakes={
        "weight_order": Mistake(
            "flatten the weight in the patches' order: weight.reshape(E, -1) matches patches "
            "flattened channel first (C, p, p)",
            lambda *a: _embed(*a, channels_last=True),
        ),
        "no_bias": Mistake(
            "the convolution adds its bias to every patch's token", lambda *a: _embed(*a, with_bias=False)
        ),
        "transposed": Mistake(
            "return tokens as rows, (B, N, E), not the convolution's (B, E, N) layout",
            lambda *a: _embed(*a, transpose=True),
        ),
        "column_order": Mistake(
            "the convolution's tokens come in reading order (rows outer, columns inner): cut the patches the same way",
            lambda *a: _embed(*a, order="columns"),
        ),
        "no_transpose": Mistake(
            "a reshape of the image alone does not cut patches: reshape to (B, C, H/p, p, W/p, "
            "p) and permute before flattening",
            lambda *a: _embed(*a, scrambled=True),
        ),
    },
)


# Attention rollout ------------------------------------------------------------------------------


def rollout(attention: torch.Tensor) -> torch.Tensor:
    result = None
    for weights in attention:  # (B, H, T, T), first layer first
        a = weights.mean(dim=1)  # average the heads
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])  # the residual path
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result  # later layers on the left
    return result


def _rollout(attention, *, residual=True, renormalise=True, reverse=False, heads="mean"):
    result = None
    for weights in attention:
        a = {"mean": weights.mean(dim=1), "max": weights.amax(dim=1), "sum": weights.sum(dim=1)}[heads]
        if residual:
            a = a + torch.eye(a.shape[-1])
        if renormalise:
            a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else (result @ a if reverse else a @ result)
    return result


def _rollout_cases() -> list[Case]:
    def case(label, seed, layers, batch, heads, tokens):
        g = torch.Generator().manual_seed(seed)
        return Case(label, (torch.softmax(torch.randn(layers, batch, heads, tokens, tokens, generator=g) * 2, -1),))

    return rungs(
        [
            case("3 layers, 2 images, 4 heads, 6 tokens", 0, 3, 2, 4, 6),
            case("a single layer of 2 heads over 5 tokens", 1, 1, 1, 2, 5),
            case("4 layers, 1 image, 3 heads, 7 tokens", 2, 4, 1, 3, 7),
        ],
        "a single layer (look at what one layer gives: 0.5 A + 0.5 I, A the mean over heads, and at any squeeze())",
        "4 layers of 3 heads (look at the order of the product, the later layer on the left, and at "
        "the mean over heads before adding the identity)",
    )


ROLLOUT = Exercise(
    name="attention_rollout",
    task="attention rollout over layers (L, B, H, T, T): heads averaged, 0.5 A + 0.5 I per layer, rows "
    "renormalised, layers multiplied with the last on the left: (B, T, T)",
    forbidden=("backbones.models.vit.attention_rollout",),
    reference=rollout,
    cases=_rollout_cases,
    mistakes={
        "no_residual": Mistake(
            "add the identity for the residual connection (0.5 A + 0.5 I): the skip carries "
            "each token's own information past every layer",
            lambda a: _rollout(a, residual=False),
        ),
        "not_renormalised": Mistake(
            "after adding the identity, divide each row by its sum so that rows stay "
            "distributions (A + I has rows summing to 2)",
            lambda a: _rollout(a, renormalise=False),
        ),
        "wrong_order": Mistake(
            "multiply the later layer on the left: R = A_L ... A_2 A_1 (layer 1 mixes the inputs first)",
            lambda a: _rollout(a, reverse=True),
        ),
        "max_heads": Mistake(
            "Abnar and Zuidema average the heads (mean over dim 1); the max over heads is a "
            "variant, not the paper's rollout",
            lambda a: _rollout(a, heads="max"),
        ),
        "summed_heads": Mistake(
            "average the heads (mean), do not sum them: a sum outweighs the identity H times",
            lambda a: _rollout(a, heads="sum"),
        ),
    },
)
