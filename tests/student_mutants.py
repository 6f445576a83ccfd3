"""The book's mutation suite (issue 27, item 6): wrong implementations of every exercise, written
the way students write them and *outside* the exercise's catalogue of mistakes, and right ones
written differently from the reference (a loop, einsum, ``unfold``, float64 inside).

Every wrong one must be rejected; every right one must pass; the share of wrong ones that the
check names (a catalogued mistake) or localises (a rung of the ladder, a probe) is measured by
``tests/test_mutants.py`` and recorded by ``benchmarks/mutation_suite.py``. A function's
docstring says what the student did.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

WRONG: dict[str, list[Callable]] = {}
RIGHT: dict[str, list[Callable]] = {}


def wrong(exercise: str):
    def register(fn):
        WRONG.setdefault(exercise, []).append(fn)
        return fn

    return register


def right(exercise: str):
    def register(fn):
        RIGHT.setdefault(exercise, []).append(fn)
        return fn

    return register


INF = float("-inf")

# top_k_accuracy ------------------------------------------------------------------------------------


@wrong("top_k_accuracy")
def topk_smallest(logits, labels, k=1):
    """argsort sorts ascending: the k *smallest* scores"""
    return (logits.argsort(dim=1)[:, :k] == labels[:, None]).any(1).float().mean().item()


@wrong("top_k_accuracy")
def topk_count(logits, labels, k=1):
    """returns how many rows hit, not the fraction"""
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(1).sum().item()


@wrong("top_k_accuracy")
def topk_dim0(logits, labels, k=1):
    """topk over the batch"""
    top = logits.topk(min(k, logits.shape[0]), dim=0).indices.T
    return (top == labels[:, None]).any(1).float().mean().item()


@wrong("top_k_accuracy")
def topk_no_unsqueeze(logits, labels, k=1):
    """compares (B, k) with (B,): broadcasts against the wrong axis"""
    return (logits.topk(k, dim=1).indices == labels).any(1).float().mean().item()


@wrong("top_k_accuracy")
def topk_argmax_only(logits, labels, k=1):
    """k ignored: top-1 always"""
    return (logits.argmax(1) == labels).float().mean().item()


@wrong("top_k_accuracy")
def topk_fixed_batch(logits, labels, k=1):
    """divides by the first case's batch size"""
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(1).sum().item() / 64


@wrong("top_k_accuracy")
def topk_percent(logits, labels, k=1):
    """a percentage"""
    return 100 * (logits.topk(k, dim=1).indices == labels[:, None]).any(1).float().mean().item()


@wrong("top_k_accuracy")
def topk_squeezed(logits, labels, k=1):
    """squeeze() to tidy the shape, which breaks k = 1"""
    top = logits.topk(k, dim=1).indices.squeeze()
    return (top == labels[:, None]).any(-1).float().mean().item()


@right("top_k_accuracy")
def topk_rank(logits, labels, k=1):
    """the label's rank: how many scores beat it"""
    beaten_by = (logits > logits.gather(1, labels[:, None])).sum(1)
    return (beaten_by < k).double().mean().item()


@right("top_k_accuracy")
def topk_loop(logits, labels, k=1):
    """a loop over the rows"""
    hits = sum(int(labels[i]) in logits[i].argsort(descending=True)[:k].tolist() for i in range(len(labels)))
    return hits / len(labels)


# cross_entropy -------------------------------------------------------------------------------------


@wrong("cross_entropy")
def ce_log_of_softmax(logits, labels):
    """log(softmax): exact until a probability underflows to 0"""
    return -torch.log(logits.softmax(1))[torch.arange(len(labels)), labels].mean()


@wrong("cross_entropy")
def ce_dim0(logits, labels):
    """log-softmax over the batch"""
    return -logits.log_softmax(0)[torch.arange(len(labels)), labels].mean()


@wrong("cross_entropy")
def ce_all_pairs(logits, labels):
    """logits[:, labels] picks a (B, B) block"""
    return -logits.log_softmax(1)[:, labels].mean()


@wrong("cross_entropy")
def ce_no_minus(logits, labels):
    """forgot the minus"""
    return logits.log_softmax(1).gather(1, labels[:, None]).mean()


@wrong("cross_entropy")
def ce_one_hot_inferred(logits, labels):
    """one_hot guesses the number of classes from the labels"""
    return -(F.one_hot(labels) * logits.log_softmax(1)).sum(1).mean()


@wrong("cross_entropy")
def ce_mean_over_classes(logits, labels):
    """the mean over every entry of the one-hot product"""
    return -(F.one_hot(labels, logits.shape[1]) * logits.log_softmax(1)).mean()


@wrong("cross_entropy")
def ce_lse_wrong_axis(logits, labels):
    """logsumexp over the batch"""
    return logits.logsumexp(0).mean() - logits.gather(1, labels[:, None]).mean()


@wrong("cross_entropy")
def ce_no_normaliser(logits, labels):
    """minus the label's logit, without the log of the sum"""
    return -logits.gather(1, labels[:, None]).mean()


@right("cross_entropy")
def ce_logsumexp(logits, labels):
    """logsumexp minus the label's logit"""
    return (logits.logsumexp(1) - logits.gather(1, labels[:, None]).squeeze(1)).mean()


@right("cross_entropy")
def ce_shifted(logits, labels):
    """the maximum subtracted by hand, in float64"""
    z = logits.double() - logits.double().max(1, keepdim=True).values
    return (z.exp().sum(1).log() - z[torch.arange(len(labels)), labels]).mean().float()


# receptive_field -----------------------------------------------------------------------------------


@wrong("receptive_field")
def rf_sum_of_kernels(layers):
    """adds the kernels"""
    return sum(k for k, s, d in layers)


@wrong("receptive_field")
def rf_no_jump(layers):
    """the strides ignored"""
    return 1 + sum(d * (k - 1) for k, s, d in layers)


@wrong("receptive_field")
def rf_jump_first(layers):
    """the jump updated before the layer is added"""
    rf, jump = 1, 1
    for k, s, d in layers:
        jump *= s
        rf += d * (k - 1) * jump
    return rf


@wrong("receptive_field")
def rf_no_dilation(layers):
    """dilation ignored"""
    rf, jump = 1, 1
    for k, s, _d in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


@wrong("receptive_field")
def rf_from_zero(layers):
    """starts from 0 pixels"""
    rf, jump = 0, 1
    for k, s, d in layers:
        rf += d * (k - 1) * jump
        jump *= s
    return rf


@wrong("receptive_field")
def rf_dilated_kernel(layers):
    """the dilated kernel taken as k * d"""
    rf, jump = 1, 1
    for k, s, d in layers:
        rf += (k * d - 1) * jump
        jump *= s
    return rf


@wrong("receptive_field")
def rf_reversed(layers):
    """walks the layers from the top"""
    rf, jump = 1, 1
    for k, s, d in reversed(layers):
        rf += d * (k - 1) * jump
        jump *= s
    return rf


@wrong("receptive_field")
def rf_last_stride(layers):
    """multiplies by the stride of the current layer only"""
    rf = 1
    for k, s, d in layers:
        rf += d * (k - 1) * s
    return rf


@right("receptive_field")
def rf_backwards(layers):
    """the top-down recurrence r = s r + (k_eff - s)"""
    r = 1
    for k, s, d in reversed(layers):
        r = s * r + (d * (k - 1) + 1 - s)
    return r


# conv_params ---------------------------------------------------------------------------------------


@wrong("conv_params")
def params_k_once(i, o, k, bias=True):
    """k, not k squared"""
    return i * o * k + (o if bias else 0)


@wrong("conv_params")
def params_bias_per_input(i, o, k, bias=True):
    """one bias per input channel"""
    return i * o * k * k + (i if bias else 0)


@wrong("conv_params")
def params_bias_always(i, o, k, bias=True):
    """the bias flag not read"""
    return i * o * k * k + o


@wrong("conv_params")
def params_one_bias(i, o, k, bias=True):
    """a single bias"""
    return i * o * k * k + int(bias)


@wrong("conv_params")
def params_added_channels(i, o, k, bias=True):
    """channels added, not multiplied"""
    return (i + o) * k * k + (o if bias else 0)


@wrong("conv_params")
def params_no_inputs(i, o, k, bias=True):
    """one k x k filter per output channel, the inputs forgotten"""
    return o * k * k + (o if bias else 0)


@wrong("conv_params")
def params_bias_per_weight(i, o, k, bias=True):
    """a bias per filter position"""
    return i * o * k * k + (o * k * k if bias else 0)


