"""Exercises of the AlexNet/VGG chapter: the receptive field of a stack of layers, the
parameters of a convolution, and a VGG block."""

from __future__ import annotations

import torch
from torch import nn

from backbones.exercises.core import Case, Exercise, Mistake, rungs
from backbones.receptive_field import stack_receptive_field

# Receptive field of a stack -------------------------------------------------------------------

ALEXNET_STACK = [(11, 4, 1), (3, 2, 1), (5, 1, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1)]


def _field(layers, *, plus_one=True, stride_first=False, dilation=True, strides=True, kernel_times_d=False):
    size, jump = (1 if plus_one else 0), 1
    for kernel, stride, d in layers:
        if stride_first and strides:
            jump *= stride
        extent = kernel * d - 1 if kernel_times_d else (d * (kernel - 1) if dilation else kernel - 1)
        size += extent * jump
        if not stride_first and strides:
            jump *= stride
    return size


RECEPTIVE_FIELD = Exercise(
    name="receptive_field",
    task="the receptive field (in input pixels) of a stack of (kernel, stride, dilation) layers",
    forbidden=("backbones.receptive_field.receptive_fields",),
    reference=stack_receptive_field,
    cases=lambda: rungs(
        [
            Case("a single 5x5 convolution", ([(5, 1, 1)],)),
            Case("three 3x3 convolutions", ([(3, 1, 1)] * 3,)),
            Case("three 3x3 convolutions of stride 2", ([(3, 2, 1)] * 3,)),
            Case("dilations 1, 2 and 4", ([(3, 1, 1), (3, 1, 2), (3, 1, 4)],)),
            Case("AlexNet's convolutions and pools", (ALEXNET_STACK,)),
        ],
        "a stack of layers (look at how each layer adds (k - 1) times the jump so far)",
        "strides (look at the jump: the product of the strides of the layers below, updated after each layer)",
        "dilation (look at the effective kernel: d (k - 1) + 1)",
        "kernels, strides and pools mixed, as a real network has them (look at the order of your updates)",
    ),
    mistakes={
        "forgot_plus_one": Mistake(
            "off by one: a single pixel sees itself, so start from 1 (r = 1 + sum of (k - 1) * jump)",
            lambda layers: _field(layers, plus_one=False),
        ),
        "stride_too_early": Mistake(
            "a layer's own stride does not widen its own field: multiply the jump by the "
            "stride *after* adding (k - 1) * jump",
            lambda layers: _field(layers, stride_first=True),
        ),
        "ignored_strides": Mistake(
            "the strides of earlier layers multiply the jump: each later kernel steps over jump input pixels",
            lambda layers: _field(layers, strides=False),
        ),
        "ignored_dilation": Mistake(
            "a dilated kernel spans d * (k - 1) + 1 pixels: multiply (k - 1) by the dilation",
            lambda layers: _field(layers, dilation=False),
        ),
        "kernel_times_dilation": Mistake(
            "a dilated kernel spans d * (k - 1) + 1 pixels, not k * d",
            lambda layers: _field(layers, kernel_times_d=True),
        ),
    },
    rtol=0,
    atol=0,  # whole numbers: exactly right or wrong
)


# Parameters of a convolution ------------------------------------------------------------------


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    return in_channels * out_channels * kernel_size**2 + (out_channels if bias else 0)


CONV_PARAMS = Exercise(
    name="conv_params",
    task="the number of parameters of a square 2-D convolution",
    reference=conv_params,
    cases=lambda: rungs(
        [
            Case("AlexNet's first layer (3 -> 64, 11x11)", (3, 64, 11, True)),
            Case("a VGG layer without bias (256 -> 256, 3x3)", (256, 256, 3, False)),
            Case("a 1x1 convolution (64 -> 128)", (64, 128, 1, True)),
            Case("a single channel in and out, 7x7", (1, 1, 7, True)),
            Case("a wide layer (512 -> 512, 3x3)", (512, 512, 3, True)),
        ],
        "bias=False (look at whether you read the bias argument: no bias, no c_out extra parameters)",
        "a 1x1 kernel (look at the k * k factor)",
        "one channel in and out (look at which of c_in and c_out multiplies what)",
        "a wide layer (look at integer arithmetic: nothing should round or overflow)",
    ),
    mistakes={
        "forgot_bias": Mistake("forgot the bias: one per output channel", lambda i, o, k, bias=True: i * o * k * k),
        "bias_per_input": Mistake(
            "there is one bias per *output* channel, not per input channel",
            lambda i, o, k, bias=True: i * o * k * k + (i if bias else 0),
        ),
        "forgot_in_channels": Mistake(
            "each filter spans all input channels: k * k * in_channels weights per output channel",
            lambda i, o, k, bias=True: o * k * k + (o if bias else 0),
        ),
        "kernel_not_squared": Mistake(
            "a k x k kernel has k * k weights per channel pair",
            lambda i, o, k, bias=True: i * o * k + (o if bias else 0),
        ),
        "bias_always": Mistake(
            "with bias=False there is no bias to count", lambda i, o, k, bias=True: i * o * k * k + o
        ),
        "one_bias": Mistake(
            "one bias per output channel, not one per layer",
            lambda i, o, k, bias=True: i * o * k * k + (1 if bias else 0),
        ),
    },
    rtol=0,
    atol=0,
)


# A VGG block --------------------------------------------------------------------------------------


def vgg_block(in_channels: int, out_channels: int, num_convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers, nn.MaxPool2d(kernel_size=2, stride=2))


