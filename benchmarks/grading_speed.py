"""The grader's throughput: 100 honest submissions of chapter 04, before and after, in one run.

    .venv/bin/python benchmarks/grading_speed.py [--submissions 100]

Three batches grade the same submissions (copies of chapter 04's master, six exercises each):

- **before**: the grader as it was when course-scale grading was asked for (commit ``BEFORE``,
  taken from git into a temporary folder): one sandboxed child per submission, one submission
  after another;
- **trimmed, one at a time**: today's grader with ``jobs=1``: the same isolation, a shorter start;
- **trimmed, a pool**: today's grader with ``jobs`` = the cores, each submission still in its own
  grader process and its own sandboxed child.

Each batch runs in a fresh interpreter, timed around ``grade_all`` (the pool's start included),
one batch at a time. Then one submission is taken apart: the child's start (a fresh interpreter
in bubblewrap, the submission's imports), its cases, its exit, and the grader's own work (reading,
the inputs, judging); and, alone, an interpreter's start, torch's import and bubblewrap's.
Results go to benchmarks/results/grading_speed.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from backbones.exercises import grader, sandbox

sys.path.insert(0, str(Path(__file__).parent))
from build_times import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "grading_speed.json"
MASTER = ROOT / "chapters" / "04_resnet.ipynb"
BEFORE = "404fb95"  # one child per submission, one submission at a time, the child's start untrimmed
CHILD = Path(sandbox.CHILD)
TARGET = 3.0  # issue 30: at least three times the throughput of the batch before

BATCH = """
import json, sys, time
from pathlib import Path
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
from backbones.exercises import grader
start = time.perf_counter()
rows = grader.grade_all([Path(sys.argv[2])], master=Path(sys.argv[3]), jobs=int(sys.argv[4]))
print(json.dumps({"seconds": time.perf_counter() - start, "passed": sum(r.passed for r in rows),
                  "rows": len(rows), "library": grader.__file__}))
"""


def run_batch(folder: Path, *, jobs: int, library: Path | None = None) -> dict:
    """One batch in a fresh interpreter, with the library at ``library`` (default: this checkout's)."""
    done = subprocess.run(
        [sys.executable, "-c", BATCH, str(library or ""), str(folder), str(MASTER), str(jobs)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def library_at(commit: str, folder: Path) -> Path:
    """The library (``lib/``) as it was at ``commit``, unpacked into ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "lib"], check=True, capture_output=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "lib"


def seconds(command: list[str], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of ``command``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def one_submission(submission: Path, repeats: int = 3) -> dict:
    """Where one submission's time goes, from the child's markers (the fastest of ``repeats``)."""
    parts: list[dict] = []
    watch = sandbox._watch

    def timed(process, work, *args, **kwargs):
        began = time.time()
        result = watch(process, work, *args, **kwargs)
        ended = time.time()
        marks = {p.name: p.stat().st_mtime for p in Path(work).iterdir()}
        cases = [t for name, t in marks.items() if "_case_" in name and name.endswith(".json")]
        parts[-1]["child"] = ended - began
        parts[-1]["start"] = marks["defined"] - began
        parts[-1]["cases"] = max(cases) - marks["defined"]
        parts[-1]["exit"] = ended - max(cases)
        return result

    sandbox._watch = timed
    try:
        for _ in range(repeats):
            parts.append({})
            start = time.perf_counter()
            rows = grader.grade_all([submission], master=MASTER)
            parts[-1]["total"] = time.perf_counter() - start
            assert all(r.passed for r in rows), rows
    finally:
        sandbox._watch = watch
    best = min(parts, key=lambda p: p["total"])
    best["grader"] = best["total"] - best["child"]
    return {k: round(v, 2) for k, v in best.items()}


def alone() -> dict:
    """An interpreter's start, torch's import, the submission's imports, and bubblewrap's start."""
    python = [sys.executable, "-I", "-c"]
    imports = "import backbones, numpy, torch, matplotlib.pyplot, torch.nn.functional, torchvision"
    result = {
        "interpreter": seconds([*python, "pass"]),
        "import torch": seconds([*python, "import torch"]),
        "chapter 04's imports, torchvision at once": seconds([*python, imports]),
        "chapter 04's imports, torchvision when first used (the child)": seconds(
            [
                *python,
                f"import sys; sys.path.insert(0, {str(CHILD.parent)!r}); "
                f"import _child; _child._import_lazily(); {imports}",
            ]
        ),
    }
    wrap = sandbox.bubblewrap()
    if wrap:
        sandboxed = [wrap.path, *wrap.flags, "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"]
        result["bubblewrap around /bin/true"] = seconds(sandboxed) - seconds(["/bin/true"])
    return {k: round(v, 3) for k, v in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=100)
    args = parser.parse_args()
    n = args.submissions
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for i in range(n):
            shutil.copyfile(MASTER, folder / f"s{i:03}-04_resnet.ipynb")
        before_library = library_at(BEFORE, Path(tmp) / "before")
        batches = {
            "before (one at a time)": run_batch(folder, jobs=1, library=before_library),
            "trimmed, one at a time": run_batch(folder, jobs=1),
            f"trimmed, a pool of {cores}": run_batch(folder, jobs=cores),
        }
        for label, batch in batches.items():
            assert batch["passed"] == batch["rows"] == 6 * n, (label, batch)
        parts = one_submission(folder / "s000-04_resnet.ipynb")
    before = batches["before (one at a time)"]["seconds"]
    result = {
        "what": f"grade_all on {n} honest submissions of chapter 04 (6 exercises each), three batches in one run",
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "sandbox": grader.sandbox_note(),
        "before": f"commit {BEFORE}: one sandboxed child per submission, one submission at a time",
        "batches": {
            label: {
                "seconds": round(b["seconds"], 1),
                "per_submission_seconds": round(b["seconds"] / n, 2),
                "submissions_per_minute": round(60 * n / b["seconds"], 1),
                "speedup": round(before / b["seconds"], 2),
            }
            for label, b in batches.items()
        },
        "target_speedup": TARGET,
        "one_submission_seconds": parts,
        "alone_seconds": alone(),
        "note": "one submission = the grader's own work (reading the notebook, writing the inputs, judging) + the "
        "child: its start (bubblewrap, a fresh interpreter, torch and the library, the submission's imports; "
        "torchvision waits for its first use), its cases, and its exit (the child skips the interpreter's "
        "teardown). Until 2026-11-28 each exercise had its own child: 20 chapter-01 submissions took 235.7 s.",
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
