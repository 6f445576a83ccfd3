"""Exercises of the attention chapters: scaled dot-product attention, splitting and merging
heads, and a causal mask."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs
from backbones.layers.attention import merge_heads, split_heads

# Scaled dot-product attention -------------------------------------------------------------------


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _qkv(seed: int, batch: tuple, lq: int, lk: int, d: int, dv: int, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*batch, lq, d, generator=g) * scale,
        torch.randn(*batch, lk, d, generator=g) * scale,
        torch.randn(*batch, lk, dv, generator=g),
    )


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(99)
    padding = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    padding[0, ..., 5:] = False  # the first sequence has two padding tokens
    random_mask = torch.rand(3, 6, 9, generator=g) > 0.3
    random_mask[..., 0] = True  # every query may attend to at least one key
    return rungs(
        [
            Case("a batch of 2, 5 tokens, d=8", _qkv(0, (2,), 5, 5, 8, 8)),
            Case("a batch of one, 4 tokens, d=4", _qkv(1, (1,), 4, 4, 4, 4)),
            Case(
                "heads (2, 3), 6 queries, 9 keys, values of size 5, a mask",
                _qkv(2, (2, 3), 6, 9, 16, 5),
                {"mask": random_mask},
            ),
            Case("a padding mask broadcast over heads and queries", _qkv(3, (2, 4), 7, 7, 8, 8), {"mask": padding}),
            Case("d=256, where the scaling matters most", _qkv(4, (2,), 6, 6, 256, 8)),
            Case("large scores (q and k of norm ~120), where exp overflows", _qkv(5, (2,), 5, 5, 16, 8, scale=30.0)),
            Case(
                "q, k, v that are transposed views (not contiguous), as a model's projections can give",
                tuple(t.transpose(-2, -1).contiguous().transpose(-2, -1) for t in _qkv(6, (2, 2), 5, 5, 8, 8)),
            ),
            Case("float64 inputs, 3 queries, 4 keys", tuple(t.double() for t in _qkv(7, (2,), 3, 4, 8, 6))),
        ],
        "a batch of one and another width (look at any squeeze(), and at anything fixed to d = 8)",
        "more keys than queries, values of another size, extra batch axes and a mask (look at the "
        "transpose, k.transpose(-2, -1), not .T or transpose(0, 1); and at the mask: masked_fill(~mask, -inf))",
        "a mask that broadcasts, (B, 1, 1, T) (look at the mask's use: let it broadcast, do not index or reshape it)",
        "d = 256 (look at the scale: 1 / sqrt(q.shape[-1]), the size of a query)",
        "large scores (look at the softmax: exp of large scores overflows; .softmax(dim=-1) subtracts the maximum)",
        "inputs that are not contiguous (look at .view(): it needs contiguous memory; use .reshape() or none)",
        "float64 (look at anything that makes a float32 tensor: torch.tensor(...) or torch.ones(...) without dtype)",
    )


def _softmax_attention(
    q,
    k,
    v,
    mask=None,
    *,
    scale=None,
    axis=-1,
    use_mask=True,
    invert=False,
    transpose=True,
    fill=float("-inf"),
    normalise="softmax",
    mask_after=False,
    scale_after=False,
    weights_transposed=False,
):
    """Attention with one term changed: each keyword is one way to get a term of the formula wrong."""
    scores = q @ (k.transpose(-2, -1) if transpose else k)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = scores if scale_after else scores * scale
    if mask is not None and use_mask and not mask_after:
        scores = scores.masked_fill(mask if invert else ~mask, fill)
    if normalise == "softmax":
        weights = scores.softmax(dim=axis)
    elif normalise == "exp":  # softmax written out, without subtracting the maximum
        weights = scores.exp() / scores.exp().sum(dim=axis, keepdim=True)
    elif normalise == "exp_all":  # ... and normalised over every entry at once
        weights = scores.exp() / scores.exp().sum()
    elif normalise == "sigmoid":
        weights = scores.sigmoid()
    else:  # no normalisation at all
        weights = scores
    if scale_after:
        weights = weights * scale
    if mask is not None and mask_after:
        weights = weights * mask
    if weights_transposed:
        weights = weights.transpose(-2, -1)
    return weights @ v


def _wrong(**change):
    return lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, **change)


def _as_weights(got, expected) -> torch.Tensor | None:
    """A probe's output as attention weights (v was the identity), or None when it cannot be."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or not got.is_floating_point():
        return None
    return got.detach().double()


