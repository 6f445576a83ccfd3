"""What the checks say to wrong answers they were not written for: the book's mutation suite.

    .venv/bin/python benchmarks/mutation_suite.py

Runs every exercise's check on the wrong implementations of ``tests/student_mutants.py``
(written the way students write them, outside each exercise's catalogue) and counts how each
rejection explains itself: named (a catalogued mistake), rung (the first rung of the ladder that
breaks, and what it adds), probe (an input that shows the family), form (the output's type,
shape or dtype), crash (the student's exception and line) or plain ("wrong values at index ...").
Also counts the right implementations rejected (none may be). Results go to
benchmarks/results/mutation_suite.json.
"""

from __future__ import annotations

import collections
import datetime
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).parent)]

from build_times import machine  # noqa: E402

import student_mutants  # noqa: E402
from backbones.exercises import EXERCISES  # noqa: E402
from backbones.exercises.core import run_check  # noqa: E402
from test_mutants import EXPLAINED, explained  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mutation_suite.json"
KINDS = ("named", "rung", "probe", "form", "crash", "plain", "accepted")


def main() -> None:
    table, total, right_rejected = {}, collections.Counter(), []
    for name, exercise in EXERCISES.items():
        kinds = collections.Counter()
        for fn in student_mutants.WRONG.get(name, []):
            result = run_check(exercise, fn)
            kinds["accepted" if result.passed else explained(result)] += 1
        right_rejected += [
            f"{name}.{fn.__name__}" for fn in student_mutants.RIGHT.get(name, []) if not run_check(exercise, fn).passed
        ]
        table[name] = {k: kinds[k] for k in KINDS if kinds[k]}
        total.update(kinds)
        print(f"{name:24s} " + "  ".join(f"{k} {kinds[k]}" for k in KINDS if kinds[k]))
    count = sum(total.values())
    share = sum(total[k] for k in EXPLAINED) / count
    print(f"\n{count} wrong implementations: " + ", ".join(f"{k} {total[k]}" for k in KINDS))
    print(f"named or localised to a rung or probe: {share:.1%}; right ones rejected: {len(right_rejected)}")
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.date.today().isoformat(),
                "machine": machine(),
                "wrong": count,
                "right": sum(len(v) for v in student_mutants.RIGHT.values()),
                "kinds": {k: total[k] for k in KINDS},
                "named_or_localised": round(share, 4),
                "right_rejected": right_rejected,
                "per_exercise": table,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
