"""What the explorations cost the book build (issue 31: at most 10% of a chapter's build time).

Each chapter from 01 to 09 executes as the book build executes it (the static form: every state
drawn, the page's HTML made), and the time of every cell is read from the kernel's own timestamps
(nbclient records when each cell started and replied). The explorations' cost is the time of
their cells (a code cell calling ``bb.explore.show`` with what it computes for it, such as chapter
04's other depths), against the time of all the chapter's other cells: both from the same
execution, so the machine's speed cancels out. (Timing whole executions with and without the
cells was tried first: the kernel's start and stop vary by a second or more, more than the
explorations cost.)

    .venv/bin/python benchmarks/exploration_cost.py [--repeat 2]

Results: benchmarks/results/exploration_cost.json (the machine beside them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "exploration_cost.json"
BUDGET = 0.10  # of the chapter's build time
sys.path.insert(0, str(ROOT / "benchmarks"))

from build_times import machine  # noqa: E402


def cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (begin and end):
        return 0.0
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(begin.replace("Z", "+00:00"))).total_seconds()


def execute(path: Path) -> tuple[float, float]:
    """(the explorations' cells, every other cell), in seconds, from one execution."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, record_timing=True, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    explore = sum(cell_seconds(c) for c in nb.cells if c.cell_type == "code" and "bb.explore.show(" in c.source)
    rest = sum(cell_seconds(c) for c in nb.cells if c.cell_type == "code" and "bb.explore.show(" not in c.source)
    return explore, rest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="executions of each version (the fastest is kept)")
    args = parser.parse_args()
    os.environ.update({"BACKBONES_PAGE": "static", "BACKBONES_PROGRESS": "summary", "BACKBONES_OFFLINE": "1"})
    os.environ.pop("BACKBONES_PROFILE", None)
    rows = []
    for path in sorted((ROOT / "chapters").glob("0[1-9]_*.ipynb")):
        if "bb.explore.show(" not in path.read_text():
            continue
        runs = [execute(path) for _ in range(args.repeat)]
        explore, rest = min(runs, key=lambda run: run[0])  # the run whose explorations were least disturbed
        growth = explore / rest
        rows.append(
            {
                "chapter": path.stem,
                "explorations_s": round(explore, 3),
                "other_cells_s": round(rest, 2),
                "growth": round(growth, 4),
                "runs": [[round(e, 3), round(r, 2)] for e, r in runs],
            }
        )
        print(f"{path.stem:22} explorations {explore:5.2f} s, the other cells {rest:6.1f} s: +{growth:.1%}", flush=True)
    record = {
        "what": "each chapter's exploration cells against its other cells, in seconds from the kernel's "
        "timestamps of one execution (static form)",
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
