"""Exercises of the SE/EfficientNet chapter: a Squeeze-and-Excitation block's forward pass and
its parameters, the cost of an MBConv block, and compound scaling's arithmetic."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs
from backbones.layers.mbconv import MBConv, make_divisible
from backbones.layers.se import se_parameters
from backbones.models.efficientnet import ALPHA, BETA, GAMMA, block_multiply_adds, round_depth

# Squeeze-and-Excitation, forward ---------------------------------------------------------------


def squeeze_excitation(
    x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor
) -> torch.Tensor:
    s = x.mean(dim=(2, 3))  # squeeze: (B, C)
    z = F.relu(s @ w1.T + b1)  # (B, C/r)
    gate = torch.sigmoid(z @ w2.T + b2)  # excitation: (B, C)
    return x * gate[:, :, None, None]  # scale


def _se(x, w1, b1, w2, b2, *, gate=torch.sigmoid, squeeze=True, add=False, biases=True, axis="channels"):
    b1, b2 = (b1, b2) if biases else (0.0, 0.0)
    if not squeeze:  # the FC layers at every pixel: a gate per pixel and channel
        z = F.relu(torch.einsum("bchw,rc->bhwr", x, w1) + b1)
        g = gate(torch.einsum("bhwr,cr->bhwc", z, w2) + b2).permute(0, 3, 1, 2)
        return x + g if add else x * g
    s = x.mean(dim=(2, 3))
    g = gate(F.relu(s @ w1.T + b1) @ w2.T + b2)
    g = g[:, :, None, None] if axis == "channels" else g[:, None, None, :]
    return x + g if add else x * g


def _se_cases() -> list[Case]:
    def case(label, seed, batch, channels, squeeze, size, width=None):
        g = torch.Generator().manual_seed(seed)
        return Case(
            label,
            (
                torch.randn(batch, channels, size, size if width is None else width, generator=g) + 0.5,
                torch.randn(squeeze, channels, generator=g) / math.sqrt(channels),
                torch.randn(squeeze, generator=g) * 0.5,
                torch.randn(channels, squeeze, generator=g) / math.sqrt(squeeze),
                torch.randn(channels, generator=g) * 0.5,
            ),
        )

    return rungs(
        [
            case("16 channels, squeeze width 4, 8x8 maps, a batch of 2", 0, 2, 16, 4, 8),
            case("a batch of one, 8 channels, squeeze width 2, odd size 5x5", 1, 1, 8, 2, 5),
            case("4 channels on 4x4 maps (where a gate on the wrong axis still runs)", 2, 3, 4, 1, 4),
            case("maps that are not square: 6 channels on 5x7, a batch of 2", 3, 2, 6, 3, 5, 7),
        ],
        "a batch of one and an odd size (look at any squeeze(), and at the mean: over H and W, every pixel)",
        "as many channels as pixels on a side (look at which axis the gates multiply: the channels, "
        "g[:, :, None, None])",
        "maps that are not square (look at anything that uses one side for both: mean(dim=(2, 3)), "
        "not a pool of size H or a reshape to H * H)",
    )


def _diagnose_gates(x, got, expected) -> str | None:
    """An input that is positive everywhere, not square: SE multiplies each (image, channel) map by
    one gate in (0, 1), so got / x is constant over the map and lies between 0 and 1."""
    if not isinstance(got, torch.Tensor) or got.shape != x.shape or not torch.isfinite(got).all():
        return None
    seen = "(a probe on a positive 5x7 input shows it)"
    got, want = got.detach().double(), expected.double()
    ratio, shift = got / x, got - x
    constant = lambda t: float((t - t.mean(dim=(2, 3), keepdim=True)).abs().max()) < 1e-5  # noqa: E731
    if not constant(ratio):
        if constant(shift):
            return f"you added the gates to the map {seen}: SE multiplies each channel's map by its gate"
        return (
            f"your gate changes from pixel to pixel {seen}: SE computes one gate per image and channel, "
            f"from the mean over H and W (dim=(2, 3)), and multiplies the whole map by it"
        )
    gates = ratio.mean(dim=(2, 3))
    if (gates <= 0).any() or (gates >= 1).any():
        return f"your gates are not between 0 and 1 {seen}: the excitation ends with a sigmoid"
    wanted = (want / x).mean(dim=(2, 3))
    if torch.allclose(gates, wanted, atol=1e-5):
        return None  # the gates are right: the mistake is elsewhere
    if torch.allclose(gates.sort(dim=1).values, wanted.sort(dim=1).values, atol=1e-5):
        return f"your gates are right but go to the wrong channels {seen}: gate[:, c] scales channel c"
    return (
        f"your gates are constant over each map and between 0 and 1, but not SE's {seen}: look at the squeeze "
        f"(the mean over H and W, dim=(2, 3)) and the two layers: relu(s @ w1.T + b1), then sigmoid(z @ w2.T + b2)"
    )


def _se_probes() -> list[Probe]:
    g = torch.Generator().manual_seed(77)
    x = torch.rand(2, 4, 5, 7, generator=g).double() + 0.5
    weights = (
        torch.randn(2, 4, generator=g) / 2,
        torch.randn(2, generator=g) * 0.5,
        torch.randn(4, 2, generator=g) / 1.4,
        torch.randn(4, generator=g) * 0.5,
    )
    case = Case("a positive 5x7 input", (x.float(), *weights))
    return [
        Probe(
            "a positive 5x7 input",
            (case,),
            lambda got, expected: _diagnose_gates(x.float().double(), got[0], expected[0]),
        )
    ]


SQUEEZE_EXCITATION = Exercise(
    name="squeeze_excitation",
    task="SE: x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2), one gate per image and channel",
    forbidden=("backbones.layers.se.SqueezeExcitation", "torchvision.ops.SqueezeExcitation"),
    reference=squeeze_excitation,
    cases=_se_cases,
    probes=_se_probes,
    mistakes={
        "softmax": Mistake(
            "the gate is a sigmoid: each channel is scaled on its own, in (0, 1); a softmax makes "
            "the channels compete and sum to 1",
            lambda *a: _se(*a, gate=lambda t: torch.softmax(t, dim=-1)),
        ),
        "no_squeeze": Mistake(
            "squeeze first: average each channel over H and W, so that the gate sees the whole "
            "image (the FC layers at every pixel give per-pixel gates)",
            lambda *a: _se(*a, squeeze=False),
        ),
        "wrong_axis": Mistake(
            "the gates are (B, C): broadcast them over H and W as gate[:, :, None, None], not over the channel axis",
            lambda *a: _se(*a, axis="width"),
        ),
        "added": Mistake(
            "SE multiplies each channel by its gate (x * gate); adding shifts the channel instead",
            lambda *a: _se(*a, add=True),
        ),
        "no_biases": Mistake("both fully connected layers have biases (b1 and b2)", lambda *a: _se(*a, biases=False)),
        "no_activation": Mistake(
            "a ReLU comes between the two fully connected layers",
            lambda x, w1, b1, w2, b2: x * torch.sigmoid((x.mean(dim=(2, 3)) @ w1.T + b1) @ w2.T + b2)[:, :, None, None],
        ),
        "max_pool": Mistake(
            "the squeeze is global *average* pooling (x.mean(dim=(2, 3))), not max pooling",
            lambda x, *w: (
                squeeze_excitation(x.amax(dim=(2, 3), keepdim=True).expand_as(x), *w)
                * x
                / x.amax(dim=(2, 3), keepdim=True).expand_as(x)
            ),
        ),
    },
)


# Squeeze-and-Excitation, parameters ------------------------------------------------------------


def se_params(channels: int, reduction: int) -> int:
    return se_parameters(channels, channels // reduction)


_SE_POINTS = ((8, 1), (16, 1), (16, 2), (32, 4), (64, 8), (24, 3), (48, 16), (40, 5))


def _diagnose_se_count(got: list, expected: list) -> str | None:
    """The count at eight (C, r) read as a C C/r + b C/r + c C + d: a count built from the right
    pieces in the wrong numbers shows which piece (two weight matrices, a bias of each width)."""
    if not all(isinstance(g, (int, float)) or (isinstance(g, torch.Tensor) and g.numel() == 1) for g in got):
        return None
    features = torch.tensor([[c * (c // r), c // r, c, 1.0] for c, r in _SE_POINTS], dtype=torch.float64)
    values = torch.tensor([float(g) for g in got], dtype=torch.float64)
    fit = torch.linalg.lstsq(features, values[:, None]).solution[:, 0]
    if (features @ fit - values).abs().max() > 1e-6 * values.abs().max().clamp_min(1):
        return None  # not a sum of these pieces: nothing to say
    a, b, c, d = (round(float(x), 3) for x in fit)
    wrong = []
    if a != 2:
        wrong.append(f"{a:g} weight matrices of C x C/r (there are two: C -> C/r, then C/r -> C)")
    if b != 1:
        wrong.append(f"{b:g} bias(es) of width C/r (the first layer has one)")
    if c != 1:
        wrong.append(f"{c:g} bias(es) of width C (the second layer has one)")
    if d != 0:
        wrong.append(f"{d:g} parameters more that depend on neither C nor r")
    if not wrong:
        return None
    return "your count has " + "; ".join(wrong) + " (read off your answers at eight (C, r) pairs)"


SE_PARAMS = Exercise(
    name="se_params",
    task="the parameters of an SE block on C channels with reduction r (two FC layers with biases, C -> C/r -> C)",
    reference=se_params,
    probes=lambda: [
        Probe("the count's terms", tuple(Case(f"C = {c}, r = {r}", (c, r)) for c, r in _SE_POINTS), _diagnose_se_count)
    ],
    cases=lambda: rungs(
        [
            Case("SE-ResNet-50's last stage: C = 2048, r = 16", (2048, 16)),
            Case("C = 256, r = 16", (256, 16)),
            Case("C = 64, r = 4", (64, 4)),
            Case("C = 96, r = 8", (96, 8)),
            Case("a single squeeze unit: C = 16, r = 16", (16, 16)),
        ],
        "another width (look at anything fixed to 2048)",
        "another reduction r (look at C // r: the squeeze's width)",
        "C = 96, r = 8 (look at the biases: C // r of the first layer, C of the second)",
        "a single squeeze unit (look at C // r = 1: the layers still have weights and biases)",
    ),
    mistakes={
        "no_reduction": Mistake("the bottleneck is C/r wide, not C", lambda c, r: 2 * c * c + 2 * c),
        "reduction_twice": Mistake(
            "reduce once: C -> C/r -> C (not C/r^2)", lambda c, r: se_parameters(c, c // (r * r))
        ),
        "no_biases": Mistake(
            "each FC layer has biases: C/r for the first, C for the second", lambda c, r: 2 * c * (c // r)
        ),
        "one_bias": Mistake("both FC layers have biases: C/r + C in all", lambda c, r: 2 * c * (c // r) + c),
        "one_layer": Mistake("there are two FC layers: C -> C/r and C/r -> C", lambda c, r: c * (c // r) + c // r),
    },
    rtol=0,
    atol=0,
)


# The cost of an MBConv block -------------------------------------------------------------------


def mbconv_cost(
    in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int, stride: int, size: int
) -> tuple[int, int]:
    hidden = in_channels * expand_ratio
    params = (in_channels * hidden if expand_ratio != 1 else 0) + hidden * kernel_size**2 + hidden * out_channels
    macs = block_multiply_adds(
        MBConv,
        in_channels,
        out_channels,
        expand_ratio=expand_ratio,
        kernel_size=kernel_size,
        stride=stride,
        size=size,
        se=False,
    )
    return params, macs


def _cost(c_in, c_out, t, k, s, size, *, full=False, stride=True, expansion="right", stride_early=False):
    hidden = c_in * t
    out = math.ceil(size / s) if stride else size
    expand = expansion == "always" or (expansion == "right" and t != 1)
    per_filter = hidden if full else 1  # a full convolution reads every channel
    params = (c_in * hidden if expand else 0) + hidden * per_filter * k * k + hidden * c_out
    first = out if stride_early else size
    macs = (
        (first * first * c_in * hidden if expand else 0)
        + out * out * hidden * per_filter * k * k
        + out * out * hidden * c_out
    )
    return params, macs


MBCONV_COST = Exercise(
    name="mbconv_cost",
    task="(parameters, multiply-adds) of an MBConv block's convolutions without SE (no biases: BN follows each)",
    reference=mbconv_cost,
    cases=lambda: rungs(
        [
            Case("a repeated block: 40 -> 40, t = 6, 5x5, stride 1, on 28x28", (40, 40, 6, 5, 1, 28)),
            Case("B0's stage 3 first block: 24 -> 40, t = 6, 5x5, stride 2, on 56x56", (24, 40, 6, 5, 2, 56)),
            Case("B0's first block: 32 -> 16, t = 1 (no expansion), 3x3, on 112x112", (32, 16, 1, 3, 1, 112)),
            Case("stride 2 on an odd size: 16 -> 24, t = 6, 3x3, on 15x15", (16, 24, 6, 3, 2, 15)),
            Case("a single pixel: 16 -> 16, t = 6, 3x3, on a 1x1 map", (16, 16, 6, 3, 1, 1)),
        ],
        "stride 2 and more channels out than in (look at the map each layer runs on: the expansion on "
        "the input's size, the depthwise and projection on the strided size; and at c_in against c_out)",
        "t = 1, no expansion layer (look at the 1x1 expansion: it is absent, not a C x C layer)",
        "stride 2 on an odd size (look at the strided size: ceil(15 / 2) = 8 with padding k // 2)",
        "a 1x1 map (look at anything that assumes the map has more than one pixel)",
    ),
    mistakes={
        "full_depthwise": Mistake(
            "the depthwise convolution has one k x k filter per channel (groups = channels): "
            "hidden * k^2 weights, not hidden^2 * k^2",
            lambda *a: _cost(*a, full=True),
        ),
        "stride_ignored": Mistake(
            "the depthwise convolution's stride shrinks the map: the depthwise and "
            "projection layers run on ceil(size / stride)^2 pixels",
            lambda *a: _cost(*a, stride=False),
        ),
        "stride_early": Mistake(
            "the expansion runs before the stride, on the full size x size input",
            lambda *a: _cost(*a, stride_early=True),
        ),
        "expansion_at_t1": Mistake(
            "with expand_ratio 1 there is no expansion convolution", lambda *a: _cost(*a, expansion="always")
        ),
        "no_expansion": Mistake(
            "count the 1x1 expansion convolution (C_in -> t C_in) when t > 1", lambda *a: _cost(*a, expansion="never")
        ),
        "floor_size": Mistake(
            "stride 2 on an odd size keeps the last pixel (padding k // 2): ceil(size / 2), not floor",
            lambda c_in, c_out, t, k, s, size: (
                _cost(c_in, c_out, t, k, s, size - 1) if size % 2 and s == 2 else _cost(c_in, c_out, t, k, s, size)
            ),
        ),
    },
    rtol=0,
    atol=0,
)


# Compound scaling's arithmetic -----------------------------------------------------------------


def compound_scale(channels: int, layers: int, resolution: int, phi: float) -> tuple[int, int, int]:
    return (make_divisible(channels * BETA**phi), round_depth(layers, ALPHA**phi), round(resolution * GAMMA**phi))


def _compound(c, n, r, phi, *, alpha=ALPHA, beta=BETA, channels="divisible", depth=math.ceil, linear=False):
    w, d, g = (
        (1 + phi * (beta - 1), 1 + phi * (alpha - 1), 1 + phi * (GAMMA - 1))
        if linear
        else (beta**phi, alpha**phi, GAMMA**phi)
    )
    scaled = c * w
    c2 = (
        make_divisible(scaled)
        if channels == "divisible"
        else (int(scaled) if channels == "int" else int(scaled) // 8 * 8)
    )
    return c2, int(depth(n * d)), round(r * g)


COMPOUND_SCALING = Exercise(
    name="compound_scale",
    task="a stage scaled by phi: (channels to a multiple of 8, layers rounded up, resolution) with "
    "alpha = 1.2 (depth), beta = 1.1 (width), gamma = 1.15 (resolution)",
    reference=compound_scale,
    cases=lambda: rungs(
        [
            Case("B0's stage 3 (40 channels, 2 layers) at 224 px, phi = 1", (40, 2, 224, 1.0)),
            Case("B0's stage 6 (192 channels, 4 layers) at 224 px, phi = 3", (192, 4, 224, 3.0)),
            Case("a 24-channel stage of 2 layers, phi = 2", (24, 2, 224, 2.0)),
            Case("a 16-channel stage of a single layer, phi = 5", (16, 1, 224, 5.0)),
        ],
        "phi = 3 (look at the powers: alpha ** phi, not alpha * phi or 1 + phi (alpha - 1))",
        "another stage (look at the rounding of channels: to the nearest multiple of 8, never more than 10% below)",
        "phi = 5 on a single layer (look at the depth: rounded up, ceil(layers * alpha ** phi))",
    ),
    mistakes={
        "no_rounding": Mistake(
            "round channels to the nearest multiple of 8 (never more than 10% down), as make_divisible does",
            lambda *a: _compound(*a, channels="int"),
        ),
        "floor_to_8": Mistake(
            "round channels to the *nearest* multiple of 8, not down", lambda *a: _compound(*a, channels="floor8")
        ),
        "depth_not_up": Mistake(
            "layers round *up*: ceil(layers * alpha^phi), not down or to the nearest",
            lambda *a: _compound(*a, depth=math.floor),
        ),
        "swapped": Mistake(
            "alpha = 1.2 scales depth and beta = 1.1 scales width, not the other way round",
            lambda *a: _compound(*a, alpha=BETA, beta=ALPHA),
        ),
        "linear": Mistake(
            "the multipliers are powers: alpha^phi, not 1 + phi (alpha - 1)", lambda *a: _compound(*a, linear=True)
        ),
    },
    rtol=0,
    atol=0,
)
