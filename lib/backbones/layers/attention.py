"""Attention (Vaswani et al. 2017, "Attention Is All You Need"), from scratch.

``scaled_dot_product_attention`` is softmax(q k^T / sqrt(d)) v, proven equal to
``torch.nn.functional.scaled_dot_product_attention``; ``MultiHeadAttention`` runs it in
``num_heads`` subspaces at once, proven equal to ``torch.nn.MultiheadAttention`` given the same
weights (``from_torch`` copies them). Forward passes keep no state: to see the attention weights
of a whole model, record them (``with record_attention(model) as maps: model(x)``), as
vit-pytorch's ``Recorder`` does, by a hook on the modules the weights pass through.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn


def _check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"queries have size {q.shape[-1]} and keys size {k.shape[-1]} in the last dimension: "
            f"q k^T needs them equal. Hint: q is (..., L_q, d), k is (..., L_k, d)."
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{k.shape[-2]} keys but {v.shape[-2]} values: each key needs its value. "
            f"Hint: k is (..., L_k, d), v is (..., L_k, d_v)."
        )


# fmt: off
def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
    mask: torch.Tensor | None = None, *, return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v.

    Args:
        q: queries ``(..., L_q, d)``; k: keys ``(..., L_k, d)``;
            v: values ``(..., L_k, d_v)``.
        mask: boolean, broadcastable to ``(..., L_q, L_k)``: True where a query may
            attend to a key (torch's convention), or a float mask added to the scores.
        return_weights: also return the attention weights ``(..., L_q, L_k)``.
    """
    _check_shapes(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L_q, L_k)
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))  # a masked key: weight 0
    elif mask is not None:
        scores = scores + mask
    weights = scores.softmax(dim=-1)      # each query's weights sum to 1 over the keys
    out = weights @ v                     # (..., L_q, d_v)
    return (out, weights) if return_weights else out
# fmt: on


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, T, E)`` -> ``(B, num_heads, T, E / num_heads)``."""
    batch, length, embed = x.shape
    if embed % num_heads:
        raise ValueError(f"embed_dim {embed} is not divisible by num_heads {num_heads}")
    return x.view(batch, length, num_heads, embed // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, T, d)`` -> ``(B, T, H * d)``, the inverse of :func:`split_heads`."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


# fmt: off
class MultiHeadAttention(nn.Module):
    """Multi-head attention: project to queries, keys and values, attend in ``num_heads``
    subspaces of size ``embed_dim / num_heads`` in parallel, concatenate, project back.

    Args:
        embed_dim: the size of each token's vector.
        num_heads: the number of heads (divides ``embed_dim``).
        bias: biases in the four projections.
    """

    def __init__(self, *, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.W_q = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_k = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_v = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_o = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.attend = nn.Identity()  # the weights (B, H, T, S) pass through here, for record_attention's hook

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None, *, return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Self-attention over ``x`` ``(B, T, E)``, or cross-attention to ``context``
        ``(B, S, E)``."""
        context = x if context is None else context
        q = split_heads(self.W_q(x), self.num_heads)         # (B, H, T, d)
        k = split_heads(self.W_k(context), self.num_heads)   # (B, H, S, d)
        v = split_heads(self.W_v(context), self.num_heads)   # (B, H, S, d)
        out, weights = scaled_dot_product_attention(q, k, v, mask, return_weights=True)
        weights = self.attend(weights)
        out = self.W_o(merge_heads(out))                     # (B, H, T, d) -> (B, T, E)
        return (out, weights) if return_weights else out

    @classmethod
    def from_torch(cls, reference: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of ``torch.nn.MultiheadAttention``'s weights (which stacks W_q, W_k, W_v in one matrix)."""
        ours = cls(embed_dim=reference.embed_dim, num_heads=reference.num_heads,
                   bias=reference.in_proj_bias is not None)
        with torch.no_grad():
            for projection, weight in zip((ours.W_q, ours.W_k, ours.W_v), reference.in_proj_weight.chunk(3)):
                projection.weight.copy_(weight)
            if reference.in_proj_bias is not None:
                for projection, bias in zip((ours.W_q, ours.W_k, ours.W_v), reference.in_proj_bias.chunk(3)):
                    projection.bias.copy_(bias)
                ours.W_o.bias.copy_(reference.out_proj.bias)
            ours.W_o.weight.copy_(reference.out_proj.weight)
        return ours
# fmt: on


@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the attention weights of every :class:`MultiHeadAttention` in ``model`` while the
    block runs, in the order they are computed (for a ViT or an encoder: one ``(B, H, T, T)``
    tensor per layer, first layer first, for each forward pass)::

        with record_attention(vit) as maps:
            vit(images)
        rollout = attention_rollout(maps)

    The weights are detached; the hooks are removed when the block ends, also on an error."""
    maps: list[torch.Tensor] = []
    handles = [
        module.attend.register_forward_hook(lambda _module, _args, weights: maps.append(weights.detach()))
        for module in model.modules()
        if isinstance(module, MultiHeadAttention)
    ]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()
