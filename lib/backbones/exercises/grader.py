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

**Four stages passing plain data**, each in its own module: *read* (``reading``: the master's
checks, the submission's code as data, :class:`Reading`), *run* (``sandbox``: the child process
and the file protocol with it, :class:`~backbones.exercises.sandbox.SandboxRun`), *judge*
(``judge``: the verdicts, :class:`~backbones.exercises.core.Result`, whose ``stopped`` and
``raised`` fields say when time ran out or the code raised) and *report* (``report``: rows and
CSV). This module strings them together, for one submission (:func:`grade`) and a batch
(:func:`grade_all`), and is the command line.

The grader writes ``grades.csv`` (file, student_id, exercise, passed, message) and
``summary.csv`` (file, student_id, passed, total) to ``--out``, one row per exercise, files named
by their path relative to the submissions' folder. It never writes to a submission, never
follows a link, and one submission's failure (not a regular file, not JSON, nested too deeply,
a syntax error, a crash, a hang) costs only its own rows.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from backbones.book import MOVED, chapter_notebooks, find_root, load_notebook
from backbones.exercises import core
from backbones.exercises.core import BOOK_ID, Case, Result
from backbones.exercises.judge import ValueRun, judge_function, judge_value, missing
from backbones.exercises.reading import (
    MAX_NOTEBOOK,
    answer_statements,
    checks_in,
    definitions,
    read_regular,
    read_submission,
    student_id,
)
from backbones.exercises.report import Row, printable, read_roster, write_reports
from backbones.exercises.sandbox import (
    SandboxRun,
    library_copy,
    run_exercises,
    run_value_answers,
    sandbox_note,
    sweep,
    temporary_folder,
)

DEFAULT_TIMEOUT_S = 120  # per exercise: the child's start (torch's import) included;
# each case also stops after core.TIME_LIMIT_S, as in the notebook

__all__ = [
    "Reading",
    "Row",
    "checks_in",
    "exercises_in",
    "find_master",
    "find_submissions",
    "grade",
    "grade_all",
    "graded_exercise",
    "main",
    "read",
    "sandbox_note",
    "write_reports",
]


def graded_exercise(check: str):
    """``(exercise, kind)`` behind ``bb.exercises.check_NAME``, from the exercises' registry."""
    from backbones.exercises import graded

    return graded(check)


def exercises_in(nb: dict) -> list[str]:
    """The exercises a notebook checks, in order."""
    return [name for name, _ in checks_in(nb)]


def find_master(submission: Path, masters: list[Path]) -> Path | None:
    """The master whose file name (without .ipynb) the submission's file name contains, read
    without case or separators (``04-ResNet (1).ipynb``, Canvas's ``smith_123_456_04_resnet``); a
    chapter's old name (before the book grew, ``book.MOVED``) stands for its new one."""

    def key(name: str) -> str:
        return re.sub(r"[^a-z0-9]+", "_", name.lower())

    stem = key(submission.stem)
    for old, new in MOVED.items():
        stem = stem.replace(key(old), key(new))
    matches = [m for m in masters if key(m.stem) in stem]
    return max(matches, key=lambda m: len(m.stem)) if matches else None


# Stage 1, read: what is graded (from the master) and the submission's code (as data) ------------------


@dataclass
class Reading:
    """A submission as the grader read it: the graded exercises, ``(check, graded name, exercise,
    kind)``, the checks it does not know, and the code to run."""

    nb: dict
    graded: list[tuple[str, str, object, str]]
    unknown: list[str]
    source: str
    defined: dict[str, str]
    broken: list[tuple[str, str]]
    student: object = None
    order: list[str] = field(default_factory=list)  # every check of the master, in order


def read(submission: Path, master: Path) -> Reading:
    """Stage 1. Raises ValueError or OSError when the submission cannot be read as a notebook."""
    master_nb = load_notebook(master)
    checks = checks_in(master_nb)
    nb = read_submission(submission)
    graded, unknown = [], []
    for check, name in checks:
        try:
            exercise, kind = graded_exercise(check)
        except KeyError:
            unknown.append(check)
            continue
        graded.append((check, name, exercise, kind))
    answers = {name for _, name, _, kind in graded if kind == "value"}
    functions = {name for _, name, _, kind in graded if kind != "value"}
    source, defined, broken = definitions(nb, answers, functions)
    student = student_id(defined)
    order = [c for c, _ in checks]
    if is_mock_test(master_nb) and _valid_id(student):  # only this student's draw counts
        from backbones.exercises.exam import mock_draw

        drawn = set(mock_draw(student.strip()))
        graded = [g for g in graded if getattr(g[2], "name", None) in drawn]
        order = [c for c in order if c in {g[0] for g in graded}]
    return Reading(nb, graded, unknown, source, defined, broken, student, order)


