"""Grade submitted notebooks in bulk, for instructors (and for a student before submitting).

    python -m backbones.exercises.grader submissions/ --out grades/
    python -m backbones.exercises.grader alice.ipynb --master chapters/01_getting_started.ipynb

**The trust model.** Nothing a submission's code can write decides its grade. For each
submission the grader finds its chapter (``--master``, or the master whose name the file name
contains) and the exercises that chapter checks (from the *master*, never the submission). It
reads the submission as data: from its code cells it takes the imports, the top-level function
and class definitions and literal constants, found by name (so lost, reordered or id-less cells
do not matter), and nothing else -- no top-level statement runs, no output, metadata or check
cell is read. It runs those definitions in a fresh child process (``_child.py``), one per
submission, that is given the checks' inputs, runs the exercises one after another (each on its
own wall clock; one the child never began, because it was killed or crashed first, gets a child
of its own) and hands back only the functions' *outputs*,
as JSON and arrays read with ``allow_pickle=False``. Pass or fail, and which catalogued mistake
was made, are computed here, in the grader's own process, by the same engine the notebooks use
(``core.run_check``), on plain tensors rebuilt from those arrays.

The child runs in a temporary directory holding only its inputs, with a clean environment, its
own session, resource limits (CPU seconds, address space, file size, processes) and a wall-clock
limit per exercise, after which everything it started is killed. Its copy of the library has no
``exercises`` package, so no reference solution is importable. Where bubblewrap (``bwrap``) is
installed the child also runs in a sandbox: its own PID namespace (every process it starts dies
with it), no network, ``/tmp`` empty, and the book's checkout, the masters, the submissions and
the output folder hidden. Without bubblewrap the grader says so and still isolates as above,
but a submission can then read files the grader's user can read, and a process that leaves its
session and clears its environment can outlive the grading.

Value exercises (``core.ValueExercise``) are graded the same way, all of a notebook's answers in
one child: the answer's top-level assignment runs there, with the assignments it reads from
(followed transitively, in the notebook's order, and nothing else), its value comes back as data,
and the variant comes from the submission's literal ``STUDENT_ID = "..."``
(``core.variant_seed``). A question's numbers, ``q = bb.exercises.ask("name", STUDENT_ID)`` in
the notebook, are computed here and handed to the child as a literal.

A function that changes its inputs in place is named for it: the child sends back what it did
to the case's tensors, and the replay does the same to the grader's copies, where the check
sees it (``core.changed_inputs``).

The grader writes ``grades.csv`` (file, exercise, passed, message) and ``summary.csv`` (file,
passed, total) to ``--out``, one row per exercise, files named by their path relative to the
submissions' folder; it never writes to a submission, and one submission's failure (not JSON,
nbformat 3, a syntax error, a crash, a hang) costs only its own rows.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from backbones.book import MOVED, chapter_notebooks, find_root, load_notebook
from backbones.exercises.core import BOOK_ID, TIME_LIMIT_S, _TimeLimit

CHECK_CALL = re.compile(r"exercises\.check_(\w+)\(\s*(\w+)\s*(?:,\s*(\w+)\s*)?\)")
STUDENT_ID = "STUDENT_ID"  # the name a notebook gives the student's id (value exercises' variants)
DEFAULT_TIMEOUT_S = 120        # per exercise: the child's start (torch's import) included;
                               # each case also stops after core.TIME_LIMIT_S, as in the notebook
MEMORY_LIMIT = 12 * 2**30      # address space: importing torch alone reserves several GB
FILE_LIMIT = 256 * 2**20       # the largest file the child may write
PROCESS_LIMIT = 4096           # RLIMIT_NPROC counts every process and thread of the user
MAX_MESSAGE = 600
CHILD = Path(__file__).with_name("_child.py")


@dataclass(frozen=True)
class Row:
    file: str
    exercise: str
    passed: bool
    message: str


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


# The submission, read as data --------------------------------------------------------------------

def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_submission(path: Path) -> dict:
    """The notebook's cells as data, nbformat 4 (an nbformat 3 file is upgraded); a clear
    ValueError if it is not a notebook. Only what grading reads is required (a list of cells,
    each with a type and a source): a stray cell id or a missing one does not matter."""
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a valid notebook (not JSON: {error})") from None
    if not isinstance(nb, dict) or nb.get("nbformat") not in (3, 4):
        version = nb.get("nbformat") if isinstance(nb, dict) else None
        raise ValueError(f"not a valid notebook (nbformat {version!r}; versions 3 and 4 are read)")
    if nb["nbformat"] == 3:
        try:
            nb = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
        except Exception as error:
            raise ValueError(f"not a valid notebook (nbformat 3 that could not be upgraded: "
                             f"{type(error).__name__}: {' '.join(str(error).split())[:200]})") from None
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and isinstance(c.get("cell_type"), str)
            and isinstance(c.get("source", ""), (str, list)) for c in cells):
        raise ValueError("not a valid notebook (its cells are not a list of cells with a type and a source)")
    return nb


def definitions(nb: dict, answers: set[str] = frozenset()) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """What the grader takes from the code cells: ``(module source, {name: definition},
    [(cell text, syntax error)])``. Imports, top-level ``def``/``class``, assignments of
    literals and assignments to the value exercises' ``answers`` are kept (a later definition of
    a name replaces an earlier one); every other statement, IPython magic and output is left out."""
    imports: list[str] = []
    defined: dict[str, str] = {}
    broken: list[tuple[str, str]] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text = "\n".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line
                         for line in _text(cell).split("\n"))
        try:
            tree = ast.parse(text)
        except SyntaxError as error:
            broken.append((text, f"SyntaxError: {error.msg} (line {error.lineno})"))
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statement = ast.unparse(node)
                if statement not in imports:
                    imports.append(statement)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined[node.name] = ast.unparse(node)
            elif (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)
                  and (_literal(node.value) or {t.id for t in node.targets} & set(answers))):
                for target in node.targets:
                    defined[target.id] = ast.unparse(node)
    guarded = [f"try:\n    {statement}\nexcept Exception:\n    pass" for statement in imports]
    kept = [text for name, text in defined.items() if name not in answers or _literal(ast.parse(text).body[0].value)]
    return "\n".join(guarded) + "\n\n" + "\n\n".join(kept) + "\n", defined, broken


def _asked(node: ast.AST) -> str | None:
    """The exercise of ``bb.exercises.ask("exercise", STUDENT_ID)`` (None for any other expression)."""
    if (isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords
            and (getattr(node.func, "attr", None) == "ask" or getattr(node.func, "id", None) == "ask")
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            and isinstance(node.args[1], ast.Name) and node.args[1].id == STUDENT_ID):
        return node.args[0].value
    return None


def _names(node: ast.Assign) -> set[str]:
    """The names an assignment sets (``a = ...``, ``a, b = ...``); empty when it sets anything
    else (an attribute, an item), which the grader does not run."""
    names: set[str] = set()
    for target in node.targets:
        parts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(p, ast.Name) for p in parts):
            return set()
        names |= {p.id for p in parts}
    return names


def answer_statements(nb: dict, answers: list[str], student) -> tuple[list[str], dict[str, list[int]]]:
    """The top-level assignments that compute the answers, in the notebook's order, and for each
    answer the indices of the statements it needs (its own assignments and, transitively, those of
    every name they read). ``q = bb.exercises.ask("exercise", STUDENT_ID)`` becomes the literal
    variant of this student (computed here, not in the sandbox, which has no exercises)."""
    from backbones.exercises import VALUE_EXERCISES

    top: list[ast.Assign] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            try:
                tree = ast.parse("\n".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line
                                           for line in _text(cell).split("\n")))
            except SyntaxError:
                continue
            top += [n for n in tree.body if isinstance(n, ast.Assign) and _names(n)]
    needs: dict[str, list[int]] = {}
    for answer in answers:
        needed, chosen, grown = {answer}, set(), True
        while grown:
            grown = False
            for i, node in enumerate(top):
                if i not in chosen and _names(node) & needed:
                    chosen.add(i)
                    needed |= {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                    grown = True
        needs[answer] = sorted(chosen)
    used = sorted(set().union(*needs.values()))  # only what an answer needs runs, nothing else
    index = {i: j for j, i in enumerate(used)}
    needs = {answer: [index[i] for i in chosen] for answer, chosen in needs.items()}
    statements = []
    for node in (top[i] for i in used):
        exercise = VALUE_EXERCISES.get(_asked(node.value) or "")
        if exercise is not None:
            variant = exercise.variant(student) if isinstance(student, str) and student.strip() else None
            statements.append(" = ".join(ast.unparse(t) for t in node.targets) + f" = {variant!r}")
        else:
            statements.append(ast.unparse(node))
    return statements, needs


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


# The sandbox -------------------------------------------------------------------------------------

@functools.cache
def bubblewrap() -> str | None:
    """The ``bwrap`` executable when it is installed and can make a sandbox here, else None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
                            "--die-with-parent", "--new-session", "true"], capture_output=True, timeout=60)
    return path if probe.returncode == 0 else None


