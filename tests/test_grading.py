"""Student notebooks are fresh and hold no solution; they run and report 'not implemented yet';
the grader gives the master full marks, the student version zero, and says what is wrong with
broken submissions, without ever writing to one."""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import re
from pathlib import Path

import nbclient
import nbformat
import pytest

from backbones.book import MOVED, chapter_notebooks, load_notebook
from backbones.exercises.grader import exercises_in, find_master, grade_all, write_reports
from backbones.exercises.student import BEGIN, END, generate, strip_solutions

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "chapters" / "01_getting_started.ipynb"
STUDENT = ROOT / "student" / "01_getting_started.ipynb"


def solution_lines(nb: dict) -> list[str]:
    """Lines the master has only inside solutions (a line such as `layers = []` that the chapter's
    own code also uses is no leak)."""
    inside_lines, outside_lines = set(), set()
    for cell in nb["cells"]:
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif line.strip():
                (inside_lines if inside else outside_lines).add(line.strip())
    return sorted(inside_lines - outside_lines)


def test_committed_student_notebooks_are_fresh():
    generated = generate(ROOT)
    assert generated, "no chapter has exercises"
    for path, nb in generated.items():
        assert path.is_file(), f"{path.name} is missing: run python -m backbones.exercises.student"
        assert load_notebook(path) == nb, f"{path.name} is stale: run python -m backbones.exercises.student"
    assert sorted((ROOT / "student").glob("*.ipynb")) == sorted(p for p in generated if p.parent.name == "student")


@pytest.mark.parametrize("master", [m for m in chapter_notebooks(ROOT) if (ROOT / "student" / m.name).is_file()],
                         ids=lambda p: p.stem)
def test_student_notebooks_hold_no_solution(master):
    student = ROOT / "student" / master.name
    text = student.read_text()
    assert BEGIN not in text and END not in text
    student_lines = {line.strip() for cell in load_notebook(student)["cells"]
                     for line in "".join(cell["source"]).split("\n")}
    for line in solution_lines(load_notebook(master)):
        assert line not in student_lines, f"solution line left in the student notebook: {line}"
    assert exercises_in(load_notebook(student)) == exercises_in(load_notebook(master))


@pytest.mark.parametrize("old, new", list(MOVED.items()))
def test_a_moved_chapter_s_old_links_and_names_still_work(old, new):
    for folder in ("chapters", "student"):
        pointer = load_notebook(ROOT / folder / f"{old}.ipynb")
        text = "".join(pointer["cells"][0]["source"])
        assert f"blob/main/{folder}/{new}.ipynb" in text and (ROOT / folder / f"{new}.ipynb").is_file()
        assert not [c for c in pointer["cells"] if c["cell_type"] == "code"]
    masters = chapter_notebooks(ROOT)
    assert ROOT / "chapters" / f"{old}.ipynb" not in masters
    assert find_master(Path(f"alice-{old}.ipynb"), masters) == ROOT / "chapters" / f"{new}.ipynb"
    assert find_master(Path(f"bob_{new}.ipynb"), masters) == ROOT / "chapters" / f"{new}.ipynb"
    assert find_master(Path("carol-05_se_efficientnet.ipynb"), masters).stem == "05_se_efficientnet"


def test_stub_keeps_signature_and_indentation():
    source = "def f(x):\n    \"\"\"Doc.\"\"\"\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n"
    assert strip_solutions(source) == ('def f(x):\n    """Doc."""\n'
                                       '    raise NotImplementedError("Exercise: replace this line with your code.")\n')


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION\nx = 1\n", "without # END SOLUTION"),
    ("x = 1\n# END SOLUTION\n", "without # BEGIN SOLUTION"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside another solution"),
])
def test_unbalanced_markers_are_an_error(source, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(source)


@pytest.mark.slow
@pytest.mark.parametrize("student", [p for p in sorted((ROOT / "student").glob("*.ipynb")) if p.stem not in MOVED],
                         ids=lambda p: p.stem)
def test_student_notebook_runs_and_says_not_implemented_yet(student):
    """The student's exercise section runs on the chapter's set-up and says "not implemented yet".

    The rest of a student notebook is the master's, cell for cell (the freshness test above holds
    that), and the book build has executed every master: running those cells again here would
    double the suite's heaviest work, so only the two opening code cells (the Colab set-up and the
    imports) and the cells from "## Exercises" on are executed."""
    nb = nbformat.read(student, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    exercises = next(i for i, c in enumerate(nb.cells)
                     if c.cell_type == "markdown" and c.source.lstrip().startswith("## Exercises"))
    master = load_notebook(ROOT / "chapters" / student.name)
    solutions = [i for i, c in enumerate(master["cells"]) if BEGIN in "".join(c["source"])]
    assert solutions and min(solutions) > exercises, "a solution outside the exercise section"
    nb.cells = [nb.cells[i] for i in code[:2]] + nb.cells[exercises:]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(student.parent)}}).execute()  # raises on error
    shown = ["".join(o.get("data", {}).get("text/plain", "")) for c in nb.cells for o in c.get("outputs", [])]
    for exercise in exercises_in(nb):
        assert any(f"→ {exercise}: not implemented yet" in text for text in shown), exercise


