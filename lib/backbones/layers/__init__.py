"""Building blocks, one concept a file."""
from backbones.layers.attention import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads

__all__ = ["scaled_dot_product_attention", "MultiHeadAttention", "split_heads", "merge_heads"]