@wrong("conv_params")
def params_depthwise(i, o, k, bias=True):
    """counted as if every output channel read one input"""
    return max(i, o) * k * k + (o if bias else 0)


@right("conv_params")
def params_per_filter(i, o, k, bias=True):
    """(weights of one filter + its bias) per output channel"""
    return (i * k * k + bias) * o


@right("conv_params")
def params_from_torch(i, o, k, bias=True):
    """torch counts them"""
    return sum(p.numel() for p in nn.Conv2d(i, o, k, bias=bias).parameters())


# vgg_block -----------------------------------------------------------------------------------------


@wrong("vgg_block")
def vgg_no_padding(c_in, c_out, n):
    """padding 0"""
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


@wrong("vgg_block")
def vgg_same_input(c_in, c_out, n):
    """every convolution from in_channels"""
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


@wrong("vgg_block")
def vgg_pool3(c_in, c_out, n):
    """AlexNet's overlapping 3x3 pool"""
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(3, 2))


@wrong("vgg_block")
def vgg_relu_first(c_in, c_out, n):
    """the ReLU before the convolution"""
    layers = []
    for i in range(n):
        layers += [nn.ReLU(), nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1)]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


@wrong("vgg_block")
def vgg_avg_pool(c_in, c_out, n):
    """average pooling"""
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AvgPool2d(2, 2))


@wrong("vgg_block")
def vgg_pool_stride1(c_in, c_out, n):
    """the pool's stride left at 1"""
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, stride=1))


@wrong("vgg_block")
def vgg_5x5(c_in, c_out, n):
    """5x5 kernels"""
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 5, padding=2), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


@wrong("vgg_block")
def vgg_one_conv_fewer(c_in, c_out, n):
    """range(1, n): one convolution short"""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()] if n == 1 else []
    for i in range(1, n):
        layers += [nn.Conv2d(c_in if i == 1 else c_out, c_out, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


@right("vgg_block")
def vgg_same_padding(c_in, c_out, n):
    """padding='same', an in-place ReLU, appended one by one"""
    block = nn.Sequential()
    for i in range(n):
        block.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, kernel_size=3, padding="same"))
        block.append(nn.ReLU(inplace=True))
    block.append(nn.MaxPool2d(kernel_size=2))
    return block


# conv_output_size ----------------------------------------------------------------------------------


@wrong("conv_output_size")
def out_no_plus_one(size, k, s=1, p=0, d=1):
    """forgot the + 1"""
    return (size + 2 * p - d * (k - 1) - 1) // s


@wrong("conv_output_size")
def out_pad_once(size, k, s=1, p=0, d=1):
    """padding added on one side only"""
    return (size + p - d * (k - 1) - 1) // s + 1


@wrong("conv_output_size")
def out_round(size, k, s=1, p=0, d=1):
    """round, not floor"""
    return round((size + 2 * p - d * (k - 1) - 1) / s) + 1


@wrong("conv_output_size")
def out_ceil(size, k, s=1, p=0, d=1):
    """ceil"""
    return math.ceil((size + 2 * p - d * (k - 1) - 1) / s) + 1


@wrong("conv_output_size")
def out_dilated_k(size, k, s=1, p=0, d=1):
    """the dilated kernel taken as d * k"""
    return (size + 2 * p - d * k) // s + 1


@wrong("conv_output_size")
def out_float(size, k, s=1, p=0, d=1):
    """true division"""
    return (size + 2 * p - d * (k - 1) - 1) / s + 1


@wrong("conv_output_size")
def out_stride_only(size, k, s=1, p=0, d=1):
    """size / stride"""
    return size // s


@wrong("conv_output_size")
def out_divide_all(size, k, s=1, p=0, d=1):
    """the + 1 inside the division"""
    return (size + 2 * p - d * (k - 1)) // s


@right("conv_output_size")
def out_torch(size, k, s=1, p=0, d=1):
    """a convolution run on zeros"""
    return nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), None, s, p, d).shape[-1]


@right("conv_output_size")
def out_int(size, k, s=1, p=0, d=1):
    """math.floor of a float"""
    return math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1


# residual_block_forward ----------------------------------------------------------------------------


def _shortcut(x, block):
    return x if block.downsample is None else block.downsample(x)


@wrong("residual_block_forward")
def res_relu_before_add(x, block):
    """a ReLU after bn2 as well"""
    out = block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))
    return block.relu(out + _shortcut(x, block))


@wrong("residual_block_forward")
def res_no_final_relu(x, block):
    """no ReLU after the addition"""
    return block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))) + _shortcut(x, block)


@wrong("residual_block_forward")
def res_identity_always(x, block):
    """the shortcut always x"""
    return block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))) + x))


@wrong("residual_block_forward")
def res_shortcut_of_out(x, block):
    """the downsample applied to the branch"""
    out = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    return block.relu(out + (x if block.downsample is None else block.downsample(out)))


@wrong("residual_block_forward")
def res_no_bn2(x, block):
    """bn2 forgotten"""
    return block.relu(block.conv2(block.relu(block.bn1(block.conv1(x)))) + _shortcut(x, block))


@wrong("residual_block_forward")
def res_relu_shortcut(x, block):
    """a ReLU on each path, then the sum"""
    out = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    return block.relu(out) + block.relu(_shortcut(x, block))


@wrong("residual_block_forward")
def res_train_mode(x, block):
    """block.train() "to be safe": batch statistics, and the model left training"""
    block.train()
    return block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))) + _shortcut(x, block))


@wrong("residual_block_forward")
def res_bn_first(x, block):
    """conv and bn2 swapped in the second layer"""
    return block.relu(block.conv2(block.bn2(block.relu(block.bn1(block.conv1(x))))) + _shortcut(x, block))


