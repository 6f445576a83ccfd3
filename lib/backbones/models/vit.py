"""The Vision Transformer (Dosovitskiy et al. 2021): an image as a sequence of 16x16 words.

The image is cut into patches (:func:`patchify`); each patch is flattened and projected to a
token (:class:`PatchEmbedding`, a convolution whose kernel and stride are the patch size); a
learned [CLS] token goes in front, learned position embeddings are added, and the book's own
:class:`~backbones.models.transformer.EncoderBlock`, in its pre-norm form with a GELU MLP,
does the rest. The [CLS] token's final vector is classified. The configurations are data
(:data:`CONFIGS`), and :meth:`ViT.from_torchvision` copies torchvision's weights in, which the
tests use to prove the model equal to torchvision's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from backbones.layers.attention import MultiHeadAttention
from backbones.models.transformer import EncoderBlock


@dataclass(frozen=True)
class ViTConfig:
    """A ViT's shape: patch size, token width, depth, heads and MLP ratio (Table 1 of the paper)."""

    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: int = 4
    image_size: int = 224


CONFIGS = {
    "vit_b_16": ViTConfig(patch_size=16, embed_dim=768, depth=12, num_heads=12),
    "vit_b_32": ViTConfig(patch_size=32, embed_dim=768, depth=12, num_heads=12),
    "vit_l_16": ViTConfig(patch_size=16, embed_dim=1024, depth=24, num_heads=16),
}


