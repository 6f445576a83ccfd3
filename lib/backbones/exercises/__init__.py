"""Exercises with checks that teach. A chapter calls one check per exercise::

    bb.exercises.check_top_k_accuracy(top_k_accuracy)

and reads one line: what was verified, or which mistake was made. See ``core`` for the engine,
``student`` for the student notebooks and ``grader`` for grading submissions.
"""
from __future__ import annotations

from collections.abc import Callable

from backbones.exercises import attention, basics, cnn, efficientnet, resnet, vit, words
from backbones.exercises.core import Case, Exercise, Mistake, Result, check, run_check

# Every exercise of the book, by name: the tests run each one's reference and its catalogue.
EXERCISES: dict[str, Exercise] = {exercise.name: exercise for exercise in (
    basics.TOP_K_ACCURACY,
    basics.CROSS_ENTROPY,
    cnn.RECEPTIVE_FIELD,
    cnn.CONV_PARAMS,
    cnn.VGG_BLOCK,
    resnet.RESIDUAL_BLOCK,
    resnet.CHAIN_GRADIENT,
    resnet.FILTER_NORMALIZE,
    efficientnet.SQUEEZE_EXCITATION,
    efficientnet.SE_PARAMS,
    efficientnet.MBCONV_COST,
    efficientnet.COMPOUND_SCALING,
    words.ANALOGY_SOLVER,
    words.SGNS_LOSS,
    vit.PATCH_TOKENS,
    vit.PATCH_EMBEDDING,
    vit.ROLLOUT,
    attention.ATTENTION,
    attention.SPLIT_HEADS,
    attention.MERGE_HEADS,
    attention.CAUSAL_MASK,
)}


def check_top_k_accuracy(top_k_accuracy: Callable) -> None:
    """Check ``top_k_accuracy(logits, labels, k)``: the fraction of rows whose label is in the top k."""
    check(basics.TOP_K_ACCURACY, top_k_accuracy)


def check_cross_entropy(cross_entropy: Callable) -> None:
    """Check ``cross_entropy(logits, labels)`` against ``torch.nn.functional.cross_entropy``."""
    check(basics.CROSS_ENTROPY, cross_entropy)


def check_receptive_field(receptive_field: Callable) -> None:
    """Check ``receptive_field(layers)`` for a list of ``(kernel, stride, dilation)`` layers."""
    check(cnn.RECEPTIVE_FIELD, receptive_field)


def check_conv_params(conv_params: Callable) -> None:
    """Check ``conv_params(in_channels, out_channels, kernel_size, bias=True)``."""
    check(cnn.CONV_PARAMS, conv_params)


def check_vgg_block(vgg_block: Callable) -> None:
    """Check ``vgg_block(in_channels, out_channels, num_convs)`` by what the block computes."""
    check(cnn.VGG_BLOCK, cnn.run_block(vgg_block))


def check_residual_block_forward(residual_block_forward: Callable) -> None:
    """Check ``residual_block_forward(x, block)``: a BasicBlock's forward pass, skip included."""
    check(resnet.RESIDUAL_BLOCK, residual_block_forward)


def check_chain_gradient(chain_gradient: Callable) -> None:
    """Check ``chain_gradient(local_gradients, skip)``: dz/dx through a chain, with or without skips."""
    check(resnet.CHAIN_GRADIENT, chain_gradient)


def check_filter_normalize(filter_normalize: Callable) -> None:
    """Check ``filter_normalize(direction, weight)`` (Li et al. 2018's filter normalisation)."""
    check(resnet.FILTER_NORMALIZE, filter_normalize)


def check_squeeze_excitation(squeeze_excitation: Callable) -> None:
    """Check ``squeeze_excitation(x, w1, b1, w2, b2)``: an SE block's forward pass."""
    check(efficientnet.SQUEEZE_EXCITATION, squeeze_excitation)


def check_se_params(se_params: Callable) -> None:
    """Check ``se_params(channels, reduction)``: the parameters of an SE block."""
    check(efficientnet.SE_PARAMS, se_params)


def check_mbconv_cost(mbconv_cost: Callable) -> None:
    """Check ``mbconv_cost(in_channels, out_channels, expand_ratio, kernel_size, stride, size)``."""
    check(efficientnet.MBCONV_COST, mbconv_cost)


def check_compound_scale(compound_scale: Callable) -> None:
    """Check ``compound_scale(channels, layers, resolution, phi)``: a stage scaled by phi."""
    check(efficientnet.COMPOUND_SCALING, compound_scale)


def check_attention(attention_fn: Callable) -> None:
    """Check ``attention(q, k, v, mask=None)`` against ``torch.nn.functional.scaled_dot_product_attention``."""
    check(attention.ATTENTION, attention_fn)


def check_split_heads(split_heads: Callable) -> None:
    """Check ``split_heads(x, num_heads)``: (B, T, E) -> (B, H, T, E/H)."""
    check(attention.SPLIT_HEADS, split_heads)


def check_merge_heads(merge_heads: Callable) -> None:
    """Check ``merge_heads(x)``: (B, H, T, d) -> (B, T, H*d)."""
    check(attention.MERGE_HEADS, merge_heads)


def check_analogy_solver(analogy_solver: Callable) -> None:
    """Check ``analogy_solver(vectors, a, b, c)``: 3CosAdd's answer index for each question."""
    check(words.ANALOGY_SOLVER, analogy_solver)


def check_sgns_loss(sgns_loss: Callable) -> None:
    """Check ``sgns_loss(centre, context, negatives)``: the negative-sampling loss of a batch."""
    check(words.SGNS_LOSS, sgns_loss)


def check_patch_tokens(patch_tokens: Callable) -> None:
    """Check ``patch_tokens(images, patch_size, cls_token)``: [CLS] and the patches, in order."""
    check(vit.PATCH_TOKENS, patch_tokens)


def check_patch_embedding(patch_embedding: Callable) -> None:
    """Check ``patch_embedding(images, weight, bias)``: a conv patch embedding as a linear layer."""
    check(vit.PATCH_EMBEDDING, patch_embedding)


def check_attention_rollout(rollout: Callable) -> None:
    """Check ``rollout(attention)``: attention rollout over the layers (Abnar & Zuidema 2020)."""
    check(vit.ROLLOUT, rollout)


def check_causal_mask(causal_mask: Callable) -> None:
    """Check ``causal_mask(length)``: the boolean mask that hides the future."""
    check(attention.CAUSAL_MASK, causal_mask)


__all__ = ["EXERCISES", "Case", "Exercise", "Mistake", "Result", "check", "run_check",
           "check_top_k_accuracy", "check_cross_entropy", "check_receptive_field",
           "check_conv_params", "check_vgg_block", "check_residual_block_forward",
           "check_chain_gradient", "check_filter_normalize", "check_squeeze_excitation", "check_se_params",
           "check_mbconv_cost", "check_compound_scale", "check_attention", "check_split_heads",
           "check_merge_heads", "check_causal_mask", "check_analogy_solver", "check_sgns_loss",
           "check_patch_tokens", "check_patch_embedding", "check_attention_rollout"]