def sandbox_note() -> str:
    if bubblewrap():
        return "sandbox: bubblewrap (own PID namespace, no network, checkout and submissions hidden)"
    return ("sandbox: bubblewrap is not installed (apt install bubblewrap): submissions run isolated in a "
            "temporary folder with limits, but can read files this user can read")


def library_copy(folder: Path) -> Path:
    """A copy of the library for the child, without ``exercises`` (the reference solutions) and
    without assets; ``backbones.exercises`` is a stub there."""
    import backbones

    target = folder / "lib"
    shutil.copytree(Path(backbones.__file__).parent, target / "backbones",
                    ignore=shutil.ignore_patterns("__pycache__", "exercises", "assets", "*.pyc"))
    (target / "backbones" / "exercises").mkdir()
    (target / "backbones" / "exercises" / "__init__.py").write_text(
        '"""Not available while grading: the checks run in the grader, not here."""\n')
    return target


def _limits(seconds: float):
    def apply() -> None:
        cpu = int(seconds) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if os.getuid() != 0:  # root is exempt from RLIMIT_NPROC anyway
            resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))
    return apply


def _kill_marked(token: str) -> None:
    """Kill every process whose environment carries ``token`` (what the child started, also
    outside its session), as far as /proc lets this user see."""
    marker = f"BACKBONES_SANDBOX={token}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue


