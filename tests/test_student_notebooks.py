"""Each student notebook runs on the chapter's set-up and says "not implemented yet" for every
exercise (a file of its own, so that it runs beside the grading tests in a parallel run)."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

from backbones.book import MOVED, load_notebook
from backbones.exercises.grader import exercises_in
from backbones.exercises.student import BEGIN

ROOT = Path(__file__).resolve().parents[1]
EMPTY_ID = 'STUDENT_ID = ""'


def exercise_section(nb) -> int:
    """Where a student notebook's "## Exercises" begins (a chapter of exercises only, Test
    yourself: after its two opening code cells, so all of it)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    return next(
        (
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and c.source.lstrip().startswith("## Exercises")
        ),
        code[1] + 1,
    )


def opening_and_exercises(nb) -> list:
    """The cells a student test runs: the two opening code cells (the Colab set-up and the imports),
    then the exercise section, with ``STUDENT_ID`` filled in."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return code[:2] + with_an_id(nb.cells[exercise_section(nb) :])


def with_an_id(cells: list) -> list:
    """The cells, with the empty ``STUDENT_ID`` a student starts from filled in, as a student would."""
    for cell in cells:
        if cell.cell_type == "code" and cell.source.startswith(EMPTY_ID):
            cell.source = 'STUDENT_ID = "s0000001"'
    return cells


@pytest.mark.slow
@pytest.mark.parametrize(
    "student", [p for p in sorted((ROOT / "student").glob("*.ipynb")) if p.stem not in MOVED], ids=lambda p: p.stem
)
def test_student_notebook_runs_and_says_not_implemented_yet(student):
    """The student's exercise section runs on the chapter's set-up and says "not implemented yet".

    The rest of a student notebook is the master's, cell for cell (the freshness test above holds
    that), and the book build has executed every master: running those cells again here would
    double the suite's heaviest work, so only the two opening code cells (the Colab set-up and the
    imports) and the cells from "## Exercises" on are executed."""
    nb = nbformat.read(student, as_version=4)
    exercises = exercise_section(nb)
    master = load_notebook(ROOT / "chapters" / student.name)
    solutions = [i for i, c in enumerate(master["cells"]) if BEGIN in "".join(c["source"])]
    assert solutions and min(solutions) > exercises, "a solution outside the exercise section"
    nb.cells = opening_and_exercises(nb)
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(student.parent)}}
    ).execute()  # raises on error
    shown = ["".join(o.get("data", {}).get("text/plain", "")) for c in nb.cells for o in c.get("outputs", [])]
    for exercise in exercises_in(nb):
        assert any(
            f"→ {exercise}: not implemented yet" in text or f"→ {exercise}: not answered yet" in text for text in shown
        ), exercise


@pytest.mark.parametrize("name", ["10_test_yourself", "11_mock_test"])
def test_a_student_notebook_without_an_id_stops_at_once_saying_what_to_fill_in(name):
    """The student's copy starts with ``STUDENT_ID = ""`` (the page's "instructor" is refused by the
    grader): run as it is, it stops at its first question with what to do (issue 29, item 7)."""
    nb = nbformat.read(ROOT / "student" / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum(c.source.startswith(EMPTY_ID) for c in code) == 1
    assert not any('STUDENT_ID = "instructor"' in c.source for c in code)
    first = next(i for i, c in enumerate(code) if "bb.exercises.ask(" in c.source or "mock_test(" in c.source)
    nb.cells = code[: first + 1]
    with pytest.raises(nbclient.exceptions.CellExecutionError, match='fill in STUDENT_ID = "..." at the top'):
        nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT / "student")}}
        ).execute()
