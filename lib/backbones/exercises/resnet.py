"""Exercises of the ResNet chapter: a residual block's forward pass, the chain rule with and
without skips, and filter normalisation of a loss-landscape direction."""
from __future__ import annotations

import torch
from torch import nn

from backbones.exercises.core import Case, Exercise, Mistake
from backbones.landscape import filter_normalize
from backbones.models.resnet import BasicBlock, PadShortcut, conv1x1

# A residual block's forward pass ---------------------------------------------------------------


def residual_block_forward(x: torch.Tensor, block: BasicBlock) -> torch.Tensor:
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    return block.relu(out + identity)


def _block(in_channels: int, out_channels: int, stride: int, shortcut: str, seed: int) -> BasicBlock:
    """A seeded block in eval mode, with batch norms that are not the identity."""
    torch.manual_seed(seed)
    downsample = None
    if shortcut == "projection":
        downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    elif shortcut == "pad":
        downsample = PadShortcut(in_channels, out_channels, stride)
    block = BasicBlock(in_channels, out_channels, stride=stride, downsample=downsample)
    for bn in block.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.normal_(0, 0.2)
            bn.running_mean.normal_(0, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    return block.eval()


def _block_cases() -> list[Case]:
    cases = []
    for label, batch, c_in, c_out, stride, size, shortcut, seed in [
        ("a block of 16 channels, identity shortcut", 4, 16, 16, 1, 8, None, 0),
        ("a batch of one", 1, 8, 8, 1, 6, None, 1),
        ("a stride-2 block, 16 to 32 channels, projection shortcut, odd size 7x7", 3, 16, 32, 2, 7, "projection", 2),
        ("a stride-2 block with the option-A (zero-padding) shortcut", 2, 8, 16, 2, 8, "pad", 3),
    ]:
        block = _block(c_in, c_out, stride, shortcut, seed)
        x = torch.randn(batch, c_in, size, size, generator=torch.Generator().manual_seed(seed + 10))
        cases.append(Case(label, (x, block)))
    return cases


def _branch(x, b, relu_between=True):
    out = b.bn1(b.conv1(x))
    out = b.relu(out) if relu_between else out
    return b.bn2(b.conv2(out))


def _shortcut(x, b):
    return x if b.downsample is None else b.downsample(x)


RESIDUAL_BLOCK = Exercise(
    name="residual_block_forward",
    task="relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut projecting when the shape changes",
    reference=residual_block_forward,
    cases=_block_cases,
    mistakes={
        "no_skip": Mistake("you left out the skip connection: add the shortcut (x, or block.downsample(x)) "
                           "to the branch's output", lambda x, b: b.relu(_branch(x, b))),
        "skip_after_relu": Mistake("you added the skip after the final ReLU; the paper adds it before: "
                                   "relu(F(x) + shortcut(x))", lambda x, b: b.relu(_branch(x, b)) + _shortcut(x, b)),
        "no_projection": Mistake("when the block changes the shape (stride 2, more channels) the shortcut must "
                                 "be block.downsample(x), not x", lambda x, b: b.relu(_branch(x, b) + x)),
        "no_inner_relu": Mistake("the ReLU between the two convolutions is missing",
                                 lambda x, b: b.relu(_branch(x, b, relu_between=False) + _shortcut(x, b))),
        "no_final_relu": Mistake("the final ReLU is missing: the block returns relu(F(x) + shortcut(x))",
                                 lambda x, b: _branch(x, b) + _shortcut(x, b)),
        "bn_after_add": Mistake("the second batch norm belongs to the branch, before the addition, not after it",
                                lambda x, b: b.relu(b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x)))) + _shortcut(x, b)))),
    },
)


# The chain rule with and without skips -----------------------------------------------------------

def chain_gradient(local_gradients: torch.Tensor, skip: bool) -> torch.Tensor:
    factors = 1 + local_gradients if skip else local_gradients
    return factors.prod()


