"""Grade one submission and write one JSON: the unit a batch system runs (a Slurm array, a
Kubernetes Job, a GitHub Classroom workflow, Gradescope's container).

    python -m backbones.exercises.grade_one SUBMISSION.ipynb --out result.json [--master M]

The JSON holds the same rows and messages as the batch grader's (``grade_all`` on one file), the
score, the summary per competency where the notebook has exam questions, and the feedback the
student reads (Markdown). It is the batch on a single file, so the two cannot disagree; only the
batch can see two submissions sharing a ``STUDENT_ID``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from backbones.exercises.grader import DEFAULT_TIMEOUT_S, grade_all
from backbones.exercises.report import Row, feedback


def result_of(rows: list[Row]) -> dict:
    """One submission's rows as the JSON ``grade_one`` writes."""
    from backbones.exercises.exam import VALUE_EXERCISES, competency_summary

    graded = [r for r in rows if r.exercise != "-"]
    exam = {r.exercise: r.passed for r in graded if r.exercise in VALUE_EXERCISES}
    return {
        "file": rows[0].file if rows else "",
        "student_id": next((r.student for r in rows if r.student), ""),
        "passed": sum(r.passed for r in graded),
        "total": len(graded),
        "rows": [{"exercise": r.exercise, "passed": r.passed, "message": r.message} for r in rows],
        "competencies": [
            {"competency": c, "passed": ok, "asked": asked, "revisit": revisit}
            for c, ok, asked, revisit in competency_summary(exam)
        ],
        "feedback": feedback(rows) if rows else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbones.exercises.grade_one", description=__doc__.split("\n")[0])
    parser.add_argument("submission", type=Path, help="one notebook")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument("--master", type=Path, help="the chapter's master notebook (default: from the file name)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per exercise")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated grader still removes its folders
    rows = grade_all([args.submission], master=args.master, timeout=args.timeout)
    if not rows:
        parser.error(f"{args.submission} is not a notebook")
    result = result_of(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{result['file']}: {result['passed']}/{result['total']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