def _diagnose_weights(q, k, got, expected) -> str | None:
    """v the identity, so attention returns its weights: read their axis and their scale."""
    w = _as_weights(got, expected)
    if w is None or not torch.isfinite(w).all():
        return None
    seen = "(a probe with v the identity, where attention returns its weights, shows it)"
    if not torch.allclose(w.sum(-1), torch.ones(()).double(), atol=1e-4):
        if torch.allclose(w.sum(-2), torch.ones(()).double(), atol=1e-4):
            return (
                f"your weights sum to 1 over the queries, not over the keys {seen}:"
                f" the softmax runs over the last axis of the scores, dim=-1"
            )
        if abs(float(w.sum()) - 1) < 1e-4:
            return (
                f"your weights sum to 1 over all entries at once {seen}:"
                f" normalise each query's row over the keys, softmax(dim=-1)"
            )
        return (
            f"your attention weights do not sum to 1 over the keys {seen}:"
            f" normalise the scores with a softmax over the last axis"
        )
    if (w <= 0).any():
        return None
    scores = (q @ k.transpose(-2, -1)).double()
    logs = w.log() - w.log().mean(-1, keepdim=True)
    centred = scores - scores.mean(-1, keepdim=True)
    c = float((logs * centred).sum() / (centred * centred).sum())
    if (logs - c * centred).abs().max() > 1e-3:
        return (
            f"your weights are not a softmax of q k^T at any scale {seen}: look at the scores, q @ k.transpose(-2, -1)"
        )
    d = q.shape[-1]
    if abs(c * math.sqrt(d) - 1) < 1e-3:
        return None  # the weights are right: the mistake is elsewhere
    for value, what in (
        (1.0, "not scaled them"),
        (1 / d, "divided them by d"),
        (math.sqrt(d), "multiplied them by sqrt(d)"),
    ):
        if abs(c - value) < 1e-3 * value:
            return f"you have {what} {seen}: scale the scores by 1 / sqrt(d), d = q.shape[-1]"
    return f"your scores are scaled by {c:.4g} {seen}, where 1 / sqrt(d) = {1 / math.sqrt(d):.4g}, d = q.shape[-1]"


def _diagnose_mask(mask, got, expected) -> str | None:
    """v the identity again, now with a mask: where do the masked keys' weights go?"""
    w = _as_weights(got, expected)
    if w is None or not torch.isfinite(w).all():
        return None
    seen = "(a probe with v the identity shows your weights)"
    masked, allowed = w[..., ~mask], w[..., mask]
    if masked.abs().max() < 1e-6:
        if not torch.allclose(w.sum(-1), torch.ones(()).double(), atol=1e-4):
            return (
                f"you zeroed the masked weights after the softmax {seen}, so the rows no longer sum to 1: "
                f"set the masked scores to -inf before it"
            )
        return None
    if allowed.abs().max() < 1e-6:
        return f"your mask is inverted {seen}: True means the query may attend to that key"
    return f"masked keys still get weight {seen}: set the scores where the mask is False to -inf before the softmax"


def _attention_probes() -> list[Probe]:
    g = torch.Generator().manual_seed(123)
    q, k = torch.randn(1, 4, 8, generator=g) * 0.7, torch.randn(1, 6, 8, generator=g) * 0.7
    v = torch.eye(6)[None]
    mask = torch.rand(4, 6, generator=g) > 0.4
    mask[:, 0] = True
    return [
        Probe(
            "v the identity",
            (Case("v the identity", (q, k, v)),),
            lambda got, exp: _diagnose_weights(q, k, got[0], exp[0]),
        ),
        Probe(
            "v the identity, a mask",
            (Case("v the identity, a mask", (q, k, v), {"mask": mask}),),
            lambda got, exp: _diagnose_mask(mask, got[0], exp[0]),
        ),
    ]


