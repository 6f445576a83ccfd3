"""Exercises of the ResNet chapter: a residual block's forward pass, the chain rule with and
without skips, filter normalisation of a loss-landscape direction, the gradient norm at each
layer (by hooks), the products of layer Jacobians with and without skips, and the pre-activation
block's forward pass."""

from __future__ import annotations

import torch
from torch import nn

from backbones.exercises.core import Case, Exercise, Mistake, Probe, rungs
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
    return _with_random_norms(BasicBlock(in_channels, out_channels, stride=stride, downsample=downsample))


def _with_random_norms(block: nn.Module) -> nn.Module:
    """``block`` in eval mode, its batch norms given statistics and affine terms that are not the identity."""
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
    return rungs(
        cases,
        "a batch of one (look at any squeeze(): a batch of one must stay (1, C, H, W))",
        "stride 2 and a projection shortcut (look at the shortcut: block.downsample(x), not x, when it is set; "
        "the odd size must give 4x4)",
        "the option-A shortcut (look at block.downsample: call it, whatever it is, and add before the last ReLU)",
    )


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
        "no_skip": Mistake(
            "you left out the skip connection: add the shortcut (x, or block.downsample(x)) to the branch's output",
            lambda x, b: b.relu(_branch(x, b)),
        ),
        "skip_after_relu": Mistake(
            "you added the skip after the final ReLU; the paper adds it before: relu(F(x) + shortcut(x))",
            lambda x, b: b.relu(_branch(x, b)) + _shortcut(x, b),
        ),
        "no_projection": Mistake(
            "when the block changes the shape (stride 2, more channels) the shortcut must "
            "be block.downsample(x), not x",
            lambda x, b: b.relu(_branch(x, b) + x),
        ),
        "no_inner_relu": Mistake(
            "the ReLU between the two convolutions is missing",
            lambda x, b: b.relu(_branch(x, b, relu_between=False) + _shortcut(x, b)),
        ),
        "no_final_relu": Mistake(
            "the final ReLU is missing: the block returns relu(F(x) + shortcut(x))",
            lambda x, b: _branch(x, b) + _shortcut(x, b),
        ),
        "bn_after_add": Mistake(
            "the second batch norm belongs to the branch, before the addition, not after it",
            lambda x, b: b.relu(b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x)))) + _shortcut(x, b))),
        ),
    },
)


# The chain rule with and without skips -----------------------------------------------------------


def chain_gradient(local_gradients: torch.Tensor, skip: bool) -> torch.Tensor:
    factors = 1 + local_gradients if skip else local_gradients
    return factors.prod()


def _chain_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return rungs(
        [
            Case("20 layers without skips", (0.5 + torch.rand(20, generator=g) * 0.4, False)),
            Case("20 layers with skips", (0.5 + torch.rand(20, generator=g) * 0.4, True)),
            Case("a chain of one layer", (torch.tensor([0.3]), True)),
            Case("56 small local gradients without skips (they vanish)", (torch.full((56,), 0.2), False)),
            Case("56 small local gradients with skips", (torch.full((56,), 0.02), True)),
            Case("negative local gradients, an odd number of them", (torch.tensor([-0.5, 0.8, -1.2, -0.3]), False)),
        ],
        "skips (look at each factor: a skip makes it 1 + the local gradient)",
        "a chain of one layer (look at the first factor and at what the product starts from: 1)",
        "56 small factors, whose product is ~1e-39 (look at anything that rounds, clamps or sums logs "
        "of the factors: a log of a factor is not defined when it is negative or zero)",
        "skips over small factors (look at 1 + g: the product stays near 1)",
        "negative local gradients (look at abs() or squares: the sign must survive)",
    )


CHAIN_GRADIENT = Exercise(
    name="chain_gradient",
    task="dz/dx for a chain of layers: the product of the local gradients, each plus one where a skip adds "
    "the identity",
    reference=chain_gradient,
    cases=_chain_cases,
    mistakes={
        "sum": Mistake(
            "you added the local gradients; the chain rule multiplies them",
            lambda g, skip: (1 + g if skip else g).sum(),
        ),
        "skip_ignored": Mistake(
            "with a skip, y = x + f(x), so each local factor is (1 + f'(x)): you left out the 1",
            lambda g, skip: g.prod(),
        ),
        "one_outside": Mistake(
            "the skip adds 1 to every factor, (1 + g1)(1 + g2)..., not 1 to the product",
            lambda g, skip: 1 + g.prod() if skip else g.prod(),
        ),
        "always_one": Mistake(
            "without skips there is no identity path: the factors are the local gradients alone",
            lambda g, skip: (1 + g).prod(),
        ),
        "last_only": Mistake(
            "the gradient at the input goes through every layer, not only the last one",
            lambda g, skip: (1 + g[-1]) if skip else g[-1],
        ),
        "mean": Mistake(
            "you averaged the local gradients; the chain rule multiplies them",
            lambda g, skip: (1 + g if skip else g).mean(),
        ),
    },
    rtol=1e-5,
    atol=1e-12,
)


