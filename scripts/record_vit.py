"""Record the ViT chapter's data-efficiency experiment at the scale its 90 s cannot hold.

A small ViT against a CNN of about the same parameter count on 10%, 30% and 100% of the digits'
training pool, without augmentation, with random shifts of up to one pixel, with random shifts
by a whole 2-pixel patch (-2, 0 or 2 pixels each way: the control for "a one-pixel shift changes
what every patch holds"), and with random shifts of up to two pixels, any (the same reach as the
whole-patch shifts, not aligned with the patches): for each network,
fraction and augmentation a learning rate is chosen on held-out validation images from
{1e-3, 3e-3, 1e-2, 3e-2} (seed 0), then five seeds train at it and are scored on the test set. For every
trained ViT it also keeps the mean attention distance per layer and head (on the test images) and
how much its position embeddings follow the 2-D grid.

Writes ``assets/vit_runs.json`` with the command, machine and date.

    .venv/bin/python scripts/record_vit.py

On 2 CPU cores: about 13 minutes (AVX-512) to 28.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

import backbones as bb
from backbones import experiments
from backbones.layers import record_attention

OUT = Path(__file__).resolve().parents[1] / "assets" / "vit_runs.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    os.environ.setdefault("BACKBONES_PROGRESS", "off")
    data = bb.load_digits()
    test_images, _ = data.tensors(split="test")
    runs = []
    for shift, step in ((0, 1), (1, 1), (2, 2), (2, 1)):
        start = time.perf_counter()
        rows = experiments.vit_vs_cnn(
            data,
            fractions=(0.1, 0.3, 1.0),
            seeds=tuple(range(args.seeds)),
            steps=args.steps,
            shift=shift,
            shift_step=step,
        )
        for row in rows:
            model = row.pop("model").eval()
            row.update(shift=shift, shift_step=step, accuracy=round(row["accuracy"], 4))
            if "validation" in row:
                row["validation"] = {rate: round(score, 4) for rate, score in row["validation"].items()}
            if row["network"] == "ViT":
                with torch.no_grad(), record_attention(model) as maps:
                    model(test_images)
                distance = experiments.mean_attention_distance(maps, model.patch_size)
                row["attention_distance"] = [[round(float(d), 3) for d in layer] for layer in distance]
                row["position_structure"] = round(experiments.position_structure(model.position), 3)
            runs.append(row)
            print(json.dumps(row), flush=True)
        print(f"shift {shift} (step {step}): {time.perf_counter() - start:.0f} s", flush=True)
    bb.records.write_record(
        args.out,
        what="a small ViT against a CNN of the same size on 10/30/100% of the digits, unshifted, "
        "shifted by up to 1 pixel, by a whole patch (0 or 2 pixels), and by up to 2 pixels",
        settings={
            "steps": args.steps,
            "seeds": args.seeds,
            "lrs": [1e-3, 3e-3, 1e-2, 3e-2],
            "batch_size": 64,
            "optimizer": "AdamW, weight decay 0.05, one-cycle",
            "validation": 0.2,
            "shifts": "(pixels, step): (0, 1) none, (1, 1) up to one pixel, (2, 2) by a whole patch, "
            "(2, 1) up to two pixels",
            "vit": "patch 2, embed 32, depth 4, 4 heads, MLP ratio 2",
        },
        runs=runs,
        argv=sys.argv,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
