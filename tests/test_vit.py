"""The Vision Transformer: patches, the patch embedding, torchvision parity, rollout."""

from __future__ import annotations

import pytest
import torch
import torchvision

from backbones.layers import record_attention
from backbones.models import transformer
from backbones.models.vit import (
    CONFIGS,
    PatchEmbedding,
    ViT,
    attention_rollout,
    cost,
    interpolate_position,
    patchify,
    unpatchify,
    vit,
)


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


@pytest.mark.parametrize("name, count", [("vit_b_16", 86_567_656), ("vit_b_32", 88_224_232), ("vit_l_16", 304_326_632)])
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
    with torch.no_grad(), record_attention(ours) as maps:
        torch.testing.assert_close(ours(images), reference(images), rtol=1e-4, atol=1e-4)
    assert len(maps) == 12 and maps[0].shape == (2, 12, 197, 197)


def test_forward_passes_keep_no_state_and_recording_leaves_no_hook():
    """The models are pure: a forward pass returns the output and changes no attribute; the
    attention weights are recorded by hooks, removed when the block ends (also on an error)."""
    torch.manual_seed(0)
    model = ViT(image_size=8, patch_size=4, embed_dim=8, depth=2, num_heads=2, num_classes=3).eval()
    before = dict(vars(model))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and vars(model).keys() == before.keys()
    assert all(vars(model)[k] is v for k, v in before.items() if not isinstance(v, (dict, list)))
    with pytest.raises(RuntimeError), record_attention(model) as maps:
        model(x)
        raise RuntimeError("stop")
    assert len(maps) == 2 and maps[0].shape == (2, 2, 5, 5) and not maps[0].requires_grad
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, 5))
    assert not any(m._forward_hooks for m in model.modules())
    block = transformer.EncoderBlock(embed_dim=8, num_heads=2)
    assert isinstance(block(torch.randn(1, 3, 8)), torch.Tensor)


def test_the_encoder_blocks_default_is_unchanged_post_norm():
    torch.manual_seed(0)
    block = transformer.EncoderBlock(embed_dim=16, num_heads=2)
    x = torch.randn(2, 5, 16)
    attended = block.attention(x)
    expected = block.norm1(x + attended)
    expected = block.norm2(expected + block.mlp(expected))
    torch.testing.assert_close(block(x), expected)
    assert isinstance(block.mlp[1], torch.nn.ReLU) and block.norm1.eps == 1e-5
    with pytest.raises(ValueError, match="activation"):
        transformer.EncoderBlock(embed_dim=16, num_heads=2, activation="tanh")


def test_position_embeddings_interpolate_to_a_larger_grid():
    position = torch.randn(1, 1 + 14 * 14, 8)
    larger = interpolate_position(position, 24)
    assert larger.shape == (1, 1 + 24 * 24, 8)
    assert torch.equal(larger[:, 0], position[:, 0])  # [CLS] kept
    torch.testing.assert_close(interpolate_position(position, 14), position)  # same grid, same numbers


def test_linear_position_interpolation_is_the_released_codes_scipy_zoom():
    # google-research/vision_transformer resizes with scipy.ndimage.zoom(grid, zoom, order=1)
    ndimage = pytest.importorskip("scipy.ndimage")
    torch.manual_seed(0)
    position = torch.randn(1, 1 + 14 * 14, 8, dtype=torch.float64)
    ours = interpolate_position(position, 24, mode="linear")
    grid = position[0, 1:].reshape(14, 14, 8).numpy()
    theirs = ndimage.zoom(grid, (24 / 14, 24 / 14, 1), order=1).reshape(24 * 24, 8)
    torch.testing.assert_close(ours[0, 1:], torch.from_numpy(theirs))
    bicubic = interpolate_position(position, 24)
    assert (bicubic - ours).abs().max() > 1e-2  # the two choices are not the same numbers
    with pytest.raises(ValueError, match="bicubic"):
        interpolate_position(position, 24, mode="nearest")


def test_chapter_09_attributes_the_interpolation_and_reads_the_distance_figure_as_the_paper_does(chapter_text):
    text = chapter_text("09_vit.ipynb")
    assert 'It says only "2D interpolation"; its released code interpolates linearly' in text
    assert "torchvision and timm interpolate bicubically" in text
    # Dosovitskiy et al., fig. 7 (right): mixed ranges low down, all heads broad higher up
    assert "with depth the distances grow, and in the later layers every head attends broadly" in text
    assert "long-range heads only in the later layers" not in text


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
    with record_attention(model) as maps:
        model(torch.randn(1, 3, 32, 32))
    cls_map = attention_rollout(maps)[0, 0, 1:].reshape(4, 4)  # [CLS] over the 4x4 patches
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