ATTENTION = Exercise(
    name="attention",
    task="softmax(q k^T / sqrt(d)) v, with a boolean mask (True: may attend)",
    forbidden=(
        "torch.nn.functional.scaled_dot_product_attention",
        "torch.nn.MultiheadAttention",
        "backbones.layers.attention.scaled_dot_product_attention",
    ),
    reference=attention,
    cases=_attention_cases,
    probes=_attention_probes,
    mistakes={
        "no_scaling": Mistake(
            "no 1/sqrt(d) scaling: divide the scores q k^T by sqrt(d), the size of a query",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, scale=1.0),
        ),
        "scaled_by_d": Mistake(
            "you divided by d; the scaling is 1/sqrt(d)",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, scale=1 / q.shape[-1]),
        ),
        "wrong_axis": Mistake(
            "softmax over the wrong axis: each query's weights must sum to 1 over the keys (the last dimension)",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, axis=-2),
        ),
        "mask_ignored": Mistake(
            "the mask is ignored: set the scores of masked positions to -inf before the softmax",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, use_mask=False),
        ),
        "mask_inverted": Mistake(
            "the mask is inverted: True means the query MAY attend to that key",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, invert=True),
        ),
        "keys_not_transposed": Mistake(
            "the keys are not transposed: the scores are q @ k.transpose(-2, -1)",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, transpose=False),
        ),
        "unstable_softmax": Mistake(
            "exp(s) / exp(s).sum() overflows for large scores (exp(100) is inf in float32, "
            "inf / inf is nan): subtract each row's maximum first, or use .softmax(dim=-1), "
            "which does",
            _wrong(normalise="exp"),
        ),
        "normalised_globally": Mistake(
            "the weights were normalised over the whole tensor: each query's weights must "
            "sum to 1 over its own keys (sum over dim=-1, keepdim=True)",
            _wrong(normalise="exp_all"),
        ),
        "sigmoid": Mistake(
            "a sigmoid scores each key on its own; attention's softmax makes the keys compete, "
            "so that each query's weights sum to 1",
            _wrong(normalise="sigmoid"),
        ),
        "no_softmax": Mistake(
            "the scores go through a softmax over the keys before they weight the values", _wrong(normalise=None)
        ),
        "scaled_by_value_size": Mistake(
            "you scaled by the size of the values; the scaling is 1/sqrt(d) with d the "
            "size of the queries and keys (q.shape[-1]), the size of the dot products",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, scale=1 / math.sqrt(v.shape[-1])),
        ),
        "scaled_by_length": Mistake(
            "you scaled by the number of keys; the scaling is 1/sqrt(d), d the size of a query (q.shape[-1])",
            lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, scale=1 / math.sqrt(k.shape[-2])),
        ),
        "scaled_after_softmax": Mistake(
            "the 1/sqrt(d) divides the scores before the softmax (it sets how peaked "
            "the softmax is); after it, it only shrinks the output",
            _wrong(scale_after=True),
        ),
        "mask_after_softmax": Mistake(
            "the mask was applied to the weights after the softmax, so the remaining "
            "weights no longer sum to 1: mask the scores with -inf before the softmax",
            _wrong(mask_after=True),
        ),
        "mask_fill_zero": Mistake(
            "a masked score set to 0 still gets weight exp(0) = 1 in the softmax: set it to -inf (float('-inf'))",
            _wrong(fill=0.0),
        ),
        "scores_transposed": Mistake(
            "the scores are q @ k^T, queries in rows; k @ q^T puts the keys in rows, so "
            "each key's weights sum to 1 instead of each query's",
            lambda q, k, v, mask=None: (
                _softmax_attention(
                    q, k, v, None if mask is None else mask.transpose(-2, -1), weights_transposed=True, axis=-2
                )
                if q.shape[-2] == k.shape[-2]
                else (k @ q.transpose(-2, -1)) @ v
            ),
        ),
        "weights_returned": Mistake(
            "you returned the attention weights; return the weighted sum of the values, weights @ v",
            lambda q, k, v, mask=None: _softmax_attention(
                q, k, torch.eye(k.shape[-2]).expand(*k.shape[:-1], k.shape[-2]), mask
            ),
        ),
    },
)


# Splitting and merging heads ------------------------------------------------------------------


def _heads_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    return rungs(
        [
            Case("a batch of 2, 5 tokens, 12 features, 3 heads", (torch.randn(2, 5, 12, generator=g), 3)),
            Case("a batch of one, 4 heads of size 2", (torch.randn(1, 7, 8, generator=g), 4)),
            Case("one head", (torch.randn(3, 4, 6, generator=g), 1)),
            Case("6 heads of size 4, 9 tokens", (torch.randn(2, 9, 24, generator=g), 6)),
        ],
        "a batch of one, more heads than a head has features (look at any squeeze(), and at which "
        "number is the head count and which the head size: d = E // num_heads)",
        "one head (look at the shape: still (B, 1, T, E))",
        "6 heads, 9 tokens (look at anything fixed to 3 heads or 5 tokens)",
    )