# Filter normalisation ------------------------------------------------------------------------------


def _normalize_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def pair(*shape):
        return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g) * 0.3

    return rungs(
        [
            Case("a convolution weight (8, 4, 3, 3)", pair(8, 4, 3, 3)),
            Case("a linear weight (10, 16)", pair(10, 16)),
            Case("a single filter (1, 3, 3, 3)", pair(1, 3, 3, 3)),
            Case("a bias (8,)", pair(8)),
            Case("a batch-norm weight (16,)", pair(16)),
        ],
        "a 2-D weight (look at the axes you take the norm over: every axis but the first, however many)",
        "a single filter (look at any squeeze(): a (1, 3, 3, 3) weight must keep its shape)",
        "a 1-D bias (look at the rule for 1-D parameters: Li et al. set the direction to zero)",
        "another 1-D parameter (look at what decides '1-D': weight.dim() == 1, not the name)",
    )


def _norms(t: torch.Tensor, dims) -> torch.Tensor:
    return torch.linalg.vector_norm(t, dim=dims, keepdim=True)


def _filter_dims(w):
    return tuple(range(1, w.ndim))


def _diagnose_filter_norms(direction, weight, got: list, expected: list) -> str | None:
    """Each filter of the result must have the norm of the weight's filter and the direction's
    filter's direction: filters of very different norms show which of the two is off."""
    out = got[0]
    if not isinstance(out, torch.Tensor) or out.shape != weight.shape or not torch.isfinite(out).all():
        return None
    out = out.detach().double()
    seen = "(a probe whose weight filters have norms 1, 10 and 100)"
    norms = out.flatten(1).norm(dim=1)
    wanted = weight.double().flatten(1).norm(dim=1)
    if not torch.allclose(norms, wanted, rtol=1e-4):
        shown = ", ".join(f"{n:.3g}" for n in norms.tolist())
        return (
            f"your filters have norms {shown} {seen}, where the weight's filters have 1, 10 and 100: "
            f"take one norm per filter, over every axis but the first, and divide by the direction's"
        )
    cosine = torch.nn.functional.cosine_similarity(out.flatten(1), direction.double().flatten(1), dim=1)
    if not torch.allclose(cosine, torch.ones_like(cosine), atol=1e-5):
        return (
            f"your filters have the right norms but not the direction's directions {seen}:"
            f" rescale each filter of the direction"
        )
    return None


def _normalize_probes() -> list[Probe]:
    g = torch.Generator().manual_seed(5)
    weight = torch.randn(3, 2, 2, 2, generator=g)
    weight = (
        weight
        / weight.flatten(1).norm(dim=1)[:, None, None, None]
        * torch.tensor([1.0, 10.0, 100.0])[:, None, None, None]
    )
    direction = torch.randn(3, 2, 2, 2, generator=g)
    case = Case("weight filters of norms 1, 10 and 100", (direction, weight))
    return [Probe("filter norms", (case,), lambda got, exp: _diagnose_filter_norms(direction, weight, got, exp))]


