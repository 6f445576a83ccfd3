"""Time the heaviest experiments of the *gpu* and *paper* profiles on a lent accelerator, in one
call of at most about 9 minutes, and record the times and the machine.

    PYTHONPATH=lib python benchmarks/gpu_profile.py            # on the GPU machine (torch, no network)
    .venv/bin/python benchmarks/gpu_profile.py --dry           # a seconds-long run on the CPU (the tests)

The GPU machine has torch, torchvision, scikit-learn and scikit-image but no network and no
CIFAR-10, so the data is scikit-learn's digits upsampled to 32x32 (CIFAR's size) and repeated to
10,000 images: the same tensor shapes and work per step as CIFAR-10, not its accuracy (the record
says so). What it times:

- the ResNet chapter's degradation runs at the gpu profile (plain/ResNet 20 and 56, batch 128,
  the gpu profile's steps) through the book's own ``fit`` (mixed precision as on that GPU);
- the paper-grid loss landscape (51x51 points, 10,000 images) of ResNet-56 and its plain twin:
  a time budget bounds it; when the budget runs out the record says how many points were
  measured and extrapolates the rest (marked as such).

Writes ``benchmarks/results/gpu_profile.json`` (``--out`` elsewhere).
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
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import backbones as bb

sys.path.insert(0, str(Path(__file__).parent))
from build_times import machine  # noqa: E402  (a sibling script, not part of the library)

RESULTS = Path(__file__).resolve().parent / "results"


def stand_in_data(images: int, size: int) -> bb.ImageData:
    """The digits, upsampled to ``size`` and repeated to ``images`` training images: CIFAR-10's
    shapes without CIFAR-10 (which the GPU machine cannot download)."""
    digits = bb.load_digits()
    x, y = digits.tensors()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)  # (N, 3, s, s)
    repeats = -(-images // len(y))
    train = TensorDataset(x.repeat(repeats, 1, 1, 1)[:images], y.repeat(repeats)[:images])
    tx, ty = digits.tensors(split="test")
    test = TensorDataset(F.interpolate(tx, size=size, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1), ty)
    return bb.ImageData(
        name="digits-as-cifar",
        train=train,
        test=test,
        classes=digits.classes,
        in_channels=3,
        image_size=size,
        note=f"digits upsampled to {size}x{size}, repeated to {images:,}",
    )


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="tiny sizes on the CPU, to test the script")
    parser.add_argument(
        "--landscape-budget",
        type=float,
        default=150.0,
        help="seconds per network for the 51x51 landscape before extrapolating",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_profile.json")
    args = parser.parse_args()
    os.environ.setdefault("BACKBONES_PROGRESS", "off")

    device = bb.get_device("cpu" if args.dry else None)
    gpu = bb.Profile("gpu", "benchmark")
    paper = bb.Profile("paper", "benchmark")
    steps = 4 if args.dry else gpu.pick(quick=300, gpu=2_000, paper=64_000)
    images_n = 64 if args.dry else 10_000
    points = 3 if args.dry else paper.pick(quick=19, gpu=21, paper=51)
    data = stand_in_data(images_n, 32)
    record = {
        "machine": machine(),
        "device": str(device),
        "date": datetime.date.today().isoformat(),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "data": data.note + " (timing only: not CIFAR-10's accuracy)",
        "dry": args.dry,
        "mixed_precision": str(bb.train.amp_dtype(device)),
    }

    start = time.perf_counter()
    batch_size = 16 if args.dry else 128
    runs = bb.experiments.degradation(data, depths=(20, 56), steps=steps, batch_size=batch_size, lr=0.1, device=device)
    synchronize()
    record["degradation"] = {
        "steps": steps,
        "batch_size": batch_size,
        "seconds": round(time.perf_counter() - start, 2),
        "per_network": {n: round(h.seconds, 2) for n, (_, h) in runs.items()},
        "final_training_loss": {n: h.final_loss() for n, (_, h) in runs.items()},
    }
    print(json.dumps(record["degradation"]), flush=True)

    images, labels = (t.to(device) for t in data.tensors(images_n))
    alphas = np.linspace(-1, 1, points)
    record["landscape"] = {"grid": f"{points}x{points}", "images": images_n}
    for name in ("plain-56", "ResNet-56"):
        model = runs[name][0]
        directions = [bb.landscape.random_direction(model, seed=s) for s in (1, 2)]
        measured, start = 0, time.perf_counter()
        for row in range(points):  # a row at a time, so a time budget can stop it
            bb.landscape.loss_surface(model, directions, [alphas, alphas[row : row + 1]], images, labels)
            synchronize()
            measured += points
            if time.perf_counter() - start > args.landscape_budget:
                break
        seconds = time.perf_counter() - start
        record["landscape"][name] = {
            "points_measured": measured,
            "seconds_measured": round(seconds, 2),
            "seconds_for_grid": round(seconds * points * points / measured, 1),
            "extrapolated": measured < points * points,
        }
        print(name, json.dumps(record["landscape"][name]), flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
