"""The book's mutation suite (issue 27, item 6): wrong implementations written as students write
them, outside each exercise's catalogue (``tests/student_mutants.py``), must all be rejected, and
most must be named (a catalogued mistake) or localised (a rung of the ladder, a probe), not only
"wrong values at index ..."; the right ones, written differently from the reference, must pass.
``benchmarks/mutation_suite.py`` records the same figures per exercise."""

from __future__ import annotations

import collections

import pytest

import student_mutants
from backbones.exercises import EXERCISES
from backbones.exercises.core import Result, run_check

EXPLAINED = ("named", "rung", "probe")  # what counts toward the 70%


def explained(result: Result) -> str:
    """How a rejection explains itself: named, rung, probe, form (the output's type, shape or
    dtype), crash (the student's exception and line) or plain (where the values differ)."""
    if result.mistake:
        return "named"
    if result.localised:
        return result.localised
    return "crash" if result.raised else "plain"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_wrong_implementation_is_rejected_and_every_right_one_passes(name):
    wrong, right = student_mutants.WRONG.get(name, []), student_mutants.RIGHT.get(name, [])
    assert len(wrong) >= 8 and right, (name, len(wrong), len(right))
    for fn in wrong:
        result = run_check(EXERCISES[name], fn)
        assert result.status == "failed", (fn.__name__, fn.__doc__)
        assert len(result.message) < 700, (fn.__name__, result.message)  # one short paragraph
    for fn in right:
        result = run_check(EXERCISES[name], fn)
        assert result.passed, (fn.__name__, fn.__doc__, result.message)


def test_most_wrong_implementations_are_named_or_localised():
    kinds = collections.Counter(
        explained(run_check(EXERCISES[name], fn)) for name in EXERCISES for fn in student_mutants.WRONG.get(name, [])
    )
    total = sum(kinds.values())
    share = sum(kinds[k] for k in EXPLAINED) / total
    assert total >= 8 * len(EXERCISES)
    assert share >= 0.70, (share, dict(kinds))