@dataclass
class SandboxRun:
    """What came back from one child: per-case records, a load error, or how it ended."""

    cases: dict[int, dict]
    arrays: dict[int, dict]
    load_error: dict | None
    timed_out: bool
    returncode: int | None


def run_in_sandbox(source: str, function: str, kind: str, cases: list, *, timeout: float, library: Path,
                   hide: list[Path], extra: dict | None = None) -> SandboxRun:
    """Run ``function`` from ``source`` on each case's inputs in a child process, sandboxed
    (``kind`` "value": compute the answers that ``extra`` lists instead)."""
    if kind != "value":
        return run_exercises(source, [(function, kind, cases)], timeout=timeout, library=library, hide=hide)[0]
    with _child_process(source, {"kind": kind, **(extra or {})}, {"inputs.pt": cases}, timeout=timeout,
                        library=library, hide=hide) as (work, watch):
        timed_out, returncode, _ = watch(0)
        return _collect(work, "", len(cases), timed_out, returncode)


def run_exercises(source: str, jobs: list[tuple[str, str, list]], *, timeout: float, library: Path,
                  hide: list[Path]) -> list[SandboxRun]:
    """Run several exercises' functions, ``[(function, kind, cases)]``, one after another in one
    child (torch is imported once). Each has its own wall clock of ``timeout`` seconds, started
    when the child marks it begun; one that runs out is killed with the child, and an exercise
    the child never began (it was killed or crashed before) gets a child of its own."""
    prefixes = [f"e{k}_" for k in range(len(jobs))]
    spec = {"jobs": [{"function": f, "kind": kind, "prefix": p} for (f, kind, _), p in zip(jobs, prefixes)]}
    inputs = {f"{p}inputs.pt": cases for (_, _, cases), p in zip(jobs, prefixes)}
    with _child_process(source, spec, inputs, timeout=timeout, library=library, hide=hide, count=len(jobs)) as (
            work, watch):
        timed_out, returncode, begun = watch(len(jobs))
        runs: list[SandboxRun | None] = [
            _collect(work, p, len(cases), timed_out and k == begun, returncode) if k <= begun else None
            for k, ((_, _, cases), p) in enumerate(zip(jobs, prefixes))]
    for k, run in enumerate(runs):
        if run is None and len(jobs) > 1:  # never begun: on its own, as if it had been alone
            runs[k] = run_exercises(source, [jobs[k]], timeout=timeout, library=library, hide=hide)[0]
        elif run is None:
            runs[k] = SandboxRun({}, {}, None, timed_out, returncode)
    return runs