SPLIT_HEADS = Exercise(
    name="split_heads",
    task="(B, T, E) -> (B, H, T, E/H): head h takes features h*d to (h+1)*d of every token",
    forbidden=("backbones.layers.attention.split_heads",),
    reference=split_heads,
    cases=_heads_cases,
    mistakes={
        "no_transpose": Mistake(
            "the result must be (B, H, T, d): after view(B, T, H, d) swap the token and head "
            "dimensions (transpose(1, 2))",
            lambda x, h: x.view(x.shape[0], x.shape[1], h, -1),
        ),
        "view_mixes_tokens": Mistake(
            "view(B, H, T, d) straight from (B, T, E) mixes tokens into heads: view as "
            "(B, T, H, d) first, then transpose(1, 2)",
            lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
        ),
        "interleaved": Mistake(
            "each head takes a contiguous slice of the features (h*d to (h+1)*d), not every H-th feature",
            lambda x, h: x.view(x.shape[0], x.shape[1], -1, h).permute(0, 3, 1, 2),
        ),
        "head_size_as_count": Mistake(
            "num_heads is the number of heads, not their size: d = E / num_heads",
            lambda x, h: x.view(x.shape[0], x.shape[1], x.shape[2] // h, h).transpose(1, 2),
        ),
        "tokens_last": Mistake(
            "the tokens go before the features: (B, H, T, d), not (B, H, d, T)",
            lambda x, h: x.view(x.shape[0], x.shape[1], h, -1).permute(0, 2, 3, 1),
        ),
    },
)


def _merge_cases() -> list[Case]:
    cases = [
        Case(case.label + ", from split_heads (a transposed view)", (split_heads(*case.args),))
        for case in _heads_cases()
    ]
    g = torch.Generator().manual_seed(6)  # what attention returns: a fresh, contiguous (B, H, T, d)
    return rungs(
        cases
        + [
            Case("attention's output, contiguous (2, 3, 5, 4)", (torch.randn(2, 3, 5, 4, generator=g),)),
            Case("a contiguous single head (1, 1, 7, 8)", (torch.randn(1, 1, 7, 8, generator=g),)),
        ],
        "a batch of one, more heads than a head has features (look at any squeeze(), and at the order: "
        "transpose(1, 2) back to (B, T, H, d) before joining the heads)",
        "one head (look at the shape: (B, T, d) from (B, 1, T, d))",
        "6 heads, 9 tokens (look at anything fixed to 3 heads or 5 tokens)",
        "a contiguous input (look at the transpose: it is needed whether or not the input is a view)",
        "a single contiguous head (look at the transpose and the reshape together: (1, 7, 8))",
    )


MERGE_HEADS = Exercise(
    name="merge_heads",
    task="(B, H, T, d) -> (B, T, H*d), the inverse of split_heads",
    forbidden=("backbones.layers.attention.merge_heads",),
    reference=merge_heads,
    cases=_merge_cases,
    mistakes={
        "no_transpose": Mistake(
            "reshape straight from (B, H, T, d) mixes the heads into the tokens: transpose(1, 2) to (B, T, H, d) first",
            lambda x: x.reshape(x.shape[0], x.shape[2], -1),
        ),
        "interleaved": Mistake(
            "the heads must be concatenated (head 0's features, then head 1's...), not interleaved",
            lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
        ),
        "heads_not_merged": Mistake(
            "the result is (B, T, H*d): merge the head and feature dimensions", lambda x: x.transpose(1, 2)
        ),
        "summed": Mistake(
            "you summed the heads; concatenate them instead (the output projection mixes them later)",
            lambda x: x.sum(dim=1),
        ),
        "averaged": Mistake("you averaged the heads; concatenate them instead", lambda x: x.mean(dim=1)),
        "view_after_transpose": Mistake(
            "x.transpose(1, 2) is not contiguous, so .view() cannot flatten it (it "
            "worked only because the input was itself a transposed view): use "
            ".reshape(), or .contiguous().view()",
            lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1),
        ),
    },
)


# A causal mask ------------------------------------------------------------------------------------


def causal_mask(length: int) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool).tril()


CAUSAL_MASK = Exercise(
    name="causal_mask",
    task="a (T, T) boolean mask, True where query i may attend to key j: j <= i",
    reference=causal_mask,
    cases=lambda: rungs(
        [Case("5 tokens", (5,)), Case("a single token", (1,)), Case("2 tokens", (2,)), Case("12 tokens", (12,))],
        "a single token (look at the shape, (1, 1), and the dtype: bool)",
        "2 tokens (look at the diagonal: a token may attend to itself, j <= i)",
        "12 tokens (look at anything fixed to 5)",
    ),
    mistakes={
        "future": Mistake(
            "this lets each token see the future and not the past: True must be on and below the diagonal (torch.tril)",
            lambda n: torch.ones(n, n, dtype=torch.bool).triu(),
        ),
        "no_self": Mistake(
            "a token may attend to itself: keep the diagonal",
            lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1),
        ),
        "inverted": Mistake(
            "the mask is inverted: True means 'may attend' (torch's convention), so it is True "
            "on and below the diagonal",
            lambda n: ~torch.ones(n, n, dtype=torch.bool).tril(),
        ),
        "one_ahead": Mistake(
            "off by one: a token may not see the next token (diagonal=1 lets it)",
            lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=1),
        ),
        "float_ones": Mistake(
            "return a boolean mask (dtype=torch.bool), not ones and zeros", lambda n: torch.ones(n, n).tril()
        ),
        "additive": Mistake(
            "this is an additive mask (0 and -inf); return the boolean one (True: may attend)",
            lambda n: torch.zeros(n, n).masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf")),
        ),
    },
)
