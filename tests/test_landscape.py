"""The loss-landscape module: filter normalisation, the fast evaluator against the reference
approach, and the curvature measures on surfaces whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import backbones as bb
from backbones import landscape


@pytest.fixture(scope="module")
def trained():
    bb.seed_everything(0)
    data = bb.load_digits()
    model = bb.models.cifar_resnet(20, in_channels=1, width=8, zero_init_residual=True)
    bb.fit(model, data.loaders(64)[0], steps=40, lr=0.05)
    images, labels = data.tensors(192)
    return model.eval(), images, labels


def test_filters_get_the_trained_filters_norms(trained):
    model = trained[0]
    direction = landscape.random_direction(model, seed=3)
    for name, weight in model.named_parameters():
        d = direction[name]
        assert d.shape == weight.shape
        if weight.ndim <= 1:  # biases and batch-norm parameters are left out
            assert not d.any(), name
        else:
            dims = tuple(range(1, weight.ndim))
            torch.testing.assert_close(
                torch.linalg.vector_norm(d, dim=dims), torch.linalg.vector_norm(weight.detach(), dim=dims)
            )


def test_directions_are_seeded(trained):
    a, b, c = (landscape.random_direction(trained[0], seed=s) for s in (1, 1, 2))
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_a_zero_direction_gives_a_flat_line_at_the_trained_loss(trained):
    model, images, labels = trained
    zero = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    line = landscape.loss_surface(model, [zero], [np.linspace(-1, 1, 5)], images, labels)
    expected = torch.nn.functional.cross_entropy(model(images), labels).item()
    np.testing.assert_allclose(line, expected, rtol=1e-5)


def test_fast_evaluator_gives_the_reference_numbers(trained):
    model, images, labels = trained
    directions = [landscape.random_direction(model, seed=s) for s in (1, 2)]
    grid = [np.linspace(-1, 1, 4), np.linspace(-0.5, 0.5, 3)]
    fast = landscape.loss_surface(model, directions, grid, images, labels)
    reference = landscape.reference_loss_surface(model, directions, grid, images, labels)
    assert fast.shape == (3, 4)  # (betas, alphas)
    np.testing.assert_allclose(fast, reference, rtol=1e-4)
    half = landscape.loss_surface(model, directions, grid, images, labels, precision="bfloat16")
    np.testing.assert_allclose(half, reference, rtol=0.02)


def test_evaluation_leaves_the_model_as_it_was(trained):
    model, images, labels = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    direction = landscape.random_direction(model, seed=1)
    landscape.loss_surface(model, [direction], [np.linspace(-1, 1, 3)], images, labels)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_arguments_are_clear_errors(trained):
    model, images, labels = trained
    direction = landscape.random_direction(model)
    with pytest.raises(ValueError, match="one direction and one list of steps"):
        landscape.loss_surface(model, [direction], [[0.0], [0.0]], images, labels)
    with pytest.raises(ValueError, match="precision"):
        landscape.loss_surface(model, [direction], [[0.0]], images, labels, precision="float16")


def test_curvature_measures_on_known_surfaces():
    axis = np.linspace(-1, 1, 21)
    a, b = np.meshgrid(axis, axis)
    spacing = axis[1] - axis[0]
    bowl, saddle = a**2 + 2 * b**2 + 1, a**2 - b**2 + 3
    assert landscape.nonconvexity(bowl, spacing) == (0.0, 0.0)
    fraction, ratio = landscape.nonconvexity(saddle, spacing)
    assert fraction == 1.0 and ratio == pytest.approx(1.0)
    low, high = landscape.surface_curvature(bowl, spacing)
    np.testing.assert_allclose(low, 2, rtol=1e-6)
    np.testing.assert_allclose(high, 4, rtol=1e-6)
    assert landscape.count_local_minima(bowl) == 1
    bumpy = bowl + 0.5 * np.cos(6 * np.pi * a) * np.cos(6 * np.pi * b)
    assert landscape.count_local_minima(bumpy) > 4
