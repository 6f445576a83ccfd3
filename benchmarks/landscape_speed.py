"""Loss-landscape evaluation speed: grid points per second, ours against the reference approach.

    .venv/bin/python benchmarks/landscape_speed.py            # the chapter's quick setting (CPU)
    .venv/bin/python benchmarks/landscape_speed.py --full     # ResNet-56 on CIFAR-10, 51x51 (a GPU)

The reference is loss-landscape's approach (Li et al. 2018's repository): for every grid point
rebuild each weight as theta* + a*delta + b*eta and loop over a DataLoader of batches of 128
(backbones.landscape.reference_loss_surface). Ours folds batch norm into the convolutions once,
evaluates the data as one channels-last batch and writes the weights in place, in float32 (the
same numbers) or bfloat16. All variants run on the same model, directions and data in the same
run; results go to benchmarks/results/landscape_speed[_full].json with the machine named.
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
    model = bb.models.cifar_resnet(56, in_channels=data.in_channels, num_classes=data.num_classes,
                                   zero_init_residual=True).to(device)
    bb.fit(model, data.loaders(64)[0], steps=100, lr=0.05)  # any trained weights do: speed is what we measure
    images, labels = (t.to(device) for t in data.tensors(10_000 if args.full else 512))
    points = args.points or (51 if args.full else 9)
    grid = [np.linspace(-1, 1, points)] * 2
    directions = [landscape.random_direction(model, seed=s) for s in (1, 2)]

    variants = {
        "reference (rebuild weights, DataLoader of 128)":
            lambda: landscape.reference_loss_surface(model, directions, grid, images, labels),
        "ours, float32": lambda: landscape.loss_surface(model, directions, grid, images, labels),
        "ours, bfloat16": lambda: landscape.loss_surface(model, directions, grid, images, labels,
                                                          precision="bfloat16"),
    }
    repeats = 1 if args.full else args.repeats
    results, reference = {}, None
    for name, run in variants.items():
        seconds, surface = timed(run, repeats)
        reference = surface if reference is None else reference
        results[name] = {"seconds": round(seconds, 3), "points_per_second": round(points**2 / seconds, 2),
                         "max_relative_difference_to_reference": float(np.max(np.abs(surface - reference) / reference))}
        print(f"{name:48} {seconds:8.2f} s  {points**2 / seconds:8.1f} points/s")
    base = results["reference (rebuild weights, DataLoader of 128)"]["seconds"]
    for result in results.values():
        result["speedup"] = round(base / result["seconds"], 2)
    record = {
        "date": datetime.date.today().isoformat(), "machine": machine(), "device": str(device),
        "setting": {"model": "CIFAR ResNet-56 (width 16)", "data": data.name, "images": len(labels),
                    "grid": f"{points}x{points}", "repeats": repeats},
        "results": results,
        "target": "ours >= 5x the reference on CPU; the 51x51 full-scale surface in <= 5 min on an H100-class GPU",
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"landscape_speed{'_full' if args.full else ''}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
