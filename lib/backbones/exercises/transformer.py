"""Exercises of the attention and Transformer chapters that go past shapes: multi-head attention
against ``nn.MultiheadAttention``, sinusoidal positions and the linear map of an offset, the
encoder block post-norm and pre-norm against ``nn.TransformerEncoderLayer``, and permutation
equivariance with and without positions. Order: attention, positions, block, equivariance."""

from __future__ import annotations

import math

import torch
from torch import nn

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs
from backbones.models.transformer import EncoderBlock, SinusoidalPositionalEncoding

# Multi-head attention, with nn.MultiheadAttention's weights -----------------------------------------


def multi_head_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    embed = x.shape[-1]
    reference = nn.MultiheadAttention(embed, num_heads, batch_first=True, dtype=x.dtype)
    with torch.no_grad():
        reference.in_proj_weight.copy_(in_proj_weight)
        reference.in_proj_bias.copy_(in_proj_bias)
        reference.out_proj.weight.copy_(out_proj_weight)
        reference.out_proj.bias.copy_(out_proj_bias)
        out, _ = reference(x, x, x, key_padding_mask=None if mask is None else ~mask, need_weights=False)
    return out


def _mha(
    x,
    w_in,
    b_in,
    w_out,
    b_out,
    num_heads,
    mask=None,
    *,
    split="right",
    out_proj=True,
    scale="head",
    mask_mode="right",
    transpose_weights=True,
    bias=True,
    merge="right",
):
    """Multi-head attention written out, with one step changed (each keyword is one mistake)."""
    batch, length, embed = x.shape
    d = embed // num_heads
    project = lambda t, w, b: t @ (w.T if transpose_weights else w) + (b if bias else 0)
    q, k, v = (project(x, w, b) for w, b in zip(w_in.chunk(3), b_in.chunk(3)))

    def heads(t):
        if split == "right":
            return t.view(batch, length, num_heads, d).transpose(1, 2)
        return t.reshape(batch, num_heads, length, d)  # the heads taken across tokens

    q, k, v = heads(q), heads(k), heads(v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d if scale == "head" else embed)
    if mask is not None:
        keep = {
            "right": mask[:, None, None, :],
            "batch_as_heads": mask[:, None, :],
            "inverted": ~mask[:, None, None, :],
        }[mask_mode]
        scores = scores.masked_fill(~keep, float("-inf"))
    out = scores.softmax(-1) @ v  # (B, H, T, d)
    if merge == "right":
        out = out.transpose(1, 2).reshape(batch, length, embed)
    else:
        out = out.permute(0, 2, 3, 1).reshape(batch, length, embed)
    return project(out, w_out, b_out) if out_proj else out


def _padding(batch, length, g):
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=g)
    lengths[0] = length - 2  # the first sequence has two padding tokens
    return torch.arange(length) < lengths[:, None]  # (B, T): True for a real token


def _mha_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for label, batch, length, embed, heads, masked in [
        ("a batch of 2, 5 tokens, width 12, 3 heads", 2, 5, 12, 3, False),
        ("a batch of one, 4 tokens, width 8, 2 heads", 1, 4, 8, 2, False),
        ("a batch of 2, 2 heads, 6 tokens, width 16, a padding mask (B, T)", 2, 6, 16, 2, True),
        ("a batch of 3, 7 tokens, width 24, 4 heads, a padding mask", 3, 7, 24, 4, True),
        ("one head of width 6", 2, 5, 6, 1, False),
    ]:
        x = torch.randn(batch, length, embed, generator=g)
        weights = (
            torch.randn(3 * embed, embed, generator=g) / math.sqrt(embed),
            0.1 * torch.randn(3 * embed, generator=g),
            torch.randn(embed, embed, generator=g) / math.sqrt(embed),
            0.1 * torch.randn(embed, generator=g),
        )
        cases.append(Case(label, (x, *weights, heads), {"mask": _padding(batch, length, g)} if masked else {}))
    return rungs(
        cases,
        "a batch of one and 2 heads (look at any squeeze(), and at anything fixed to 3 heads or width 12)",
        "a padding mask (B, T) (look at how it reaches the scores: mask[:, None, None, :], True where a "
        "key may be attended to, -inf elsewhere, before the softmax)",
        "a mask with 4 heads (look at the mask's broadcast over heads and queries)",
        "one head (look at the split and merge: with one head they change nothing but the shape)",
    )