FILTER_NORMALIZE = Exercise(
    name="filter_normalize",
    task="each filter (slice along dim 0) of the direction rescaled to the norm of the same filter of the weight; "
    "zero for biases and BN parameters",
    forbidden=("backbones.landscape.filter_normalize",),
    reference=filter_normalize,
    cases=_normalize_cases,
    probes=_normalize_probes,
    mistakes={
        "layer_wise": Mistake(
            "you normalised the whole layer at once; Li et al. normalise each filter "
            "(each slice along dim 0) separately",
            lambda d, w: torch.zeros_like(w) if w.ndim <= 1 else d * w.norm() / d.norm(),
        ),
        "unit_norm": Mistake(
            "each filter of the direction must get the norm of the weight's filter, "
            "not norm 1: multiply by ||w_filter||",
            lambda d, w: torch.zeros_like(w) if w.ndim <= 1 else d / _norms(d, _filter_dims(w)),
        ),
        "inverted": Mistake(
            "the scale is upside down: d * ||w|| / ||d||, not d * ||d|| / ||w||",
            lambda d, w: (
                torch.zeros_like(w) if w.ndim <= 1 else d * _norms(d, _filter_dims(w)) / _norms(w, _filter_dims(w))
            ),
        ),
        "bias_kept": Mistake(
            "biases and batch-norm parameters (1-D tensors) get a zero direction",
            lambda d, w: d if w.ndim <= 1 else filter_normalize(d, w),
        ),
        "input_channels": Mistake(
            "you normalised along the input channels (dim 1); a filter is a slice along dim 0, the output channels",
            lambda d, w: (
                torch.zeros_like(w)
                if w.ndim <= 1
                else d * _norms(w, (0,) + _filter_dims(w)[1:]) / _norms(d, (0,) + _filter_dims(w)[1:])
            ),
        ),
    },
)


# Gradient norms per layer, measured with hooks ----------------------------------------------------


def layer_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    norms: list[torch.Tensor] = []

    def keep(module, grad_input, grad_output):
        norms.append(grad_output[0].norm())

    hooks = [layer.register_full_backward_hook(keep) for layer in model.layers]
    try:
        nn.functional.cross_entropy(model(x), y).backward()
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(norms[::-1]).detach()  # the hooks fire from the top down


def _hooked(model, x, y, *, what="grad_output", reverse=True, loss="mean", square=False):
    """The per-layer measurement with one thing changed (each keyword is one mistake)."""
    values: list[torch.Tensor] = []

    def keep(module, grad_input, grad_output):
        g = grad_output[0] if what == "grad_output" else grad_input[0]
        values.append(g.pow(2).sum() if square else g.norm())

    if what == "activation":
        hooks = [layer.register_forward_hook(lambda m, a, out: values.append(out.norm())) for layer in model.layers]
        reverse = False
    else:
        hooks = [layer.register_full_backward_hook(keep) for layer in model.layers]
    try:
        nn.functional.cross_entropy(model(x), y, reduction=loss).backward()
    finally:
        for hook in hooks:
            hook.remove()
    if what == "weight":
        return torch.stack([layer.weight.grad.norm() for layer in model.layers]).detach()
    return torch.stack(values[::-1] if reverse else values).detach()


def _mlp_cases() -> list[Case]:
    from backbones.models.mlp import SigmoidMLP

    cases = []
    for label, depth, residual, batch, seed in [
        ("a plain sigmoid MLP of 8 layers, batch of 16", 8, False, 16, 0),
        ("its residual twin (same weights)", 8, True, 16, 0),
        ("a plain MLP of 12 layers, where the gradient at the bottom is ~1e-10", 12, False, 8, 1),
        ("a residual MLP of 12 layers", 12, True, 8, 1),
        ("a batch of one, 3 layers", 3, False, 1, 2),
    ]:
        plain, twin = SigmoidMLP.twins(seed, in_features=16, width=12, depth=depth, num_classes=5)
        g = torch.Generator().manual_seed(seed + 100)
        cases.append(
            Case(
                label,
                (
                    twin if residual else plain,
                    torch.randn(batch, 16, generator=g),
                    torch.randint(0, 5, (batch,), generator=g),
                ),
            )
        )
    return rungs(
        cases,
        "residual layers (look at where the hook sits: on each of model.layers, whatever its forward does)",
        "12 layers whose bottom gradients are ~1e-10 (look at the order, bottom layer first, and at "
        "anything that rounds or clamps small norms)",
        "a deeper residual model (look at the number of norms: one per layer)",
        "a batch of one (look at the loss: cross-entropy, the mean over the batch)",
    )


