"""The checking engine: run a student's function against a trusted reference and explain.

An :class:`Exercise` is plain data: the reference implementation, seeded test cases (edge
shapes included) and a catalogue of :class:`Mistake` s, each a wrong implementation that makes
one common mistake, with the hint a student should read when they make it. A check runs the
student's function on every case; on the first case where it disagrees with the reference, it
runs each catalogued mistake on that case, and when the student's output equals a mistake's,
it names that mistake. Otherwise it shows where the output differs, never the reference code.

A check prints one line and returns nothing (no stray value in the page). In a notebook it also
attaches the result as output metadata (``backbones_check``), which the grader reads.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import signal
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PACKAGE_DIR = Path(__file__).resolve().parents[1]
METADATA_KEY = "backbones_check"
TIME_LIMIT_S = 10.0


@dataclass(frozen=True)
class Case:
    """One seeded input: positional arguments, keyword arguments, and what makes it special."""

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer: ``wrong`` makes exactly this mistake; ``hint`` names it."""

    hint: str
    wrong: Callable


@dataclass(frozen=True)
class Exercise:
    """An exercise: what to implement, the reference, the cases and the catalogue of mistakes."""

    name: str
    task: str
    reference: Callable
    cases: Callable[[], list[Case]]
    mistakes: dict[str, Mistake]
    rtol: float = 1e-4
    atol: float = 1e-5


@dataclass(frozen=True)
class Result:
    """The outcome of a check. ``status``: passed, failed or todo (an untouched stub)."""

    exercise: str
    status: str
    message: str
    mistake: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        # Marks from common monospace fonts (DejaVu Sans Mono has them), not emoji, which
        # render as empty boxes where no emoji font is installed.
        mark = {"passed": "✓", "failed": "✗", "todo": "→"}[self.status]
        return f"{mark} {self.exercise}: {self.message}"


