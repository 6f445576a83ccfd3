"""What the explorations cost the book build (issue 31: at most 10% of a chapter's build time).

Each chapter from 01 to 09 executes twice in one run, one after the other, as the book build runs
it (the static form: every state drawn, the page's HTML made): as it is, and with its exploration
cells (a code cell calling ``bb.explore.show`` and the markdown cell that introduces it) removed.
The difference is what the explorations add, their own extra measurements included (chapter 04's
other depths). Both executions of a chapter run back to back, so the machine's speed cancels out.

    .venv/bin/python benchmarks/exploration_cost.py [--repeat 2]

Results: benchmarks/results/exploration_cost.json (the machine beside them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "exploration_cost.json"
BUDGET = 0.10  # of the chapter's build time
sys.path.insert(0, str(ROOT / "benchmarks"))

from build_times import machine  # noqa: E402


def without_explorations(nb):
    cells, skip = [], set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "bb.explore.show(" in cell.source:
            skip.add(i)
            if i and nb.cells[i - 1].cell_type == "markdown" and nb.cells[i - 1].source.startswith("**Explore.**"):
                skip.add(i - 1)
    cells = [c for i, c in enumerate(nb.cells) if i not in skip]
    removed = len(nb.cells) - len(cells)
    nb = nbformat.from_dict({**nb, "cells": cells})
    return nb, removed


def execute(nb, folder: Path) -> float:
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(folder)}}).execute()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="executions of each version (the fastest is kept)")
    args = parser.parse_args()
    os.environ.update({"BACKBONES_PAGE": "static", "BACKBONES_PROGRESS": "summary", "BACKBONES_OFFLINE": "1"})
    os.environ.pop("BACKBONES_PROFILE", None)
    rows = []
    for path in sorted((ROOT / "chapters").glob("0[1-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        bare, removed = without_explorations(nb)
        if not removed:
            continue
        times = {"with": [], "without": []}
        for _ in range(args.repeat):
            times["without"].append(execute(nbformat.from_dict(bare), path.parent))
            times["with"].append(execute(nbformat.from_dict(nb), path.parent))
        best = {k: min(v) for k, v in times.items()}
        growth = best["with"] / best["without"] - 1
        rows.append(
            {
                "chapter": path.stem,
                "without_s": round(best["without"], 2),
                "with_s": round(best["with"], 2),
                "growth": round(growth, 3),
                "runs": times,
            }
        )
        print(f"{path.stem:22} without {best['without']:6.1f} s, with {best['with']:6.1f} s: {growth:+.1%}", flush=True)
    record = {
        "what": "each chapter's execution time with and without its explorations (static form), in one run",
        "command": "python benchmarks/exploration_cost.py " + " ".join(sys.argv[1:]),
        "budget": f"at most {BUDGET:.0%} more per chapter",
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "chapters": rows,
        "within_budget": all(r["growth"] <= BUDGET for r in rows),
    }
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    return 0 if record["within_budget"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