@right("residual_block_forward")
def res_functional(x, block):
    """F.relu and an in-place add"""
    out = F.relu(block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    out += x if block.downsample is None else block.downsample(x)
    return F.relu(out)


# chain_gradient ------------------------------------------------------------------------------------


@wrong("chain_gradient")
def chain_sum(g, skip):
    """a sum"""
    return (1 + g).sum() if skip else g.sum()


@wrong("chain_gradient")
def chain_plus_one_after(g, skip):
    """the skip adds 1 to the product"""
    return g.prod() + 1 if skip else g.prod()


@wrong("chain_gradient")
def chain_logs(g, skip):
    """the product through logs"""
    f = 1 + g if skip else g
    return f.log().sum().exp()


@wrong("chain_gradient")
def chain_skip_ignored(g, skip):
    """skip not read"""
    return g.prod()


@wrong("chain_gradient")
def chain_from_zero(g, skip):
    """a loop that starts from 0"""
    out = torch.tensor(0.0)
    for x in g:
        out = out * (1 + x if skip else x)
    return out


@wrong("chain_gradient")
def chain_inverted(g, skip):
    """the condition inverted"""
    return g.prod() if skip else (1 + g).prod()


@wrong("chain_gradient")
def chain_mean(g, skip):
    """the mean factor"""
    return (1 + g).mean() if skip else g.mean()


@wrong("chain_gradient")
def chain_abs(g, skip):
    """magnitudes"""
    return ((1 + g) if skip else g).abs().prod()


@right("chain_gradient")
def chain_loop(g, skip):
    """a loop from 1"""
    out = torch.ones((), dtype=g.dtype)
    for x in g:
        out = out * (1 + x if skip else x)
    return out


@right("chain_gradient")
def chain_cumprod(g, skip):
    """the last cumulative product"""
    return torch.cumprod(g + 1 if skip else g, 0)[-1]


# filter_normalize ----------------------------------------------------------------------------------


@wrong("filter_normalize")
def fn_whole(direction, weight):
    """one norm for the whole tensor"""
    return direction * weight.norm() / direction.norm()


@wrong("filter_normalize")
def fn_dim1(direction, weight):
    """the norm over dim 1 only"""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    return direction * weight.norm(dim=1, keepdim=True) / direction.norm(dim=1, keepdim=True)


@wrong("filter_normalize")
def fn_bias_kept(direction, weight):
    """biases normalised like filters"""
    dims = tuple(range(1, weight.dim()))
    return direction * weight.norm(dim=dims, keepdim=True) / direction.norm(dim=dims, keepdim=True)


@wrong("filter_normalize")
def fn_inverted(direction, weight):
    """the ratio upside down"""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    dims = tuple(range(1, weight.dim()))
    return direction * direction.norm(dim=dims, keepdim=True) / weight.norm(dim=dims, keepdim=True)


@wrong("filter_normalize")
def fn_dim0(direction, weight):
    """per input channel"""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    return direction * weight.norm(dim=0, keepdim=True) / direction.norm(dim=0, keepdim=True)


@wrong("filter_normalize")
def fn_not_divided(direction, weight):
    """multiplied by the weight's norm, not divided by the direction's"""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    return direction * weight.flatten(1).norm(dim=1).view(-1, *[1] * (weight.dim() - 1))


@wrong("filter_normalize")
def fn_last_axis(direction, weight):
    """the norm over the last axis"""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    return direction * weight.norm(dim=-1, keepdim=True) / direction.norm(dim=-1, keepdim=True)


@wrong("filter_normalize")
def fn_unit(direction, weight):
    """unit filters"""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    dims = tuple(range(1, weight.dim()))
    return direction / direction.norm(dim=dims, keepdim=True)


@right("filter_normalize")
def fn_loop(direction, weight):
    """a loop over the filters"""
    if weight.dim() == 1:
        return torch.zeros_like(direction)
    return torch.stack([d * w.norm() / d.norm() for d, w in zip(direction, weight)])


# layer_gradient_norms ------------------------------------------------------------------------------


def _norms(
    model, x, y, *, key=lambda gi, go: go[0], loss=lambda out, y: F.cross_entropy(out, y), remove=True, flip=True
):
    norms = []
    hooks = [
        layer.register_full_backward_hook(lambda m, gi, go: norms.append(key(gi, go).norm())) for layer in model.layers
    ]
    loss(model(x), y).backward()
    if remove:
        for hook in hooks:
            hook.remove()
    return torch.stack(norms[::-1] if flip else norms).detach()


@wrong("layer_gradient_norms")
def gn_top_first(model, x, y):
    """in the order the hooks fire"""
    return _norms(model, x, y, flip=False)


@wrong("layer_gradient_norms")
def gn_summed_loss(model, x, y):
    """reduction='sum'"""
    return _norms(model, x, y, loss=lambda out, y: F.cross_entropy(out, y, reduction="sum"))


@wrong("layer_gradient_norms")
def gn_hooks_left(model, x, y):
    """the hooks never removed"""
    return _norms(model, x, y, remove=False)


@wrong("layer_gradient_norms")
def gn_nll_on_logits(model, x, y):
    """nll_loss on logits"""
    return _norms(model, x, y, loss=lambda out, y: F.nll_loss(out, y))


@wrong("layer_gradient_norms")
def gn_squared(model, x, y):
    """squared norms"""
    return _norms(model, x, y) ** 2


@wrong("layer_gradient_norms")
def gn_per_sample_mean(model, x, y):
    """the mean absolute gradient, not its norm"""
    norms = []
    hooks = [
        layer.register_full_backward_hook(lambda m, gi, go: norms.append(go[0].abs().mean())) for layer in model.layers
    ]
    F.cross_entropy(model(x), y).backward()
    for hook in hooks:
        hook.remove()
    return torch.stack(norms[::-1]).detach()


@wrong("layer_gradient_norms")
def gn_mse(model, x, y):
    """a squared error against one-hot labels"""
    return _norms(model, x, y, loss=lambda out, y: F.mse_loss(out, F.one_hot(y, out.shape[1]).float()))


@wrong("layer_gradient_norms")
def gn_input_gradient(model, x, y):
    """the gradient at each layer's input"""
    return _norms(model, x, y, key=lambda gi, go: gi[0])


@right("layer_gradient_norms")
def gn_retain_grad(model, x, y):
    """forward hooks keep each output, retain_grad, then read .grad"""
    outputs = []

    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append(output)

    hooks = [layer.register_forward_hook(keep) for layer in model.layers]
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack([o.grad.norm() for o in outputs])


# jacobian_products ---------------------------------------------------------------------------------


def _products(jacobians, *, left=True, eye=None):
    n = jacobians.shape[-1]
    eye = torch.eye(n, dtype=jacobians.dtype) if eye is None else eye
    a, b = eye.clone(), eye.clone()
    for J in jacobians:
        a, b = ((eye + J) @ a, J @ b) if left else (a @ (eye + J), b @ J)
    return a, b


@wrong("jacobian_products")
def jp_right(jacobians):
    """each new Jacobian on the right"""
    return _products(jacobians, left=False)


@wrong("jacobian_products")
def jp_swapped(jacobians):
    """the tuple the other way round"""
    a, b = _products(jacobians)
    return b, a


@wrong("jacobian_products")
def jp_identity_outside(jacobians):
    """I + the product"""
    n = jacobians.shape[-1]
    b = _products(jacobians)[1]
    return torch.eye(n, dtype=jacobians.dtype) + b, b


@wrong("jacobian_products")
def jp_elementwise(jacobians):
    """an elementwise product"""
    n = jacobians.shape[-1]
    return (torch.eye(n, dtype=jacobians.dtype) + jacobians).prod(0), jacobians.prod(0)


@wrong("jacobian_products")
def jp_float32_eye(jacobians):
    """torch.eye(n) in float32"""
    return _products(jacobians, eye=torch.eye(jacobians.shape[-1]))


@wrong("jacobian_products")
def jp_eye3(jacobians):
    """an identity of size 3"""
    return _products(jacobians, eye=torch.eye(3, dtype=jacobians.dtype))


@wrong("jacobian_products")
def jp_multi_dot(jacobians):
    """multi_dot in the layers' order"""
    n = jacobians.shape[-1]
    eye = torch.eye(n, dtype=jacobians.dtype)
    if len(jacobians) == 1:
        return eye + jacobians[0], jacobians[0]
    return torch.linalg.multi_dot(list(eye + jacobians)), torch.linalg.multi_dot(list(jacobians))


@wrong("jacobian_products")
def jp_one_accumulator(jacobians):
    """one variable for both products"""
    eye = torch.eye(jacobians.shape[-1], dtype=jacobians.dtype)
    acc = eye
    for J in jacobians:
        acc = (eye + J) @ acc
        without = J @ acc
    return acc, without


@right("jacobian_products")
def jp_reduce(jacobians):
    """functools.reduce over the flipped stack"""
    eye = torch.eye(jacobians.shape[-1], dtype=jacobians.dtype)
    return (
        functools.reduce(lambda acc, J: acc @ (eye + J), jacobians.flip(0), eye),
        functools.reduce(lambda acc, J: acc @ J, jacobians.flip(0), eye),
    )


# preact_block_forward ------------------------------------------------------------------------------


def _pre(x, block, *, shortcut_of="pre", relu_after=False, bn2=True, order="pre"):
    pre = block.relu(block.bn1(x))
    source = {"pre": pre, "x": x}[shortcut_of]
    shortcut = x if block.shortcut is None else block.shortcut(source)
    if order == "post":
        out = block.relu(block.bn1(block.conv1(x)))
        out = block.bn2(block.conv2(out))
    else:
        out = block.conv1(pre)
        out = block.conv2(block.relu(block.bn2(out)) if bn2 else block.relu(out))
    out = out + shortcut
    return block.relu(out) if relu_after else out


@wrong("preact_block_forward")
def pre_shortcut_of_x(x, block):
    """the projection reads x, not the pre-activated input"""
    return _pre(x, block, shortcut_of="x")


@wrong("preact_block_forward")
def pre_relu_after(x, block):
    """a ReLU after the addition, as in the original block"""
    return _pre(x, block, relu_after=True)


@wrong("preact_block_forward")
def pre_no_bn2(x, block):
    """bn2 forgotten"""
    return _pre(x, block, bn2=False)


@wrong("preact_block_forward")
def pre_identity_always(x, block):
    """the shortcut always x"""
    out = block.conv1(block.relu(block.bn1(x)))
    return block.conv2(block.relu(block.bn2(out))) + x


@wrong("preact_block_forward")
def pre_no_relu1(x, block):
    """bn1 without its ReLU"""
    pre = block.bn1(x)
    shortcut = x if block.shortcut is None else block.shortcut(pre)
    return block.conv2(block.relu(block.bn2(block.conv1(pre)))) + shortcut


@wrong("preact_block_forward")
def pre_residual_of_pre(x, block):
    """the identity shortcut adds the pre-activated input"""
    pre = block.relu(block.bn1(x))
    shortcut = pre if block.shortcut is None else block.shortcut(pre)
    return block.conv2(block.relu(block.bn2(block.conv1(pre)))) + shortcut


@wrong("preact_block_forward")
def pre_added_inside(x, block):
    """the shortcut added inside the branch, before bn2"""
    pre = block.relu(block.bn1(x))
    shortcut = x if block.shortcut is None else block.shortcut(pre)
    return block.conv2(block.relu(block.bn2(block.conv1(pre) + shortcut)))


@wrong("preact_block_forward")
def pre_dropped_branch_relu(x, block):
    """no ReLU between bn2 and conv2"""
    pre = block.relu(block.bn1(x))
    shortcut = x if block.shortcut is None else block.shortcut(pre)
    return block.conv2(block.bn2(block.conv1(pre))) + shortcut


@right("preact_block_forward")
def pre_functional(x, block):
    """F.relu"""
    pre = F.relu(block.bn1(x))
    shortcut = block.shortcut(pre) if block.shortcut is not None else x
    return shortcut + block.conv2(F.relu(block.bn2(block.conv1(pre))))


# squeeze_excitation --------------------------------------------------------------------------------


def _gate(s, w1, b1, w2, b2):
    return torch.sigmoid(F.relu(s @ w1.T + b1) @ w2.T + b2)


@wrong("squeeze_excitation")
def se_square_reshape(x, w1, b1, w2, b2):
    """reshape(B, C, H * H): square maps assumed"""
    B, C, H = x.shape[:3]
    return x * _gate(x.reshape(B, C, H * H).mean(-1), w1, b1, w2, b2)[:, :, None, None]


@wrong("squeeze_excitation")
def se_pool_h(x, w1, b1, w2, b2):
    """avg_pool2d(x, x.shape[2]): a pool of the height"""
    return x * _gate(F.avg_pool2d(x, x.shape[2]).flatten(1), w1, b1, w2, b2)[:, :, None, None]


@wrong("squeeze_excitation")
def se_w1_untransposed(x, w1, b1, w2, b2):
    """s @ w1 without the transpose"""
    s = x.mean((2, 3))
    return x * torch.sigmoid(F.relu(s @ w1 + b1) @ w2 + b2)[:, :, None, None]


@wrong("squeeze_excitation")
def se_no_relu(x, w1, b1, w2, b2):
    """no ReLU between the layers"""
    s = x.mean((2, 3))
    return x * torch.sigmoid((s @ w1.T + b1) @ w2.T + b2)[:, :, None, None]


@wrong("squeeze_excitation")
def se_tanh(x, w1, b1, w2, b2):
    """tanh as the gate"""
    s = x.mean((2, 3))
    return x * torch.tanh(F.relu(s @ w1.T + b1) @ w2.T + b2)[:, :, None, None]


@wrong("squeeze_excitation")
def se_sum(x, w1, b1, w2, b2):
    """the squeeze a sum"""
    return x * _gate(x.sum((2, 3)), w1, b1, w2, b2)[:, :, None, None]


@wrong("squeeze_excitation")
def se_softmax(x, w1, b1, w2, b2):
    """a softmax over the channels"""
    s = x.mean((2, 3))
    return x * (F.relu(s @ w1.T + b1) @ w2.T + b2).softmax(1)[:, :, None, None]


@wrong("squeeze_excitation")
def se_bias_after_relu(x, w1, b1, w2, b2):
    """the first bias after the ReLU"""
    s = x.mean((2, 3))
    return x * torch.sigmoid((F.relu(s @ w1.T) + b1) @ w2.T + b2)[:, :, None, None]


@right("squeeze_excitation")
def se_einsum(x, w1, b1, w2, b2):
    """einsum, with the sides named B, C, W, H"""
    B, C, W, H = x.shape
    s = x.view(B, C, W * H).mean(-1)
    z = F.relu(torch.einsum("bc,rc->br", s, w1) + b1)
    return x * torch.sigmoid(F.linear(z, w2, b2)).view(B, C, 1, 1)


# se_params -----------------------------------------------------------------------------------------


@wrong("se_params")
def sep_no_biases(c, r):
    """no biases"""
    return 2 * c * (c // r)


@wrong("se_params")
def sep_one_bias(c, r):
    """only the second layer's bias"""
    return 2 * c * (c // r) + c


@wrong("se_params")
def sep_times_r(c, r):
    """C * r hidden units"""
    return 2 * c * (c * r) + c * r + c


@wrong("se_params")
def sep_both_small_biases(c, r):
    """both biases of size C / r"""
    return 2 * c * (c // r) + 2 * (c // r)


@wrong("se_params")
def sep_one_layer(c, r):
    """only the squeeze layer"""
    return c * (c // r) + c // r


@wrong("se_params")
def sep_both_large_biases(c, r):
    """both biases of size C"""
    return 2 * c * (c // r) + 2 * c


@wrong("se_params")
def sep_full_second(c, r):
    """the second layer C x C"""
    return c * (c // r) + c // r + c * c + c


@wrong("se_params")
def sep_r_as_width(c, r):
    """r taken as the hidden width"""
    return 2 * c * r + r + c


@right("se_params")
def sep_modules(c, r):
    """two nn.Linear layers counted"""
    return sum(p.numel() for p in nn.Sequential(nn.Linear(c, c // r), nn.Linear(c // r, c)).parameters())


# mbconv_cost ---------------------------------------------------------------------------------------


def _mb(c_in, c_out, t, k, s, size, *, out=None, expand_always=False, dw_on="out", proj_on="out", biases=False):
    hidden = c_in * t
    o = math.ceil(size / s) if out is None else out(size, s)
    expand = expand_always or t != 1
    sizes = {"out": o, "in": size}
    params = (c_in * hidden if expand else 0) + hidden * k * k + hidden * c_out
    if biases:
        params += (hidden if expand else 0) + hidden + c_out
    macs = (
        (size * size * c_in * hidden if expand else 0)
        + sizes[dw_on] ** 2 * hidden * k * k
        + sizes[proj_on] ** 2 * hidden * c_out
    )
    return params, macs


@wrong("mbconv_cost")
def mb_depthwise_on_input(*a):
    """the depthwise cost on the input's size"""
    return _mb(*a, dw_on="in")


@wrong("mbconv_cost")
def mb_expansion_always(*a):
    """an expansion layer even when t = 1"""
    return _mb(*a, expand_always=True)


@wrong("mbconv_cost")
def mb_projection_on_input(*a):
    """the projection on the input's size"""
    return _mb(*a, proj_on="in")


@wrong("mbconv_cost")
def mb_floor_size(*a):
    """the strided size floored"""
    return _mb(*a, out=lambda size, s: size // s)


@wrong("mbconv_cost")
def mb_biases(*a):
    """biases counted, though BN follows each convolution"""
    return _mb(*a, biases=True)


@wrong("mbconv_cost")
def mb_stride_ignored(*a):
    """the stride ignored"""
    return _mb(*a, out=lambda size, s: size)


@wrong("mbconv_cost")
def mb_params_swapped(*a):
    """(multiply-adds, parameters)"""
    params, macs = _mb(*a)
    return macs, params


@wrong("mbconv_cost")
def mb_hidden_from_out(c_in, c_out, t, k, s, size):
    """the hidden width from the output channels"""
    hidden = c_out * t
    o = math.ceil(size / s)
    params = (c_in * hidden if t != 1 else 0) + hidden * k * k + hidden * c_out
    return params, (size * size * c_in * hidden if t != 1 else 0) + o * o * hidden * (k * k + c_out)


@right("mbconv_cost")
def mb_by_formula(c_in, c_out, t, k, s, size):
    """the output size by the convolution formula, padding k // 2"""
    hidden = c_in * t
    o = (size + 2 * (k // 2) - k) // s + 1
    layers = ([(c_in, hidden, 1, size)] if t != 1 else []) + [(1, hidden, k, o), (hidden, c_out, 1, o)]
    params = sum(i * j * kk * kk for i, j, kk, _ in layers)
    return params, sum(i * j * kk * kk * m * m for i, j, kk, m in layers)


# compound_scale ------------------------------------------------------------------------------------


def _div8(v):
    new = max(8, int(v + 4) // 8 * 8)
    return new + 8 if new < 0.9 * v else new


@wrong("compound_scale")
def cs_linear(c, n, r, phi):
    """1 + phi (coefficient - 1)"""
    return _div8(c * (1 + phi * 0.1)), math.ceil(n * (1 + phi * 0.2)), round(r * (1 + phi * 0.15))


@wrong("compound_scale")
def cs_no_divisible(c, n, r, phi):
    """channels rounded to the nearest integer"""
    return round(c * 1.1**phi), math.ceil(n * 1.2**phi), round(r * 1.15**phi)


@wrong("compound_scale")
def cs_round_depth(c, n, r, phi):
    """layers rounded to the nearest"""
    return _div8(c * 1.1**phi), round(n * 1.2**phi), round(r * 1.15**phi)


@wrong("compound_scale")
def cs_swapped(c, n, r, phi):
    """alpha on the width, beta on the depth"""
    return _div8(c * 1.2**phi), math.ceil(n * 1.1**phi), round(r * 1.15**phi)


@wrong("compound_scale")
def cs_truncated_resolution(c, n, r, phi):
    """int() on the resolution"""
    return _div8(c * 1.1**phi), math.ceil(n * 1.2**phi), int(r * 1.15**phi)


@wrong("compound_scale")
def cs_floor8(c, n, r, phi):
    """channels rounded down to a multiple of 8"""
    return int(c * 1.1**phi) // 8 * 8, math.ceil(n * 1.2**phi), round(r * 1.15**phi)


@wrong("compound_scale")
def cs_gamma_times_phi(c, n, r, phi):
    """gamma * phi for the resolution"""
    return _div8(c * 1.1**phi), math.ceil(n * 1.2**phi), round(r * 1.15 * phi)


@wrong("compound_scale")
def cs_floor_depth(c, n, r, phi):
    """layers floored"""
    return _div8(c * 1.1**phi), int(n * 1.2**phi), round(r * 1.15**phi)


@right("compound_scale")
def cs_by_hand(c, n, r, phi):
    """make_divisible written out"""
    return _div8(c * 1.1**phi), math.ceil(n * 1.2**phi), round(r * 1.15**phi)


# analogy_solver ------------------------------------------------------------------------------------


def _scores(vectors, a, b, c, *, normalise=True, target_only=False):
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    if not normalise:
        unit = vectors
    target = unit[b] - unit[a] + unit[c]
    if target_only:
        target, unit = target / target.norm(dim=1, keepdim=True), vectors
    return target @ unit.T


def _exclude(scores, words, value=INF):
    rows = torch.arange(len(scores))
    for w in words:
        scores[rows, w] = value
    return scores


@wrong("analogy_solver")
def an_only_b_c(vectors, a, b, c):
    """excludes b and c, not a"""
    return _exclude(_scores(vectors, a, b, c), (b, c)).argmax(1)


@wrong("analogy_solver")
def an_zero(vectors, a, b, c):
    """excludes with 0"""
    return _exclude(_scores(vectors, a, b, c), (a, b, c), 0.0).argmax(1)


@wrong("analogy_solver")
def an_raw(vectors, a, b, c):
    """raw dot products"""
    return _exclude(_scores(vectors, a, b, c, normalise=False), (a, b, c)).argmax(1)


@wrong("analogy_solver")
def an_sign(vectors, a, b, c):
    """a - b + c"""
    return _exclude(_scores(vectors, b, a, c), (a, b, c)).argmax(1)


@wrong("analogy_solver")
def an_argmin(vectors, a, b, c):
    """argmin of the scores, with +inf for the query words"""
    return _exclude(_scores(vectors, a, b, c), (a, b, c), float("inf")).argmin(1)


@wrong("analogy_solver")
def an_target_only(vectors, a, b, c):
    """the target normalised, the vocabulary not"""
    return _exclude(_scores(vectors, a, b, c, target_only=True), (a, b, c)).argmax(1)


@wrong("analogy_solver")
def an_euclid(vectors, a, b, c):
    """the nearest word by distance, on raw vectors"""
    distance = torch.cdist(vectors[b] - vectors[a] + vectors[c], vectors)
    return _exclude(-distance, (a, b, c)).argmax(1)


@wrong("analogy_solver")
def an_first_question(vectors, a, b, c):
    """the exclusion of the first question applied to all"""
    scores = _scores(vectors, a, b, c)
    scores[:, a[0]] = scores[:, b[0]] = scores[:, c[0]] = INF
    return scores.argmax(1)


@right("analogy_solver")
def an_cosine(vectors, a, b, c):
    """F.cosine_similarity and a scatter of -inf"""
    unit = F.normalize(vectors, dim=1)
    target = unit[b] - unit[a] + unit[c]
    scores = F.cosine_similarity(target[:, None, :], unit[None, :, :], dim=-1)
    scores = scores.scatter(1, torch.stack([a, b, c], 1), INF)
    return scores.argmax(1)


# sgns_loss -----------------------------------------------------------------------------------------


def _pos_neg(centre, context, negatives):
    return (context * centre).sum(-1), torch.einsum("bkd,bd->bk", negatives, centre)


@wrong("sgns_loss")
def sg_naive_log(centre, context, negatives):
    """log(sigmoid(s))"""
    pos, neg = _pos_neg(centre, context, negatives)
    return -(torch.log(torch.sigmoid(pos)) + torch.log(torch.sigmoid(-neg)).sum(-1)).mean()


@wrong("sgns_loss")
def sg_neg_not_negated(centre, context, negatives):
    """log sigmoid of the negatives' scores, not of minus them"""
    pos, neg = _pos_neg(centre, context, negatives)
    return -(F.logsigmoid(pos) + F.logsigmoid(neg).sum(-1)).mean()


@wrong("sgns_loss")
def sg_neg_mean(centre, context, negatives):
    """the mean over the negatives"""
    pos, neg = _pos_neg(centre, context, negatives)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).mean(-1)).mean()


@wrong("sgns_loss")
def sg_sum_pairs(centre, context, negatives):
    """the sum over the pairs"""
    pos, neg = _pos_neg(centre, context, negatives)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).sum()


@wrong("sgns_loss")
def sg_pos_negated(centre, context, negatives):
    """the positive pair negated too"""
    pos, neg = _pos_neg(centre, context, negatives)
    return -(F.logsigmoid(-pos) + F.logsigmoid(-neg).sum(-1)).mean()


@wrong("sgns_loss")
def sg_all_centres(centre, context, negatives):
    """negatives @ centre.T: every negative against every centre"""
    pos = (context * centre).sum(-1)
    neg = negatives @ centre.T  # (B, K, B)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum((1, 2))).mean()


@wrong("sgns_loss")
def sg_no_minus(centre, context, negatives):
    """the log-likelihood, not its negative"""
    pos, neg = _pos_neg(centre, context, negatives)
    return (F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


@wrong("sgns_loss")
def sg_one_negative(centre, context, negatives):
    """only the first negative"""
    pos, neg = _pos_neg(centre, context, negatives)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg[:, 0])).mean()


@right("sgns_loss")
def sg_softplus(centre, context, negatives):
    """softplus: -log sigmoid(s) = softplus(-s)"""
    pos, neg = _pos_neg(centre, context, negatives)
    return (F.softplus(-pos) + F.softplus(neg).sum(-1)).mean()


# patch_tokens --------------------------------------------------------------------------------------


def _with_cls(tokens, cls, first=True):
    cls = cls.expand(len(tokens), 1, -1)
    return torch.cat([cls, tokens] if first else [tokens, cls], 1)


def _grid(images, p, order):
    b, c, h, w = images.shape
    return images.reshape(b, c, h // p, p, w // p, p).permute(*order).reshape(b, -1, c * p * p)


@wrong("patch_tokens")
def pt_reshape(images, p, cls):
    """a reshape straight to (B, N, C p p)"""
    return _with_cls(images.reshape(len(images), -1, images.shape[1] * p * p), cls)


@wrong("patch_tokens")
def pt_column_first(images, p, cls):
    """the grid read column by column"""
    return _with_cls(_grid(images, p, (0, 4, 2, 1, 3, 5)), cls)


@wrong("patch_tokens")
def pt_channels_last(images, p, cls):
    """each patch flattened channel last"""
    return _with_cls(_grid(images, p, (0, 2, 4, 3, 5, 1)), cls)


@wrong("patch_tokens")
def pt_cls_last(images, p, cls):
    """the class token at the end"""
    return _with_cls(_grid(images, p, (0, 2, 4, 1, 3, 5)), cls, first=False)


@wrong("patch_tokens")
def pt_no_cls(images, p, cls):
    """no class token"""
    return _grid(images, p, (0, 2, 4, 1, 3, 5))


@wrong("patch_tokens")
def pt_square(images, p, cls):
    """(H / p) ** 2 patches: square images assumed"""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // p, p, h // p, p).permute(0, 2, 4, 1, 3, 5)
    return _with_cls(x.reshape(b, (h // p) ** 2, c * p * p), cls)


@wrong("patch_tokens")
def pt_unfold_untransposed(images, p, cls):
    """F.unfold's (B, C p p, N) used as it comes"""
    x = F.unfold(images, p, stride=p)
    return _with_cls(x.reshape(len(images), -1, x.shape[1]), cls)


@wrong("patch_tokens")
def pt_cls_added(images, p, cls):
    """the class token added to every patch, as a position embedding is"""
    return _grid(images, p, (0, 2, 4, 1, 3, 5)) + cls


@right("patch_tokens")
def pt_unfold(images, p, cls):
    """F.unfold, transposed"""
    return _with_cls(F.unfold(images, p, stride=p).transpose(1, 2), cls)


@right("patch_tokens")
def pt_tensor_unfold(images, p, cls):
    """Tensor.unfold twice"""
    b, c = images.shape[:2]
    x = images.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
    return _with_cls(x.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p), cls)


# patch_embedding -----------------------------------------------------------------------------------


def _patches(images, p, order=(0, 2, 4, 1, 3, 5)):
    b, c, h, w = images.shape
    return images.reshape(b, c, h // p, p, w // p, p).permute(*order).reshape(b, -1, c * p * p)


@wrong("patch_embedding")
def pe_no_bias(images, weight, bias):
    """the bias forgotten"""
    return _patches(images, weight.shape[-1]) @ weight.flatten(1).T


@wrong("patch_embedding")
def pe_channels_last_weight(images, weight, bias):
    """the weight flattened channel last"""
    return _patches(images, weight.shape[-1]) @ weight.permute(0, 2, 3, 1).flatten(1).T + bias


@wrong("patch_embedding")
def pe_transposed(images, weight, bias):
    """(B, E, N)"""
    return (_patches(images, weight.shape[-1]) @ weight.flatten(1).T + bias).transpose(1, 2)


@wrong("patch_embedding")
def pe_column_first(images, weight, bias):
    """the patches read column by column"""
    return _patches(images, weight.shape[-1], (0, 4, 2, 1, 3, 5)) @ weight.flatten(1).T + bias


@wrong("patch_embedding")
def pe_reshape(images, weight, bias):
    """a reshape straight to patches"""
    b, c = images.shape[:2]
    p = weight.shape[-1]
    return images.reshape(b, -1, c * p * p) @ weight.flatten(1).T + bias


@wrong("patch_embedding")
def pe_square(images, weight, bias):
    """(H / p) ** 2 patches"""
    b, c, h, w = images.shape
    p = weight.shape[-1]
    x = images.reshape(b, c, h // p, p, h // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) ** 2, -1)
    return x @ weight.flatten(1).T + bias


@wrong("patch_embedding")
def pe_untransposed(images, weight, bias):
    """patches @ weight without the transpose"""
    return _patches(images, weight.shape[-1]) @ weight.reshape(-1, weight.shape[0]) + bias


@wrong("patch_embedding")
def pe_bias_per_patch(images, weight, bias):
    """the bias on the patch axis"""
    out = _patches(images, weight.shape[-1]) @ weight.flatten(1).T
    return out + bias.mean()


@right("patch_embedding")
def pe_einsum(images, weight, bias):
    """F.unfold and einsum"""
    patches = F.unfold(images, weight.shape[-1], stride=weight.shape[-1])  # (B, C p p, N)
    return torch.einsum("bkn,ek->bne", patches, weight.flatten(1)) + bias


@right("patch_embedding")
def pe_loop(images, weight, bias):
    """a loop over the patches, in float64"""
    p = weight.shape[-1]
    b, c, h, w = images.shape
    out = [
        torch.einsum("bcij,ecij->be", images[:, :, i : i + p, j : j + p].double(), weight.double()) + bias.double()
        for i in range(0, h, p)
        for j in range(0, w, p)
    ]
    return torch.stack(out, 1).float()


# attention_rollout ---------------------------------------------------------------------------------


def _rollout(attention, *, heads=lambda a: a.mean(1), mix=lambda a, eye: 0.5 * a + 0.5 * eye, left=True):
    result = None
    for weights in attention:
        eye = torch.eye(weights.shape[-1])
        a = mix(heads(weights), eye)
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else (a @ result if left else result @ a)
    return result


@wrong("attention_rollout")
def ro_max_heads(attention):
    """the maximum over heads"""
    return _rollout(attention, heads=lambda a: a.amax(1))


@wrong("attention_rollout")
def ro_no_identity(attention):
    """the residual left out"""
    return _rollout(attention, mix=lambda a, eye: a)


@wrong("attention_rollout")
def ro_not_renormalised(attention):
    """A + I, not renormalised"""
    result = None
    for weights in attention:
        a = weights.mean(1) + torch.eye(weights.shape[-1])
        result = a if result is None else a @ result
    return result


@wrong("attention_rollout")
def ro_first_on_left(attention):
    """the first layer on the left"""
    return _rollout(attention, left=False)


@wrong("attention_rollout")
def ro_last_layer(attention):
    """only the last layer"""
    return _rollout(attention[-1:])


@wrong("attention_rollout")
def ro_sum_layers(attention):
    """the layers summed"""
    eye = torch.eye(attention.shape[-1])
    return sum(0.5 * a.mean(1) + 0.5 * eye for a in attention)


@wrong("attention_rollout")
def ro_batch_mean(attention):
    """the mean over the batch, not the heads"""
    return _rollout(attention, heads=lambda a: a.mean(0))


@wrong("attention_rollout")
def ro_mean_of_layers(attention):
    """the layers averaged after mixing"""
    eye = torch.eye(attention.shape[-1])
    return (0.5 * attention.mean(2) + 0.5 * eye).mean(0)


@right("attention_rollout")
def ro_reduce(attention):
    """the identity mixed per head, then reduce"""
    eye = torch.eye(attention.shape[-1])
    layers = [(0.5 * a + 0.5 * eye).mean(1) for a in attention]
    return functools.reduce(lambda acc, a: a @ acc, layers[1:], layers[0])


# attention -----------------------------------------------------------------------------------------


def _attend(q, k, v, mask=None, *, scale=None, fill=INF, keys=lambda k: k.transpose(-2, -1)):
    scores = q @ keys(k) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores.masked_fill(~mask, fill)
    return scores.softmax(-1) @ v


@wrong("attention")
def at_scale_keys(q, k, v, mask=None):
    """scaled by the number of keys"""
    return _attend(q, k, v, mask, scale=k.shape[-2] ** -0.5)


@wrong("attention")
def at_fill_minus_one(q, k, v, mask=None):
    """masked scores set to -1"""
    return _attend(q, k, v, mask, fill=-1.0)


@wrong("attention")
def at_dot_T(q, k, v, mask=None):
    """k.mT would do; k.transpose(1, 2) assumes three axes"""
    return _attend(q, k, v, mask, keys=lambda k: k.transpose(1, 2))


@wrong("attention")
def at_mask_unsqueezed(q, k, v, mask=None):
    """the mask unsqueezed, as if for the heads"""
    return _attend(q, k, v, None if mask is None else mask.unsqueeze(1))


@wrong("attention")
def at_float32(q, k, v, mask=None):
    """the scores cast to float32"""
    scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, INF)
    return scores.softmax(-1) @ v.float()


@wrong("attention")
def at_weights(q, k, v, mask=None):
    """returns the weights"""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, INF)
    return scores.softmax(-1)


@wrong("attention")
def at_sqrt_dv(q, k, v, mask=None):
    """scaled by the size of a value"""
    return _attend(q, k, v, mask, scale=v.shape[-1] ** -0.5)


@wrong("attention")
def at_mask_indexed(q, k, v, mask=None):
    """the mask used to index, then added as 0/1"""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask.float()
    return scores.softmax(-1) @ v


@right("attention")
def at_einsum(q, k, v, mask=None):
    """einsum and a mask of -1e9"""
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -1e9)
    return torch.einsum("...qk,...kd->...qd", scores.softmax(-1), v)


@right("attention")
def at_manual_softmax(q, k, v, mask=None):
    """the softmax by hand, the maximum subtracted, in float64"""
    s = (q.double() @ k.double().mT) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = torch.where(mask, s, torch.tensor(INF, dtype=s.dtype))
    e = (s - s.amax(-1, keepdim=True)).exp()
    return ((e / e.sum(-1, keepdim=True)) @ v.double()).to(q.dtype)


# split_heads ---------------------------------------------------------------------------------------


@wrong("split_heads")
def sh_head_dim_axes(x, h):
    """(B, H, d, T)"""
    b, t, e = x.shape
    return x.view(b, t, h, e // h).permute(0, 2, 3, 1)


@wrong("split_heads")
def sh_three(x, h):
    """three heads, as in the first example"""
    b, t, e = x.shape
    return x.view(b, t, 3, e // 3).transpose(1, 2)


@wrong("split_heads")
def sh_squeezed(x, h):
    """squeeze() at the end"""
    b, t, e = x.shape
    return x.view(b, t, h, e // h).transpose(1, 2).squeeze()


@wrong("split_heads")
def sh_split_by_size(x, h):
    """split(h): chunks of size h"""
    return torch.stack(x.split(h, -1), 1)


@wrong("split_heads")
def sh_batch_heads(x, h):
    """the heads folded into the batch"""
    b, t, e = x.shape
    return x.view(b, t, h, e // h).transpose(1, 2).reshape(b * h, t, e // h)


@wrong("split_heads")
def sh_time_major(x, h):
    """the tokens taken as the first axis"""
    t, b, e = x.shape
    return x.view(t, b, h, e // h).permute(1, 2, 0, 3)


@wrong("split_heads")
def sh_tokens_into_heads(x, h):
    """transpose first, then view: the tokens cut into heads"""
    b, t, e = x.shape
    return x.transpose(1, 2).reshape(b, h, t, e // h)


@wrong("split_heads")
def sh_size_four(x, h):
    """heads of size 4, as in the first example"""
    b, t, e = x.shape
    return x.view(b, t, -1, 4).transpose(1, 2)


@right("split_heads")
def sh_chunk(x, h):
    """chunk the features and stack"""
    return torch.stack(x.chunk(h, -1), 1)


@right("split_heads")
def sh_unflatten(x, h):
    """unflatten, transpose, contiguous"""
    return x.unflatten(-1, (h, -1)).transpose(1, 2).contiguous()


# merge_heads ---------------------------------------------------------------------------------------


@wrong("merge_heads")
def mh_no_transpose(x):
    """a reshape without the transpose"""
    b, h, t, d = x.shape
    return x.reshape(b, t, h * d)


@wrong("merge_heads")
def mh_view(x):
    """.view after the transpose"""
    b, h, t, d = x.shape
    return x.transpose(1, 2).view(b, t, h * d)


@wrong("merge_heads")
def mh_interleaved(x):
    """the heads interleaved"""
    b, h, t, d = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, t, h * d)


@wrong("merge_heads")
def mh_features_first(x):
    """(B, H, d, T) reshaped"""
    b, h, t, d = x.shape
    return x.transpose(2, 3).reshape(b, t, h * d)


@wrong("merge_heads")
def mh_squeezed(x):
    """squeeze() at the end"""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d).squeeze()


@wrong("merge_heads")
def mh_sum(x):
    """the heads summed"""
    return x.sum(1)


@wrong("merge_heads")
def mh_three(x):
    """three heads assumed"""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, 3 * d)


@wrong("merge_heads")
def mh_cat_tokens(x):
    """the heads concatenated along the tokens"""
    return torch.cat(x.unbind(1), dim=1)


@right("merge_heads")
def mh_cat(x):
    """cat of the heads along the features"""
    return torch.cat(x.unbind(1), dim=-1)


@right("merge_heads")
def mh_flatten(x):
    """transpose, flatten"""
    return x.transpose(1, 2).flatten(2)


# causal_mask ---------------------------------------------------------------------------------------


@wrong("causal_mask")
def cm_upper(t):
    """triu: the future"""
    return torch.triu(torch.ones(t, t, dtype=torch.bool))


@wrong("causal_mask")
def cm_strict(t):
    """j < i: not even itself"""
    return torch.arange(t)[None, :] < torch.arange(t)[:, None]


@wrong("causal_mask")
def cm_float(t):
    """a float mask of ones and zeros"""
    return torch.tril(torch.ones(t, t))


@wrong("causal_mask")
def cm_additive(t):
    """an additive mask (0 and -inf)"""
    return torch.triu(torch.full((t, t), INF), diagonal=1)


@wrong("causal_mask")
def cm_fixed(t):
    """cut from a 5 x 5 mask"""
    return torch.tril(torch.ones(5, 5, dtype=torch.bool))[:t, :t]


@wrong("causal_mask")
def cm_inverted(t):
    """True where masked"""
    return torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)


@wrong("causal_mask")
def cm_rows_cols(t):
    """i <= j"""
    return torch.arange(t)[:, None] <= torch.arange(t)[None, :]


@wrong("causal_mask")
def cm_list(t):
    """a nested list"""
    return [[j <= i for j in range(t)] for i in range(t)]


@right("causal_mask")
def cm_not_triu(t):
    """the complement of the future"""
    return ~torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)


# multi_head_attention ------------------------------------------------------------------------------


def _mha(
    x,
    w,
    b,
    wo,
    bo,
    h,
    mask=None,
    *,
    scale_by="d",
    mask_axis="keys",
    invert=False,
    out_bias=True,
    order="qkv",
    split="ok",
    merge="ok",
):
    B, T, E = x.shape
    d = E // h
    chunks = (x @ w.T + b).chunk(3, -1)
    q, k, v = {"qkv": chunks, "kqv": (chunks[1], chunks[0], chunks[2])}[order]

    def heads(t):
        return t.view(B, T, h, d).transpose(1, 2) if split == "ok" else t.view(B, h, T, d)

    q, k, v = heads(q), heads(k), heads(v)
    s = q @ k.transpose(-2, -1) / math.sqrt({"d": d, "E": E}[scale_by])
    if mask is not None:
        m = ~mask if invert else mask
        m = m[:, None, None, :] if mask_axis == "keys" else m[:, None, :, None]
        s = s.masked_fill(~m, INF)
    o = s.softmax(-1) @ v
    o = o.transpose(1, 2).reshape(B, T, E) if merge == "ok" else o.reshape(B, T, E)
    return o @ wo.T + (bo if out_bias else 0)


@wrong("multi_head_attention")
def mha_scale_e(*a, mask=None):
    """scaled by the width, not the head size"""
    return _mha(*a, mask, scale_by="E")


@wrong("multi_head_attention")
def mha_mask_queries(*a, mask=None):
    """the padding mask on the queries"""
    return _mha(*a, mask, mask_axis="queries")


@wrong("multi_head_attention")
def mha_mask_inverted(*a, mask=None):
    """True taken as padding"""
    return _mha(*a, mask, invert=True)


@wrong("multi_head_attention")
def mha_no_out_bias(*a, mask=None):
    """the output projection's bias forgotten"""
    return _mha(*a, mask, out_bias=False)


@wrong("multi_head_attention")
def mha_kqv(*a, mask=None):
    """the projections in the order k, q, v"""
    return _mha(*a, mask, order="kqv")


@wrong("multi_head_attention")
def mha_split_view(*a, mask=None):
    """heads by view(B, H, T, d)"""
    return _mha(*a, mask, split="view")


@wrong("multi_head_attention")
def mha_merge_reshape(*a, mask=None):
    """heads merged without the transpose"""
    return _mha(*a, mask, merge="reshape")


@wrong("multi_head_attention")
def mha_untransposed_in(x, w, b, wo, bo, h, mask=None):
    """x @ W without the transpose, the weight cut into three square blocks"""
    wq, wk, wv = w.chunk(3, 0)
    return _mha(x, torch.cat([wq.T, wk.T, wv.T]), b, wo, bo, h, mask)


@right("multi_head_attention")
def mha_linear(x, w, b, wo, bo, h, mask=None):
    """F.linear per projection, a loop over heads"""
    B, T, E = x.shape
    d = E // h
    q, k, v = (F.linear(x, wi, bi) for wi, bi in zip(w.chunk(3), b.chunk(3)))
    outs = []
    for i in range(h):
        sl = slice(i * d, (i + 1) * d)
        s = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(d)
        if mask is not None:
            s = s.masked_fill(~mask[:, None, :], INF)
        outs.append(s.softmax(-1) @ v[..., sl])
    return F.linear(torch.cat(outs, -1), wo, bo)


# sinusoidal_encoding -------------------------------------------------------------------------------


def _pe(
    length,
    dim,
    *,
    base=10000.0,
    start=0,
    exponent=lambda i, dim: 2 * i / dim,
    halves=False,
    swap=False,
    dtype=torch.float32,
):
    pe = torch.zeros(length, dim, dtype=dtype)
    for pos in range(length):
        for i in range(dim // 2):
            angle = (pos + start) / base ** exponent(i, dim)
            first, second = (math.cos(angle), math.sin(angle)) if swap else (math.sin(angle), math.cos(angle))
            if halves:
                pe[pos, i], pe[pos, dim // 2 + i] = first, second
            else:
                pe[pos, 2 * i], pe[pos, 2 * i + 1] = first, second
    return pe


@wrong("sinusoidal_encoding")
def pe_exponent_i(length, dim):
    """10000^(i/dim): the pair index not doubled"""
    return _pe(length, dim, exponent=lambda i, dim: i / dim)


@wrong("sinusoidal_encoding")
def pe_base_1000(length, dim):
    """base 1000"""
    return _pe(length, dim, base=1000.0)


@wrong("sinusoidal_encoding")
def pe_from_one(length, dim):
    """positions counted from 1"""
    return _pe(length, dim, start=1)


@wrong("sinusoidal_encoding")
def pe_cos_first(length, dim):
    """cos in the even columns"""
    return _pe(length, dim, swap=True)


@wrong("sinusoidal_encoding")
def pe_not_inverted(length, dim):
    """p * 10000^(2i/dim)"""
    return _pe(length, dim, exponent=lambda i, dim: -2 * i / dim)


@wrong("sinusoidal_encoding")
def pe_odd_exponent(length, dim):
    """the cosines with exponent (2i + 1) / dim"""
    pe = _pe(length, dim)
    for i in range(dim // 2):
        pe[:, 2 * i + 1] = torch.cos(torch.arange(length) / 10000 ** ((2 * i + 1) / dim))
    return pe


@wrong("sinusoidal_encoding")
def pe_float64(length, dim):
    """float64"""
    return _pe(length, dim, dtype=torch.float64)


@wrong("sinusoidal_encoding")
def pe_integer_exponent(length, dim):
    """2 * i // dim: integer division"""
    return _pe(length, dim, exponent=lambda i, dim: 2 * i // dim)


@right("sinusoidal_encoding")
def pe_vectorised(length, dim):
    """exp and log, vectorised"""
    position = torch.arange(length).unsqueeze(1)
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2) / dim)
    pe = torch.empty(length, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
    return pe


# offset_matrix -------------------------------------------------------------------------------------


def _rotation(
    offset,
    dim,
    *,
    sign=1,
    angle_of=lambda offset, f: offset * f,
    freq=lambda i, dim: 10000 ** (-2 * i / dim),
    halves=False,
    minus=True,
):
    m = torch.zeros(dim, dim)
    for i in range(dim // 2):
        a = angle_of(offset, freq(i, dim))
        s, c = math.sin(sign * a), math.cos(a)
        rows = (i, dim // 2 + i) if halves else (2 * i, 2 * i + 1)
        m[rows[0], rows[0]], m[rows[0], rows[1]] = c, s
        m[rows[1], rows[0]], m[rows[1], rows[1]] = -s if minus else s, c
    return m


@wrong("offset_matrix")
def om_backwards(offset, dim):
    """the rotation's sign the other way"""
    return _rotation(offset, dim, sign=-1)


@wrong("offset_matrix")
def om_no_offset(offset, dim):
    """the angle without the offset"""
    return _rotation(offset, dim, angle_of=lambda offset, f: f)


@wrong("offset_matrix")
def om_freq_i(offset, dim):
    """the frequency with i, not 2i"""
    return _rotation(offset, dim, freq=lambda i, dim: 10000 ** (-i / dim))


@wrong("offset_matrix")
def om_halves(offset, dim):
    """the pairs as halves"""
    return _rotation(offset, dim, halves=True)


@wrong("offset_matrix")
def om_no_minus(offset, dim):
    """[[cos, sin], [sin, cos]]"""
    return _rotation(offset, dim, minus=False)


@wrong("offset_matrix")
def om_divided(offset, dim):
    """offset / frequency"""
    return _rotation(offset, dim, angle_of=lambda offset, f: offset / f)


@wrong("offset_matrix")
def om_transposed(offset, dim):
    """M transposed"""
    return _rotation(offset, dim).T


@wrong("offset_matrix")
def om_degrees(offset, dim):
    """the angle in degrees"""
    return _rotation(offset, dim, angle_of=lambda offset, f: math.radians(offset * f))


@right("offset_matrix")
def om_block_diag(offset, dim):
    """block_diag of 2x2 rotations"""
    blocks = []
    for i in range(0, dim, 2):
        a = offset / 10000 ** (i / dim)
        blocks.append(torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]))
    return torch.block_diag(*blocks)


# encoder_block -------------------------------------------------------------------------------------


def _enc(x, b, *, pre=None, residual_of="x", second=True, swap=False, extra_norm=False, mlp_on="updated"):
    n1, n2 = (b.norm2, b.norm1) if swap else (b.norm1, b.norm2)
    pre = b.norm_first if pre is None else pre
    x0 = x
    if pre:
        h = n1(x)
        x = (h if residual_of == "normed" else x) + b.attention(h)
        y = x if mlp_on == "updated" else x0
        out = x + b.mlp(n2(y)) if second else b.mlp(n2(y))
    else:
        x = n1(x + b.attention(x))
        y = x if mlp_on == "updated" else x0
        out = n2(x + b.mlp(y)) if second else n2(b.mlp(y))
    return F.layer_norm(out, out.shape[-1:]) if extra_norm else out


@wrong("encoder_block")
def eb_always_pre(x, block):
    """pre-norm whatever norm_first says"""
    return _enc(x, block, pre=True)


@wrong("encoder_block")
def eb_always_post(x, block):
    """post-norm whatever norm_first says"""
    return _enc(x, block, pre=False)


@wrong("encoder_block")
def eb_norms_swapped(x, block):
    """norm2 before attention, norm1 before the MLP"""
    return _enc(x, block, swap=True)


@wrong("encoder_block")
def eb_normed_residual(x, block):
    """pre-norm that adds to the normalised x"""
    return _enc(x, block, residual_of="normed")


@wrong("encoder_block")
def eb_no_second_residual(x, block):
    """no residual around the MLP"""
    return _enc(x, block, second=False)


@wrong("encoder_block")
def eb_mlp_on_input(x, block):
    """the MLP reads the block's input, not the attention's output"""
    return _enc(x, block, mlp_on="input")


@wrong("encoder_block")
def eb_final_norm(x, block):
    """a final LayerNorm"""
    return _enc(x, block, extra_norm=True)


@wrong("encoder_block")
def eb_inverted_flag(x, block):
    """norm_first read the other way"""
    return _enc(x, block, pre=not block.norm_first)


@right("encoder_block")
def eb_plain(x, block):
    """written out, branch by branch"""
    if block.norm_first:
        x = x + block.attention(block.norm1(x))
        return x + block.mlp(block.norm2(x))
    x = block.norm1(x + block.attention(x))
    return block.norm2(x + block.mlp(x))


# equivariance_gap ----------------------------------------------------------------------------------


@wrong("equivariance_gap")
def eq_positions_shuffled(layer, x, perm, positions):
    """the positions shuffled with the words"""
    with torch.no_grad():
        return (layer(x[:, perm] + positions[perm]) - layer(x + positions)[:, perm]).abs().max()


@wrong("equivariance_gap")
def eq_batch_axis(layer, x, perm, positions):
    """the permutation on the batch axis"""
    p = perm[perm < len(x)]
    with torch.no_grad():
        return (layer(x[p] + positions) - layer(x + positions)[p]).abs().max()


@wrong("equivariance_gap")
def eq_signed(layer, x, perm, positions):
    """the largest signed difference"""
    with torch.no_grad():
        return (layer(x[:, perm] + positions) - layer(x + positions)[:, perm]).max()


@wrong("equivariance_gap")
def eq_mean(layer, x, perm, positions):
    """the mean difference"""
    with torch.no_grad():
        return (layer(x[:, perm] + positions) - layer(x + positions)[:, perm]).abs().mean()


@wrong("equivariance_gap")
def eq_no_positions_second(layer, x, perm, positions):
    """the second run without positions"""
    with torch.no_grad():
        return (layer(x[:, perm] + positions) - layer(x)[:, perm]).abs().max()


@wrong("equivariance_gap")
def eq_norm(layer, x, perm, positions):
    """the norm of the difference"""
    with torch.no_grad():
        return (layer(x[:, perm] + positions) - layer(x + positions)[:, perm]).norm()


@wrong("equivariance_gap")
def eq_positions_after(layer, x, perm, positions):
    """the positions added after the layer"""
    with torch.no_grad():
        return ((layer(x[:, perm]) + positions) - (layer(x) + positions)[:, perm]).abs().max()


@wrong("equivariance_gap")
def eq_inverse(layer, x, perm, positions):
    """the inverse permutation on the output"""
    with torch.no_grad():
        return (layer(x[:, perm] + positions) - layer(x + positions)[:, perm.argsort()]).abs().max()


@right("equivariance_gap")
def eq_amax(layer, x, perm, positions):
    """torch.max of torch.abs, the layer's outputs detached"""
    a = layer(x[:, perm] + positions).detach()
    b = layer(x + positions).detach()[:, perm]
    return torch.max(torch.abs(a - b))