def _wrong_mha(**change):
    return lambda *args, mask=None: _mha(*args, mask=mask, **change)


MULTI_HEAD_ATTENTION = Exercise(
    name="multi_head_attention",
    task="nn.MultiheadAttention's forward (batch_first) from its weights: q, k, v = x W_q^T + b_q, ...; split "
    "into heads; attention per head with a (B, T) key mask (True: a real token); merge; output projection",
    forbidden=(
        "torch.nn.functional.scaled_dot_product_attention",
        "torch.nn.functional.multi_head_attention_forward",
        "torch.nn.MultiheadAttention",
        "backbones.layers.attention.scaled_dot_product_attention",
        "backbones.layers.attention.MultiHeadAttention",
    ),
    reference=multi_head_attention,
    cases=_mha_cases,
    mistakes={
        "heads_wrong_axis": Mistake(
            "the heads split each token's features: view (B, T, H, d), then transpose(1, 2); "
            "reshaping straight to (B, H, T, d) cuts across tokens",
            _wrong_mha(split="across_tokens"),
        ),
        "no_output_projection": Mistake(
            "after merging the heads comes the output projection, out @ out_proj_weight.T + out_proj_bias",
            _wrong_mha(out_proj=False),
        ),
        "scaled_by_width": Mistake(
            "scale by the head's width, 1/sqrt(E / num_heads): each head's dot products are "
            "over d = E/H features, not over the model's E",
            _wrong_mha(scale="model"),
        ),
        "mask_broadcast": Mistake(
            "a (B, T) mask must become (B, 1, 1, T) to meet the scores (B, H, T, T); "
            "(B, 1, T) lines the batch up with the heads",
            _wrong_mha(mask_mode="batch_as_heads"),
        ),
        "mask_inverted": Mistake(
            "the mask is True for a real token, which may be attended to; you hid the real tokens and kept the padding",
            _wrong_mha(mask_mode="inverted"),
        ),
        "weights_not_transposed": Mistake(
            "a weight of nn.Linear or nn.MultiheadAttention is (out, in): the projection is x @ W.T + b",
            _wrong_mha(transpose_weights=False),
        ),
        "no_bias": Mistake(
            "the projections have biases: in_proj_bias (split in three like the weight) and out_proj_bias",
            _wrong_mha(bias=False),
        ),
        "heads_interleaved": Mistake(
            "merge the heads by concatenating them (transpose(1, 2), then reshape), not by interleaving their features",
            _wrong_mha(merge="interleaved"),
        ),
    },
)


# Sinusoidal positional encodings, and the linear map of an offset -----------------------------------


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    return SinusoidalPositionalEncoding(embed_dim=dim, max_len=length).encoding.clone()


def _encoding(length, dim, *, base=10000.0, swap=False, halves=False, exponent="2i", inverse=True):
    position = torch.arange(length, dtype=torch.float32)[:, None]
    pair = torch.arange(0, dim, 2, dtype=torch.float32)  # 2i
    if exponent == "i":
        pair = pair / 2
    frequency = base ** (-pair / dim) if inverse else base ** (pair / dim)
    angles = position * frequency
    first, second = (torch.cos(angles), torch.sin(angles)) if swap else (torch.sin(angles), torch.cos(angles))
    if halves:
        return torch.cat([first, second], dim=1)
    out = torch.zeros(length, dim)
    out[:, 0::2], out[:, 1::2] = first, second
    return out


def _per_column(length, dim):
    """Each column j its own frequency 10000^(-j/dim): the 2i of the formula read as the column index."""
    j = torch.arange(dim, dtype=torch.float32)
    angles = torch.arange(length, dtype=torch.float32)[:, None] * 10000.0 ** (-j / dim)
    return torch.where(j % 2 == 0, torch.sin(angles), torch.cos(angles))