def _chain_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case("20 layers without skips", (0.5 + torch.rand(20, generator=g) * 0.4, False)),
        Case("20 layers with skips", (0.5 + torch.rand(20, generator=g) * 0.4, True)),
        Case("a chain of one layer", (torch.tensor([0.3]), True)),
        Case("56 small local gradients without skips (they vanish)", (torch.full((56,), 0.2), False)),
        Case("56 small local gradients with skips", (torch.full((56,), 0.02), True)),
        Case("negative local gradients", (torch.tensor([-0.5, 0.8, -1.2, 0.3]), False)),
    ]


CHAIN_GRADIENT = Exercise(
    name="chain_gradient",
    task="dz/dx for a chain of layers: the product of the local gradients, each plus one where a skip adds the identity",
    reference=chain_gradient,
    cases=_chain_cases,
    mistakes={
        "sum": Mistake("you added the local gradients; the chain rule multiplies them",
                       lambda g, skip: (1 + g if skip else g).sum()),
        "skip_ignored": Mistake("with a skip, y = x + f(x), so each local factor is (1 + f'(x)): you left out the 1",
                                lambda g, skip: g.prod()),
        "one_outside": Mistake("the skip adds 1 to every factor, (1 + g1)(1 + g2)..., not 1 to the product",
                               lambda g, skip: 1 + g.prod() if skip else g.prod()),
        "always_one": Mistake("without skips there is no identity path: the factors are the local gradients alone",
                              lambda g, skip: (1 + g).prod()),
        "last_only": Mistake("the gradient at the input goes through every layer, not only the last one",
                             lambda g, skip: (1 + g[-1]) if skip else g[-1]),
        "mean": Mistake("you averaged the local gradients; the chain rule multiplies them",
                        lambda g, skip: (1 + g if skip else g).mean()),
    },
    rtol=1e-5,
    atol=1e-12,
)


# Filter normalisation ------------------------------------------------------------------------------

def _normalize_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def pair(*shape):
        return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g) * 0.3

    return [
        Case("a convolution weight (8, 4, 3, 3)", pair(8, 4, 3, 3)),
        Case("a linear weight (10, 16)", pair(10, 16)),
        Case("a single filter (1, 3, 3, 3)", pair(1, 3, 3, 3)),
        Case("a bias (8,)", pair(8)),
        Case("a batch-norm weight (16,)", pair(16)),
    ]


def _norms(t: torch.Tensor, dims) -> torch.Tensor:
    return torch.linalg.vector_norm(t, dim=dims, keepdim=True)


def _filter_dims(w):
    return tuple(range(1, w.ndim))


FILTER_NORMALIZE = Exercise(
    name="filter_normalize",
    task="each filter (slice along dim 0) of the direction rescaled to the norm of the same filter of the weight; "
         "zero for biases and BN parameters",
    reference=filter_normalize,
    cases=_normalize_cases,
    mistakes={
        "layer_wise": Mistake("you normalised the whole layer at once; Li et al. normalise each filter "
                              "(each slice along dim 0) separately",
                              lambda d, w: torch.zeros_like(w) if w.ndim <= 1 else d * w.norm() / d.norm()),
        "unit_norm": Mistake("each filter of the direction must get the norm of the weight's filter, "
                             "not norm 1: multiply by ||w_filter||",
                             lambda d, w: torch.zeros_like(w) if w.ndim <= 1 else d / _norms(d, _filter_dims(w))),
        "inverted": Mistake("the scale is upside down: d * ||w|| / ||d||, not d * ||d|| / ||w||",
                            lambda d, w: torch.zeros_like(w) if w.ndim <= 1
                            else d * _norms(d, _filter_dims(w)) / _norms(w, _filter_dims(w))),
        "bias_kept": Mistake("biases and batch-norm parameters (1-D tensors) get a zero direction",
                             lambda d, w: d if w.ndim <= 1 else filter_normalize(d, w)),
        "input_channels": Mistake("you normalised along the input channels (dim 1); a filter is a slice along "
                                  "dim 0, the output channels",
                                  lambda d, w: torch.zeros_like(w) if w.ndim <= 1
                                  else d * _norms(w, (0,) + _filter_dims(w)[1:]) / _norms(d, (0,) + _filter_dims(w)[1:])),
    },
)
