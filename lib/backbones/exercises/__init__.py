"""Exercises with checks that teach. A chapter calls one check per exercise::

    bb.exercises.check_top_k_accuracy(top_k_accuracy)

and reads one line: what was verified, or which mistake was made. See ``core`` for the engine,
``student`` for the student notebooks and ``grader`` for grading submissions.
"""
from __future__ import annotations

from collections.abc import Callable

from backbones.exercises import attention, basics, cnn, efficientnet, exam, resnet, transformer, vit, words
from backbones.exercises.core import (Case, Exercise, Mistake, Result, ValueExercise, check, check_value,
                                      run_check)

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
    resnet.GRADIENT_NORMS,
    resnet.JACOBIAN_PRODUCTS,
    resnet.PREACT_BLOCK,
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
    transformer.MULTI_HEAD_ATTENTION,
    transformer.EQUIVARIANCE,
    transformer.SINUSOIDAL,
    transformer.OFFSET_MATRIX,
    transformer.ENCODER_BLOCK,
)}


# The "Test yourself" questions: one answer value each, a variant per student.
VALUE_EXERCISES: dict[str, ValueExercise] = exam.VALUE_EXERCISES


def ask(exercise: str, student_id: str) -> dict | None:
    """Show this student's variant of a question and return its numbers (a dict), as in
    ``q = bb.exercises.ask("vit_tokens", STUDENT_ID)``; the grader computes the same dict from the
    notebook's ``STUDENT_ID``."""
    if exercise not in VALUE_EXERCISES:
        raise KeyError(f"no question named {exercise!r}; the questions are {sorted(VALUE_EXERCISES)}")
    if not isinstance(student_id, str) or not student_id.strip():
        print('Set STUDENT_ID = "your student id" (a string) at the top of the notebook: your numbers depend on it.')
        return None
    question = VALUE_EXERCISES[exercise]
    print(question.ask(student_id))
    return question.variant(student_id)


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


def check_layer_gradient_norms(layer_gradient_norms: Callable) -> None:
    """Check ``layer_gradient_norms(model, x, y)``: the gradient norm at each layer's output, via hooks."""
    check(resnet.GRADIENT_NORMS, layer_gradient_norms)


def check_jacobian_products(jacobian_products: Callable) -> None:
    """Check ``jacobian_products(jacobians)``: (prod (I + J_l), prod J_l), in the chain rule's order."""
    check(resnet.JACOBIAN_PRODUCTS, jacobian_products)


def check_preact_block_forward(preact_block_forward: Callable) -> None:
    """Check ``preact_block_forward(x, block)``: He et al. 2016b's pre-activation block."""
    check(resnet.PREACT_BLOCK, preact_block_forward)


def check_multi_head_attention(multi_head_attention: Callable) -> None:
    """Check ``multi_head_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
    num_heads, mask=None)`` against ``nn.MultiheadAttention`` with the same weights."""
    check(transformer.MULTI_HEAD_ATTENTION, multi_head_attention)


def check_equivariance_gap(equivariance_gap: Callable) -> None:
    """Check ``equivariance_gap(layer, x, perm, positions)``."""
    check(transformer.EQUIVARIANCE, equivariance_gap)


def check_sinusoidal_encoding(sinusoidal_encoding: Callable) -> None:
    """Check ``sinusoidal_encoding(length, dim)``: Vaswani et al.'s positional encodings."""
    check(transformer.SINUSOIDAL, sinusoidal_encoding)


def check_offset_matrix(offset_matrix: Callable) -> None:
    """Check ``offset_matrix(offset, dim)``: M with PE[p + offset] = M @ PE[p]."""
    check(transformer.OFFSET_MATRIX, offset_matrix)


def check_encoder_block(encoder_block: Callable) -> None:
    """Check ``encoder_block(x, block)`` against ``nn.TransformerEncoderLayer`` (norm_first False/True)."""
    check(transformer.ENCODER_BLOCK, encoder_block)


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


def check_read_degradation_plot(student_id: str, answer) -> None:
    """Check the answer to "Figure 1 shows, for 3 seeds, the final training loss and the test accuracy of plain and residual networks of 20 and 56 layers trained alike. Which reading does it support?" for this student's variant."""
    check_value(exam.DEGRADATION, student_id, answer)


def check_read_gradient_plot(student_id: str, answer) -> None:
    """Check the answer to "powers of ten the plain network's gradient falls, read from figure 2" for this student's variant."""
    check_value(exam.GRADIENT_PLOT, student_id, answer)


def check_chain_skips(student_id: str, answer) -> None:
    """Check the answer to "dz/dx through a chain without and with skips" for this student's variant."""
    check_value(exam.CHAIN, student_id, answer)


def check_block_params(student_id: str, answer) -> None:
    """Check the answer to "the parameters of a ResNet BasicBlock" for this student's variant."""
    check_value(exam.BLOCK_PARAMS, student_id, answer)


def check_skip_cancellation(student_id: str, answer) -> None:
    """Check the answer to "A residual layer's Jacobian is I + J, J the branch's Jacobian. For which J does the skip NOT keep the gradient of a deep stack alive?" for this student's variant."""
    check_value(exam.CANCELLATION, student_id, answer)


def check_attention_output(student_id: str, answer) -> None:
    """Check the answer to "the first feature of the first query's attention output" for this student's variant."""
    check_value(exam.ATTENTION_OUTPUT, student_id, answer)


def check_why_sqrt_d(student_id: str, answer) -> None:
    """Check the answer to "Why does scaled dot-product attention divide q . k by sqrt(d)?" for this student's variant."""
    check_value(exam.SQRT_D, student_id, answer)


def check_vit_tokens(student_id: str, answer) -> None:
    """Check the answer to "the tokens a ViT reads" for this student's variant."""
    check_value(exam.VIT_TOKENS, student_id, answer)


def check_vit_attention_entries(student_id: str, answer) -> None:
    """Check the answer to "the entries of one head's attention matrix in a ViT" for this student's variant."""
    check_value(exam.VIT_ATTENTION, student_id, answer)


def check_why_positions(student_id: str, answer) -> None:
    """Check the answer to "Why does a ViT add position embeddings to its patch tokens?" for this student's variant."""
    check_value(exam.POSITIONS, student_id, answer)


def check_what_cls_does(student_id: str, answer) -> None:
    """Check the answer to "What does the [CLS] token do in a ViT?" for this student's variant."""
    check_value(exam.CLS, student_id, answer)


__all__ = ["EXERCISES", "VALUE_EXERCISES", "ask", "ValueExercise", "Case", "Exercise", "Mistake", "Result", "check", "run_check",
           "check_top_k_accuracy", "check_cross_entropy", "check_receptive_field",
           "check_conv_params", "check_vgg_block", "check_residual_block_forward",
           "check_chain_gradient", "check_filter_normalize", "check_squeeze_excitation", "check_se_params",
           "check_mbconv_cost", "check_compound_scale", "check_attention", "check_split_heads",
           "check_merge_heads", "check_causal_mask", "check_analogy_solver", "check_sgns_loss",
           "check_patch_tokens", "check_patch_embedding", "check_attention_rollout",
           "check_layer_gradient_norms", "check_jacobian_products", "check_preact_block_forward",
           "check_multi_head_attention", "check_equivariance_gap", "check_sinusoidal_encoding",
           "check_offset_matrix", "check_encoder_block",
           "check_read_degradation_plot", "check_read_gradient_plot", "check_chain_skips", "check_block_params", "check_skip_cancellation", "check_attention_output", "check_why_sqrt_d", "check_vit_tokens", "check_vit_attention_entries", "check_why_positions", "check_what_cls_does"]