def _diagnose_encoding(got: list, expected: list) -> str | None:
    """Position 0 gives sin 0 = 0 and cos 0 = 1; position 1 gives each pair's frequency."""
    pe, want = got[0], expected[0]
    if not isinstance(pe, torch.Tensor) or pe.shape != want.shape or not pe.is_floating_point():
        return None
    pe = pe.detach().double()
    seen = "(read off your rows for positions 0 and 1, dim 8)"
    zero = pe[0]
    if not torch.allclose(zero, want[0].double(), atol=1e-5):
        if torch.allclose(zero, 1 - want[0].double(), atol=1e-5):
            return f"your sines and cosines are swapped {seen}: sin in the even columns (2i), cos in the odd (2i + 1)"
        if torch.allclose(zero, torch.tensor([0.0] * 4 + [1.0] * 4, dtype=zero.dtype), atol=1e-5):
            return (
                f"your sines fill the first half and your cosines the second {seen}:"
                f" they interleave, column 2i and 2i + 1"
            )
        return f"your row for position 0 is not sin 0 = 0, cos 0 = 1 in turn {seen}: positions start at 0"
    sines, cosines = pe[1, 0::2], pe[1, 1::2]
    if not torch.allclose(sines**2 + cosines**2, torch.ones_like(sines), atol=1e-5):
        return f"your sine and cosine of a pair use different angles {seen}: each pair shares one frequency"
    frequency = torch.atan2(sines, cosines)
    wanted = 10000 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    if torch.allclose(frequency, wanted, atol=1e-5):
        return None
    shown = ", ".join(f"{f:.4g}" for f in frequency.tolist())
    return (
        f"your pairs' frequencies are {shown} {seen}, where 10000^(-2i/dim) gives "
        f"{', '.join(f'{f:.4g}' for f in wanted.tolist())}: look at the exponent, -2i / dim with i the pair"
    )


def _diagnose_rotation(offset: int, dim: int, got: list, expected: list) -> str | None:
    """M must be block-diagonal, a rotation by offset x frequency in each (2i, 2i + 1) pair."""
    m = got[0]
    if not isinstance(m, torch.Tensor) or m.shape != (dim, dim) or not m.is_floating_point():
        return None
    m = m.detach().double()
    seen = f"(read off your matrix for offset {offset}, dim {dim})"
    pairs = torch.zeros(dim, dim, dtype=torch.bool)
    for i in range(0, dim, 2):
        pairs[i : i + 2, i : i + 2] = True
    if m[~pairs].abs().max() > 1e-6:
        return (
            f"your matrix mixes columns of different pairs {seen}:"
            f" only (2i, 2i + 1) belong together, as the encoding interleaves them"
        )
    blocks = [m[i : i + 2, i : i + 2] for i in range(0, dim, 2)]
    if any(not torch.allclose(b @ b.T, torch.eye(2, dtype=b.dtype), atol=1e-5) for b in blocks):
        return f"your 2x2 blocks are not rotations {seen}: [[cos a, sin a], [-sin a, cos a]]: look at the signs"
    angles = torch.tensor([math.atan2(float(b[0, 1]), float(b[0, 0])) for b in blocks])
    wanted = torch.tensor(
        [math.atan2(math.sin(a), math.cos(a)) for a in (offset * 10000 ** (-i / dim) for i in range(0, dim, 2))]
    )
    if torch.allclose(angles, wanted, atol=1e-5):
        return None
    if torch.allclose(angles, -wanted, atol=1e-5):
        return f"your blocks rotate backwards {seen}: M @ PE[p] gives PE[p - offset]; the sines' signs are swapped"
    return (
        f"your blocks turn by {', '.join(f'{a:.4g}' for a in angles.tolist())} {seen}, where offset x 10000^(-2i/dim) "
        f"gives {', '.join(f'{a:.4g}' for a in wanted.tolist())}: look at the angle of each pair"
    )


SINUSOIDAL = Exercise(
    name="sinusoidal_encoding",
    task="(length, dim): PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim))",
    reference=sinusoidal_encoding,
    probes=lambda: [Probe("positions 0 and 1", (Case("2 positions, dim 8", (2, 8)),), _diagnose_encoding)],
    cases=lambda: rungs(
        [
            Case("10 positions, dim 16", (10, 16)),
            Case("a single position, dim 8", (1, 8)),
            Case("50 positions, dim 64", (50, 64)),
            Case("7 positions, dim 6", (7, 6)),
        ],
        "a single position (look at position 0: sin 0 = 0 and cos 0 = 1, in the even and odd columns)",
        "50 positions, dim 64 (look at the frequencies: 10000 ** (-2i / dim), i counting pairs of columns)",
        "dim 6 (look at anything fixed to dim 16, and at the pairs: dim / 2 of them)",
    ),
    mistakes={
        "sin_cos_swapped": Mistake(
            "sine goes to the even dimensions (2i), cosine to the odd ones (2i+1)",
            lambda n, d: _encoding(n, d, swap=True),
        ),
        "base": Mistake(
            "the wavelengths grow geometrically up to 10000 * 2 pi: the base is 10000",
            lambda n, d: _encoding(n, d, base=1000.0),
        ),
        "transposed": Mistake(
            "the result is (length, dim), a row per position: you returned (dim, length)",
            lambda n, d: _encoding(n, d).T.contiguous(),
        ),
        "halves": Mistake(
            "sines and cosines interleave (0::2 and 1::2), they are not two halves; "
            "the halves layout is another convention",
            lambda n, d: _encoding(n, d, halves=True),
        ),
        "exponent_pair_index": Mistake(
            "the exponent is 2i/dim, with 2i the even dimension: you used i/dim",
            lambda n, d: _encoding(n, d, exponent="i"),
        ),
        "exponent_per_column": Mistake(
            "a sine and its cosine share one frequency, 10000^(-2i/dim): you gave every "
            "column j its own, 10000^(-j/dim)",
            _per_column,
        ),
        "not_inverted": Mistake(
            "divide the position by 10000^(2i/dim) (frequencies fall with i), do not multiply",
            lambda n, d: _encoding(n, d, inverse=False),
        ),
    },
)


