"""The Transformer encoder (Vaswani et al. 2017), from scratch, small enough to train on a CPU.

Order: positional encoding, encoder block, encoder. The block is the paper's "post-norm" block by
default, ``x = LayerNorm(x + MultiHeadAttention(x))`` then ``x = LayerNorm(x + MLP(x))``, and the
"pre-norm" block of ViT and most Transformers since with ``norm_first=True``,
``x = x + MultiHeadAttention(LayerNorm(x))`` then ``x = x + MLP(LayerNorm(x))``. Forward passes
return their output only; ``backbones.layers.record_attention`` records the attention weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from backbones.layers.attention import MultiHeadAttention


class SinusoidalPositionalEncoding(nn.Module):
    """PE(pos, 2i) = sin(pos / 10000^(2i/E)), PE(pos, 2i+1) = cos(...): added to the token vectors,
    so that attention, which by itself ignores order, can tell positions apart."""

    def __init__(self, *, embed_dim: int, max_len: int = 512):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)  # (L, 1)
        frequency = torch.exp(torch.arange(0, embed_dim, 2) * (-math.log(10000.0) / embed_dim))  # (E/2,)
        encoding = torch.zeros(max_len, embed_dim)
        encoding[:, 0::2] = torch.sin(position * frequency)
        encoding[:, 1::2] = torch.cos(position * frequency)
        self.register_buffer("encoding", encoding, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.encoding[: x.shape[1]]  # (B, T, E)


# fmt: off
class EncoderBlock(nn.Module):
    """Multi-head self-attention and an MLP, each with a residual connection and LayerNorm.

    Args:
        embed_dim, num_heads: of the attention.
        mlp_ratio: the MLP's hidden size is ``mlp_ratio * embed_dim`` (4 in the paper).
        dropout: on the attention and MLP outputs.
        norm_first: False (the default) normalises after each residual addition, as Vaswani et
            al. (post-norm); True normalises each branch's input and leaves the residual path
            untouched, as ViT and most Transformers since (pre-norm).
        activation: the MLP's nonlinearity, ``"relu"`` (Vaswani et al.) or ``"gelu"`` (ViT).
        eps: the LayerNorms' epsilon (torch's default 1e-5; ViT uses 1e-6).
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        norm_first: bool = False,
        activation: str = "relu",
        eps: float = 1e-5,
    ):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', not {activation!r}")
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(embed_dim=embed_dim, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(embed_dim, eps=eps)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, mlp_ratio * embed_dim),
            nn.ReLU() if activation == "relu" else nn.GELU(),
            nn.Linear(mlp_ratio * embed_dim, embed_dim),
        )
        self.norm2 = nn.LayerNorm(embed_dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:  # pre-norm (ViT): x + f(norm(x))
            x = x + self.dropout(self.attention(self.norm1(x), mask=mask))
            return x + self.dropout(self.mlp(self.norm2(x)))
        # post-norm (Vaswani et al.): norm(x + f(x))
        x = self.norm1(x + self.dropout(self.attention(x, mask=mask)))
        return self.norm2(x + self.dropout(self.mlp(x)))
# fmt: on


class TransformerEncoder(nn.Module):
    """Token embedding, positional encoding, ``depth`` encoder blocks and a per-token classifier.

    Args:
        vocab_size: tokens in; ``num_classes`` per token out (default: the vocabulary).
        embed_dim, depth, num_heads, mlp_ratio, dropout: the blocks' shape.
        max_len: the longest sequence.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        embed_dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        max_len: int = 512,
        num_classes: int | None = None,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        # Start at std 1/sqrt(E): times sqrt(E) in forward, token vectors and positional encodings
        # then have the same scale (nn.Embedding's default std 1 would drown the positions).
        nn.init.normal_(self.token_embedding.weight, std=embed_dim**-0.5)
        self.positional_encoding = SinusoidalPositionalEncoding(embed_dim=embed_dim, max_len=max_len)
        self.blocks = nn.ModuleList(
            EncoderBlock(embed_dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout)
            for _ in range(depth)
        )
        self.head = nn.Linear(embed_dim, num_classes or vocab_size)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.token_embedding(tokens) * math.sqrt(self.embed_dim)  # (B, T, E), scaled as in the paper
        x = self.positional_encoding(x)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(x)  # (B, T, num_classes)
