"""Building blocks, one concept a file."""

from backbones.layers.attention import (
    MultiHeadAttention,
    merge_heads,
    record_attention,
    scaled_dot_product_attention,
    split_heads,
)
from backbones.layers.mbconv import ConvBNAct, FusedMBConv, MBConv, StochasticDepth, make_divisible
from backbones.layers.se import SqueezeExcitation, se_parameters

__all__ = [
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "record_attention",
    "split_heads",
    "merge_heads",
    "SqueezeExcitation",
    "se_parameters",
    "ConvBNAct",
    "MBConv",
    "FusedMBConv",
    "StochasticDepth",
    "make_divisible",
]