# The chapter's experiments (backbones.experiments) ---------------------------------------------


def test_shifts_move_each_image_by_at_most_one_pixel_and_bring_in_zeros():
    from backbones.experiments import Shifted

    images = torch.arange(1, 65, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(50, 1, 1, 1)
    ((shifted, labels),) = list(Shifted([(images, torch.arange(50))], 1, seed=0))
    assert torch.equal(labels, torch.arange(50))
    seen = set()
    for image in shifted[:, 0]:
        found = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(image, torch.roll(images[0, 0], (dy, dx), (0, 1)) * _inside(dy, dx))
        ]
        assert len(found) == 1  # a shift of the image, with zeros where it came in from outside
        seen.add(found[0])
    assert len(seen) > 4  # and not always the same shift
    ((same, _),) = list(Shifted([(images, torch.arange(50))], 0))
    assert torch.equal(same, images)


def _inside(dy: int, dx: int) -> torch.Tensor:
    """Where a shifted 8x8 image still holds the original (the rest came in from outside)."""
    mask = torch.ones(8, 8)
    if dy:
        mask[slice(0, dy) if dy > 0 else slice(dy, None)] = 0
    if dx:
        mask[:, slice(0, dx) if dx > 0 else slice(dx, None)] = 0
    return mask


def test_whole_patch_shifts_move_each_image_by_a_patch_or_not_at_all():
    from backbones.experiments import Shifted

    images = torch.arange(1, 65, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(200, 1, 1, 1)
    ((shifted, _),) = list(Shifted([(images, torch.arange(200))], 2, step=2, seed=0))
    seen = set()
    for image in shifted[:, 0]:
        found = [
            (dy, dx)
            for dy in (-2, -1, 0, 1, 2)
            for dx in (-2, -1, 0, 1, 2)
            if torch.equal(image, torch.roll(images[0, 0], (dy, dx), (0, 1)) * _inside(dy, dx))
        ]
        assert len(found) == 1 and all(d % 2 == 0 for d in found[0])  # never by one pixel
        seen.add(found[0])
    assert len(seen) == 9  # every whole-patch shift, none left out
    with pytest.raises(ValueError, match="steps of 2"):
        Shifted([], 3, step=2)


def test_the_cnn_is_matched_to_the_vits_size_and_the_splits_do_not_overlap():
    import backbones as bb
    from backbones import experiments

    data = bb.load_digits()
    vit_count = sum(p.numel() for p in experiments.tiny_vit(data).parameters())
    cnn_count = sum(p.numel() for p in experiments.matched_cnn(data, vit_count).parameters())
    assert abs(cnn_count - vit_count) / vit_count < 0.03
    pool, validation = experiments.split_train(data)
    assert not set(pool) & set(validation) and len(pool) + len(validation) == len(data.train)
    assert len(validation) == round(0.2 * len(data.train))


def test_attention_distance_is_zero_for_self_attention_and_the_mean_distance_for_even_attention():
    from backbones.experiments import mean_attention_distance, patch_centres

    tokens = 1 + 16  # [CLS] and a 4x4 grid
    own = torch.eye(tokens).expand(3, 2, tokens, tokens)  # every patch attends to itself
    even = torch.full((3, 2, tokens, tokens), 1 / tokens)
    assert mean_attention_distance([own], 2).abs().max() == 0
    centres = patch_centres(4, 2)
    expected = torch.cdist(centres, centres).mean()
    torch.testing.assert_close(mean_attention_distance([even, even], 2), expected.expand(2, 2))
    neighbour = torch.zeros(1, 1, tokens, tokens)  # each patch on the next one to its right
    for i in range(16):
        neighbour[0, 0, 1 + i, 1 + (i + 1 if i % 4 < 3 else i - 1)] = 1
    torch.testing.assert_close(mean_attention_distance([neighbour], 2), torch.tensor([[2.0]]))


def test_position_structure_is_high_for_grid_like_embeddings_and_near_zero_for_random_ones():
    from backbones.experiments import patch_centres, position_similarity, position_structure

    centres = patch_centres(6, 1)
    smooth = torch.exp(-(torch.cdist(centres, centres) ** 2) / 4)  # each position: its closeness to all others
    position = torch.cat([torch.zeros(1, 36), smooth])[None]  # (1, 1 + 36, 36), [CLS] first
    assert position_structure(position) > 0.9
    assert position_similarity(position).shape == (36, 36)
    torch.manual_seed(0)
    assert abs(position_structure(torch.randn(1, 37, 64))) < 0.1


def test_the_deletion_test_finds_the_patch_that_carries_the_answer():
    from backbones.experiments import deletion_test

    class FirstPatch(torch.nn.Module):  # decides from the top-left 2x2 patch alone
        def forward(self, x):
            return torch.stack([-x[:, 0, :2, :2].sum((1, 2)), x[:, 0, :2, :2].sum((1, 2))], dim=1)

    images = torch.ones(20, 1, 4, 4)
    labels = torch.ones(20, dtype=torch.long)
    right = torch.zeros(20, 4)
    right[:, 0] = 1  # a map that points at the deciding patch
    kept = deletion_test(FirstPatch(), images, labels, right, patch_size=2, k=1, fill=-1.0)
    assert kept["none"] == 1.0 and kept["highest"] == 0.0 and kept["lowest"] == 1.0
    assert 0.0 < kept["random"] < 1.0  # a quarter of the random choices hit it


def test_the_class_token_map_is_the_cls_row_over_the_patch_grid():
    from backbones.models.vit import class_token_map

    rollout = torch.softmax(torch.randn(2, 17, 17), -1)
    torch.testing.assert_close(class_token_map(rollout)[1, 2, 3], rollout[1, 0, 1 + 2 * 4 + 3])
    with pytest.raises(ValueError, match="square"):
        class_token_map(torch.softmax(torch.randn(1, 16, 16), -1))


def _vit_record():
    import backbones as bb

    record = bb.records.load_record("vit_runs")
    runs = record["runs"]
    mean = {}
    for row in runs:  # keyed by network, fraction and augmentation (up to how many pixels, in steps of)
        key = (row["network"], row["fraction"], (row["shift"], row["shift_step"]))
        mean.setdefault(key, []).append(row["accuracy"])
    return runs, {key: sum(v) / len(v) for key, v in mean.items()}


NONE, ONE_PIXEL, WHOLE_PATCH, TWO_PIXELS = (0, 1), (1, 1), (2, 2), (2, 1)
FRACTIONS = (0.1, 0.3, 1.0)


def _error_ratio(mean, fraction, augmentation):
    return (1 - mean["ViT", fraction, augmentation]) / (1 - mean["CNN", fraction, augmentation])


def test_the_recorded_vit_runs_hold_what_the_chapter_says_of_them(chapter_text):
    runs, mean = _vit_record()
    assert {
        len([r for r in runs if (r["network"], r["fraction"], (r["shift"], r["shift_step"])) == key]) for key in mean
    } == {5}
    gaps = [mean["CNN", f, NONE] - mean["ViT", f, NONE] for f in FRACTIONS]
    assert gaps[0] > gaps[1] > gaps[2] > 0  # the CNN leads, by fewer points with more data
    assert gaps[0] == pytest.approx(0.16, abs=0.01) and gaps[2] == pytest.approx(0.04, abs=0.01)
    ratios = [_error_ratio(mean, f, NONE) for f in FRACTIONS]
    assert ratios[0] < ratios[1] < ratios[2]  # ... and by a growing factor in errors
    assert [round(r, 1) for r in ratios] == [2.1, 2.6, 3.3]
    assert mean["CNN", 0.1, ONE_PIXEL] > mean["CNN", 0.1, NONE]  # shifts help the CNN most at 10%
    assert (
        mean["ViT", 0.3, ONE_PIXEL] < mean["ViT", 0.3, NONE]
        and mean["ViT", 1.0, ONE_PIXEL] < mean["ViT", 1.0, NONE] - 0.1
    )
    vits = [r for r in runs if r["network"] == "ViT"]
    unshifted = [r["position_structure"] for r in vits if r["shift"] == 0]
    assert sum(v < 0 for v in unshifted) == 14 and max(unshifted) < 0.03  # the page: 14 of 15, the other +0.02
    assert all(r["position_structure"] > 0 for r in vits if r["shift"] > 0)
    even = 4.02  # the mean distance between the centres of a 4x4 grid of 2-pixel patches
    for r in (r for r in vits if (r["fraction"], r["shift"]) == (1.0, 0)):
        distance = torch.tensor(r["attention_distance"])
        assert (distance - even).abs().max() < 0.6 and distance.mean() < even
    swept = [r for r in runs if "validation" in r]
    assert len(swept) == 24
    at_edge = [r for r in swept if r["lr"] == 0.03]
    assert len(at_edge) == 10 and [r["network"] for r in at_edge].count("ViT") == 1
    text = chapter_text("09_vit.ipynb")
    assert "In errors it grows: the ViT makes about 2.1 times the CNN's errors with 115 images" in text
    assert "In 10 of the 24 sweeps the best rate was the largest tried" in text


def test_whole_patch_shifts_hurt_the_vit_less_than_unaligned_ones_of_the_same_reach(chapter_text):
    """The control for "a one-pixel shift changes what every patch holds": relative to the CNN on
    the same shifts, aligned shifts cost the ViT less than unaligned ones, but still a lot."""
    runs, mean = _vit_record()
    aligned = [_error_ratio(mean, f, WHOLE_PATCH) for f in FRACTIONS]
    unaligned = [_error_ratio(mean, f, TWO_PIXELS) for f in FRACTIONS]
    assert all(a < u for a, u in zip(aligned, unaligned))
    assert [round(r, 1) for r in aligned + unaligned] == [2.7, 4.3, 8.4, 4.4, 7.1, 18.3]
    assert mean["ViT", 1.0, NONE] - mean["ViT", 1.0, WHOLE_PATCH] > 0.2  # still hurt badly
    # the learning-rate collapse: with shifts, the ViT's validation at 0.03 is below 0.01 in 8 of 9 sweeps
    shifted = [r for r in runs if "validation" in r and r["network"] == "ViT" and r["shift"] > 0]
    collapsed = [r for r in shifted if r["validation"]["0.03"] < r["validation"]["0.01"]]
    assert (len(shifted), len(collapsed)) == (9, 8) and min(r["validation"]["0.03"] for r in shifted) < 0.26
    text = chapter_text("09_vit.ipynb")
    assert "2.7, 4.3 and 8.4 with whole-patch shifts, against 4.4, 7.1 and 18.3 with unaligned ones" in text
    assert "in eight of the nine sweeps" in text


@pytest.mark.slow
def test_rollout_picks_patches_that_matter_but_ink_alone_nearly_does_as_well():
    """The chapter's live claims about the tiny ViT trained on all the digits, one seed."""
    import backbones as bb
    from backbones import experiments
    from backbones.models.vit import attention_rollout, class_token_map, patchify

    data = bb.load_digits()
    pool, _ = experiments.split_train(data)
    indices = experiments.training_subset(pool, len(pool), seed=0)  # as vit_vs_cnn draws it for seed 0
    trained, accuracy = experiments.train_one(
        lambda: experiments.tiny_vit(data), data, indices, lr=0.01, seed=0, steps=300, shift=0
    )
    assert accuracy > 0.9
    bb.seed_everything(0)
    untrained = experiments.tiny_vit(data).eval()
    x, y = data.tensors(split="test")
    recorded = {}
    for name, model in (("trained", trained.eval()), ("untrained", untrained)):
        with torch.no_grad(), bb.record_attention(model) as recorded[name]:
            model(x)
    maps = {name: class_token_map(attention_rollout(m)).flatten(1) for name, m in recorded.items()}
    ink = patchify(data.unnormalize(x), 2).sum(-1)
    kept = {
        name: experiments.deletion_test(trained, x, y, scores, patch_size=2, k=4)
        for name, scores in (*maps.items(), ("ink", ink))
    }
    assert kept["trained"]["highest"] < kept["trained"]["random"] - 0.25  # its top patches matter
    assert kept["trained"]["lowest"] > kept["trained"]["none"] - 0.03  # its bottom ones hardly
    assert abs(kept["ink"]["highest"] - kept["trained"]["highest"]) < 0.12  # ink comes within a few points
    assert abs(kept["ink"]["lowest"] - kept["trained"]["lowest"]) < 0.03
    assert kept["untrained"]["highest"] < kept["untrained"]["random"] - 0.15
    centred = {n: m - m.mean(1, keepdim=True) for n, m in maps.items()}
    assert torch.nn.functional.cosine_similarity(centred["trained"], centred["untrained"]).mean() > 0.3
    assert (
        experiments.position_structure(trained.position) < 0 < experiments.position_structure(untrained.position) + 0.1
    )
    distance = experiments.mean_attention_distance(recorded["trained"], 2)
    assert (distance - 4.02).abs().max() < 0.6