def is_mock_test(master_nb: dict) -> bool:
    """A master whose metadata marks it as the mock test: each student is graded on their draw."""
    return bool(master_nb.get("metadata", {}).get("backbones", {}).get("mock_test"))


def _valid_id(student) -> bool:
    return isinstance(student, str) and bool(student.strip()) and student.strip() != BOOK_ID


# Stage 2, run: the functions in one sandboxed child, the answers in another ----------------------------


def run_functions(reading: Reading, *, timeout: float, library: Path) -> dict[str, SandboxRun]:
    """Every graded function the notebook defines, run on its cases in one child (an exercise the
    child never began gets a child of its own); by check name."""
    jobs = [
        (check, name, kind, core.schedule(exercise), getattr(exercise, "forbidden", ()))
        for check, name, exercise, kind in reading.graded
        if kind != "value" and name in reading.defined
    ]
    if not jobs:
        return {}
    try:
        done = run_exercises(reading.source, [(n, k, c, f) for _, n, k, c, f in jobs], timeout=timeout, library=library)
    except Exception:  # then each on its own
        done = [
            run_exercises(reading.source, [(n, k, c, f)], timeout=timeout, library=library)[0] for _, n, k, c, f in jobs
        ]
    return {check: run for (check, *_), run in zip(jobs, done)}


def run_answers(reading: Reading, *, timeout: float, library: Path) -> ValueRun | None:
    """Every answer of the notebook in one child: the definitions, then each statement an answer
    needs, one at a time (a statement that fails fails only the answers that need it)."""
    from backbones.exercises import VALUE_EXERCISES

    present = [name for _, name, _, kind in reading.graded if kind == "value" and name in reading.defined]
    if not present or not _valid_id(reading.student):
        return None

    def variant(question: str) -> dict:
        return VALUE_EXERCISES[question].variant(reading.student)

    statements, needs = answer_statements(reading.nb, present, variant)
    run = run_value_answers(
        reading.source,
        [Case(a) for a in present],
        statements,
        [[a, needs[a]] for a in present],
        timeout=timeout,
        library=library,
    )
    return ValueRun(run, present, timeout)


# Stage 3, judge; stage 4, rows ---------------------------------------------------------------------


def judge(
    reading: Reading, runs: dict[str, SandboxRun], values: ValueRun | None, *, timeout: float
) -> dict[str, Result]:
    """Stage 3: each graded exercise's result, by check name."""
    results = {}
    for check, name, exercise, kind in reading.graded:
        try:
            if kind == "value":
                results[check] = (
                    judge_value(exercise, name, reading.student, values)
                    if name in reading.defined
                    else missing(exercise, name, reading.broken, value=True)
                )
            elif name not in reading.defined:
                results[check] = missing(exercise, name, reading.broken, value=False)
            elif check not in runs:
                results[check] = Result(exercise.name, "failed", f"{name} could not be run")
            else:
                results[check] = judge_function(exercise, name, runs[check], timeout=timeout)
        except Exception as error:  # the grader's own failure costs this exercise, not the batch
            results[check] = Result(exercise.name, "failed", f"could not be graded ({type(error).__name__}: {error})")
    return results


def _id_text(student) -> str:
    return student.strip()[:100] if isinstance(student, str) else ""


def grade(
    submission: Path,
    master: Path | None,
    *,
    name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    library: Path | None = None,
) -> list[Row]:
    """The rows of one submission: one per exercise of its chapter (or one that says what is wrong)."""
    name = name or submission.name
    if master is None:
        return [Row(name, "-", False, "cannot tell which chapter this is: name it after the chapter or pass --master")]
    try:
        reading = read(submission, master)
    except (ValueError, OSError) as error:
        return [Row(name, check, False, str(error)) for check, _ in checks_in(load_notebook(master))]
    with temporary_folder("lib") as tmp:
        library = library or library_copy(Path(tmp))
        try:
            values = run_answers(reading, timeout=timeout, library=library)
        except Exception:  # each value exercise's row says it could not be computed
            values = None
        try:
            runs = run_functions(reading, timeout=timeout, library=library)
        except Exception:  # each function's row says it could not be run
            runs = {}
    results = judge(reading, runs, values, timeout=timeout)
    student = _id_text(reading.student)
    rows = []
    for check in reading.order:
        result = results.get(check)
        if result is None:
            rows.append(
                Row(name, check, False, f"could not be graded (KeyError: 'no check named check_{check}')", student)
            )
        else:
            rows.append(Row(name, check, result.passed, " ".join(result.message.split()), student))
    return rows


def _fingerprint(path: Path) -> tuple[str, int]:
    data = read_regular(path, MAX_NOTEBOOK)
    return hashlib.sha256(data or b"").hexdigest(), os.lstat(path).st_mtime_ns


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