@contextlib.contextmanager
def _child_process(source: str, spec: dict, inputs: dict[str, list], *, timeout: float, library: Path,
                   hide: list[Path], count: int = 1):
    """Start the sandboxed child in a fresh folder; yield ``(folder, watch)``, where ``watch(jobs)``
    waits for it (killing it when a job, marked ``e{k}_started``, runs past ``timeout``) and
    returns ``(timed_out, returncode, index of the last job begun)``."""
    import torch

    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work = Path(tmp)
        spec = {**spec, "library": str(library), "seconds_per_case": min(timeout, TIME_LIMIT_S)}
        # Inputs go in as torch.save: made here, so trusted, and they may hold the library's modules
        # (a BasicBlock). Outputs come back only as JSON and arrays, never a pickle.
        for name, cases in inputs.items():
            torch.save([(tuple(case.args), dict(case.kwargs)) for case in cases], work / name)
        (work / "spec.json").write_text(json.dumps(spec))
        (work / "submission.py").write_text(source)
        shutil.copyfile(CHILD, work / "_child.py")
        token = uuid.uuid4().hex
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "BACKBONES_OFFLINE": "1", "BACKBONES_PROGRESS": "off",
               "BACKBONES_SANDBOX": token}
        command = [sys.executable, "-I", "_child.py", "spec.json"]
        wrap = bubblewrap()
        if wrap:
            command = _bwrap_command(wrap, work, library, hide) + command
        with open(work / "child.log", "wb") as log:
            process = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_limits(timeout * count))

            def watch(jobs: int) -> tuple[bool, int | None, int]:
                begun, since, timed_out = 0, time.monotonic(), False
                try:
                    while True:
                        try:
                            process.wait(timeout=0.2)
                            break
                        except subprocess.TimeoutExpired:
                            pass
                        latest = max((k for k in range(jobs) if (work / f"e{k}_started").exists()), default=0)
                        if latest != begun:  # the next exercise began: its own clock starts
                            begun, since = latest, time.monotonic()
                        if time.monotonic() - since > timeout + 5:  # the child's per-case alarm comes first
                            timed_out = True
                            break
                finally:
                    try:
                        os.killpg(process.pid, signal.SIGKILL)  # the child, and bwrap with its PID namespace
                    except ProcessLookupError:
                        pass
                    _kill_marked(token)
                    process.wait()
                if jobs:  # the last marker, read once more now that the child is gone
                    begun = max((k for k in range(jobs) if (work / f"e{k}_started").exists()), default=-1)
                    if (work / "load.json").exists():  # the definitions failed: every job says so
                        begun = jobs - 1
                    elif timed_out:  # the start (importing torch) counts against the first job
                        begun = max(begun, 0)
                return timed_out, None if timed_out else process.returncode, begun

            yield work, watch


