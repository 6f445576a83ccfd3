"""Grade submitted notebooks in bulk, for instructors.

    python -m backbones.exercises.grader submissions/*.ipynb --out grades/
    python -m backbones.exercises.grader alice.ipynb --master chapters/01_getting_started.ipynb

For each submission the grader finds its chapter (``--master``, or the master whose name the
file name contains), executes a *copy* of it in a separate process with a time limit, and
reads the result of every exercise check from the executed copy. It writes
``grades.csv`` (file, exercise, passed, message) and ``summary.csv`` (file, passed, total) to
``--out``, and prints the summary. It never writes to a submission: a notebook that is not
valid JSON, has lost cells, raises or hangs gets a row that says so.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backbones.book import MOVED, chapter_notebooks, find_root, load_notebook
from backbones.exercises.core import METADATA_KEY

CHECK_CALL = re.compile(r"exercises\.check_(\w+)\(")
DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Row:
    file: str
    exercise: str
    passed: bool
    message: str


def exercises_in(nb: dict) -> list[str]:
    """The exercises a notebook checks, in order: every ``bb.exercises.check_NAME(`` call."""
    names = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            names += [n for n in CHECK_CALL.findall("".join(cell.get("source", []))) if n not in names]
    return names


def find_master(submission: Path, masters: list[Path]) -> Path | None:
    """The master whose file name (without .ipynb) the submission's file name contains; a
    chapter's old name (before the book grew, ``book.MOVED``) stands for its new one."""
    stem = submission.stem
    for old, new in MOVED.items():
        stem = stem.replace(old, new)
    matches = [m for m in masters if m.stem in stem]
    return max(matches, key=lambda m: len(m.stem)) if matches else None


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def execute_copy(submission: Path, workdir: Path, timeout: float) -> tuple[dict | None, str | None]:
    """Execute a copy of ``submission`` in its own process group; ``(executed notebook, problem)``."""
    source, executed = workdir / "submission.ipynb", workdir / "executed.ipynb"
    shutil.copyfile(submission, source)
    env = dict(os.environ, BACKBONES_PROGRESS="summary")
    process = subprocess.Popen([sys.executable, "-m", "backbones.exercises.grader", "--execute-one",
                                str(source), str(executed)], cwd=workdir, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel too: it is in the same process group
        process.communicate()
        return None, f"the notebook did not finish within {timeout:g} s (a cell that never ends?)"
    if process.returncode != 0 or not executed.is_file():
        last = output.strip().splitlines()[-1] if output.strip() else f"exit code {process.returncode}"
        return None, f"the notebook could not be executed: {last}"
    return load_notebook(executed), None


def _first_error(nb: dict) -> str | None:
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output['ename']}: {output['evalue']}"
    return None


def _check_results(nb: dict) -> dict[str, dict]:
    results = {}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            result = output.get("metadata", {}).get(METADATA_KEY)
            if result:
                results[result["exercise"]] = result
    return results


def grade(submission: Path, master: Path | None, timeout: float = DEFAULT_TIMEOUT_S) -> list[Row]:
    """The rows of one submission: one per exercise of its chapter (or one that says what is wrong)."""
    import nbformat

    name = submission.name
    if master is None:
        return [Row(name, "-", False, "cannot tell which chapter this is: name it after the chapter or pass --master")]
    expected = exercises_in(load_notebook(master))
    try:
        nb = json.loads(submission.read_text(encoding="utf-8"))
        nbformat.validate(nbformat.from_dict(nb))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return [Row(name, exercise, False, f"not a valid notebook (not JSON: {error})") for exercise in expected]
    except Exception as error:
        message = f"not a valid notebook ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
        return [Row(name, exercise, False, message) for exercise in expected]
    present = set(exercises_in(nb))
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        executed, problem = execute_copy(submission, Path(tmp), timeout)
    results = _check_results(executed) if executed else {}
    error = _first_error(executed) if executed else None
    rows = []
    for exercise in expected:
        if exercise not in present:
            rows.append(Row(name, exercise, False, "the cell that checks this exercise is missing (lost cells?)"))
        elif exercise in results:
            result = results[exercise]
            rows.append(Row(name, exercise, result["status"] == "passed", " ".join(result["message"].split())))
        elif problem:
            rows.append(Row(name, exercise, False, problem))
        else:
            rows.append(Row(name, exercise, False, "the check did not run"
                            + (f"; the notebook's first error: {error}" if error else "")))
    return rows


def grade_all(submissions: list[Path], *, master: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S,
              root: Path | None = None) -> list[Row]:
    """Grade every submission, proving afterwards that none was modified."""
    masters = [] if master else chapter_notebooks(root or find_root())
    rows = []
    for submission in submissions:
        before = _fingerprint(submission)
        rows += grade(submission, master or find_master(submission, masters), timeout)
        if _fingerprint(submission) != before:  # cannot happen: only a copy is executed
            raise RuntimeError(f"{submission} was modified while grading")
    return rows


def write_reports(rows: list[Row], out: Path) -> list[tuple[str, int, int]]:
    """Write grades.csv and summary.csv into ``out``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "exercise", "passed", "message"])
        writer.writerows([row.file, row.exercise, row.passed, row.message] for row in rows)
    summary = {}
    for row in rows:
        passed, total = summary.get(row.file, (0, 0))
        summary[row.file] = (passed + row.passed, total + (row.exercise != "-"))
    table = [(file, passed, total) for file, (passed, total) in summary.items()]
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "passed", "total"])
        writer.writerows(table)
    return table


def _execute_one(source: Path, target: Path) -> None:
    """Run inside the child process: execute every cell, errors included, and save the result."""
    import nbclient
    import nbformat

    nb = nbformat.read(source, as_version=4)
    nbclient.NotebookClient(nb, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(source.parent)}}).execute()
    nbformat.write(nb, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbones.exercises.grader", description=__doc__.split("\n")[0])
    parser.add_argument("submissions", nargs="*", type=Path)
    parser.add_argument("--master", type=Path, help="the chapter's master notebook (default: from the file name)")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv and summary.csv")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per submission")
    parser.add_argument("--execute-one", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one:
        _execute_one(*args.execute_one)
        return 0
    if not args.submissions:
        parser.error("no submissions given")
    rows = grade_all(args.submissions, master=args.master, timeout=args.timeout)
    table = write_reports(rows, args.out)
    width = max(len(file) for file, _, _ in table)
    for file, passed, total in table:
        print(f"{file:<{width}}  {passed}/{total}")
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
