"""Grade submitted notebooks in bulk, for instructors (and for a student before submitting).

    python -m backbones.exercises.grader submissions/ --out grades/
    python -m backbones.exercises.grader alice.ipynb --master chapters/01_getting_started.ipynb

**The trust model.** Nothing a submission's code can write decides its grade. For each
submission the grader finds its chapter (``--master``, or the master whose name the file name
contains) and the exercises that chapter checks (from the *master*, never the submission). It
reads the submission as data: from its code cells it takes the imports, the top-level function
and class definitions and literal constants, found by name (so lost, reordered or id-less cells
do not matter), and the top-level statements that a graded function or answer reads from
(constants computed by an expression, aliases, loops that build a value; followed transitively,
in the notebook's order) -- nothing else runs, and no output, metadata or check cell is read.
It runs them in a fresh child process (``_child.py``), one per submission, that is given the
checks' inputs, runs the exercises one after another (each on its own wall clock; one the child
never began, because it was killed or crashed first, gets a child of its own) and hands back
only the functions' *outputs*, as JSON and arrays read within limits. Pass or fail, and which
catalogued mistake was made, are computed here, in the grader's own process, by the same engine
the notebooks use (``core.run_check``), on plain tensors rebuilt from those arrays.

The child is confined by :mod:`backbones.exercises.sandbox`: an allow-list bubblewrap sandbox in
a user namespace without capabilities (so also when the grader runs as root), resource limits,
a cgroup per submission where one can be made, and a wall clock that only moves forward. A hang
while defining fails every exercise at once.

Value exercises (``core.ValueExercise``) are graded the same way, all of a notebook's answers in
one child: the answer's top-level statements run there, with the statements they read from
(followed transitively, in the notebook's order, and nothing else), its value comes back as data,
and the variant comes from the submission's literal ``STUDENT_ID = "..."``
(``core.variant_seed``). A question's numbers, ``q = bb.exercises.ask("name", STUDENT_ID)`` in
the notebook, are computed here and handed to the child as a literal.

A function that changes its inputs in place is named for it: the child sends back what it did
to the case's tensors, and the replay does the same to the grader's copies, where the check
sees it (``core.changed_inputs``).

The grader writes ``grades.csv`` (file, student_id, exercise, passed, message) and
``summary.csv`` (file, student_id, passed, total) to ``--out``, one row per exercise, files named
by their path relative to the submissions' folder. It never writes to a submission, never
follows a link, and one submission's failure (not a regular file, not JSON, nested too deeply,
a syntax error, a crash, a hang) costs only its own rows.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import csv
import functools
import hashlib
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from backbones.book import MOVED, chapter_notebooks, find_root, load_notebook
from backbones.exercises import _child, core
from backbones.exercises.reading import (  # noqa: F401  (the grader's words too)
    MAX_NOTEBOOK, _needed, _statements, _text, definitions, read_submission)
from backbones.exercises.core import BOOK_ID, TIME_LIMIT_S, _TimeLimit
from backbones.exercises.sandbox import (  # noqa: F401  (bubblewrap, sandbox_note: the grader's public words)
    SandboxRun, bubblewrap, library_copy, read_regular, run_exercises, run_value_answers, sandbox_note, sweep,
    temporary_folder)

CHECK_CALL = re.compile(r"exercises\.check_(\w+)\(\s*(\w+)\s*(?:,\s*(\w+)\s*)?\)")
STUDENT_ID = "STUDENT_ID"  # the name a notebook gives the student's id (value exercises' variants)
DEFAULT_TIMEOUT_S = 120        # per exercise: the child's start (torch's import) included;
                               # each case also stops after core.TIME_LIMIT_S, as in the notebook
MAX_MESSAGE = 600


@dataclass(frozen=True)
class Row:
    file: str
    exercise: str
    passed: bool
    message: str
    student: str = ""  # the STUDENT_ID the row was graded under ("" when the notebook sets none)


# What a chapter checks ---------------------------------------------------------------------------

def checks_in(nb: dict) -> list[tuple[str, str]]:
    """``(check name, graded name)`` for every ``bb.exercises.check_NAME(function)`` call, and
    every ``check_NAME(STUDENT_ID, answer)`` call of a value exercise (the graded name is then
    the answer's variable)."""
    found: list[tuple[str, str]] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            for check, first, second in CHECK_CALL.findall(_text(cell)):
                if check not in {n for n, _ in found}:
                    found.append((check, second or first))
    return found


def exercises_in(nb: dict) -> list[str]:
    """The exercises a notebook checks, in order."""
    return [name for name, _ in checks_in(nb)]


@functools.cache
def graded_exercise(check: str):
    """``(Exercise, kind)`` behind ``bb.exercises.check_NAME``: read from that function's body
    (``check(module.EXERCISE, fn)``; ``kind`` is ``"module"`` when the check builds the student's
    module and applies it, as ``cnn.run_block`` does, ``"value"`` for ``check_value(module.EXERCISE,
    student_id, answer)``, else ``"function"``)."""
    import inspect

    from backbones import exercises

    function = getattr(exercises, f"check_{check}", None)
    if function is None:
        raise KeyError(f"no check named check_{check}")
    tree = ast.parse(inspect.getsource(function))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name) and node.func.id in ("check", "check_value"))
    target = call.args[0]
    exercise = getattr(getattr(exercises, target.value.id), target.attr)
    if call.func.id == "check_value":
        return exercise, "value"
    kind = "module" if "run_block(" in ast.unparse(call.args[1]) else "function"
    return exercise, kind