GRADIENT_NORMS = Exercise(
    name="layer_gradient_norms",
    task="with a full backward hook on each of model.layers, the norm of the loss gradient at each layer's "
    "output (grad_output[0]), bottom layer first; loss: cross-entropy (mean over the batch)",
    reference=layer_gradient_norms,
    cases=_mlp_cases,
    mistakes={
        "top_down": Mistake(
            "backward hooks fire in backward order, the top layer first: reverse the list so "
            "that index 0 is the bottom layer",
            lambda m, x, y: _hooked(m, x, y, reverse=False),
        ),
        "grad_input": Mistake(
            "grad_input[0] is the gradient at the layer's input; the exercise asks for the "
            "gradient at its output, grad_output[0]",
            lambda m, x, y: _hooked(m, x, y, what="grad_input"),
        ),
        "weight_gradient": Mistake(
            "you measured the gradient of the weights (layer.weight.grad); the exercise "
            "asks for the gradient flowing through the layer's output",
            lambda m, x, y: _hooked(m, x, y, what="weight"),
        ),
        "activations": Mistake(
            "a forward hook sees the activations, not the gradients: register a backward "
            "hook (register_full_backward_hook)",
            lambda m, x, y: _hooked(m, x, y, what="activation"),
        ),
        "squared": Mistake(
            "you returned the squared norm (sum of squares); take its square root, .norm()",
            lambda m, x, y: _hooked(m, x, y, square=True),
        ),
        "summed_loss": Mistake(
            "the loss is summed over the batch, so every gradient is batch-size times too "
            "large: use the mean (F.cross_entropy's default)",
            lambda m, x, y: _hooked(m, x, y, loss="sum"),
        ),
    },
    rtol=1e-3,
    atol=0.0,
)


# The Jacobian of a residual stack --------------------------------------------------------------