def _bwrap_command(wrap: str, work: Path, library: Path, hide: list[Path]) -> list[str]:
    command = [wrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in sorted({p.resolve() for p in hide if p.exists()}, key=lambda p: len(p.parts)):
        command += ["--tmpfs", str(path)]
    for prefix in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:  # Python itself (a venv may
        command += ["--ro-bind", str(prefix), str(prefix)]                        # lie in the checkout or /tmp)
    command += ["--ro-bind", str(library), str(library), "--bind", str(work), str(work),
                "--unshare-all", "--die-with-parent", "--new-session", "--chdir", str(work), "--"]
    return command


def _collect(work: Path, prefix: str, count: int, timed_out: bool, returncode: int | None) -> SandboxRun:
    import numpy as np

    def record(name: str) -> dict | None:
        path = work / f"{name}.json"
        if not path.is_file() or path.stat().st_size > 2**20:
            return None
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    cases, arrays = {}, {}
    for i in range(count):
        data = record(f"{prefix}case_{i}")
        if data is None:
            break
        cases[i] = data
        npz = work / f"{prefix}case_{i}.npz"
        if npz.is_file():
            try:
                with np.load(npz, allow_pickle=False) as loaded:
                    arrays[i] = {key: loaded[key] for key in loaded.files}
            except Exception:  # a malformed file: the case has no output
                cases[i] = {"error": "MalformedOutput", "message": "the output could not be read back"}
        else:
            arrays[i] = {}
    return SandboxRun(cases, arrays, record("load"), timed_out, returncode)


# Grading: the verdict, computed here ---------------------------------------------------------------

class SubmissionError(Exception):
    """An error the student's code raised in the sandbox, of a type this process does not know."""


def _raise_todo() -> None:
    raise NotImplementedError("not implemented yet")  # core._raised_by_student reads this line


def _replay(run: SandboxRun, function: str, timeout: float, start: int = 0):
    """A stand-in for the student's function: returns, case by case, what the sandbox recorded
    (plain tensors rebuilt from arrays), or raises what it raised there."""
    import torch

    from backbones.exercises import core
    from backbones.exercises._child import decode

    calls = iter(range(start, len(run.cases) + start + 1))

    def where(data: dict) -> str:
        code = " ".join(str(data.get("code") or "").split())[:120]
        return f" (line {data['line']}: `{code}`)" if data.get("line") and code else ""

    def stand_in(*args, **kwargs):
        i = next(calls)
        if run.load_error is not None:
            error = run.load_error
            raise SubmissionError(f"defining the notebook's functions raised {error.get('error')}: "
                                  f"{error.get('message')}{where(error)}")
        data = run.cases.get(i)
        if data is None:
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
                value = decode(value, arrays)
                if isinstance(target, torch.Tensor) and isinstance(value, torch.Tensor):
                    with torch.no_grad():
                        target.copy_(value.reshape(target.shape) if value.numel() == target.numel()
                                     else torch.full_like(target, float("nan")))
            return decode(data["output"], arrays)
        except Exception as error:
            raise SubmissionError(f"the output could not be read back ({error})") from None

    return stand_in


def grade_exercise(check: str, function: str, source: str, defined: dict, broken: list, *, timeout: float,
                   library: Path, hide: list[Path], values: ValueRun | None = None, run: SandboxRun | None = None):
    """The :class:`~backbones.exercises.core.Result` of one exercise, decided in this process.
    ``values``: the notebook's answers, computed in one sandbox run (:func:`run_answers`);
    ``run``: this exercise's outputs when they were computed already (:func:`run_exercises`)."""
    from backbones.exercises.core import Result, run_check

    exercise, kind = graded_exercise(check)
    if kind == "value":
        return _grade_value(exercise, function, defined, broken, values)
    if function not in defined:
        for text, error in broken:
            if re.search(rf"\b(def|class)\s+{re.escape(function)}\b", text):
                return Result(exercise.name, "failed", f"the cell that defines {function} does not parse: {error}")
        return Result(exercise.name, "failed", f"no definition of {function} in the notebook's code cells")
    if run is None:
        run = run_in_sandbox(source, function, kind, exercise.cases(), timeout=timeout, library=library, hide=hide)
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
    except (ValueError, SyntaxError, IndexError, AttributeError):
        return None


@dataclass
class ValueRun:
    run: SandboxRun | None
    answers: list[str]
    timeout: float


def run_answers(nb: dict, answers: list[str], source: str, defined: dict, *, timeout: float, library: Path,
                hide: list[Path]) -> ValueRun:
    """Compute every answer of a notebook in one sandboxed child: the definitions, then each
    statement an answer needs, one at a time (a statement that fails fails only the answers that
    need it)."""
    from backbones.exercises.core import Case

    present = [a for a in answers if a in defined]
    if not present:
        return ValueRun(None, [], timeout)
    statements, needs = answer_statements(nb, present, student_id(defined))
    run = run_in_sandbox(source, "", "value", [Case(a) for a in present], timeout=timeout, library=library,
                         hide=hide, extra={"statements": statements, "answers": [[a, needs[a]] for a in present]})
    return ValueRun(run, present, timeout)


def _grade_value(exercise, answer: str, defined: dict, broken: list, values: ValueRun | None):
    """A value exercise: the answer's variable was computed in the sandbox (:func:`run_answers`),
    the variant comes from the notebook's ``STUDENT_ID``, the comparison happens here."""
    from backbones.exercises.core import Result, run_value_check

    if answer not in defined:
        for text, error in broken:
            if re.search(rf"^\s*{re.escape(answer)}\s*=", text, re.MULTILINE):
                return Result(exercise.name, "failed", f"the cell that sets {answer} does not parse: {error}")
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
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def grade(submission: Path, master: Path | None, *, name: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
          library: Path | None = None, hide: list[Path] = ()) -> list[Row]:
    """The rows of one submission: one per exercise of its chapter (or one that says what is wrong)."""
    name = name or submission.name
    if master is None:
        return [Row(name, "-", False, "cannot tell which chapter this is: name it after the chapter or pass --master")]
    checks = checks_in(load_notebook(master))
    try:
        nb = read_submission(submission)
    except ValueError as error:
        return [Row(name, check, False, str(error)) for check, _ in checks]
    answers = set()
    for check, answer in checks:
        try:
            if graded_exercise(check)[1] == "value":
                answers.add(answer)
        except Exception:  # an unknown check: its own row says so below
            pass
    source, defined, broken = definitions(nb, answers)
    rows = []
    hide = [*hide, submission.parent, master.parent]
    with tempfile.TemporaryDirectory(prefix="grade-lib-") as tmp:
        library = library or library_copy(Path(tmp))
        values = None
        student = student_id(defined)
        if answers and isinstance(student, str) and student.strip() and student.strip() != BOOK_ID:
            try:
                values = run_answers(nb, [a for _, a in checks if a in answers], source, defined, timeout=timeout,
                                     library=library, hide=hide)
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
                done = run_exercises(source, [(f, k, c) for _, f, k, c in jobs], timeout=timeout, library=library,
                                     hide=hide)
                runs = {check: run for (check, *_), run in zip(jobs, done)}
            except Exception:  # each exercise then runs on its own below
                runs = {}
        for check, function in checks:
            try:
                result = grade_exercise(check, function, source, defined, broken, timeout=timeout,
                                        library=library, hide=hide, values=values, run=runs.get(check))
            except Exception as error:  # the grader's own failure costs this exercise, not the batch
                rows.append(Row(name, check, False, f"could not be graded ({type(error).__name__}: {error})"))
                continue
            rows.append(Row(name, check, result.passed, " ".join(result.message.split())))
    return rows


def grade_all(submissions: list[Path], *, master: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S,
              root: Path | None = None, submissions_root: Path | None = None, out: Path | None = None
              ) -> list[Row]:
    """Grade every submission (files, or folders searched for ``*.ipynb``); rows name each file by
    its path relative to the submissions' common folder. No submission is written to: one that
    changes while it is graded gets a row saying so."""
    files = sorted({p for s in submissions for p in (sorted(Path(s).rglob("*.ipynb")) if Path(s).is_dir() else [Path(s)])})
    if not files:
        return []
    base = submissions_root or Path(os.path.commonpath([p.resolve().parent for p in files]))
    book = root or _root_or_none()
    masters = [] if master else chapter_notebooks(book) if book else []
    hide = [p for p in (book, base, out) if p is not None]
    import backbones

    hide.append(Path(backbones.__file__).resolve().parent)  # the installed library, exercises included
    rows = []
    with tempfile.TemporaryDirectory(prefix="grade-lib-") as tmp:
        library = library_copy(Path(tmp))
        for submission in files:
            name = submission.resolve().relative_to(base).as_posix() if submission.resolve().is_relative_to(base) \
                else submission.name
            before = _fingerprint(submission)
            rows += grade(submission, master or find_master(submission, masters), name=name, timeout=timeout,
                          library=library, hide=hide)
            if _fingerprint(submission) != before:
                rows.append(Row(name, "-", False, "the submission changed on disk while it was graded"))
    return rows


def _root_or_none() -> Path | None:
    try:
        return find_root()
    except Exception:
        return None


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ (or a tab or CR)
    gets a leading apostrophe; long messages are cut."""
    text = str(value)
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + " ..."
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_reports(rows: list[Row], out: Path) -> list[tuple[str, int, int]]:
    """Write grades.csv and summary.csv into ``out``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "exercise", "passed", "message"])
        writer.writerows([_cell(row.file), _cell(row.exercise), row.passed, _cell(row.message)] for row in rows)
    summary: dict[str, tuple[int, int]] = {}
    for row in rows:
        passed, total = summary.get(row.file, (0, 0))
        summary[row.file] = (passed + row.passed, total + (row.exercise != "-"))
    table = [(file, passed, total) for file, (passed, total) in summary.items()]
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "passed", "total"])
        writer.writerows([_cell(file), passed, total] for file, passed, total in table)
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
    print(sandbox_note(), file=sys.stderr)
    rows = grade_all(args.submissions, master=args.master, timeout=args.timeout, out=args.out.resolve())
    table = write_reports(rows, args.out)
    width = max((len(file) for file, _, _ in table), default=0)
    for file, passed, total in table:
        print(f"{file:<{width}}  {passed}/{total}")
    for row in rows:
        if not row.passed and row.exercise != "-":
            print(f"  {row.file} {row.exercise}: {row.message[:160]}")
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