def _variant(name: str, change, folder: Path) -> Path:
    nb = copy.deepcopy(load_notebook(MASTER))
    change(nb)
    path = folder / f"{name}-01_getting_started.ipynb"
    path.write_text(json.dumps(nb))
    return path


def _replace_in_cell(nb, marker, old, new):
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if marker in source:
            assert old in source
            cell["source"] = source.replace(old, new)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    submissions = [
        folder / "master-01_getting_started.ipynb",
        folder / "student-01_getting_started.ipynb",
        _variant("wrong", lambda nb: _replace_in_cell(nb, "def cross_entropy", "return -picked.mean()",
                                                       "return picked.mean()"), folder),
        _variant("raises", lambda nb: _replace_in_cell(nb, "def top_k_accuracy", ".mean().item()",
                                                        ".mean(.item()"), folder),
        _variant("lost", lambda nb: nb.update(cells=[c for c in nb["cells"]
                                                     if "check_cross_entropy" not in "".join(c["source"])]), folder),
        _variant("hangs", lambda nb: nb["cells"].insert(3, nbformat.v4.new_code_cell(
            "import time\nwhile True:\n    time.sleep(1)")), folder),
        folder / "truncated-01_getting_started.ipynb",
        folder / "unknown.ipynb",
    ]
    submissions[0].write_bytes(MASTER.read_bytes())
    submissions[1].write_bytes(STUDENT.read_bytes())
    submissions[-2].write_bytes(MASTER.read_bytes()[:3000])
    submissions[-1].write_bytes(MASTER.read_bytes())
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in submissions}
    rows = grade_all(submissions, timeout=40, root=ROOT)
    after = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in submissions}
    out = folder / "grades"
    summary = write_reports(rows, out)
    return {"rows": {(r.file.split("-")[0].removesuffix(".ipynb"), r.exercise): r for r in rows},
            "summary": {file.split("-")[0].removesuffix(".ipynb"): (passed, total) for file, passed, total in summary},
            "unchanged": before == after, "out": out}


@pytest.mark.slow
def test_grader_never_writes_to_a_submission(graded):
    assert graded["unchanged"]


@pytest.mark.slow
@pytest.mark.parametrize("submission, score", [
    ("master", (2, 2)), ("student", (0, 2)), ("wrong", (1, 2)), ("raises", (1, 2)), ("lost", (1, 2)),
    ("hangs", (0, 2)), ("truncated", (0, 2)), ("unknown", (0, 0)),
])
def test_grader_scores(graded, submission, score):
    assert graded["summary"][submission] == score


@pytest.mark.slow
@pytest.mark.parametrize("submission, exercise, message", [
    ("student", "top_k_accuracy", "not implemented yet"),
    ("wrong", "cross_entropy", "the sign is wrong"),
    ("raises", "top_k_accuracy", "the check did not run; the notebook's first error: SyntaxError"),
    ("lost", "cross_entropy", "the cell that checks this exercise is missing"),
    ("hangs", "top_k_accuracy", "did not finish within 40 s"),
    ("truncated", "cross_entropy", "not a valid notebook (not JSON"),
    ("unknown", "-", "cannot tell which chapter this is"),
])
def test_grader_says_what_is_wrong(graded, submission, exercise, message):
    assert message in graded["rows"][(submission, exercise)].message


@pytest.mark.slow
def test_grader_writes_csv_files(graded):
    with open(graded["out"] / "grades.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["file", "exercise", "passed", "message"]
    assert len(rows) == 15
    with open(graded["out"] / "summary.csv", newline="") as file:
        assert {r["file"]: r["passed"] for r in csv.DictReader(file)}["master-01_getting_started.ipynb"] == "2"


@pytest.mark.book
def test_rendered_chapter_shows_exercise_solution_behind_a_toggle_and_the_check(built_html):
    html = (built_html / "chapters" / "01_getting_started.html").read_text()
    toggles = html.split('<details class="admonition hide above-input">')[1:]
    hidden = [re.sub(r"<[^>]+>", "", t.split("</details>")[0]) for t in toggles]  # the text inside each toggle
    for function in ("top_k_accuracy", "cross_entropy"):
        assert any(f"def {function}(" in h and "BEGIN SOLUTION" in h for h in hidden), f"{function} is not behind a toggle"
    assert "✓ top_k_accuracy: correct on all 5 cases" in html
    assert "✓ cross_entropy: correct on all 4 cases" in html
    assert "blob/main/student/01_getting_started.ipynb" in html  # the Colab button opens the student version
    assert "blob/main/chapters/01_getting_started.ipynb" not in html


@pytest.mark.book
@pytest.mark.parametrize("master", chapter_notebooks(ROOT), ids=lambda p: p.stem)
def test_every_master_solution_passes_its_check_in_the_built_book(master, built_html):
    html = (built_html / "chapters" / f"{master.stem}.html").read_text()
    for exercise in exercises_in(load_notebook(master)):
        assert f"✓ {exercise}: correct on all" in html, exercise
