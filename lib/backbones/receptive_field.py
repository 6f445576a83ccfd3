"""Receptive fields: which input pixels a unit of a layer can see.

Analytically (Araujo, Norris & Sim 2019, "Computing Receptive Fields of Convolutional Neural
Networks", Distill), layer by layer along the network's main path, for a layer of kernel k,
stride s, padding p and dilation d (effective kernel k' = d(k - 1) + 1):

    size  = size_in + (k' - 1) * jump_in      the field's side, in input pixels
    jump  = jump_in * s                       input pixels between neighbouring units (effective stride)
    start = start_in + ((k' - 1) / 2 - p) * jump_in   centre of the first unit's field

A gradient probe checks it: make the network linear and positive (ReLU -> identity, max -> average
pooling, weights -> 1), backpropagate from one unit and measure the input region that receives
gradient. With the real weights and non-linearities the same gradient gives the *effective*
receptive field (Luo, Li, Urtasun & Zemel 2016), which is Gaussian-like and much smaller.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

POOLING = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class LayerField:
    """A layer's geometry and the receptive field of its output units."""

    name: str
    kernel: int
    stride: int
    padding: int
    dilation: int
    size: int
    jump: int
    start: float


def _pair(value) -> int:
    """The height value of an int-or-pair argument (the book's networks are square)."""
    return value[0] if isinstance(value, tuple) else value


def _spatial_layers(model: nn.Module, input_size: int, skip: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    """Convolutions and pools in the order a forward pass runs them, leaving out shortcut branches."""
    order: list[tuple[str, nn.Module]] = []
    names = {module: name for name, module in model.named_modules()}
    hooks = [
        module.register_forward_hook(lambda m, i, o: order.append((names[m], m)))
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, *POOLING)) and not any(part in name.split(".") for part in skip)
    ]
    in_channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_channels, input_size, input_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return order


def receptive_fields(
    model: nn.Module, *, input_size: int = 224, skip: tuple[str, ...] = ("downsample",)
) -> list[LayerField]:
    """The receptive field after every convolution and pooling layer of ``model``'s main path.

    Args:
        model: a CNN; modules named in ``skip`` (shortcut branches) are left out, since the main
            path's field contains theirs.
        input_size: the image side used to run the model once and find the layers' order.
    """
    size, jump, start = 1, 1, 0.0
    fields = []
    for name, layer in _spatial_layers(model, input_size, skip):
        kernel, stride = _pair(layer.kernel_size), _pair(layer.stride)
        padding, dilation = _pair(layer.padding), _pair(getattr(layer, "dilation", 1))
        effective = dilation * (kernel - 1) + 1
        start = start + ((effective - 1) / 2 - padding) * jump
        size = size + (effective - 1) * jump
        jump = jump * stride
        fields.append(LayerField(name, kernel, stride, padding, dilation, size, jump, start))
    return fields


def stack_receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """The receptive field of a stack of ``(kernel, stride, dilation)`` layers, in input pixels."""
    size, jump = 1, 1
    for kernel, stride, dilation in layers:
        size += dilation * (kernel - 1) * jump
        jump *= stride
    return size


class _Stop(Exception):
    pass


def _input_gradient(model: nn.Module, layer: str, image: torch.Tensor) -> torch.Tensor:
    """|d (centre unit of ``layer``, summed over channels) / d image|, summed over input channels."""
    module = dict(model.named_modules())[layer]
    captured = {}

    def capture(m, i, output):
        captured["out"] = output
        raise _Stop  # nothing after this layer matters

    hook = module.register_forward_hook(capture)
    image = image.clone().requires_grad_(True)
    try:
        model(image)
    except _Stop:
        pass
    finally:
        hook.remove()
    out = captured["out"]
    out[:, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    return image.grad.abs().sum(dim=1)  # (B, H, W)


def _linearised(model: nn.Module) -> nn.Module:
    """A copy whose every path carries gradient: ReLU -> identity, max -> average pooling,
    convolution weights 1 and biases 0, batch norm the identity."""
    probe = copy.deepcopy(model).eval()
    for parent in probe.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, (nn.ReLU, nn.Dropout)):
                setattr(parent, child_name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(
                    parent,
                    child_name,
                    nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode),
                )
    with torch.no_grad():
        for module in probe.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
                module.reset_running_stats()
    return probe


def gradient_receptive_field(model: nn.Module, layer: str, *, input_size: int) -> int:
    """The side of the input region that receives gradient from the centre unit of ``layer`` in
    the linearised network: the receptive field, measured (``input_size`` must exceed it)."""
    probe = _linearised(model)
    in_channels = next(m for m in probe.modules() if isinstance(m, nn.Conv2d)).in_channels
    gradient = _input_gradient(probe, layer, torch.ones(1, in_channels, input_size, input_size))[0]
    rows = torch.nonzero(gradient.sum(dim=1) > 0).flatten()
    cols = torch.nonzero(gradient.sum(dim=0) > 0).flatten()
    if rows[0] == 0 or cols[0] == 0 or rows[-1] == input_size - 1 or cols[-1] == input_size - 1:
        raise ValueError(f"the field of {layer} reaches the image border at input_size={input_size}: use a larger one")
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)


def effective_receptive_field(
    model: nn.Module, layer: str, *, input_size: int, samples: int = 16, seed: int = 0
) -> np.ndarray:
    """Luo et al.'s effective receptive field: the mean |input gradient| of the centre unit of
    ``layer`` over random inputs, with the model's real weights and non-linearities, scaled to max 1."""
    generator = torch.Generator().manual_seed(seed)
    in_channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    images = torch.randn(samples, in_channels, input_size, input_size, generator=generator)
    was_training = model.training
    model.eval()
    try:
        gradient = _input_gradient(model, layer, images).mean(dim=0)
    finally:
        model.train(was_training)
    return (gradient / gradient.max()).numpy()


def mass_radius(field: np.ndarray, fraction: float = 0.95) -> int:
    """The half-side of the smallest centred square holding ``fraction`` of the field's total."""
    centre_row, centre_col = np.array(field.shape) // 2
    total = field.sum()
    for radius in range(max(field.shape)):
        window = field[
            max(centre_row - radius, 0) : centre_row + radius + 1, max(centre_col - radius, 0) : centre_col + radius + 1
        ]
        if window.sum() >= fraction * total:
            return radius
    return max(field.shape)
