"""Exercises with checks that teach. A chapter calls one check per exercise::

    bb.exercises.check_top_k_accuracy(top_k_accuracy)

and reads one line: what was verified, or which mistake was made. See ``core`` for the engine,
``student`` for the student notebooks and ``grader`` for grading submissions.

**The registry.** An exercise is declared once, as an :class:`~core.Exercise` (a function or a
module to write) or a :class:`~core.ValueExercise` (an answer value, a variant per student) in its
topic module (``basics``, ``cnn``, ``resnet``, ...). This package collects every declaration of the
modules in :data:`TOPICS` into :data:`REGISTRY` and derives ``check_NAME`` from each: a function's
check takes the function (``check_NAME(fn)``), a value's takes the student's id and the answer
(``check_NAME(STUDENT_ID, answer)``). The grader reads the same registry (:func:`graded`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from backbones.exercises import attention, basics, cnn, efficientnet, exam, resnet, transformer, vit, words
from backbones.exercises.core import (
    Case,
    Exercise,
    Mistake,
    Result,
    ValueExercise,
    check,
    check_value,
    run_check,
    short_name,
)

# The topic modules, in the book's order: every Exercise and ValueExercise declared in one is an
# exercise of the book.
TOPICS: tuple[ModuleType, ...] = (basics, cnn, resnet, efficientnet, words, vit, attention, transformer, exam)


def _declared(topics: tuple[ModuleType, ...]) -> dict[str, Exercise | ValueExercise]:
    """Every exercise declared at the top level of ``topics``, by name, in declaration order."""
    found: dict[str, Exercise | ValueExercise] = {}
    for topic in topics:
        for value in vars(topic).values():
            if not isinstance(value, (Exercise, ValueExercise)):
                continue
            if value.name in found and found[value.name] is not value:
                raise ValueError(f"two exercises are named {value.name!r} ({topic.__name__} declares the second)")
            found[value.name] = value
    return found


REGISTRY: dict[str, Exercise | ValueExercise] = _declared(TOPICS)

# Every function exercise (the tests run each one's reference and its catalogue), and every
# "Test yourself" question (one answer value each, a variant per student).
EXERCISES: dict[str, Exercise] = {n: e for n, e in REGISTRY.items() if isinstance(e, Exercise)}
VALUE_EXERCISES: dict[str, ValueExercise] = {n: e for n, e in REGISTRY.items() if isinstance(e, ValueExercise)}


def graded(name: str) -> tuple[Exercise | ValueExercise, str]:
    """``(exercise, kind)`` of ``check_NAME``, for the grader: kind is ``"value"`` for an answer
    value, else the exercise's own kind (``"function"`` or ``"module"``)."""
    if name not in REGISTRY:
        raise KeyError(f"no check named check_{name}")
    exercise = REGISTRY[name]
    return exercise, "value" if isinstance(exercise, ValueExercise) else exercise.kind


def _check_of(exercise: Exercise | ValueExercise) -> Callable[..., None]:
    """``check_NAME``: show the check of ``exercise`` (one line), return nothing."""
    if isinstance(exercise, ValueExercise):

        def check_answer(student_id: str, answer) -> None:
            check_value(exercise, student_id, answer)

        function, doc = (
            check_answer,
            (f"Check the answer to {' '.join(exercise.task.split())!r} for this student's variant."),
        )
    else:

        def check_function(fn: Callable) -> None:
            check(exercise, fn)

        built = " (built, then applied to the case's last argument)" if exercise.kind == "module" else ""
        doc = f"Check ``{exercise.name}``{built}: {exercise.task}."
        if exercise.forbidden:  # say so before the check does
            names = ", ".join(f"``{short_name(n)}``" for n in exercise.forbidden)
            doc += f" Write it yourself: a call to {names} fails the check."
        function = check_function
    function.__name__ = function.__qualname__ = f"check_{exercise.name}"
    function.__doc__ = doc
    return function


CHECKS: dict[str, Callable[..., None]] = {f"check_{name}": _check_of(e) for name, e in REGISTRY.items()}
globals().update(CHECKS)


class MissingStudentId(ValueError):
    """``STUDENT_ID`` is not filled in: the notebook stops at the first question, saying so."""


def _require_id(student_id, why: str) -> None:
    if not isinstance(student_id, str) or not student_id.strip():
        raise MissingStudentId(
            f'fill in STUDENT_ID = "..." at the top of the notebook with your student id, as a string '
            f'(e.g. STUDENT_ID = "s1234567"), then run the notebook again: {why}'
        )


def ask(exercise: str, student_id: str) -> dict:
    """Show this student's variant of a question and return its numbers (a dict), as in
    ``q = bb.exercises.ask("vit_tokens", STUDENT_ID)``; the grader computes the same dict from the
    notebook's ``STUDENT_ID``."""
    if exercise not in VALUE_EXERCISES:
        raise KeyError(f"no question named {exercise!r}; the questions are {sorted(VALUE_EXERCISES)}")
    _require_id(student_id, "every question's numbers depend on it")
    question = VALUE_EXERCISES[exercise]
    print(question.ask(student_id))
    return question.variant(student_id)


def mock_test(student_id: str) -> list[str]:
    """Show this student's mock test: which questions of the notebook to answer, and by when
    (``exam.MOCK_MINUTES`` from now); return their names. The grader grades those alone and sums
    them up per competency."""
    import datetime
    import textwrap

    from backbones.exercises.exam import COMPETENCIES, MOCK_MINUTES, mock_draw

    _require_id(student_id, "which questions you get depends on it")
    drawn = mock_draw(student_id.strip())
    until = (datetime.datetime.now() + datetime.timedelta(minutes=MOCK_MINUTES)).strftime("%H:%M")
    print(f"Your mock test: {len(drawn)} questions, {MOCK_MINUTES} minutes (until {until}). Answer these:")
    for competency, questions in COMPETENCIES.items():
        line = f"  {competency}: " + ", ".join(q for q in drawn if q in questions)
        print(textwrap.fill(line, width=86, subsequent_indent="    ", break_on_hyphens=False))
    return drawn


def explain(exercise: str, student_id: str) -> None:
    """The answer and why each wrong answer is wrong, for the book's own id: the rendered book
    shows it in a closed dropdown under each question. For any other id it points to the check,
    so the explanation cannot stand in for the student's own answer."""
    from backbones.exercises.core import BOOK_ID

    question = VALUE_EXERCISES[exercise]
    if student_id == BOOK_ID:
        print(question.explain(student_id))
        return
    print(
        f"Check your answer first (check_{exercise}); the answer and every option's explanation are in the "
        "rendered book, under this question's dropdown, for the book's own variant."
    )


__all__ = [
    "explain",
    "mock_test",
    "MissingStudentId",
    "REGISTRY",
    "EXERCISES",
    "VALUE_EXERCISES",
    "TOPICS",
    "graded",
    "ask",
    "ValueExercise",
    "Case",
    "Exercise",
    "Mistake",
    "Result",
    "check",
    "run_check",
    *CHECKS,
]