# fmt: off
def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` images to ``(B, N, C * p * p)`` patches, N = (H/p)(W/p),
    in reading order (the grid's first row left to right, then the next); each
    patch flattened channel first, as a convolution's weight ``(E, C, p, p)`` is."""
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"a {height}x{width} image does not split into "
                         f"{patch_size}x{patch_size} patches")
    rows, cols = height // patch_size, width // patch_size
    x = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p): a grid of patches
    return x.reshape(batch, rows * cols, channels * patch_size * patch_size)
# fmt: on


def unpatchify(patches: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``(B, N, C * p * p)`` back to ``(B, C, H, W)``."""
    batch, count, size = patches.shape
    rows, cols = height // patch_size, width // patch_size
    channels = size // (patch_size * patch_size)
    if rows * cols != count or channels * patch_size * patch_size != size:
        raise ValueError(
            f"{count} patches of {size} numbers do not make a {height}x{width} image "
            f"of {patch_size}x{patch_size} patches"
        )
    x = patches.reshape(batch, rows, cols, channels, patch_size, patch_size)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, height, width)


# fmt: off
class PatchEmbedding(nn.Module):
    """Each ``p x p`` patch, flattened, times one matrix: a convolution with
    kernel = stride = p.

    ``(B, C, H, W)`` to ``(B, N, E)`` tokens. :meth:`as_linear` gives the same map
    as a linear layer on :func:`patchify`'s output.
    """

    def __init__(self, *, patch_size: int, embed_dim: int, channels: int = 3):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(channels, embed_dim, kernel_size=patch_size,
                              stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.proj(images)  # (B, E, rows, cols)
        return x.flatten(2).transpose(1, 2)  # (B, N, E), reading order

    def as_linear(self) -> nn.Linear:
        """The same projection as a linear layer on flattened patches."""
        linear = nn.Linear(self.proj.weight[0].numel(), self.proj.out_channels)
        with torch.no_grad():
            linear.weight.copy_(self.proj.weight.reshape(self.proj.out_channels, -1))
            linear.bias.copy_(self.proj.bias)
        return linear
# fmt: on


# fmt: off
class ViT(nn.Module):
    """The Vision Transformer.

    Args:
        image_size, patch_size: the input's side and the patch's; ``(image_size / patch_size)^2``
            patch tokens plus one [CLS] token.
        embed_dim, depth, num_heads, mlp_ratio: the encoder's shape.
        num_classes: the head's outputs (a linear layer on the final [CLS] vector).
        channels: of the input images.
        dropout: on the embeddings and in every block (0 in the paper's fine-tuning).
    """

    def __init__(
        self,
        *,
        image_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: int = 4,
        num_classes: int = 1000,
        channels: int = 3,
        dropout: float = 0.0,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.patch_embedding = PatchEmbedding(patch_size=patch_size, embed_dim=embed_dim, channels=channels)
        self.class_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.position = nn.Parameter(torch.randn(1, 1 + self.num_patches, embed_dim) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(
                embed_dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                dropout=dropout,
                norm_first=True,
                activation="gelu",
                eps=1e-6,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input, ``(B, 1 + N, E)``: [CLS] and the patch tokens,
        positions added."""
        x = self.patch_embedding(images)
        cls = self.class_token.expand(len(x), -1, -1)
        return self.dropout(torch.cat([cls, x], dim=1) + self.position)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.tokens(images)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])  # classify the [CLS] token

    @classmethod
    def from_config(cls, config: ViTConfig, **overrides) -> ViT:
        return cls(
            image_size=config.image_size,
            patch_size=config.patch_size,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            **overrides,
        )

    @classmethod
    def from_torchvision(cls, reference: nn.Module) -> ViT:
        """A copy of a torchvision ``VisionTransformer`` (``vit_b_16`` and the others)."""
        embed_dim = reference.hidden_dim
        layers = list(reference.encoder.layers)
        ours = cls(
            image_size=reference.image_size,
            patch_size=reference.patch_size,
            embed_dim=embed_dim,
            depth=len(layers),
            num_heads=layers[0].num_heads,
            mlp_ratio=reference.mlp_dim // embed_dim,
            num_classes=reference.num_classes,
        )
        with torch.no_grad():
            ours.patch_embedding.proj.load_state_dict(reference.conv_proj.state_dict())
            ours.class_token.copy_(reference.class_token)
            ours.position.copy_(reference.encoder.pos_embedding)
            for block, layer in zip(ours.blocks, layers):
                block.norm1.load_state_dict(layer.ln_1.state_dict())
                block.attention.load_state_dict(MultiHeadAttention.from_torch(layer.self_attention).state_dict())
                block.norm2.load_state_dict(layer.ln_2.state_dict())
                block.mlp[0].load_state_dict(layer.mlp[0].state_dict())
                block.mlp[2].load_state_dict(layer.mlp[3].state_dict())
            ours.norm.load_state_dict(reference.encoder.ln.state_dict())
            ours.head.load_state_dict(reference.heads.head.state_dict())
        return ours
# fmt: on


def vit(name: str, **overrides) -> ViT:
    """A ViT by its paper name (:data:`CONFIGS`: ``vit_b_16``, ``vit_b_32``, ``vit_l_16``)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown ViT {name!r}: choose one of {tuple(CONFIGS)}")
    return ViT.from_config(CONFIGS[name], **overrides)


def interpolate_position(position: torch.Tensor, grid: int, *, mode: str = "bicubic") -> torch.Tensor:
    """Position embeddings ``(1, 1 + g*g, E)`` resized to a ``grid x grid`` patch grid (e.g.
    14 -> 24 when fine-tuning at 384 px): the patch part is reshaped to its 2-D grid and
    resized, the [CLS] embedding kept as it is (as the paper does).

    The paper says only "2D interpolation". ``mode="linear"`` is its released code's choice
    (``scipy.ndimage.zoom(..., order=1)``: linear, the corner embeddings kept in place);
    ``mode="bicubic"`` is torchvision's and timm's."""
    if mode not in ("bicubic", "linear"):
        raise ValueError(f"mode must be 'bicubic' or 'linear', not {mode!r}")
    cls, patches = position[:, :1], position[:, 1:]
    old = math.isqrt(patches.shape[1])
    if old * old != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch positions do not form a square grid")
    square = patches.reshape(1, old, old, -1).permute(0, 3, 1, 2)  # (1, E, g, g)
    if mode == "linear":
        resized = F.interpolate(square, size=(grid, grid), mode="bilinear", align_corners=True)
    else:
        resized = F.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat([cls, resized.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], dim=1)


# fmt: off
def attention_rollout(attention: list[torch.Tensor] | torch.Tensor, *,
                      residual: bool = True, heads: str = "mean") -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each output token draws
    on each input token through all the layers, ``(B, T, T)``.

    ``attention`` is one ``(B, H, T, T)`` tensor per layer, first layer first. Per
    layer the heads are averaged (``heads="mean"``, the paper's choice; ``"max"`` is
    a common variant), the residual connection is accounted for by mixing in the
    identity, 0.5 A + 0.5 I (rows still sum to 1), and the layers are multiplied,
    the last on the left: R = A_L ... A_2 A_1.
    """
    rollout = None
    for weights in attention:
        if heads == "mean":
            a = weights.mean(dim=1)
        elif heads == "max":
            a = weights.amax(dim=1)
        else:
            raise ValueError(f"heads must be 'mean' or 'max', not {heads!r}")
        if residual:
            a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    if rollout is None:
        raise ValueError("attention_rollout needs at least one layer's attention")
    return rollout
# fmt: on


def class_token_map(rollout: torch.Tensor) -> torch.Tensor:
    """The [CLS] token's row of a rollout ``(B, T, T)``, over the patches only, laid out on the
    patch grid: ``(B, g, g)``, in reading order as :func:`patchify` cuts them. It says how much
    the classified token draws on each patch (its own share, on itself, left out)."""
    patches = rollout[:, 0, 1:]
    grid = math.isqrt(patches.shape[-1])
    if grid * grid != patches.shape[-1]:
        raise ValueError(f"{patches.shape[-1]} patch tokens do not form a square grid")
    return patches.reshape(len(rollout), grid, grid)


def cost(
    *, image_size: int, patch_size: int, embed_dim: int, depth: int, num_heads: int, mlp_ratio: int = 4
) -> dict[str, float]:
    """The encoder's work per image, computed: tokens T = 1 + (image/patch)^2; multiply-adds of
    the linear layers (Q, K, V and output projections, the MLP: (4 + 2 mlp_ratio) T E^2 per
    block) and of attention itself (Q K^T and the weighted sum: 2 T^2 E per block), and the
    attention matrices' size in float32 (H T^2 per block)."""
    tokens = 1 + (image_size // patch_size) ** 2
    linear = depth * (4 + 2 * mlp_ratio) * tokens * embed_dim**2
    attention = depth * 2 * tokens**2 * embed_dim
    return {
        "tokens": tokens,
        "linear_macs": linear,
        "attention_macs": attention,
        "attention_share": attention / (linear + attention),
        "attention_matrix_mb": depth * num_heads * tokens**2 * 4 / 2**20,
    }
