"""Record the SE/EfficientNet chapter's experiments at the scale its 90 s cannot hold.

- SE: a CIFAR ResNet-8 with and without SE on the digits over ten seeds (the chapter runs two),
  and ResNet-20 over five seeds with twice the steps.
- The scaling lab: compound scaling at phi = 1 and 2 with depth, width and resolution alone at
  the same cost, each over three seeds with more steps than the chapter's live run.

Writes ``assets/se_efficientnet_runs.json`` with the command, machine and date.

    .venv/bin/python scripts/record_se_efficientnet.py

On 2 CPU cores: about 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import backbones as bb
from backbones import scaling

OUT = Path(__file__).resolve().parents[1] / "assets" / "se_efficientnet_runs.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--se-seeds", type=int, default=10)
    parser.add_argument("--lab-seeds", type=int, default=3)
    parser.add_argument("--lab-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    os.environ.setdefault("BACKBONES_PROGRESS", "off")
    data = bb.load_digits()
    runs = []
    for depth, steps, seeds in ((8, 120, range(args.se_seeds)), (20, 300, range(args.se_seeds // 2))):
        start = time.perf_counter()
        result = bb.experiments.se_comparison(data, seeds=tuple(seeds), depth=depth, steps=steps)
        row = {
            "experiment": "se",
            "depth": depth,
            "steps": steps,
            "seeds": list(seeds),
            "test_accuracy": {name: [acc for _, acc in models] for name, models in result.items()},
            "seconds": round(time.perf_counter() - start, 1),
        }
        runs.append(row)
        print(json.dumps(row), flush=True)
    for phi in (1.0, 2.0):
        variants = scaling.lab_variants(phi)
        if phi != 1.0:
            variants.pop("base")  # trained once, with phi = 1
        start = time.perf_counter()
        rows = scaling.scaling_lab(variants, seeds=tuple(range(args.lab_seeds)), steps=args.lab_steps, batch_size=32)
        for row in rows:
            row.update(experiment="scaling", phi=phi)
            runs.append(row)
            print(json.dumps(row), flush=True)
        print(f"phi {phi}: {time.perf_counter() - start:.0f} s", flush=True)
    bb.records.write_record(
        args.out,
        argv=sys.argv,
        runs=runs,
        what="SE against no SE over seeds (CIFAR ResNet-8 and -20 on digits); the compound-scaling lab "
        "at phi = 1 and 2 over seeds (texture patches)",
        settings={
            "se": {
                "data": "scikit-learn digits 8x8",
                "reduction": 4,
                "batch_size": 64,
                "lr": 0.05,
                "schedule": "one-cycle, SGD Nesterov momentum 0.9, weight decay 5e-4",
            },
            "scaling": {
                "data": "scikit-image texture patches (backbones.data.load_textures)",
                "steps": args.lab_steps,
                "batch_size": 32,
                "lr": 3e-3,
                "schedule": "one-cycle, AdamW, weight decay 0.05",
            },
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
