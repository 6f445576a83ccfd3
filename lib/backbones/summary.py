"""A network, layer by layer: output shape, parameters and compute, measured by running it.

FLOPs come from torch's own counter (``torch.utils.flop_counter``), which counts a
multiply-add as two operations; torchvision's weight metadata (``_ops``, "GFLOPS") counts it
as one, so its figures are half of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

LAYERS = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


@dataclass(frozen=True)
class LayerRow:
    name: str
    layer: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size[0], module.stride[0]
        return f"conv {k}x{k}/{s}, {module.out_channels}"
    if isinstance(module, nn.Linear):
        return f"linear {module.in_features} -> {module.out_features}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        s = module.stride if isinstance(module.stride, int) else module.stride[0]
        return f"{'max' if isinstance(module, nn.MaxPool2d) else 'avg'} pool {k}x{k}/{s}"
    return type(module).__name__


@torch.no_grad()
def layer_summary(model: nn.Module, *, input_size: int = 224, in_channels: int = 3) -> list[LayerRow]:
    """One row per convolution, linear and pooling layer, in the order the forward pass runs them."""
    outputs: dict[str, tuple[int, ...]] = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module, args, output):  # returns None: a hook that returns a value replaces the output
        outputs.setdefault(names[module], tuple(output.shape[1:]))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, LAYERS)]
    was_training = model.training
    try:
        with FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(1, in_channels, input_size, input_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    flops = {name.split(".", 1)[1]: sum(ops.values()) for name, ops in counter.get_flop_counts().items() if "." in name}
    modules = dict(model.named_modules())
    return [
        LayerRow(
            name,
            _describe(modules[name]),
            shape,
            sum(p.numel() for p in modules[name].parameters()),
            int(flops.get(name, 0)),
        )
        for name, shape in outputs.items()
    ]


def print_summary(rows: list[LayerRow]) -> None:
    """The rows as a table, with totals."""
    print(f"{'layer':14} {'':22} {'output':>16} {'parameters':>12} {'MFLOPs':>9}")
    for row in rows:
        shape = "x".join(str(n) for n in row.output_shape)
        print(f"{row.name:14} {row.layer:22} {shape:>16} {row.params:>12,} {row.flops / 1e6:>9.1f}")
    print(f"{'total':14} {'':22} {'':>16} {sum(r.params for r in rows):>12,} {sum(r.flops for r in rows) / 1e6:>9.1f}")


def multiply_adds(model: nn.Module, resolution: int, *, in_channels: int = 3) -> int:
    """Multiply-adds of one forward pass of one ``resolution`` x ``resolution`` image.

    What papers and torchvision's metadata call "FLOPs" (torchvision's ``_ops``, Tan & Le's
    0.39B for B0) are multiply-adds: half of what torch's counter reports. The model is copied to
    the ``meta`` device, where shapes are computed and no arithmetic is done; a model built there
    (``with torch.device("meta"): model = ...``) skips even the copy and the initialisation, so
    B7 at 600 pixels is counted in a fraction of a second.
    """
    import copy

    on_meta = all(p.is_meta for p in model.parameters())
    meta = (model if on_meta else copy.deepcopy(model).to("meta")).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.zeros(1, in_channels, resolution, resolution, device="meta"))
    return counter.get_total_flops() // 2


@torch.no_grad()
def latency_ms(
    model: nn.Module, resolution: int, *, batch_size: int = 1, repeats: int = 10, warmup: int = 2, in_channels: int = 3
) -> float:
    """Median wall-clock milliseconds of one forward pass, in evaluation mode, on the model's device."""
    import statistics
    import time

    parameter = next(model.parameters())
    x = torch.randn(batch_size, in_channels, resolution, resolution, device=parameter.device)
    model.eval()
    times = []
    for i in range(warmup + repeats):
        if parameter.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if parameter.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
