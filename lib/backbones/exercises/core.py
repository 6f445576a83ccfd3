"""The checking engine: run a student's function against a trusted reference and explain.

An :class:`Exercise` is plain data: the reference implementation, seeded test cases (edge
shapes included) and a catalogue of :class:`Mistake` s, each a wrong implementation that makes
one common mistake, with the hint a student should read when they make it. A check runs the
student's function on every case; on the first case where it disagrees with the reference, it
runs each catalogued mistake on that case, and when the student's output equals a mistake's,
it names that mistake. Otherwise it shows where the output differs, never the reference code.

A check prints one line and returns nothing (no stray value in the page). In a notebook it also
attaches the result as output metadata (``backbones_check``) for tools that read a notebook's
outputs; the grader never reads them: it runs the submission's code again and decides itself.

An exercise is declared once, in its topic module (``basics``, ``cnn``, ...): the package
collects every :class:`Exercise` and :class:`ValueExercise` there into its registry and derives
``check_NAME`` from each (``backbones.exercises.__init__``); the grader reads the same registry.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import inspect
import math
import re
import signal
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from backbones.exercises._child import watching

PACKAGE_DIR = Path(__file__).resolve().parents[1]
METADATA_KEY = "backbones_check"
TIME_LIMIT_S = 10.0
WIDTH = 86  # characters of a printed line that fit the book's page


@dataclass(frozen=True)
class Case:
    """One seeded input: positional arguments, keyword arguments, and what makes it special.
    An exercise's cases form a ladder, the simplest first; ``adds`` says what this rung adds to
    the ones before it and where to look when it is the first that breaks ("a mask: look at
    where the masked scores become -inf")."""

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    adds: str = ""


@dataclass(frozen=True)
class Probe:
    """An input built to tell families of mistakes apart (``v`` the identity, so attention
    returns its weights; an image whose pixels are their own positions; a count evaluated where
    each of its terms can be read off). ``diagnose(got, expected)`` reads the student's outputs on
    ``cases`` beside the reference's (two lists) and returns the family they show, with where to
    look, or None when they show nothing."""

    label: str
    cases: tuple[Case, ...]
    diagnose: Callable[[list, list], str | None]


def rungs(cases: list[Case], *adds: str) -> list[Case]:
    """``cases`` as a ladder: the first is the simplest; ``adds[i]`` says what ``cases[i + 1]``
    adds to the rungs below it, and where to look when it is the first that breaks."""
    if len(adds) != len(cases) - 1 or not all(adds):
        raise ValueError(f"{len(cases)} cases need {len(cases) - 1} descriptions of what each rung adds")
    return cases[:1] + [dataclasses.replace(case, adds=a) for case, a in zip(cases[1:], adds)]


def _no_probes() -> list[Probe]:
    return []


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer: ``wrong`` makes exactly this mistake; ``hint`` names it."""

    hint: str
    wrong: Callable


KINDS = ("function", "module")


@dataclass(frozen=True)
class Exercise:
    """An exercise: what to implement, the reference, the cases and the catalogue of mistakes.

    ``kind`` says how a case is run: ``"function"`` calls the function on the case's arguments
    and compares what it returns; ``"module"`` calls it on all but the last argument to *build* an
    ``nn.Module`` (under seed 0), applies that module to the last argument and compares the
    outputs (:func:`backbones.exercises._child.build_and_apply`, the one runner the notebook and
    the grader's sandbox share). The reference and the mistakes are then builders too.
    ``section``: where the book teaches it. ``probes``: inputs that diagnose families of mistakes
    the catalogue does not name exactly (:class:`Probe`). ``forbidden``: the functions and classes that would
    solve the exercise for the student (``"torch.nn.functional.scaled_dot_product_attention"``):
    a call to one during the student's function fails the check, however it is reached.
    """

    name: str
    task: str
    reference: Callable
    cases: Callable[[], list[Case]]
    mistakes: dict[str, Mistake]
    rtol: float = 1e-4
    atol: float = 1e-5
    kind: str = "function"
    section: str = ""
    forbidden: tuple[str, ...] = ()  # dotted names of what would solve it for the student
    probes: Callable[[], list[Probe]] = _no_probes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, not {self.kind!r}")

    def on_case(self, fn: Callable) -> Callable:
        """``fn`` as a case calls it: itself, or for the module kind, built and applied."""
        if self.kind == "function":
            return fn
        from backbones.exercises._child import build_and_apply

        return lambda *args, **kwargs: build_and_apply(fn, args, kwargs, name=self.name)


@dataclass(frozen=True)
class Result:
    """The outcome of a check. ``status``: passed, failed or todo (an untouched stub)."""

    exercise: str
    status: str
    message: str
    mistake: str | None = None
    localised: str | None = None  # "rung", "probe" or "form" (type, shape, dtype): where an unnamed mistake was found
    stopped: bool = False  # the time limit ran out (on the case the message names)
    raised: str | None = None  # the exception the student's function raised, by type name

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


def short_name(dotted: str) -> str:
    """How the book writes a name: ``F.conv2d``, ``nn.MultiheadAttention``, ``bb.words.analogy``."""
    for long, short in (("torch.nn.functional.", "F."), ("torch.nn.", "nn."), ("backbones.", "bb.")):
        if dotted.startswith(long):
            return short + dotted[len(long) :]
    return dotted


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
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not Path(f.filename).resolve().is_relative_to(PACKAGE_DIR)
        and "site-packages" not in f.filename
        and "/lib/python" not in f.filename
    ]
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
        if isinstance(got, list) and len(got) == len(expected):
            parts = ", ".join("..." for _ in expected)
            return f"returned a list, expected a tuple of {len(expected)}: return ({parts}), not [...]"
        if not isinstance(got, tuple) or len(got) != len(expected):
            return f"returned {_describe(got)}, expected a tuple of {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = difference(e, g, rtol=rtol, atol=atol)
            if problem:
                return f"item {i} of the tuple: {problem}"
        return None
    if isinstance(expected, torch.Tensor):
        if isinstance(got, tuple) and got and isinstance(got[0], torch.Tensor) and got[0].shape == expected.shape:
            return (
                f"returned a tuple of {len(got)}, expected a torch.Tensor: if it is (output, weights), as "
                f"nn.MultiheadAttention returns, return the output alone"
            )
        if not isinstance(got, torch.Tensor):
            return f"returned {_describe(got)}, expected a torch.Tensor"
        if got.shape != expected.shape:
            return f"returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if got.dtype.is_floating_point != expected.dtype.is_floating_point or (got.dtype == torch.bool) != (
            expected.dtype == torch.bool
        ):
            return f"returned dtype {got.dtype}, expected {expected.dtype}"
        if expected.dtype.is_floating_point and got.dtype != expected.dtype:
            return (
                f"returned dtype {got.dtype}, expected {expected.dtype}: keep the inputs' dtype "
                f"(a float64 constant or torch.tensor(...) without dtype= changes it)"
            )
        if got.device != expected.device:
            return f"returned a tensor on {got.device}, expected it on {expected.device}"
        want, have = (expected.detach().double(), got.detach().double())  # bool and int tensors too
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


def _same(a: Any, b: Any) -> bool:
    """Are two inputs equal, tensors (and modules' parameters and buffers) element by element?"""
    from backbones.exercises._child import same_tensor

    if isinstance(a, torch.Tensor):
        return same_tensor(a, b)
    if isinstance(a, torch.nn.Module):
        return isinstance(b, torch.nn.Module) and _same(a.state_dict(), b.state_dict())
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True  # numbers, strings: passed by value, a function cannot change the caller's


def changed_inputs(reference: Callable, case: Case, args: tuple, kwargs: dict) -> list[str]:
    """The names of the case's inputs that a call changed in place (compared with the case)."""
    try:
        names = list(inspect.signature(reference).parameters)
    except (TypeError, ValueError):
        names = []
    changed = [
        names[i] if i < len(names) else f"argument {i + 1}"
        for i, (before, after) in enumerate(zip(case.args, args))
        if not _same(before, after)
    ]
    return changed + [name for name in case.kwargs if not _same(case.kwargs[name], kwargs.get(name))]


def _message_kind(error: BaseException) -> str:
    """An error's message with its numbers left out: two crashes of the same kind ("size of
    tensor a (4) must match ... (3)") read the same, whatever the sizes."""
    return re.sub(r"\d+", "#", " ".join(str(error).split()))[:300]


def _crashing_mistake(exercise: Exercise, case: Case, error: Exception) -> str | None:
    """The catalogued mistake that crashes the same way on this case (the same exception type
    *and* the same kind of message), if one does: a shape error of another kind is not it."""
    for key, mistake in exercise.mistakes.items():
        args, kwargs = _fresh(case)
        try:
            exercise.on_case(mistake.wrong)(*args, **kwargs)
        except Exception as theirs:
            if type(theirs) is type(error) and _message_kind(theirs) == _message_kind(error):
                return key
    return None


def calls(cases: list[Case]) -> list[Case]:
    """The order a check calls the function in: every case, then every case again, each after a
    different case than the first time (the cases in reverse, the last one last). An answer that
    changes on the second call depends on an earlier call: a cache, a global, a modified default.
    The grader's sandbox runs the same calls."""
    if len(cases) < 2:
        return list(cases) * 2
    return list(cases) + list(cases[-2::-1]) + [cases[-1]]


def schedule(exercise: Exercise) -> list[Case]:
    """Every call a check may make, in order: :func:`calls`, then the probes' inputs (run only
    when an answer is wrong). The grader's sandbox runs them all, so a replay can answer each."""
    return calls(exercise.cases()) + [case for probe in exercise.probes() for case in probe.cases]


def _probe(
    exercise: Exercise, call: Callable, reference: Callable, fn: Callable, at: int, seconds: float, replay: bool
):
    """The first probe's diagnosis of ``call``, or None (a probe that crashes tells nothing).
    ``at``: the probes' first index in :func:`schedule`, where a replay finds their answers."""
    for probe in exercise.probes():
        start, at = at, at + len(probe.cases)
        try:
            expected, got = [], []
            for j, case in enumerate(probe.cases):
                args, kwargs = _fresh(case)
                expected.append(reference(*args, **kwargs))
                args, kwargs = _fresh(case)
                if replay:
                    fn.seek(start + j)
                with time_limit(seconds):
                    got.append(call(*args, **kwargs))
            diagnosis = probe.diagnose(got, expected)
        except Exception:
            continue
        if diagnosis:
            return diagnosis
    return None


def _rung(order: list[Case], i: int) -> str | None:
    """Where a ladder localises a failure on ``order[i]``: the rungs below it held, and what it adds."""
    case = order[i]
    if i == 0 or not case.adds:
        return None
    below = "the simpler case" if i == 1 else f"the {i} simpler cases"
    return f"right on {below} (up to {order[i - 1].label}), wrong once the cases add {case.adds}"


def module_changes(reference: Callable, case: Case, args: tuple, kwargs: dict) -> list[str]:
    """What a call left changed in the modules it was given: a submodule switched between
    training and evaluation mode, or hooks left registered (compared with the case)."""
    from backbones.exercises._child import module_effects, modules_among

    try:
        names = list(inspect.signature(reference).parameters)
    except (TypeError, ValueError):
        names = []
    changes = []
    for slot, name, what, value in module_effects(modules_among(case.args, case.kwargs), args, kwargs):
        argument = slot if isinstance(slot, str) else names[slot] if slot < len(names) else f"argument {slot + 1}"
        part = f"`{argument}.{name}`" if name else f"`{argument}`"
        if what == "training":
            mode = "training" if value else "evaluation"
            changes.append(f"you left {part} in {mode} mode (it came in {'evaluation' if value else 'training'} mode)")
        else:
            changes.append(f"you left {value} hook(s) registered on {part}")
    return changes


def run_check(exercise: Exercise, fn: Callable, *, seconds: float = TIME_LIMIT_S, replay: bool = False) -> Result:
    """Run ``fn`` on every case of ``exercise`` and explain the first disagreement.
    ``replay``: ``fn`` already answers a case as the student's function did there (the grader's
    stand-in, which hands back what the sandbox recorded), so it is not built and applied again."""
    name = exercise.name
    if not callable(fn):
        return Result(name, "failed", f"expected a function, got {_describe(fn)}")
    call = fn if replay else exercise.on_case(fn)
    reference = exercise.on_case(exercise.reference)
    cases = exercise.cases()
    order = calls(cases)
    # the engine's own functions (the reference, the catalogued mistakes) may use anything
    trusted = fn is exercise.reference or any(fn is m.wrong for m in exercise.mistakes.values())
    watched = () if replay or trusted else exercise.forbidden
    shortcut = None  # the first case on which it called what it is asked to write, and the names
    for i, case in enumerate(order):
        again = f", called again after {order[i - 1].label}" if i >= len(cases) else ""
        args, kwargs = _fresh(case)
        expected = reference(*args, **kwargs)
        args, kwargs = _fresh(case)
        try:
            with time_limit(seconds), watching(watched) as called:
                got = call(*args, **kwargs)
            if replay:  # the sandbox watched the call; the stand-in hands on what it saw
                called = list(getattr(fn, "forbidden_calls", None) or [])
            if called and shortcut is None:
                shortcut = (case, list(called))
        except NotImplementedError as error:
            if _raised_by_student(error):  # the stub itself, not an operation torch lacks
                return Result(
                    name, "todo", "not implemented yet: replace the `raise NotImplementedError` with your code"
                )
            return Result(
                name,
                "failed",
                f"your function raised NotImplementedError: {error}{_where_in_student_code(error)}, on {case.label}",
                raised="NotImplementedError",
            )
        except _TimeLimit:
            return Result(
                name,
                "failed",
                f"stopped after {seconds:g} s on {case.label}: is there a loop that never ends?",
                stopped=True,
            )
        except Exception as error:  # the student's own error, reported as theirs
            where = _where_in_student_code(error)
            message = f"your function raised {type(error).__name__}: {error}{where}, on {case.label}{again}"
            key = _crashing_mistake(exercise, case, error)
            if key is not None:  # a catalogued mistake that crashes the same way: name it too
                return Result(
                    name,
                    "failed",
                    f"{exercise.mistakes[key].hint}. {message}",
                    mistake=key,
                    raised=type(error).__name__,
                )
            rung = None if again else _rung(order, i)
            if rung:
                return Result(name, "failed", f"{rung}. {message}", localised="rung", raised=type(error).__name__)
            return Result(name, "failed", message, raised=type(error).__name__)
        changed = changed_inputs(exercise.reference, case, args, kwargs)
        if changed:
            inputs = " and ".join(f"`{c}`" for c in changed)
            return Result(
                name,
                "failed",
                f"your function changed its input {inputs} in place (on {case.label}): "
                f"in a notebook that changes the caller's tensor too. Compute a new "
                f"tensor (q = q / s, not q /= s or q.div_(s))",
                mistake="in_place",
            )
        left = module_changes(exercise.reference, case, args, kwargs)
        if left:
            return Result(
                name,
                "failed",
                f"{'; '.join(left)} (on {case.label}). A function given a model must leave it as "
                f"it found it: restore its mode (was_training = model.training ... "
                f"model.train(was_training)) and remove its hooks (handle.remove(), in a finally:)",
                mistake="side_effect",
            )
        problem = difference(expected, got, rtol=exercise.rtol, atol=exercise.atol)
        if problem is None:
            continue
        if again:  # right the first time, wrong now: the answer depends on an earlier call
            return Result(
                name,
                "failed",
                f"on {case.label}{again}, {problem}, where the first call was right: your function "
                f"keeps something from an earlier call (a cache, a global, a default argument it "
                f"changes); compute the answer from this call's arguments alone",
                mistake="state",
            )
        for key, mistake in exercise.mistakes.items():
            args, kwargs = _fresh(case)
            try:
                wrong = exercise.on_case(mistake.wrong)(*args, **kwargs)
            except Exception:
                continue  # this mistake crashes on this case, so it is not the student's
            if (
                difference(wrong, got, rtol=exercise.rtol, atol=exercise.atol) is None
                and difference(expected, wrong, rtol=exercise.rtol, atol=exercise.atol) is not None
            ):
                return Result(name, "failed", f"{mistake.hint} (on {case.label})", mistake=key)
        diagnosis = _probe(exercise, call, reference, fn, len(order), seconds, replay)
        if diagnosis:
            return Result(name, "failed", f"{diagnosis}. On {case.label}, {problem}", localised="probe")
        rung = _rung(order, i)
        if rung:
            return Result(name, "failed", f"{rung}: on {case.label}, {problem}", localised="rung")
        # the output's type, shape, dtype or device: where to look is said, not which values differ
        form = "form" if re.match(r"(item \d+ of the tuple: )?returned ", problem) else None
        return Result(name, "failed", f"on {case.label}, {problem}", localised=form)
    if shortcut is not None:  # right answers, reached through what the exercise asks for
        case, called = shortcut
        names = " and ".join(f"`{short_name(n)}`" for n in called)
        return Result(
            name,
            "failed",
            f"your answers are right, but you called {names} (on {case.label}), which this "
            f"exercise asks you to write: compute it from tensor operations yourself",
            mistake="forbidden_call",
        )
    verified = textwrap.fill(
        "; ".join(c.label for c in cases),
        width=72,
        initial_indent="   ",
        subsequent_indent="   ",
        break_on_hyphens=False,
    )
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
    publish_display_data(
        {"text/plain": str(result)},
        metadata={
            METADATA_KEY: {
                "exercise": result.exercise,
                "status": result.status,
                "message": result.message,
                "mistake": result.mistake,
            }
        },
    )


def check(exercise: Exercise, fn: Callable) -> None:
    """Check ``fn`` against ``exercise`` and show the result. Returns nothing on purpose.
    In a notebook, also warn when ``fn`` reads a name the grader will not define."""
    report(run_check(exercise, fn))
    note = grader_note(fn)
    if note:
        print(note)


def grader_note(fn: Callable, history: list[str] | None = None) -> str | None:
    """A warning when ``fn``, defined in the notebook, reads a global that the grader would leave
    undefined (set by a magic, ``exec`` or ``globals()[...]``): the grader runs only the notebook's
    imports, definitions and the statements graded code reads from (``reading.definitions``).
    ``history``: the notebook's code cells (default: IPython's raw input history)."""
    from backbones.exercises.reading import unseen_names

    if getattr(fn, "__globals__", {}).get("__name__") != "__main__":
        return None
    if history is None:
        try:
            from IPython import get_ipython

            history = list(get_ipython().history_manager.input_hist_raw)
        except Exception:  # not in IPython: nothing to compare with
            return None
    try:
        names = unseen_names(history, fn.__name__)
    except Exception:  # a history the reader cannot follow: no warning rather than a wrong one
        return None
    if not names:
        return None
    listed = ", ".join(f"`{n}`" for n in names)
    return (
        f"  note: the grader runs only this notebook's imports, definitions and the plain statements "
        f"{fn.__name__} reads from; it will not see {listed} (set by a magic, exec or globals()?): "
        f"set {'it' if len(names) == 1 else 'them'} with a plain assignment, or {fn.__name__} fails when graded"
    )


# Answer values with a variant per student ---------------------------------------------------------

# The id of the book's own pages: the rendered book shows this variant's answers (behind toggles),
# so the grader does not accept it from a student.
BOOK_ID = "instructor"


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
    prompt: Callable[..., str] | None = None  # the question as the student reads it, from the parameters
    section: str = ""  # where the book teaches it, named in every failure
    show_parameters: bool = True  # False for a choice: its order would name the options
    options: dict[str, tuple[str, str | None]] | None = None  # a choice's {key: (text, why wrong or None)}

    def explain(self, student_id: str) -> str:
        """The answer to this student's variant and why each wrong answer is wrong: for a choice,
        every option in the student's order; for a value, what each catalogued mistake gives."""
        parameters = self.variant(student_id)
        right = self.answer(**parameters)
        lines = [f"Answer: {right}" + (f"  (taught in {self.section})" if self.section else "")]
        if self.options is not None:
            for letter, key in zip(LETTERS, parameters["order"]):
                text, why = self.options[key]
                lines.append(f"{letter}. {text}")
                lines.append(f"   {'right' if why is None else 'wrong: ' + why}")
        else:
            for mistake in self.mistakes.values():
                wrong = mistake.wrong(**parameters)
                shown = f"{wrong:.4g}" if isinstance(wrong, float) else str(wrong)
                lines.append(f"If you answered {shown}: {mistake.hint}.")
        return "\n".join(
            textwrap.fill(
                line, width=WIDTH, subsequent_indent=" " * (len(line) - len(line.lstrip()) + 3), break_on_hyphens=False
            )
            for line in lines
        )

    def variant(self, student_id: str) -> dict:
        return self.question(variant_seed(student_id, self.name))

    def ask(self, student_id: str) -> str:
        """The text of this student's variant of the question, wrapped to fit a page."""
        parameters = self.variant(student_id)
        text = (
            self.prompt(**parameters)
            if self.prompt is not None
            else f"{self.task} ({', '.join(f'{k}={v}' for k, v in parameters.items())})"
        )
        return "\n".join(
            textwrap.fill(
                line, width=WIDTH, subsequent_indent=" " * (len(line) - len(line.lstrip()) + 3), break_on_hyphens=False
            )
            for line in text.split("\n")
        )


LETTERS = "ABCDEFGH"


def choice(name: str, question: str, options: dict[str, tuple[str, str | None]], *, section: str = "") -> ValueExercise:
    """A multiple-choice question whose wrong options each explain themselves.

    ``options``: ``{key: (text, why it is wrong)}``, with exactly one ``None`` explanation, the
    right option. Each student sees the options in their own order (the variant is the order),
    answers with a letter, and a wrong letter gets that option's explanation.
    """
    keys = list(options)
    right = [k for k, (_, why) in options.items() if why is None]
    if len(right) != 1:
        raise ValueError(f"{name}: exactly one option must have no explanation (the right one), got {right}")

    def order(seed: int) -> dict:
        g = torch.Generator().manual_seed(seed)
        return {"order": [keys[i] for i in torch.randperm(len(keys), generator=g).tolist()]}

    def letter_of(key: str):
        return lambda order: LETTERS[order.index(key)]

    def prompt(order: list[str]) -> str:
        lines = [question] + [f"  {LETTERS[i]}. {options[key][0]}" for i, key in enumerate(order)]
        return "\n".join(lines) + '\nAnswer with a letter, e.g. "A".'

    return ValueExercise(
        name=name,
        task=question,
        question=order,
        answer=letter_of(right[0]),
        mistakes={key: Mistake(f"{why}", letter_of(key)) for key, (_, why) in options.items() if why is not None},
        prompt=prompt,
        section=section,
        show_parameters=False,
        options=dict(options),
    )


def run_value_check(exercise: ValueExercise, student_id: Any, value: Any) -> Result:
    """Compare ``value`` with the right answer of this student's variant, naming a mistake."""
    name = exercise.name
    if not isinstance(student_id, str) or not student_id.strip():
        return Result(
            name,
            "failed",
            'set STUDENT_ID = "your student id" (a string) at the top of the notebook: '
            "your variant of this exercise depends on it",
        )
    if value is ...:
        return Result(name, "todo", "not answered yet: replace the ... with your answer")
    parameters = exercise.variant(student_id)
    expected = exercise.answer(**parameters)
    if isinstance(expected, str) and isinstance(value, str):  # a letter: " b" is B
        value = value.strip().upper()
    problem = difference(expected, value, rtol=exercise.rtol, atol=exercise.atol)
    shown = (
        ", ".join(f"{k}={v}" for k, v in parameters.items())
        if exercise.show_parameters
        else f"the options in your order, {' '.join(LETTERS[: len(parameters.get('order', []))])}"
    )
    revisit = f" Revisit {exercise.section}." if exercise.section else ""

    def wrapped(message: str) -> str:  # after the "✗ name: " that Result puts before it
        return textwrap.fill(
            message, width=WIDTH, initial_indent=" " * (len(name) + 4), subsequent_indent="   ", break_on_hyphens=False
        ).lstrip()

    if problem is None:
        return Result(name, "passed", wrapped(f"correct for your variant ({shown})"))
    for key, mistake in exercise.mistakes.items():
        wrong = mistake.wrong(**parameters)
        if (
            difference(wrong, value, rtol=exercise.rtol, atol=exercise.atol) is None
            and difference(expected, wrong, rtol=exercise.rtol, atol=exercise.atol) is not None
        ):
            return Result(name, "failed", wrapped(f"{mistake.hint} (your variant: {shown}).{revisit}"), mistake=key)
    return Result(name, "failed", wrapped(f"for your variant ({shown}), {problem}.{revisit}"))


def check_value(exercise: ValueExercise, student_id: Any, value: Any) -> None:
    """Check an answer value and show the result (the notebook's side of the value protocol)."""
    report(run_value_check(exercise, student_id, value))
