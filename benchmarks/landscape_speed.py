"""Loss-landscape evaluation speed: grid points per second, ours against the reference approach.

    .venv/bin/python benchmarks/landscape_speed.py            # the chapter's quick setting (CPU)
    .venv/bin/python benchmarks/landscape_speed.py --full     # ResNet-56 on CIFAR-10, 51x51 (a GPU)

The reference is loss-landscape's approach (Li et al. 2018's repository): for every grid point
rebuild each weight as theta* + a*delta + b*eta and loop over a DataLoader of batches of 128
(backbones.landscape.reference_loss_surface). Ours folds batch norm into the convolutions once,
evaluates the data as one channels-last batch and writes the weights in place, in float32 (the
same numbers) or bfloat16. All variants run on the same model, directions and data in the same
run; results go to benchmarks/results/landscape_speed[_full].json with the machine named.

The record also holds the roofline: the floating-point work of one grid point (as counted by
torch's FlopCounterMode, and without the multiplications by a convolution's zero padding, which
oneDNN skips), this machine's measured matrix-multiply peak in float32 and bfloat16, and from
them the fastest any exact evaluation could run: the ceiling on the speed-up over the reference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import backbones as bb
from backbones import landscape

sys.path.insert(0, str(Path(__file__).parent))
from build_times import machine  # noqa: E402  (a sibling script, not part of the library)

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """The machine's dense matrix-multiply throughput in FLOP/s (best of ``repeats``)."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    seconds, _ = timed(lambda: a @ b, repeats)
    return 2 * size**3 / seconds


