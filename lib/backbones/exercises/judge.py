"""The grader's third stage: the verdict, decided in the grader's own process.

What the sandbox handed back (:class:`~backbones.exercises.sandbox.SandboxRun`: outputs as plain
data, or how the child ended) is replayed to the same engine the notebooks use
(``core.run_check``, ``core.run_value_check``) through a stand-in for the student's function, so
pass or fail, and which catalogued mistake was made, are computed here on plain tensors rebuilt
from arrays. A function that changed its inputs in place is named for it: the child sends back
what it did to the case's tensors and the stand-in does the same to the grader's copies, where
the check sees it (``core.changed_inputs``); the same for a module it left in another mode or
with hooks still registered (``core.module_changes``).
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass

from backbones.exercises import _child, core
from backbones.exercises.core import BOOK_ID, TIME_LIMIT_S, Exercise, Result, ValueExercise
from backbones.exercises.sandbox import SandboxRun


class SubmissionError(Exception):
    """An error the student's code raised in the sandbox, of a type this process does not know."""


@dataclass
class ValueRun:
    """The notebook's answers, computed in one sandbox run, in the order of ``answers``."""

    run: SandboxRun | None
    answers: list[str]
    timeout: float


def _raise_todo() -> None:
    raise NotImplementedError("not implemented yet")  # core._raised_by_student reads this line


def replay(run: SandboxRun, function: str, timeout: float, start: int = 0):
    """A stand-in for the student's function: returns, case by case, what the sandbox recorded
    (plain tensors rebuilt from arrays), or raises what it raised there."""
    import torch

    position = [start]  # the index of the call the stand-in answers next

    def where(data: dict) -> str:
        code = " ".join(str(data.get("code") or "").split())[:120]
        return f" (line {data['line']}: `{code}`)" if data.get("line") and code else ""

    def stand_in(*args, **kwargs):
        i = position[0]
        position[0] += 1
        if run.stopped == "definitions":
            raise SubmissionError(
                f"defining the notebook's functions (its imports, definitions and the statements "
                f"they read from) took longer than {timeout:g} s: nothing could be graded"
            )
        if run.load_error is not None:
            error = run.load_error
            raise SubmissionError(
                f"defining the notebook's functions raised {str(error.get('error'))[:80]}: "
                f"{str(error.get('message'))[:300]}{where(error)}"
            )
        data = run.cases.get(i)
        if data is None:
            if run.stopped == "folder":
                raise SubmissionError(
                    f"the process running {function} was stopped: it wrote more files into its "
                    f"folder than a submission may"
                )
            if run.timed_out:
                raise core._TimeLimit
            raise SubmissionError(
                f"the process running {function} ended (exit code {run.returncode}) before it returned"
            )
        if "timeout" in data:
            raise core._TimeLimit
        if "error" in data:
            if data.get("todo"):
                _raise_todo()
            kind = getattr(builtins, str(data["error"]), None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)) or issubclass(kind, NotImplementedError):
                kind = SubmissionError
            raise kind(f"{str(data.get('message'))[:300]}{where(data)}")
        if "output" not in data:
            raise SubmissionError("the sandbox returned no output")
        # what it called that the exercise asks it to write, for the check to name
        stand_in.forbidden_calls = [str(n)[:120] for n in data.get("forbidden") or []][:5]
        try:
            arrays = run.arrays.get(i, {})
            for slot, value in data.get("modified") or []:  # do to the inputs what it did there
                target = args[slot] if isinstance(slot, int) and 0 <= slot < len(args) else kwargs.get(str(slot))
                value = _child.decode(value, arrays)
                if isinstance(target, torch.Tensor) and isinstance(value, torch.Tensor):
                    with torch.no_grad():
                        target.copy_(
                            value.reshape(target.shape)
                            if value.numel() == target.numel()
                            else torch.full_like(target, float("nan"))
                        )
            for slot, name, what, value in data.get("module_effects") or []:  # and to its modules
                target = args[slot] if isinstance(slot, int) and 0 <= slot < len(args) else kwargs.get(str(slot))
                module = dict(target.named_modules()).get(str(name)) if isinstance(target, torch.nn.Module) else None
                if module is None:
                    continue
                if what == "training":
                    module.training = bool(value)
                elif what == "hooks":
                    for _ in range(min(int(value), 100)):
                        module.register_forward_hook(lambda *_: None)
            return _child.decode(data["output"], arrays)
        except Exception as error:
            raise SubmissionError(f"the output could not be read back ({str(error)[:200]})") from None

    def seek(index: int) -> None:  # the check jumps to a probe's recorded answer
        position[0] = start + index

    stand_in.seek = seek
    return stand_in


def missing(exercise: Exercise | ValueExercise, name: str, broken: list[tuple[str, str]], *, value: bool) -> Result:
    """The result when the notebook has no (readable) definition of ``name``."""
    for text, error in broken:
        pattern = rf"^\s*{re.escape(name)}\s*=" if value else rf"\b(def|class)\s+{re.escape(name)}\b"
        if re.search(pattern, text, re.MULTILINE):
            what = "sets" if value else "defines"
            return Result(exercise.name, "failed", f"the cell that {what} {name} cannot be read: {error}")
    if value:
        return Result(exercise.name, "failed", f"no {name} = ... in the notebook's code cells")
    return Result(exercise.name, "failed", f"no definition of {name} in the notebook's code cells")


def judge_function(exercise: Exercise, function: str, run: SandboxRun, *, timeout: float) -> Result:
    """A function (or module) exercise, from its sandbox run."""
    seconds = timeout if run.timed_out and len(run.cases) < len(core.schedule(exercise)) else min(timeout, TIME_LIMIT_S)
    result = core.run_check(exercise, replay(run, function, timeout), seconds=seconds, replay=True)
    if result.stopped:  # say which function was running when time ran out
        result = Result(result.exercise, result.status, f"{function}: {result.message}", result.mistake, stopped=True)
    return result


def judge_value(exercise: ValueExercise, answer: str, student, values: ValueRun | None) -> Result:
    """A value exercise: the answer's variable was computed in the sandbox, the variant comes
    from the notebook's ``STUDENT_ID``, the comparison happens here."""
    if not isinstance(student, str) or not student.strip():  # say so before anything that needs the variant
        return core.run_value_check(exercise, student, None)
    if student.strip() == BOOK_ID:
        return Result(
            exercise.name,
            "failed",
            f'STUDENT_ID is still the book\'s "{BOOK_ID}", whose answers the '
            f"rendered book shows: set your own student id and answer again",
        )
    if values is None or values.run is None or answer not in values.answers:
        return Result(exercise.name, "failed", f"{answer} could not be computed")
    try:
        value = replay(values.run, answer, values.timeout, start=values.answers.index(answer))()
    except core._TimeLimit:
        return Result(exercise.name, "failed", f"computing {answer} took longer than {TIME_LIMIT_S:g} s", stopped=True)
    except Exception as error:
        return Result(
            exercise.name,
            "failed",
            f"computing {answer} raised {type(error).__name__}: {error}",
            raised=type(error).__name__,
        )
    return core.run_value_check(exercise, student, value)
