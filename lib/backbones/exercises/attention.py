"""Exercises of the attention chapters: scaled dot-product attention, splitting and merging
heads, and a causal mask."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backbones.exercises.core import Case, Exercise, Mistake
from backbones.layers.attention import merge_heads, split_heads

# Scaled dot-product attention -------------------------------------------------------------------


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _qkv(seed: int, batch: tuple, lq: int, lk: int, d: int, dv: int, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, lq, d, generator=g) * scale, torch.randn(*batch, lk, d, generator=g) * scale,
            torch.randn(*batch, lk, dv, generator=g))


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(99)
    padding = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    padding[0, ..., 5:] = False  # the first sequence has two padding tokens
    random_mask = torch.rand(3, 6, 9, generator=g) > 0.3
    random_mask[..., 0] = True   # every query may attend to at least one key
    return [
        Case("a batch of 2, 5 tokens, d=8", _qkv(0, (2,), 5, 5, 8, 8)),
        Case("a batch of one, 4 tokens, d=4", _qkv(1, (1,), 4, 4, 4, 4)),
        Case("heads (2, 3), 6 queries, 9 keys, values of size 5, a mask", _qkv(2, (2, 3), 6, 9, 16, 5),
             {"mask": random_mask}),
        Case("a padding mask broadcast over heads and queries", _qkv(3, (2, 4), 7, 7, 8, 8), {"mask": padding}),
        Case("d=256, where the scaling matters most", _qkv(4, (2,), 6, 6, 256, 8)),
    ]


def _softmax_attention(q, k, v, mask=None, *, scale=None, axis=-1, use_mask=True, invert=False, transpose=True):
    scores = q @ (k.transpose(-2, -1) if transpose else k)
    scores = scores * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if mask is not None and use_mask:
        scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
    return scores.softmax(dim=axis) @ v


ATTENTION = Exercise(
    name="attention",
    task="softmax(q k^T / sqrt(d)) v, with a boolean mask (True: may attend)",
    reference=attention,
    cases=_attention_cases,
    mistakes={
        "no_scaling": Mistake("no 1/sqrt(d) scaling: divide the scores q k^T by sqrt(d), the size of a query",
                              lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, scale=1.0)),
        "scaled_by_d": Mistake("you divided by d; the scaling is 1/sqrt(d)",
                               lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, scale=1 / q.shape[-1])),
        "wrong_axis": Mistake("softmax over the wrong axis: each query's weights must sum to 1 over the keys "
                              "(the last dimension)", lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, axis=-2)),
        "mask_ignored": Mistake("the mask is ignored: set the scores of masked positions to -inf before the softmax",
                                lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, use_mask=False)),
        "mask_inverted": Mistake("the mask is inverted: True means the query MAY attend to that key",
                                 lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, invert=True)),
        "keys_not_transposed": Mistake("the keys are not transposed: the scores are q @ k.transpose(-2, -1)",
                                       lambda q, k, v, mask=None: _softmax_attention(q, k, v, mask, transpose=False)),
        "weights_returned": Mistake("you returned the attention weights; return the weighted sum of the values, weights @ v",
                                    lambda q, k, v, mask=None: _softmax_attention(q, k, torch.eye(k.shape[-2]).expand(
                                        *k.shape[:-1], k.shape[-2]), mask)),
    },
)


# Splitting and merging heads ------------------------------------------------------------------

def _heads_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    return [
        Case("a batch of 2, 5 tokens, 12 features, 3 heads", (torch.randn(2, 5, 12, generator=g), 3)),
        Case("a batch of one, 4 heads of size 2", (torch.randn(1, 7, 8, generator=g), 4)),
        Case("one head", (torch.randn(3, 4, 6, generator=g), 1)),
        Case("6 heads of size 4, 9 tokens", (torch.randn(2, 9, 24, generator=g), 6)),
    ]


SPLIT_HEADS = Exercise(
    name="split_heads",
    task="(B, T, E) -> (B, H, T, E/H): head h takes features h*d to (h+1)*d of every token",
    reference=split_heads,
    cases=_heads_cases,
    mistakes={
        "no_transpose": Mistake("the result must be (B, H, T, d): after view(B, T, H, d) swap the token and head "
                                "dimensions (transpose(1, 2))", lambda x, h: x.view(x.shape[0], x.shape[1], h, -1)),
        "view_mixes_tokens": Mistake("view(B, H, T, d) straight from (B, T, E) mixes tokens into heads: view as "
                                     "(B, T, H, d) first, then transpose(1, 2)",
                                     lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1)),
        "interleaved": Mistake("each head takes a contiguous slice of the features (h*d to (h+1)*d), not every "
                               "H-th feature", lambda x, h: x.view(x.shape[0], x.shape[1], -1, h).permute(0, 3, 1, 2)),
        "head_size_as_count": Mistake("num_heads is the number of heads, not their size: d = E / num_heads",
                                      lambda x, h: x.view(x.shape[0], x.shape[1], x.shape[2] // h, h).transpose(1, 2)),
        "tokens_last": Mistake("the tokens go before the features: (B, H, T, d), not (B, H, d, T)",
                               lambda x, h: x.view(x.shape[0], x.shape[1], h, -1).permute(0, 2, 3, 1)),
    },
)


def _merge_cases() -> list[Case]:
    return [Case(case.label, (split_heads(*case.args),)) for case in _heads_cases()]


MERGE_HEADS = Exercise(
    name="merge_heads",
    task="(B, H, T, d) -> (B, T, H*d), the inverse of split_heads",
    reference=merge_heads,
    cases=_merge_cases,
    mistakes={
        "no_transpose": Mistake("reshape straight from (B, H, T, d) mixes the heads into the tokens: transpose(1, 2) "
                                "to (B, T, H, d) first", lambda x: x.reshape(x.shape[0], x.shape[2], -1)),
        "interleaved": Mistake("the heads must be concatenated (head 0's features, then head 1's...), not interleaved",
                               lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1)),
        "heads_not_merged": Mistake("the result is (B, T, H*d): merge the head and feature dimensions",
                                    lambda x: x.transpose(1, 2)),
        "summed": Mistake("you summed the heads; concatenate them instead (the output projection mixes them later)",
                          lambda x: x.sum(dim=1)),
        "averaged": Mistake("you averaged the heads; concatenate them instead",
                            lambda x: x.mean(dim=1)),
    },
)


# A causal mask ------------------------------------------------------------------------------------

def causal_mask(length: int) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool).tril()


CAUSAL_MASK = Exercise(
    name="causal_mask",
    task="a (T, T) boolean mask, True where query i may attend to key j: j <= i",
    reference=causal_mask,
    cases=lambda: [Case("5 tokens", (5,)), Case("a single token", (1,)), Case("2 tokens", (2,)),
                   Case("12 tokens", (12,))],
    mistakes={
        "future": Mistake("this lets each token see the future and not the past: True must be on and below the "
                          "diagonal (torch.tril)", lambda n: torch.ones(n, n, dtype=torch.bool).triu()),
        "no_self": Mistake("a token may attend to itself: keep the diagonal",
                           lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1)),
        "inverted": Mistake("the mask is inverted: True means 'may attend' (torch's convention), so it is True "
                            "on and below the diagonal", lambda n: ~torch.ones(n, n, dtype=torch.bool).tril()),
        "one_ahead": Mistake("off by one: a token may not see the next token (diagonal=1 lets it)",
                             lambda n: torch.ones(n, n, dtype=torch.bool).tril(diagonal=1)),
        "float_ones": Mistake("return a boolean mask (dtype=torch.bool), not ones and zeros",
                              lambda n: torch.ones(n, n).tril()),
        "additive": Mistake("this is an additive mask (0 and -inf); return the boolean one (True: may attend)",
                            lambda n: torch.zeros(n, n).masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(),
                                                                    float("-inf"))),
    },
)
