"""Record the controls of the ResNet chapter's degradation experiment that do not fit its 90 s.

The chapter trains plain-20/56 and ResNet-20/56 once, live, alike (no zero-init). This script
repeats that experiment over several seeds, with and without the zero-initialised residual
branches (``zero_init_residual``), and writes what it measured, with the command, machine and
date, to ``assets/degradation_controls.json``, which the chapter shows beside its live run.

    .venv/bin/python scripts/record_degradation_controls.py [--seeds 0 1 2] [--steps 300]

On 2 CPU cores: about 100 s (AVX-512) to 130 s per seed and setting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import backbones as bb

OUT = Path(__file__).resolve().parents[1] / "assets" / "degradation_controls.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    os.environ.setdefault("BACKBONES_PROGRESS", "off")
    data = bb.load_digits()
    runs = []
    for zero_init in (False, True):
        for seed in args.seeds:
            start = time.perf_counter()
            result = bb.experiments.degradation(
                data,
                depths=(20, 56),
                steps=args.steps,
                batch_size=64,
                lr=args.lr,
                seed=seed,
                zero_init_residual=zero_init,
            )
            row = {
                "zero_init_residual": zero_init,
                "seed": seed,
                "final_training_loss": {n: h.final_loss() for n, (_, h) in result.items()},
                "test_accuracy": {n: h.eval[-1].accuracy for n, (_, h) in result.items()},
                "seconds": round(time.perf_counter() - start, 1),
            }
            runs.append(row)
            print(json.dumps(row), flush=True)
    bb.records.write_record(
        args.out,
        argv=sys.argv,
        runs=runs,
        what="degradation experiment (plain/ResNet 20 and 56 layers) over seeds, with and without "
        "zero-initialised residual branches",
        settings={
            "data": "scikit-learn digits 8x8",
            "steps": args.steps,
            "batch_size": 64,
            "lr": args.lr,
            "schedule": "one-cycle, SGD Nesterov momentum 0.9, weight decay 5e-4",
            "width": 16,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