def trace(model: torch.nn.Module, images: torch.Tensor) -> tuple[float, list[tuple[torch.nn.Module, torch.Size]]]:
    """One forward pass over ``images``: torch's FLOP count, and every convolution and linear
    layer with the shape of its input, in the order they run."""
    calls = []
    hooks = [
        m.register_forward_hook(lambda layer, inputs, output: calls.append((layer, inputs[0].shape)))
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(images)
    for hook in hooks:
        hook.remove()
    return float(counter.get_total_flops()), calls


def flops_without_padding(calls: list[tuple[torch.nn.Module, torch.Size]]) -> float:
    """FLOPs of the traced layers without the taps that fall on a convolution's zero padding
    (which oneDNN skips): the work an exact evaluation cannot avoid."""
    flops = 0.0
    for layer, shape in calls:
        if isinstance(layer, torch.nn.Linear):
            flops += 2 * shape[0] * layer.in_features * layer.out_features
            continue
        taps = torch.nn.functional.conv2d(
            torch.ones(1, 1, *shape[-2:]),
            torch.ones(1, 1, *layer.kernel_size),
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
        )
        flops += 2 * shape[0] * taps.sum().item() * layer.in_channels // layer.groups * layer.out_channels
    return flops


def convolution_floor(
    calls: list[tuple[torch.nn.Module, torch.Size]], dtype: torch.dtype, device: torch.device, repeats: int = 20
) -> float:
    """Seconds per grid point spent in the traced convolutions alone, each timed on its own in
    ``dtype``, channels-last, with the faster of two kernels: one grid point per call, or four grid
    points per call as a grouped convolution (more channels per call keep the vector units busier).
    Elementwise work, the loss and all overhead are left out: no evaluation can be faster."""
    total = 0.0
    for conv, shape in calls:
        if not isinstance(conv, torch.nn.Conv2d):
            continue
        best = float("inf")
        for grid_points in (1, 4):
            x = torch.randn(shape[0], shape[1] * grid_points, *shape[2:], device=device, dtype=dtype)
            x = x.contiguous(memory_format=torch.channels_last)
            w = conv.weight.detach().to(dtype).repeat(grid_points, 1, 1, 1)
            with torch.no_grad():
                seconds, _ = timed(
                    lambda: torch.nn.functional.conv2d(
                        x, w, stride=conv.stride, padding=conv.padding, groups=grid_points
                    ),
                    repeats,
                )
            best = min(best, seconds / grid_points)
        total += best
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="CIFAR-10, 10,000 images, 51x51 grid (a GPU)")
    parser.add_argument("--points", type=int, default=None, help="grid points per side")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("BACKBONES_PROGRESS", "off")
    device = bb.get_device()
    bb.seed_everything(0)
    data = bb.load_image_data("cifar10" if args.full else "digits")
    model = bb.models.cifar_resnet(
        56, in_channels=data.in_channels, num_classes=data.num_classes, zero_init_residual=True
    ).to(device)
    bb.fit(model, data.loaders(64)[0], steps=100, lr=0.05)  # any trained weights do: speed is what we measure
    images, labels = (t.to(device) for t in data.tensors(10_000 if args.full else 512))
    points = args.points or (51 if args.full else 9)
    grid = [np.linspace(-1, 1, points)] * 2
    directions = [landscape.random_direction(model, seed=s) for s in (1, 2)]

    variants = {
        "reference (rebuild weights, DataLoader of 128)": lambda: landscape.reference_loss_surface(
            model, directions, grid, images, labels
        ),
        "ours, float32": lambda: landscape.loss_surface(model, directions, grid, images, labels),
        "ours, bfloat16": lambda: landscape.loss_surface(model, directions, grid, images, labels, precision="bfloat16"),
    }
    repeats = 1 if args.full else args.repeats
    results, reference = {}, None
    for name, run in variants.items():
        seconds, surface = timed(run, repeats)
        reference = surface if reference is None else reference
        results[name] = {
            "seconds": round(seconds, 3),
            "points_per_second": round(points**2 / seconds, 2),
            "max_relative_difference_to_reference": float(np.max(np.abs(surface - reference) / reference)),
        }
        print(f"{name:48} {seconds:8.2f} s  {points**2 / seconds:8.1f} points/s")
    base = results["reference (rebuild weights, DataLoader of 128)"]["seconds"]
    for result in results.values():
        result["speedup"] = round(base / result["seconds"], 2)

    counted, calls = trace(model, images)
    useful = flops_without_padding(calls)
    peaks = {"float32": matmul_peak(torch.float32, device), "bfloat16": matmul_peak(torch.bfloat16, device)}
    reference_point = base / points**2
    roofline = {
        "gflop_per_point_counted": round(counted / 1e9, 3),
        "gflop_per_point_without_padding": round(useful / 1e9, 3),
        "matmul_peak_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
        "reference_gflops_achieved": round(useful / reference_point / 1e9, 1),
        "fraction_of_float32_peak": {
            name: round(useful * points**2 / r["seconds"] / peaks["float32"], 2)
            for name, r in results.items()
            if "bfloat16" not in name
        },
        "fraction_of_bfloat16_peak": {
            name: round(useful * points**2 / r["seconds"] / peaks["bfloat16"], 2)
            for name, r in results.items()
            if "bfloat16" in name
        },
        "ceiling_speedup_float32": round(reference_point / (useful / peaks["float32"]), 2),
        "ceiling_speedup_bfloat16": round(reference_point / (useful / peaks["bfloat16"]), 2),
        "fraction_of_bfloat16_peak_needed_for_5x": round(5 * useful / reference_point / peaks["bfloat16"], 2),
    }
    floor = convolution_floor(calls, torch.bfloat16, device)
    roofline["convolutions_alone_bfloat16_ms_per_point"] = round(floor * 1e3, 2)
    roofline["speedup_bound_from_convolutions_alone"] = round(reference_point / floor, 2)
    print(
        f"work per point: {counted / 1e9:.2f} GFLOP counted, {useful / 1e9:.2f} without padding; "
        f"matmul peak {peaks['float32'] / 1e9:.0f} (float32) / {peaks['bfloat16'] / 1e9:.0f} (bfloat16) GFLOP/s"
    )
    print(
        f"the reference already runs at {useful / reference_point / 1e9:.0f} GFLOP/s: no exact evaluation "
        f"can beat it by more than {roofline['ceiling_speedup_float32']}x in float32, "
        f"{roofline['ceiling_speedup_bfloat16']}x in bfloat16"
    )
    print(
        f"the convolutions alone, best kernel, bfloat16: {floor * 1e3:.1f} ms per point "
        f"(the reference: {reference_point * 1e3:.1f} ms): a bound of {reference_point / floor:.2f}x"
    )
    record = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "device": str(device),
        "setting": {
            "model": "CIFAR ResNet-56 (width 16)",
            "data": data.name,
            "images": len(labels),
            "grid": f"{points}x{points}",
            "repeats": repeats,
        },
        "results": results,
        "roofline": roofline,
        "target": "ours >= 5x the reference on CPU; the 51x51 full-scale surface in <= 5 min on an H100-class GPU",
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"landscape_speed{'_full' if args.full else ''}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