class _TimeLimit(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (Unix main thread, as in a notebook); else no limit."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _where_in_student_code(error: BaseException) -> str:
    """' (line 3: `return x / 0`)' for the last frame of the traceback outside this library."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not Path(f.filename).resolve().is_relative_to(PACKAGE_DIR)
              and "site-packages" not in f.filename and "/lib/python" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (line {frame.lineno}: `{frame.line}`)" if frame.line else f" (line {frame.lineno})"


def _raised_by_student(error: BaseException) -> bool:
    """Is ``error`` the stub's own ``raise NotImplementedError`` (not an operation torch lacks)?"""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and "raise NotImplementedError" in (frames[-1].line or "")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def difference(expected: Any, got: Any, *, rtol: float, atol: float) -> str | None:
    """How ``got`` differs from ``expected`` (a sentence), or None when they agree."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            return f"returned {_describe(got)}, expected a tuple of {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = difference(e, g, rtol=rtol, atol=atol)
            if problem:
                return f"item {i} of the tuple: {problem}"
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"returned {_describe(got)}, expected a torch.Tensor"
        if got.shape != expected.shape:
            return f"returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if (got.dtype.is_floating_point != expected.dtype.is_floating_point
                or (got.dtype == torch.bool) != (expected.dtype == torch.bool)):
            return f"returned dtype {got.dtype}, expected {expected.dtype}"
        if got.device != expected.device:
            return f"returned a tensor on {got.device}, expected it on {expected.device}"
        want, have = expected.detach().double(), got.detach().double()  # bool and int tensors too
        if torch.allclose(have, want, rtol=rtol, atol=atol, equal_nan=True):
            return None
        gap = torch.where(have == want, 0.0, (have - want).abs().nan_to_num(nan=math.inf))
        index = tuple(int(i) for i in torch.unravel_index(gap.argmax(), gap.shape)) if gap.ndim else ()
        where = f" at index {list(index)}" if index else ""
        return f"wrong values{where}: expected {expected[index].item():.6g}, got {got[index].item():.6g}"
    if isinstance(expected, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"returned {_describe(got)}, expected a number"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) or (math.isnan(got) and math.isnan(expected)):
            return None
        return f"expected {expected:.6g}, got {got:.6g}"
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def _fresh(case: Case) -> tuple[tuple, dict]:
    """A deep copy of the inputs, so that a function that modifies its input harms nothing."""
    return copy.deepcopy(case.args), copy.deepcopy(case.kwargs)


def _crashing_mistake(exercise: Exercise, case: Case, error: Exception) -> str | None:
    """The catalogued mistake that raises the same kind of error on this case, if one does."""
    for key, mistake in exercise.mistakes.items():
        args, kwargs = _fresh(case)
        try:
            mistake.wrong(*args, **kwargs)
        except type(error):
            return key
        except Exception:
            continue
    return None


def run_check(exercise: Exercise, fn: Callable, *, seconds: float = TIME_LIMIT_S) -> Result:
    """Run ``fn`` on every case of ``exercise`` and explain the first disagreement."""
    name = exercise.name
    if not callable(fn):
        return Result(name, "failed", f"expected a function, got {_describe(fn)}")
    cases = exercise.cases()
    for case in cases:
        args, kwargs = _fresh(case)
        expected = exercise.reference(*args, **kwargs)
        args, kwargs = _fresh(case)
        try:
            with time_limit(seconds):
                got = fn(*args, **kwargs)
        except NotImplementedError as error:
            if _raised_by_student(error):  # the stub itself, not an operation torch lacks
                return Result(name, "todo", "not implemented yet: replace the `raise NotImplementedError` with your code")
            return Result(name, "failed", f"your function raised NotImplementedError: {error}"
                                          f"{_where_in_student_code(error)}, on {case.label}")
        except _TimeLimit:
            return Result(name, "failed", f"stopped after {seconds:g} s on {case.label}: is there a loop that never ends?")
        except Exception as error:  # the student's own error, reported as theirs
            message = (f"your function raised {type(error).__name__}: {error}"
                       f"{_where_in_student_code(error)}, on {case.label}")
            key = _crashing_mistake(exercise, case, error)
            if key is not None:  # a catalogued mistake that crashes the same way: name it too
                return Result(name, "failed", f"{exercise.mistakes[key].hint}. {message}", mistake=key)
            return Result(name, "failed", message)
        problem = difference(expected, got, rtol=exercise.rtol, atol=exercise.atol)
        if problem is None:
            continue
        for key, mistake in exercise.mistakes.items():
            args, kwargs = _fresh(case)
            try:
                wrong = mistake.wrong(*args, **kwargs)
            except Exception:
                continue  # this mistake crashes on this case, so it is not the student's
            if (difference(wrong, got, rtol=exercise.rtol, atol=exercise.atol) is None
                    and difference(expected, wrong, rtol=exercise.rtol, atol=exercise.atol) is not None):
                return Result(name, "failed", f"{mistake.hint} (on {case.label})", mistake=key)
        return Result(name, "failed", f"on {case.label}, {problem}")
    verified = textwrap.fill("; ".join(c.label for c in cases), width=72, initial_indent="   ",
                             subsequent_indent="   ")
    return Result(name, "passed", f"correct on all {len(cases)} cases:\n{verified}")


def report(result: Result) -> None:
    """Show the result: a display output carrying it as metadata in a notebook, a print elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import publish_display_data
    except ImportError:  # pragma: no cover - IPython arrives with the notebook stack
        get_ipython = lambda: None  # noqa: E731
    if get_ipython() is None:
        print(result)
        return
    publish_display_data({"text/plain": str(result)},
                         metadata={METADATA_KEY: {"exercise": result.exercise, "status": result.status,
                                                  "message": result.message, "mistake": result.mistake}})


def check(exercise: Exercise, fn: Callable) -> None:
    """Check ``fn`` against ``exercise`` and show the result. Returns nothing on purpose."""
    report(run_check(exercise, fn))


# Answer values with a variant per student ---------------------------------------------------------

def variant_seed(student_id: str, exercise: str) -> int:
    """The seed of a student's variant of an exercise: the first 8 hex digits of
    sha256("STUDENT_ID:exercise"). The notebook and the grader derive it the same way, from the
    ``STUDENT_ID = "..."`` the student writes in the notebook (the grader reads that literal)."""
    return int(hashlib.sha256(f"{student_id}:{exercise}".encode()).hexdigest()[:8], 16)


@dataclass(frozen=True)
class ValueExercise:
    """An exercise whose answer is one value (a number, a choice), different for each student.

    ``question(seed)`` gives a variant's parameters, ``answer(**parameters)`` its right answer,
    and each mistake's ``wrong(**parameters)`` the answer that mistake gives.
    """

    name: str
    task: str
    question: Callable[[int], dict]
    answer: Callable[..., Any]
    mistakes: dict[str, Mistake]
    rtol: float = 1e-6
    atol: float = 1e-9

    def variant(self, student_id: str) -> dict:
        return self.question(variant_seed(student_id, self.name))


def run_value_check(exercise: ValueExercise, student_id: Any, value: Any) -> Result:
    """Compare ``value`` with the right answer of this student's variant, naming a mistake."""
    name = exercise.name
    if not isinstance(student_id, str) or not student_id.strip():
        return Result(name, "failed", 'set STUDENT_ID = "your student id" (a string) at the top of the notebook: '
                                      "your variant of this exercise depends on it")
    if value is ...:
        return Result(name, "todo", "not answered yet: replace the ... with your answer")
    parameters = exercise.variant(student_id)
    expected = exercise.answer(**parameters)
    problem = difference(expected, value, rtol=exercise.rtol, atol=exercise.atol)
    shown = ", ".join(f"{k}={v}" for k, v in parameters.items())
    if problem is None:
        return Result(name, "passed", f"correct for your variant ({shown})")
    for key, mistake in exercise.mistakes.items():
        wrong = mistake.wrong(**parameters)
        if (difference(wrong, value, rtol=exercise.rtol, atol=exercise.atol) is None
                and difference(expected, wrong, rtol=exercise.rtol, atol=exercise.atol) is not None):
            return Result(name, "failed", f"{mistake.hint} (your variant: {shown})", mistake=key)
    return Result(name, "failed", f"for your variant ({shown}), {problem}")


def check_value(exercise: ValueExercise, student_id: Any, value: Any) -> None:
    """Check an answer value and show the result (the notebook's side of the value protocol)."""
    report(run_value_check(exercise, student_id, value))