def offset_matrix(offset: int, dim: int) -> torch.Tensor:
    frequency = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    angle = offset * frequency
    out = torch.zeros(dim, dim)
    out[0::2, 0::2] = torch.diag(torch.cos(angle))  # sin(a + b) = sin a cos b + cos a sin b
    out[0::2, 1::2] = torch.diag(torch.sin(angle))
    out[1::2, 0::2] = torch.diag(-torch.sin(angle))  # cos(a + b) = cos a cos b - sin a sin b
    out[1::2, 1::2] = torch.diag(torch.cos(angle))
    return out


def _offset_cases() -> list[Case]:
    return rungs(
        [
            Case("offset 1, dim 8", (1, 8)),
            Case("offset 5, dim 16", (5, 16)),
            Case("a single pair, offset 3", (3, 2)),
            Case("offset -2 (backwards), dim 8", (-2, 8)),
            Case("offset 40, dim 32", (40, 32)),
        ],
        "an offset of 5 (look at the angle: offset times each pair's frequency)",
        "a single pair (look at anything that assumes more than one frequency)",
        "a negative offset (look at the signs: sin(-a) = -sin a; the matrix rotates backwards)",
        "offset 40, dim 32 (look at the frequencies: 10000 ** (-2i / dim) for each of the dim / 2 pairs)",
    )


OFFSET_MATRIX = Exercise(
    name="offset_matrix",
    task="the (dim, dim) matrix M with PE[p + offset] = M @ PE[p] for every position p: a 2x2 rotation per "
    "(sin, cos) pair",
    reference=offset_matrix,
    cases=_offset_cases,
    probes=lambda: [
        Probe(
            "offset 2, dim 8", (Case("offset 2, dim 8", (2, 8)),), lambda got, exp: _diagnose_rotation(2, 8, got, exp)
        )
    ],
    mistakes={
        "rotated_backwards": Mistake(
            "the block turns the wrong way (it gives PE[p - offset]): sin(a+b) = sin a cos b "
            "+ cos a sin b, so the sine row is [cos b, sin b]",
            lambda k, d: offset_matrix(k, d).T.contiguous(),
        ),
        "no_offset": Mistake(
            "the angle of pair i is offset * frequency_i; you used the frequency alone (offset 1)",
            lambda k, d: offset_matrix(1, d),
        ),
        "identity": Mistake(
            "shifting by an offset changes the encoding: M is a rotation by offset * frequency_i per "
            "pair, the identity only for offset 0",
            lambda k, d: torch.eye(d),
        ),
        "diagonal_only": Mistake(
            "a rotation mixes the sine and the cosine of a pair: the off-diagonal sin(b) terms are missing",
            lambda k, d: torch.diag(offset_matrix(k, d).diagonal()),
        ),
        "degrees": Mistake(
            "torch.sin and torch.cos take radians; the frequencies are in radians already",
            lambda k, d: offset_matrix(k, d) if k == 0 else _degrees(k, d),
        ),
    },
)


def _degrees(offset, dim):
    frequency = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    angle = torch.deg2rad(offset * frequency)
    out = torch.zeros(dim, dim)
    out[0::2, 0::2], out[0::2, 1::2] = (torch.diag(torch.cos(angle)), torch.diag(torch.sin(angle)))
    out[1::2, 0::2], out[1::2, 1::2] = (torch.diag(-torch.sin(angle)), torch.diag(torch.cos(angle)))
    return out