def jacobian_products(jacobians: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    identity = torch.eye(jacobians.shape[-1], dtype=jacobians.dtype)
    with_skips, without = identity.clone(), identity.clone()
    for J in jacobians:  # layer 1 first: the chain rule multiplies later layers on the left
        with_skips = (identity + J) @ with_skips
        without = J @ without
    return with_skips, without


def _products(jacobians, *, order="right", identity="matrix", outside=False, elementwise=False):
    n = jacobians.shape[-1]
    eye = torch.eye(n, dtype=jacobians.dtype) if identity == "matrix" else torch.ones(n, n, dtype=jacobians.dtype)
    with_skips, without = (torch.eye(n, dtype=jacobians.dtype), torch.eye(n, dtype=jacobians.dtype))
    if elementwise:
        return (eye + jacobians).prod(0) if not outside else eye + jacobians.prod(0), jacobians.prod(0)
    for J in jacobians:
        if order == "right":
            with_skips, without = (eye + J) @ with_skips, J @ without
        else:
            with_skips, without = with_skips @ (eye + J), without @ J
    if outside:
        with_skips = torch.eye(n, dtype=jacobians.dtype) + without
    return with_skips, without


def _jacobian_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    return rungs(
        [
            Case("6 layers of 3x3 Jacobians of scale 0.3", (0.3 * torch.randn(6, 3, 3, generator=g),)),
            Case("a single layer, 2x2", (torch.randn(1, 2, 2, generator=g),)),
            Case(
                "20 layers, 4x4, small Jacobians (the plain product vanishes)",
                (0.1 * torch.randn(20, 4, 4, generator=g),),
            ),
            Case(
                "the cancelling case: every J close to -I", (-torch.eye(3) + 0.05 * torch.randn(5, 3, 3, generator=g),)
            ),
            Case("float64 Jacobians, 4 layers", (0.5 * torch.randn(4, 3, 3, generator=g, dtype=torch.float64),)),
        ],
        "a single layer of another size (look at the identity: torch.eye of the Jacobians' size, not 3)",
        "20 layers (look at the order of the product: the last layer's Jacobian on the left)",
        "Jacobians close to -I (look at I + J: with skips, these cancel to near zero)",
        "float64 (look at the identity's dtype: make it like the Jacobians', eye(n, dtype=J.dtype))",
    )


JACOBIAN_PRODUCTS = Exercise(
    name="jacobian_products",
    task="for layer Jacobians J_1..J_L (L, n, n), layer 1 first: (prod (I + J_l), prod J_l), each ordered "
    "J_L ... J_1 as the chain rule multiplies them",
    reference=jacobian_products,
    cases=_jacobian_cases,
    mistakes={
        "order": Mistake(
            "matrices do not commute: the chain rule gives J_L ... J_2 J_1 (the last layer on the "
            "left), you multiplied J_1 J_2 ... J_L",
            lambda J: _products(J, order="left"),
        ),
        "ones_not_identity": Mistake(
            "the skip adds the identity matrix I (torch.eye), not a matrix of ones",
            lambda J: _products(J, identity="ones"),
        ),
        "identity_outside": Mistake(
            "the skip adds I to every layer's Jacobian, prod (I + J_l), not I to the product",
            lambda J: _products(J, outside=True),
        ),
        "elementwise": Mistake(
            "you multiplied the matrices element by element (.prod(0)); the chain rule multiplies them as matrices (@)",
            lambda J: _products(J, elementwise=True),
        ),
        "swapped": Mistake(
            "return (with skips, without skips) in that order", lambda J: tuple(reversed(jacobian_products(J)))
        ),
        "sum": Mistake(
            "you added the Jacobians; the chain rule multiplies them",
            lambda J: ((torch.eye(J.shape[-1], dtype=J.dtype) + J).sum(0), J.sum(0)),
        ),
    },
    rtol=1e-4,
    atol=1e-7,
)


# The pre-activation block (He et al. 2016b) ---------------------------------------------------------


def preact_block_forward(x: torch.Tensor, block) -> torch.Tensor:
    out = block.relu(block.bn1(x))
    shortcut = x if block.shortcut is None else block.shortcut(out)
    out = block.conv1(out)
    out = block.conv2(block.relu(block.bn2(out)))
    return out + shortcut


def _preact_block(c_in, c_out, stride, seed):
    from backbones.models.resnet import PreActBlock

    torch.manual_seed(seed)
    return _with_random_norms(PreActBlock(c_in, c_out, stride=stride))


def _preact_cases() -> list[Case]:
    cases = []
    for label, batch, c_in, c_out, stride, size, seed in [
        ("a block of 16 channels, identity shortcut", 4, 16, 16, 1, 8, 0),
        ("a batch of one", 1, 8, 8, 1, 6, 1),
        ("a stride-2 block, 16 to 32 channels, projection shortcut, odd size 7x7", 3, 16, 32, 2, 7, 2),
    ]:
        x = torch.randn(batch, c_in, size, size, generator=torch.Generator().manual_seed(seed + 10))
        cases.append(Case(label, (x, _preact_block(c_in, c_out, stride, seed))))
    return rungs(
        cases,
        "a batch of one (look at any squeeze(): a batch of one must stay (1, C, H, W))",
        "stride 2 and a projection shortcut (look at what the shortcut reads: the pre-activated input, "
        "relu(bn1(x)), when the shape changes)",
    )


def _preact(x, b, *, first=True, final_relu=False, raw_shortcut=False, skip=True, inner=True):
    pre = b.relu(b.bn1(x))
    shortcut = x if b.shortcut is None else b.shortcut(x if raw_shortcut else pre)
    out = b.conv1(pre if first else x)
    out = b.conv2(b.relu(b.bn2(out)) if inner else b.bn2(out))
    out = out + shortcut if skip else out
    return b.relu(out) if final_relu else out


PREACT_BLOCK = Exercise(
    name="preact_block_forward",
    task="He et al. 2016b's block: x + conv2(relu(bn2(conv1(relu(bn1(x)))))); a projection shortcut takes "
    "relu(bn1(x)); nothing after the addition",
    reference=preact_block_forward,
    cases=_preact_cases,
    mistakes={
        "final_relu": Mistake(
            "a ReLU after the addition is the original block's; the pre-activation block "
            "returns x + F(x) with nothing after it, so the identity path stays clean",
            lambda x, b: _preact(x, b, final_relu=True),
        ),
        "no_skip": Mistake(
            "you left out the skip: add the shortcut (x, or block.shortcut(...)) to the branch",
            lambda x, b: _preact(x, b, skip=False),
        ),
        "raw_shortcut": Mistake(
            "the projection shortcut takes the pre-activated input relu(bn1(x)), as in the authors' code, not x",
            lambda x, b: _preact(x, b, raw_shortcut=True),
        ),
        "no_inner_preactivation": Mistake(
            "the second convolution is pre-activated too: conv2(relu(bn2(...)))",
            lambda x, b: _preact(x, b, inner=False),
        ),
        "no_first_preactivation": Mistake(
            "the first convolution takes the pre-activated input relu(bn1(x)), "
            "not x: batch norm and ReLU come before each convolution",
            lambda x, b: _preact(x, b, first=False),
        ),
        "relu_before_bn": Mistake(
            "the pre-activation is relu(bn(x)): batch norm first, then the ReLU",
            lambda x, b: (
                lambda pre: b.conv2(b.relu(b.bn2(b.conv1(pre)))) + (x if b.shortcut is None else b.shortcut(pre))
            )(b.bn1(b.relu(x))),
        ),
    },
)
