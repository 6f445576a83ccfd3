"""The grader's cost: a batch of 20 submissions of one chapter, and what the sandbox adds.

    .venv/bin/python benchmarks/grading_speed.py

Twenty copies of chapter 1's notebooks (ten masters, ten student versions; two exercises each)
are graded as one batch. Then one master is graded again with bubblewrap and without it
(isolated child, limits, no filesystem sandbox). A submission's exercises run in one child,
one after another, each on its own clock. The floor under each submission is the child's start:
a fresh interpreter importing torch and the library, which the student's own imports cause; it
is measured alone. Results go to benchmarks/results/grading_speed.json.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backbones.exercises import grader, sandbox

sys.path.insert(0, str(Path(__file__).parent))
from build_times import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "grading_speed.json"


def import_floor(repeats: int = 3) -> float:
    """Seconds for a fresh interpreter to import torch and the library (the child's start)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "import torch, backbones"], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    floor = import_floor()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for i in range(10):
            shutil.copyfile(
                ROOT / "chapters" / "01_getting_started.ipynb", folder / f"m{i:02}-01_getting_started.ipynb"
            )
            shutil.copyfile(ROOT / "student" / "01_getting_started.ipynb", folder / f"s{i:02}-01_getting_started.ipynb")
        start = time.perf_counter()
        rows = grader.grade_all([folder], root=ROOT)
        batch = time.perf_counter() - start
        assert sum(r.passed for r in rows) == 20, "the masters must pass, the students not"
        one = folder / "m00-01_getting_started.ipynb"
        timings = {}
        for label, wrap in (("bubblewrap", sandbox.bubblewrap), ("no filesystem sandbox", lambda: None)):
            original = sandbox.bubblewrap
            sandbox.bubblewrap = wrap
            try:
                start = time.perf_counter()
                assert all(r.passed for r in grader.grade_all([one], root=ROOT))
                timings[label] = time.perf_counter() - start
            finally:
                sandbox.bubblewrap = original
    result = {
        "what": "grade_all on 20 submissions of chapter 1 (2 exercises each, both in one child per submission)",
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "sandbox": grader.sandbox_note(),
        "batch_seconds": round(batch, 1),
        "per_submission_seconds": round(batch / 20, 2),
        "per_exercise_seconds": round(batch / 40, 2),
        "child_start_floor_seconds": round(floor, 2),
        "one_submission_seconds": {k: round(v, 2) for k, v in timings.items()},
        "sandbox_overhead_per_submission_seconds": round(timings["bubblewrap"] - timings["no filesystem sandbox"], 2),
        "note": "per submission, one child's start (import torch and backbones) is the floor; the rest is bwrap, "
        "the library copy and the checks' cases (until 2026-11-28 each exercise had its own child: "
        "235.7 s for this batch)",
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