# The encoder block, post-norm and pre-norm ----------------------------------------------------------


def torch_encoder_layer(block: EncoderBlock) -> nn.TransformerEncoderLayer:
    """``nn.TransformerEncoderLayer`` (batch_first, no dropout) holding the weights of the book's block."""
    attention = block.attention
    embed, hidden = block.mlp[0].in_features, block.mlp[0].out_features
    layer = nn.TransformerEncoderLayer(
        embed,
        attention.num_heads,
        hidden,
        dropout=0.0,
        batch_first=True,
        norm_first=block.norm_first,
        layer_norm_eps=block.norm1.eps,
        activation="gelu" if isinstance(block.mlp[1], nn.GELU) else "relu",
    )
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(
            torch.cat([attention.W_q.weight, attention.W_k.weight, attention.W_v.weight])
        )
        layer.self_attn.in_proj_bias.copy_(torch.cat([attention.W_q.bias, attention.W_k.bias, attention.W_v.bias]))
        layer.self_attn.out_proj.load_state_dict(attention.W_o.state_dict())
        layer.linear1.load_state_dict(block.mlp[0].state_dict())
        layer.linear2.load_state_dict(block.mlp[2].state_dict())
        layer.norm1.load_state_dict(block.norm1.state_dict())
        layer.norm2.load_state_dict(block.norm2.state_dict())
    return layer.eval()


def encoder_block(x: torch.Tensor, block: EncoderBlock) -> torch.Tensor:
    with torch.no_grad():
        return torch_encoder_layer(block)(x)


def _encoder(x, b, *, order=None, branch_norm=False, normed_residual=False, second_residual=True, swap_norms=False):
    attend = lambda h: b.attention(h)  # noqa: E731
    n1, n2 = (b.norm2, b.norm1) if swap_norms else (b.norm1, b.norm2)
    pre = b.norm_first if order is None else order == "pre"
    with torch.no_grad():
        if pre:
            h = n1(x)
            x = (h if normed_residual else x) + attend(h)
            h = n2(x)
            return ((h if normed_residual else x) if second_residual else 0) + b.mlp(h)
        if branch_norm:  # the norm on the branch, the sum left unnormalised
            x = x + n1(attend(x))
            return (x if second_residual else 0) + n2(b.mlp(x))
        x = n1(x + attend(x))
        return n2((x if second_residual else 0) + b.mlp(x))


def _encoder_cases() -> list[Case]:
    cases = []
    for label, norm_first, activation, batch, length, seed in [
        ("post-norm (Vaswani et al.), a batch of 2, 5 tokens, width 16, 4 heads", False, "relu", 2, 5, 0),
        ("pre-norm (ViT), the same shapes", True, "relu", 2, 5, 1),
        ("pre-norm with GELU, a batch of one", True, "gelu", 1, 7, 2),
        ("post-norm, a single token", False, "relu", 3, 1, 3),
    ]:
        torch.manual_seed(seed)
        block = EncoderBlock(
            embed_dim=16, num_heads=4, mlp_ratio=2, norm_first=norm_first, activation=activation
        ).eval()
        for norm in (block.norm1, block.norm2):  # LayerNorms that are not the identity
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.normal_(0, 0.2)
        x = 2 * torch.randn(batch, length, 16, generator=torch.Generator().manual_seed(seed + 5)) + 1
        cases.append(Case(label, (x, block)))
    return rungs(
        cases,
        "pre-norm (look at where the LayerNorm sits: x + attention(norm1(x)) with norm_first, "
        "norm1(x + attention(x)) without)",
        "GELU and a batch of one (look at block's own activation and at any squeeze())",
        "a single token (look at anything that assumes more than one token, and at the mask: none)",
    )