def _grade_file(job: tuple) -> list[Row]:
    """One submission's rows (in the batch's process, or in a pool's worker): its own sandboxed
    children, never shared with another submission's; a file that changes while it is graded
    gets a row that says so; whatever one file does costs its own rows only."""
    submission, name, chapter, timeout, library = job
    try:
        before = _fingerprint(submission) if os.path.isfile(submission) and not submission.is_symlink() else None
        graded = grade(submission, chapter, name=name, timeout=timeout, library=library)
        if before is not None and _fingerprint(submission) != before:
            graded.append(Row(name, "-", False, "the submission changed on disk while it was graded"))
    except Exception as error:
        graded = [Row(name, "-", False, f"could not be graded ({type(error).__name__}: {str(error)[:200]})")]
    return graded


def grade_all(
    submissions: list[Path],
    *,
    master: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    root: Path | None = None,
    submissions_root: Path | None = None,
    jobs: int = 1,
) -> list[Row]:
    """Grade every submission (files, or folders searched for ``*.ipynb``); rows name each file by
    its path relative to the submissions' common folder. No submission is written to, no link is
    followed; one that changes while it is graded gets a row saying so, and so does every
    submission whose ``STUDENT_ID`` another submission of the same chapter also uses."""
    sweep()  # what a grader that was killed left behind
    files = find_submissions(submissions)
    if not files:
        return []
    base = (
        Path(os.path.abspath(submissions_root))
        if submissions_root
        else Path(os.path.commonpath([p.parent for p in files]))
    )
    book = root or _root_or_none()
    masters = [] if master else chapter_notebooks(book) if book else []
    rows: list[Row] = []
    ids: dict[tuple[str, str], list[str]] = {}
    work = [
        (
            submission,
            printable(os.path.relpath(submission, base) if submission.is_relative_to(base) else submission.name),
            master or find_master(submission, masters),
        )
        for submission in files
    ]
    with temporary_folder("lib") as tmp:
        library = library_copy(Path(tmp))
        if jobs > 1 and len(work) > 1:  # a pool of grader processes, one submission at a time each
            import concurrent.futures
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited
            with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = [pool.submit(_grade_file, (s, n, c, timeout, library)) for s, n, c in work]
                concurrent.futures.wait(futures)
            # a worker that died (killed, out of memory) costs no rows: its submissions are graded here
            done = [
                f.result() if not f.exception() else _grade_file((s, n, c, timeout, library))
                for f, (s, n, c) in zip(futures, work)
            ]
        else:
            done = [_grade_file((s, n, c, timeout, library)) for s, n, c in work]
        for (_, name, chapter), graded in zip(work, done):
            rows += [dataclasses.replace(r, chapter=chapter.stem if chapter else "") for r in graded]
            student = next((r.student for r in graded if r.student), "")
            if student and chapter is not None:
                ids.setdefault((chapter.stem, student), []).append(name)
    for (_, student), names in ids.items():
        for name in names if len(names) > 1 else []:
            others = ", ".join(n for n in names if n != name)
            rows.append(
                Row(
                    name,
                    "-",
                    False,
                    f"STUDENT_ID {student!r} is also the id of {others}: a copied notebook, or an id to correct",
                    student,
                )
            )
    return rows


def _root_or_none() -> Path | None:
    try:
        return find_root()
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbones.exercises.grader", description=__doc__.split("\n")[0])
    parser.add_argument("submissions", nargs="*", type=Path, help="notebooks, or folders of them")
    parser.add_argument("--master", type=Path, help="the chapter's master notebook (default: from the file name)")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv and summary.csv")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per exercise")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at once, each in its own grader process and sandbox (default: the cores)",
    )
    parser.add_argument(
        "--roster", type=Path, help="a CSV with student_id (and name) columns: students.csv lists everyone"
    )
    args = parser.parse_args(argv)
    if not args.submissions:
        parser.error("no submissions given")
    try:
        roster = read_roster(args.roster) if args.roster else None
    except (OSError, ValueError, csv.Error) as error:
        parser.error(str(error))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated grader still removes its folders
    print(sandbox_note(), file=sys.stderr)
    if args.jobs < 1:
        parser.error("--jobs must be 1 or more")
    rows = grade_all(args.submissions, master=args.master, timeout=args.timeout, jobs=args.jobs)
    table = write_reports(rows, args.out, roster)
    width = max((len(file) for file, _, _ in table), default=0)
    for file, passed, total in table:
        print(f"{file:<{width}}  {passed}/{total}")
    for row in rows:
        if not row.passed and row.exercise != "-":
            print(f"  {row.file} {row.exercise}: {row.message[:160]}")
        elif row.exercise == "-":
            print(f"  {row.file}: {row.message[:160]}")
    print(f"wrote {args.out / 'grades.csv'}, {args.out / 'summary.csv'} and {args.out / 'feedback'}/ (one each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