def find_master(submission: Path, masters: list[Path]) -> Path | None:
    """The master whose file name (without .ipynb) the submission's file name contains; a
    chapter's old name (before the book grew, ``book.MOVED``) stands for its new one."""
    stem = submission.stem
    for old, new in MOVED.items():
        stem = stem.replace(old, new)
    matches = [m for m in masters if m.stem in stem]
    return max(matches, key=lambda m: len(m.stem)) if matches else None


# Value answers: the statements each one needs ---------------------------------------------------

def _asked(node: ast.AST) -> str | None:
    """The exercise of ``bb.exercises.ask("exercise", STUDENT_ID)`` (None for any other expression)."""
    if (isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords
            and (getattr(node.func, "attr", None) == "ask" or getattr(node.func, "id", None) == "ask")
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            and isinstance(node.args[1], ast.Name) and node.args[1].id == STUDENT_ID):
        return node.args[0].value
    return None


def answer_statements(nb: dict, answers: list[str], student) -> tuple[list[str], dict[str, list[int]]]:
    """The top-level statements that compute the answers, in the notebook's order, and for each
    answer the indices of the statements it needs (its own assignments and, transitively, those of
    every name they read: assignments, ``+=``, loops, ``x.append(...)``). ``q =
    bb.exercises.ask("exercise", STUDENT_ID)`` becomes the literal variant of this student
    (computed here, not in the sandbox, which has no exercises)."""
    from backbones.exercises import VALUE_EXERCISES

    _, statements, _ = _statements(nb)
    top = [s for s in statements if not isinstance(s.node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    needs = {answer: _needed(top, {answer}) for answer in answers}
    used = sorted(set().union(*needs.values()))  # only what an answer needs runs, nothing else
    index = {i: j for j, i in enumerate(used)}
    needs = {answer: sorted(index[i] for i in chosen) for answer, chosen in needs.items()}
    rendered = []
    for statement in (top[i] for i in used):
        node = statement.node
        exercise = VALUE_EXERCISES.get(_asked(node.value) or "") if isinstance(node, ast.Assign) else None
        if exercise is not None:
            variant = exercise.variant(student) if isinstance(student, str) and student.strip() else None
            targets = " = ".join(t.id if isinstance(t, ast.Name) else ast.unparse(t) for t in node.targets)
            rendered.append(f"{targets} = {variant!r}")
        else:
            rendered.append(statement.text)
    return rendered, needs


# Grading: the verdict, computed here ---------------------------------------------------------------

class SubmissionError(Exception):
    """An error the student's code raised in the sandbox, of a type this process does not know."""


def _raise_todo() -> None:
    raise NotImplementedError("not implemented yet")  # core._raised_by_student reads this line


def _replay(run: SandboxRun, function: str, timeout: float, start: int = 0):
    """A stand-in for the student's function: returns, case by case, what the sandbox recorded
    (plain tensors rebuilt from arrays), or raises what it raised there."""
    import torch

    calls = iter(range(start, len(run.cases) + start + 1))

    def where(data: dict) -> str:
        code = " ".join(str(data.get("code") or "").split())[:120]
        return f" (line {data['line']}: `{code}`)" if data.get("line") and code else ""

    def stand_in(*args, **kwargs):
        i = next(calls)
        if run.stopped == "definitions":
            raise SubmissionError(f"defining the notebook's functions (its imports, definitions and the statements "
                                  f"they read from) took longer than {timeout:g} s: nothing could be graded")
        if run.load_error is not None:
            error = run.load_error
            raise SubmissionError(f"defining the notebook's functions raised {str(error.get('error'))[:80]}: "
                                  f"{str(error.get('message'))[:300]}{where(error)}")
        data = run.cases.get(i)
        if data is None:
            if run.stopped == "folder":
                raise SubmissionError(f"the process running {function} was stopped: it wrote more files into its "
                                      f"folder than a submission may")
            if run.timed_out:
                raise core._TimeLimit
            raise SubmissionError(f"the process running {function} ended (exit code {run.returncode}) "
                                  f"before it returned")
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
        try:
            arrays = run.arrays.get(i, {})
            for slot, value in data.get("modified") or []:  # do to the inputs what it did there
                target = args[slot] if isinstance(slot, int) and 0 <= slot < len(args) else kwargs.get(str(slot))
                value = _child.decode(value, arrays)
                if isinstance(target, torch.Tensor) and isinstance(value, torch.Tensor):
                    with torch.no_grad():
                        target.copy_(value.reshape(target.shape) if value.numel() == target.numel()
                                     else torch.full_like(target, float("nan")))
            return _child.decode(data["output"], arrays)
        except Exception as error:
            raise SubmissionError(f"the output could not be read back ({str(error)[:200]})") from None

    return stand_in


def grade_exercise(check: str, function: str, source: str, defined: dict, broken: list, *, timeout: float,
                   library: Path, values: ValueRun | None = None, run: SandboxRun | None = None):
    """The :class:`~backbones.exercises.core.Result` of one exercise, decided in this process.
    ``values``: the notebook's answers, computed in one sandbox run (:func:`run_answers`);
    ``run``: this exercise's outputs when they were computed already (``sandbox.run_exercises``)."""
    from backbones.exercises.core import Result, run_check

    exercise, kind = graded_exercise(check)
    if kind == "value":
        return _grade_value(exercise, function, defined, broken, values)
    if function not in defined:
        for text, error in broken:
            if re.search(rf"\b(def|class)\s+{re.escape(function)}\b", text):
                return Result(exercise.name, "failed", f"the cell that defines {function} cannot be read: {error}")
        return Result(exercise.name, "failed", f"no definition of {function} in the notebook's code cells")
    if run is None:
        run = run_exercises(source, [(function, kind, exercise.cases())], timeout=timeout, library=library)[0]
    seconds = timeout if run.timed_out and len(run.cases) < len(exercise.cases()) else min(timeout, TIME_LIMIT_S)
    result = run_check(exercise, _replay(run, function, timeout), seconds=seconds)
    if result.message.startswith("stopped after"):  # say which function was running when time ran out
        result = Result(result.exercise, result.status, f"{function}: {result.message}", result.mistake)
    return result


def student_id(defined: dict[str, str]):
    """The literal ``STUDENT_ID = "..."`` of the submission (None when it has none)."""
    if STUDENT_ID not in defined:
        return None
    try:
        return ast.literal_eval(ast.parse(defined[STUDENT_ID]).body[0].value)
    except (ValueError, SyntaxError, IndexError, AttributeError, RecursionError, MemoryError):
        return None


@dataclass
class ValueRun:
    run: SandboxRun | None
    answers: list[str]
    timeout: float


def run_answers(nb: dict, answers: list[str], source: str, defined: dict, *, timeout: float, library: Path) -> ValueRun:
    """Compute every answer of a notebook in one sandboxed child: the definitions, then each
    statement an answer needs, one at a time (a statement that fails fails only the answers that
    need it)."""
    from backbones.exercises.core import Case

    present = [a for a in answers if a in defined]
    if not present:
        return ValueRun(None, [], timeout)
    statements, needs = answer_statements(nb, present, student_id(defined))
    run = run_value_answers(source, [Case(a) for a in present], statements, [[a, needs[a]] for a in present],
                            timeout=timeout, library=library)
    return ValueRun(run, present, timeout)


def _grade_value(exercise, answer: str, defined: dict, broken: list, values: ValueRun | None):
    """A value exercise: the answer's variable was computed in the sandbox (:func:`run_answers`),
    the variant comes from the notebook's ``STUDENT_ID``, the comparison happens here."""
    from backbones.exercises.core import Result, run_value_check

    if answer not in defined:
        for text, error in broken:
            if re.search(rf"^\s*{re.escape(answer)}\s*=", text, re.MULTILINE):
                return Result(exercise.name, "failed", f"the cell that sets {answer} cannot be read: {error}")
        return Result(exercise.name, "failed", f"no {answer} = ... in the notebook's code cells")
    student = student_id(defined)
    if not isinstance(student, str) or not student.strip():  # say so before anything that needs the variant
        return run_value_check(exercise, student, None)
    if student.strip() == BOOK_ID:
        return Result(exercise.name, "failed", f'STUDENT_ID is still the book\'s "{BOOK_ID}", whose answers the '
                                               f"rendered book shows: set your own student id and answer again")
    if values is None or values.run is None or answer not in values.answers:
        return Result(exercise.name, "failed", f"{answer} could not be computed")
    try:
        value = _replay(values.run, answer, values.timeout, start=values.answers.index(answer))()
    except _TimeLimit:
        return Result(exercise.name, "failed", f"computing {answer} took longer than {TIME_LIMIT_S:g} s")
    except Exception as error:
        return Result(exercise.name, "failed", f"computing {answer} raised {type(error).__name__}: {error}")
    return run_value_check(exercise, student, value)


def _fingerprint(path: Path) -> tuple[str, int]:
    data = read_regular(path, MAX_NOTEBOOK)
    return hashlib.sha256(data or b"").hexdigest(), os.lstat(path).st_mtime_ns


def _id_text(student) -> str:
    return student.strip()[:100] if isinstance(student, str) else ""


def grade(submission: Path, master: Path | None, *, name: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
          library: Path | None = None) -> list[Row]:
    """The rows of one submission: one per exercise of its chapter (or one that says what is wrong)."""
    name = name or submission.name
    if master is None:
        return [Row(name, "-", False, "cannot tell which chapter this is: name it after the chapter or pass --master")]
    checks = checks_in(load_notebook(master))
    try:
        nb = read_submission(submission)
    except (ValueError, OSError) as error:
        return [Row(name, check, False, str(error)) for check, _ in checks]
    answers, graded = set(), set()
    for check, graded_name in checks:
        try:
            (answers if graded_exercise(check)[1] == "value" else graded).add(graded_name)
        except Exception:  # an unknown check: its own row says so below
            pass
    source, defined, broken = definitions(nb, answers, graded)
    student = student_id(defined)
    rows = []
    with temporary_folder("lib") as tmp:
        library = library or library_copy(Path(tmp))
        values = None
        if answers and isinstance(student, str) and student.strip() and student.strip() != BOOK_ID:
            try:
                values = run_answers(nb, [a for _, a in checks if a in answers], source, defined, timeout=timeout,
                                     library=library)
            except Exception:  # each value exercise's row says it could not be computed
                values = None
        runs: dict[str, SandboxRun] = {}
        jobs = []
        for check, function in checks:  # the functions the notebook defines, all in one child
            try:
                exercise, kind = graded_exercise(check)
            except Exception:  # an unknown check: its own row says so below
                continue
            if kind != "value" and function in defined:
                jobs.append((check, function, kind, exercise.cases()))
        if jobs:
            try:
                done = run_exercises(source, [(f, k, c) for _, f, k, c in jobs], timeout=timeout, library=library)
                runs = {check: run for (check, *_), run in zip(jobs, done)}
            except Exception:  # each exercise then runs on its own below
                runs = {}
        for check, function in checks:
            try:
                result = grade_exercise(check, function, source, defined, broken, timeout=timeout,
                                        library=library, values=values, run=runs.get(check))
            except Exception as error:  # the grader's own failure costs this exercise, not the batch
                rows.append(Row(name, check, False, f"could not be graded ({type(error).__name__}: {error})",
                                _id_text(student)))
                continue
            rows.append(Row(name, check, result.passed, " ".join(result.message.split()), _id_text(student)))
    return rows


def _printable(path: str) -> str:
    """A file name as text that any report can hold (bytes that are not UTF-8 written as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def find_submissions(submissions: list[Path]) -> list[Path]:
    """Every ``*.ipynb`` entry named or found in the folders given, links included (as links:
    their rows say they are not followed), never following a linked folder."""
    found = set()
    for given in submissions:
        given = Path(os.path.abspath(given))
        if given.is_dir() and not given.is_symlink():
            for folder, folders, files in os.walk(given, followlinks=False):
                found |= {Path(folder) / f for f in [*files, *folders] if f.endswith(".ipynb")}
                folders[:] = [f for f in folders if not f.endswith(".ipynb")]
        else:
            found.add(given)
    return sorted(found)


def grade_all(submissions: list[Path], *, master: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S,
              root: Path | None = None, submissions_root: Path | None = None) -> list[Row]:
    """Grade every submission (files, or folders searched for ``*.ipynb``); rows name each file by
    its path relative to the submissions' common folder. No submission is written to, no link is
    followed; one that changes while it is graded gets a row saying so, and so does every
    submission whose ``STUDENT_ID`` another submission of the same chapter also uses."""
    sweep()  # what a grader that was killed left behind
    files = find_submissions(submissions)
    if not files:
        return []
    base = Path(os.path.abspath(submissions_root)) if submissions_root else Path(
        os.path.commonpath([p.parent for p in files]))
    book = root or _root_or_none()
    masters = [] if master else chapter_notebooks(book) if book else []
    rows: list[Row] = []
    ids: dict[tuple[str, str], list[str]] = {}
    with temporary_folder("lib") as tmp:
        library = library_copy(Path(tmp))
        for submission in files:
            name = _printable(os.path.relpath(submission, base) if submission.is_relative_to(base) else submission.name)
            chapter = master or find_master(submission, masters)
            try:
                before = _fingerprint(submission) if os.path.isfile(submission) and not submission.is_symlink() else None
                graded = grade(submission, chapter, name=name, timeout=timeout, library=library)
                if before is not None and _fingerprint(submission) != before:
                    graded.append(Row(name, "-", False, "the submission changed on disk while it was graded"))
            except Exception as error:  # whatever one file does costs its own rows only
                graded = [Row(name, "-", False, f"could not be graded ({type(error).__name__}: {str(error)[:200]})")]
            rows += graded
            student = next((r.student for r in graded if r.student), "")
            if student and chapter is not None:
                ids.setdefault((chapter.stem, student), []).append(name)
    for (_, student), names in ids.items():
        for name in names if len(names) > 1 else []:
            others = ", ".join(n for n in names if n != name)
            rows.append(Row(name, "-", False, f"STUDENT_ID {student!r} is also the id of {others}: a copied "
                                              f"notebook, or an id to correct", student))
    return rows


def _root_or_none() -> Path | None:
    try:
        return find_root()
    except Exception:
        return None


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ (or a tab or CR)
    gets a leading apostrophe; long messages are cut; text that is not UTF-8 is escaped."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + " ..."
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_reports(rows: list[Row], out: Path) -> list[tuple[str, int, int]]:
    """Write grades.csv and summary.csv into ``out``; return the summary ``(file, passed, total)``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "student_id", "exercise", "passed", "message"])
        writer.writerows([_cell(row.file), _cell(row.student), _cell(row.exercise), row.passed, _cell(row.message)]
                         for row in rows)
    summary: dict[str, tuple[int, int]] = {}
    students: dict[str, str] = {}
    for row in rows:
        passed, total = summary.get(row.file, (0, 0))
        summary[row.file] = (passed + row.passed, total + (row.exercise != "-"))
        students[row.file] = students.get(row.file) or row.student
    table = [(file, passed, total) for file, (passed, total) in summary.items()]
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "student_id", "passed", "total"])
        writer.writerows([_cell(file), _cell(students[file]), passed, total] for file, passed, total in table)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbones.exercises.grader", description=__doc__.split("\n")[0])
    parser.add_argument("submissions", nargs="*", type=Path, help="notebooks, or folders of them")
    parser.add_argument("--master", type=Path, help="the chapter's master notebook (default: from the file name)")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv and summary.csv")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per exercise")
    args = parser.parse_args(argv)
    if not args.submissions:
        parser.error("no submissions given")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated grader still removes its folders
    print(sandbox_note(), file=sys.stderr)
    rows = grade_all(args.submissions, master=args.master, timeout=args.timeout)
    table = write_reports(rows, args.out)
    width = max((len(file) for file, _, _ in table), default=0)
    for file, passed, total in table:
        print(f"{file:<{width}}  {passed}/{total}")
    for row in rows:
        if not row.passed and row.exercise != "-":
            print(f"  {row.file} {row.exercise}: {row.message[:160]}")
        elif row.exercise == "-":
            print(f"  {row.file}: {row.message[:160]}")
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
