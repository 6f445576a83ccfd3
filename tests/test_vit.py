"""The Vision Transformer: patches, the patch embedding, torchvision parity, rollout."""
from __future__ import annotations

import pytest
import torch
import torchvision

from backbones.models import transformer
from backbones.models.vit import (CONFIGS, PatchEmbedding, ViT, attention_rollout, cost, interpolate_position,
                                  patchify, unpatchify, vit)


def test_patchify_round_trip_is_exact_and_in_reading_order():
    images = torch.randn(2, 3, 224, 224)
    patches = patchify(images, 16)
    assert patches.shape == (2, 196, 3 * 16 * 16)
    assert torch.equal(unpatchify(patches, 16, 224, 224), images)
    # patch 1 is the second patch of the first row; patch 14 the first of the second row
    assert torch.equal(patches[0, 1].reshape(3, 16, 16), images[0, :, :16, 16:32])
    assert torch.equal(patches[0, 14].reshape(3, 16, 16), images[0, :, 16:32, :16])
    with pytest.raises(ValueError, match="does not split"):
        patchify(torch.randn(1, 3, 30, 32), 16)


def test_patch_embedding_as_a_convolution_equals_a_linear_layer_on_patches():
    torch.manual_seed(0)
    embedding = PatchEmbedding(patch_size=8, embed_dim=32)
    images = torch.randn(2, 3, 32, 48)
    by_conv = embedding(images)
    by_linear = embedding.as_linear()(patchify(images, 8))
    assert by_conv.shape == (2, 4 * 6, 32)
    torch.testing.assert_close(by_conv, by_linear, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, count", [("vit_b_16", 86_567_656), ("vit_b_32", 88_224_232),
                                         ("vit_l_16", 304_326_632)])
def test_parameter_counts_are_torchvisions(name, count):
    with torch.device("meta"):
        ours, theirs = vit(name), getattr(torchvision.models, name)()
    assert sum(p.numel() for p in ours.parameters()) == count
    assert sum(p.numel() for p in theirs.parameters()) == count


def test_vit_b_16_computes_what_torchvision_computes():
    torch.manual_seed(0)
    reference = torchvision.models.vit_b_16().eval()
    with torch.no_grad():  # torchvision starts its head at zero: give it weights that matter
        reference.heads.head.weight.normal_(std=0.02)
    ours = ViT.from_torchvision(reference).eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), rtol=1e-4, atol=1e-4)
    assert len(ours.attention) == 12 and ours.attention[0].shape == (2, 12, 197, 197)


def test_the_encoder_blocks_default_is_unchanged_post_norm():
    torch.manual_seed(0)
    block = transformer.EncoderBlock(embed_dim=16, num_heads=2)
    x = torch.randn(2, 5, 16)
    attended = block.attention(x)
    expected = block.norm1(x + attended)
    expected = block.norm2(expected + block.mlp(expected))
    torch.testing.assert_close(block(x)[0], expected)
    assert isinstance(block.mlp[1], torch.nn.ReLU) and block.norm1.eps == 1e-5
    with pytest.raises(ValueError, match="activation"):
        transformer.EncoderBlock(embed_dim=16, num_heads=2, activation="tanh")


def test_position_embeddings_interpolate_to_a_larger_grid():
    position = torch.randn(1, 1 + 14 * 14, 8)
    larger = interpolate_position(position, 24)
    assert larger.shape == (1, 1 + 24 * 24, 8)
    assert torch.equal(larger[:, 0], position[:, 0])  # [CLS] kept
    torch.testing.assert_close(interpolate_position(position, 14), position)  # same grid, same numbers


def test_rollout_rows_sum_to_one_and_one_layer_is_its_mixed_attention():
    torch.manual_seed(0)
    layers = [torch.softmax(torch.randn(2, 4, 10, 10), dim=-1) for _ in range(3)]
    rollout = attention_rollout(layers)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 10))
    one = attention_rollout(layers[:1])
    torch.testing.assert_close(one, 0.5 * layers[0].mean(1) + 0.5 * torch.eye(10))
    mixed = [0.5 * a.mean(1) + 0.5 * torch.eye(10) for a in layers]
    torch.testing.assert_close(rollout, mixed[2] @ mixed[1] @ mixed[0])  # the last layer on the left
    model = ViT(image_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=3).eval()
    model(torch.randn(1, 3, 32, 32))
    cls_map = attention_rollout(model.attention)[0, 0, 1:].reshape(4, 4)  # [CLS] over the 4x4 patches
    assert cls_map.shape == (4, 4) and (cls_map >= 0).all()


def test_cost_grows_with_smaller_patches():
    b16, b8 = (cost(image_size=224, patch_size=p, embed_dim=768, depth=12, num_heads=12) for p in (16, 8))
    assert b16["tokens"] == 197 and b8["tokens"] == 785
    assert b8["attention_macs"] / b16["attention_macs"] == pytest.approx((785 / 197) ** 2)
    assert b8["attention_share"] > b16["attention_share"]
    assert set(CONFIGS) == {"vit_b_16", "vit_b_32", "vit_l_16"}


def test_the_rollout_exercise_reference_is_the_librarys():
    from backbones.exercises import vit as exercises

    for case in exercises.ROLLOUT.cases():
        (attention,) = case.args
        torch.testing.assert_close(exercises.rollout(attention), attention_rollout(list(attention)))
    for case in exercises.PATCH_TOKENS.cases():
        images, p, cls = case.args
        torch.testing.assert_close(exercises.patch_tokens(images, p, cls)[:, 1:], patchify(images, p))
