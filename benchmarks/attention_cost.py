"""Naive attention against PyTorch's fused kernel: time and memory as the sequence grows.

    .venv/bin/python benchmarks/attention_cost.py

Naive: backbones.layers.scaled_dot_product_attention (materialises the N x N scores and weights).
Fused: torch.nn.functional.scaled_dot_product_attention. Batch 1, 4 heads of size 64, float32.
Memory is what torch's profiler counts as allocated during one call (the sum of every operator's
allocations), on the CPU, or the peak allocated on a CUDA device. Results go to
benchmarks/results/attention_cost.json with the machine named.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import backbones as bb

sys.path.insert(0, str(Path(__file__).parent))
from build_times import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "attention_cost.json"


def best_time(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def allocated_bytes(fn, device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return sum(max(event.self_cpu_memory_usage, 0) for event in prof.key_averages())


def main() -> int:
    logging.disable(logging.WARNING)
    device = bb.get_device()
    lengths = [128, 256, 512, 1024, 2048, 4096] if device.type == "cpu" else [1024, 2048, 4096, 8192, 16384]
    rows = []
    for n in lengths:
        q, k, v = torch.randn(3, 1, 4, n, 64, device=device).unbind(0)
        naive = lambda: bb.layers.scaled_dot_product_attention(q, k, v)  # noqa: E731
        fused = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
        torch.testing.assert_close(naive(), fused(), rtol=1e-4, atol=1e-5)
        row = {
            "N": n,
            "naive_ms": round(best_time(naive) * 1e3, 2),
            "fused_ms": round(best_time(fused) * 1e3, 2),
            "naive_MB": round(allocated_bytes(naive, device) / 2**20, 2),
            "fused_MB": round(allocated_bytes(fused, device) / 2**20, 2),
            "scores_MB": round(4 * n * n * 4 / 2**20, 2),
        }
        rows.append(row)
        print(row)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.date.today().isoformat(),
                "machine": machine(),
                "device": str(device),
                "setting": "batch 1, 4 heads of 64, float32",
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