ENCODER_BLOCK = Exercise(
    name="encoder_block",
    task="the block's forward from block.attention, block.mlp, block.norm1, block.norm2: post-norm "
    "(norm(x + f(x))) when block.norm_first is False, pre-norm (x + f(norm(x))) when True",
    forbidden=("torch.nn.TransformerEncoderLayer", "backbones.models.transformer.EncoderBlock"),
    reference=encoder_block,
    cases=_encoder_cases,
    mistakes={
        "always_post": Mistake(
            "block.norm_first is True here: pre-norm normalises each branch's input, "
            "x = x + attention(norm1(x)), x = x + mlp(norm2(x))",
            lambda x, b: _encoder(x, b, order="post"),
        ),
        "always_pre": Mistake(
            "block.norm_first is False here: post-norm normalises after the addition, "
            "x = norm1(x + attention(x)), x = norm2(x + mlp(x))",
            lambda x, b: _encoder(x, b, order="pre"),
        ),
        "norm_on_branch": Mistake(
            "post-norm normalises the sum, norm1(x + attention(x)), not the branch alone",
            lambda x, b: (
                _encoder(x, b, branch_norm=True) if not b.norm_first else _encoder(x, b, order="post", branch_norm=True)
            ),
        ),
        "normed_residual": Mistake(
            "in pre-norm the residual path carries x itself, x + attention(norm1(x)); "
            "adding norm1(x) puts a norm on the identity path",
            lambda x, b: _encoder(x, b, order="pre", normed_residual=True),
        ),
        "no_second_residual": Mistake(
            "the MLP has its own residual connection, like the attention",
            lambda x, b: _encoder(x, b, second_residual=False),
        ),
        "norms_swapped": Mistake(
            "norm1 goes with the attention and norm2 with the MLP", lambda x, b: _encoder(x, b, swap_norms=True)
        ),
    },
)


# Permutation equivariance ------------------------------------------------------------------------


def equivariance_gap(layer: nn.Module, x: torch.Tensor, perm: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        shuffled_first = layer(x[:, perm] + positions)  # shuffle the words; the positions stay in their slots
        shuffled_after = layer(x + positions)[:, perm]
    return (shuffled_first - shuffled_after).abs().max()


def _equivariance_cases() -> list[Case]:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 16, generator=g)
    perm = torch.tensor([2, 0, 5, 1, 4, 3])
    positions = SinusoidalPositionalEncoding(embed_dim=16, max_len=6).encoding
    return rungs(
        [
            Case("no positions (zeros), 6 tokens", (layer, x, perm, torch.zeros(6, 16))),
            Case("sinusoidal positions, 6 tokens", (layer, x, perm, positions)),
            Case(
                "a single swap of two tokens, learned-looking positions",
                (layer, x, torch.tensor([1, 0, 2, 3, 4, 5]), 0.5 * torch.randn(6, 16, generator=g)),
            ),
            Case("the identity permutation, with positions", (layer, x, torch.arange(6), positions)),
        ],
        "positions (look at what you permute: the words only, x[:, perm] + positions; the positions stay "
        "in their slots)",
        "another permutation and other positions (look at the axis you permute: the tokens, dim 1)",
        "the identity permutation (the gap must be 0: look at anything that differs between the two runs "
        "besides the order)",
    )


def _gap(layer, x, perm, positions, *, move_positions=False, permute_output=True, inverse=False, reduce="max"):
    with torch.no_grad():
        first = layer((x + positions)[:, perm] if move_positions else x[:, perm] + positions)
        after = layer(x + positions)
        if permute_output:
            after = after[:, torch.argsort(perm) if inverse else perm]
        gap = (first - after).abs()
    return gap.max() if reduce == "max" else gap.mean()


EQUIVARIANCE = Exercise(
    name="equivariance_gap",
    task="max |layer(x[:, perm] + positions) - layer(x + positions)[:, perm]|: zero (to rounding) when "
    "attention is permutation-equivariant",
    reference=equivariance_gap,
    cases=_equivariance_cases,
    mistakes={
        "positions_moved": Mistake(
            "you shuffled the positions along with the words; the positions belong to the "
            "slots, so shuffle x, then add the positions",
            lambda *a: _gap(*a, move_positions=True),
        ),
        "output_not_permuted": Mistake(
            "compare with the output of the unshuffled input, shuffled the same way: layer(x + positions)[:, perm]",
            lambda *a: _gap(*a, permute_output=False),
        ),
        "inverse_permutation": Mistake(
            "the output is shuffled by the same perm as the input, not by its inverse",
            lambda *a: _gap(*a, inverse=True),
        ),
        "mean": Mistake("report the largest difference (.max()), not the mean", lambda *a: _gap(*a, reduce="mean")),
        "batch_axis": Mistake(
            "the tokens are dimension 1 of (B, T, E): x[:, perm], not x[perm]",
            lambda layer, x, perm, positions: (layer(x[perm] + positions) - layer(x + positions)[perm]).abs().max(),
        ),
    },
    atol=1e-5,
)