def _block(
    in_channels, out_channels, num_convs, *, relu=True, pool=True, padding=1, pool_each=False, same_in=False, kernel=3
):
    layers: list[nn.Module] = []
    for i in range(num_convs):
        c_in = in_channels if (i == 0 or same_in) else out_channels
        layers.append(nn.Conv2d(c_in, out_channels, kernel_size=kernel, padding=padding))
        layers += [nn.ReLU()] if relu else []
        layers += [nn.MaxPool2d(2, 2)] if pool_each else []
    return nn.Sequential(*layers, *([nn.MaxPool2d(2, 2)] if pool and not pool_each else []))


def _block_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return rungs(
        [
            Case("two convolutions, 3 -> 8 channels, 16x16", (3, 8, 2, torch.randn(2, 3, 16, 16, generator=g))),
            Case("a batch of one, one convolution", (4, 4, 1, torch.randn(1, 4, 8, 8, generator=g))),
            Case(
                "three convolutions, 8 -> 16 channels, odd size 9x9", (8, 16, 3, torch.randn(2, 8, 9, 9, generator=g))
            ),
        ],
        "one convolution with as many channels out as in (look at the loop over the convolutions: "
        "range(num_convs), the first from in_channels, the rest from out_channels)",
        "three convolutions on an odd size (look at the channels of the second and later convolutions, "
        "and at the pool: 9x9 pools to 4x4)",
    )


VGG_BLOCK = Exercise(
    name="vgg_block",
    task="num_convs 3x3 convolutions (padding 1), each followed by a ReLU, then a 2x2 max pool of stride 2",
    reference=vgg_block,
    cases=_block_cases,
    kind="module",  # the block is built under seed 0 and applied to each case's images
    mistakes={
        "no_relu": Mistake("each convolution is followed by a ReLU", lambda i, o, n: _block(i, o, n, relu=False)),
        "no_pool": Mistake(
            "the block ends with a 2x2 max pool of stride 2, which halves the resolution",
            lambda i, o, n: _block(i, o, n, pool=False),
        ),
        "no_padding": Mistake(
            "3x3 convolutions need padding=1 to keep the size; only the pool shrinks it",
            lambda i, o, n: _block(i, o, n, padding=0),
        ),
        "pool_each": Mistake(
            "one pool per block, after the last convolution, not one after every convolution",
            lambda i, o, n: _block(i, o, n, pool_each=True),
        ),
        "channels": Mistake(
            "only the first convolution takes in_channels; the later ones take out_channels",
            lambda i, o, n: _block(i, o, n, same_in=True),
        ),
        "kernel_5": Mistake("VGG uses only 3x3 kernels", lambda i, o, n: _block(i, o, n, kernel=5, padding=2)),
    },
)


# The output size of a convolution or pool ------------------------------------------------------------


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _output(size, k, s=1, p=0, d=1, *, plus_one=True, pad=2, dilated=True, floor=True, span=None):
    extent = span(k, d) if span else (d * (k - 1) if dilated else k - 1)
    inner = size + pad * p - extent - 1
    steps = inner // s if floor else -(-inner // s)
    return steps + (1 if plus_one else 0)


CONV_OUTPUT_SIZE = Exercise(
    name="conv_output_size",
    task="the output size (one side) of a convolution or pool: floor((size + 2p - d(k - 1) - 1) / s) + 1",
    reference=conv_output_size,
    cases=lambda: rungs(
        [
            Case("a 5x5 convolution with padding 2 on 32", (32, 5, 1, 2, 1)),
            Case("a single pixel through a 1x1 convolution", (1, 1, 1, 0, 1)),
            Case("AlexNet's first layer (224, 11x11, stride 4, padding 2)", (224, 11, 4, 2, 1)),
            Case("a 2x2 pool of stride 2 on an odd size, 9", (9, 2, 2, 0, 1)),
            Case("a 3x3 convolution of dilation 3 and padding 3 on 16", (16, 3, 1, 3, 3)),
            Case("ResNet's stem (224, 7x7, stride 2, padding 3)", (224, 7, 2, 3, 1)),
        ],
        "a 1x1 kernel on one pixel, no padding (look at the + 1: one position fits)",
        "a stride (look at the division by s and where the + 1 goes: floor(...) / s, then + 1)",
        "a stride that does not divide evenly (look at the rounding: floor, not round or ceil)",
        "dilation (look at d (k - 1): the kernel's reach, not k)",
        "stride 2 with padding on an even size (look at the order: pad, subtract the reach, divide, add 1)",
    ),
    mistakes={
        "forgot_plus_one": Mistake(
            "off by one: the first window position counts too, so add 1 after dividing by the stride",
            lambda *a: _output(*a, plus_one=False),
        ),
        "padding_once": Mistake("padding is added on both sides: size + 2 * padding", lambda *a: _output(*a, pad=1)),
        "ignored_dilation": Mistake(
            "a dilated kernel spans d * (k - 1) + 1 pixels: multiply (k - 1) by the dilation",
            lambda *a: _output(*a, dilated=False),
        ),
        "kernel_times_dilation": Mistake(
            "a dilated kernel spans d * (k - 1) + 1 pixels, not k * d",
            lambda *a: _output(*a, span=lambda k, d: k * d - 1),
        ),
        "rounded_up": Mistake(
            "a window that would hang over the edge is dropped: round the division down (//), "
            "as PyTorch does unless ceil_mode=True",
            lambda *a: _output(*a, floor=False),
        ),
        "true_division": Mistake(
            "sizes are whole numbers: divide with // (floor), not /",
            lambda size, k, s=1, p=0, d=1: (size + 2 * p - d * (k - 1) - 1) / s + 1,
        ),
    },
    rtol=0,
    atol=0,
)
