"""Student notebooks are fresh and hold no solution; they run and report 'not implemented yet';
the grader gives the master full marks, the student version zero, and says what is wrong with
broken submissions, without ever writing to one."""

from __future__ import annotations

import concurrent.futures
import copy
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from backbones.book import MOVED, chapter_notebooks, load_notebook
from backbones.exercises.grader import checks_in, exercises_in, find_master, grade_all, write_reports
from backbones.exercises.student import BEGIN, END, generate, strip_solutions

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "chapters" / "01_getting_started.ipynb"
STUDENT = ROOT / "student" / "01_getting_started.ipynb"
# seconds per exercise in the graded batches (the default is 120): an attack that hangs costs this,
# and an honest exercise (a child importing torch, then tiny cases) needs a fifth of it on 2 slow cores
TIMEOUT = 30


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


@pytest.mark.parametrize(
    "master", [m for m in chapter_notebooks(ROOT) if (ROOT / "student" / m.name).is_file()], ids=lambda p: p.stem
)
def test_student_notebooks_hold_no_solution(master):
    student = ROOT / "student" / master.name
    text = student.read_text()
    assert BEGIN not in text and END not in text
    student_lines = {
        line.strip() for cell in load_notebook(student)["cells"] for line in "".join(cell["source"]).split("\n")
    }
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
    source = 'def f(x):\n    """Doc."""\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n'
    assert strip_solutions(source) == (
        'def f(x):\n    """Doc."""\n    raise NotImplementedError("Exercise: replace this line with your code.")\n'
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ("# BEGIN SOLUTION\nx = 1\n", "without # END SOLUTION"),
        ("x = 1\n# END SOLUTION\n", "without # BEGIN SOLUTION"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside another solution"),
    ],
)
def test_unbalanced_markers_are_an_error(source, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(source)


def _variant(name: str, change, folder: Path, *, base: Path = MASTER) -> Path:
    nb = copy.deepcopy(load_notebook(base))
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


def _add_cell(nb, source, *, at=None, outputs=(), tags=()):
    cell = json.loads(json.dumps(nbformat.v4.new_code_cell(source)))
    cell["outputs"] = list(outputs)
    cell["metadata"]["tags"] = list(tags)
    nb["cells"].insert(len(nb["cells"]) if at is None else at, cell)


FORGED = {
    "output_type": "display_data",
    "data": {"text/plain": "✓ top_k_accuracy: correct on all 5 cases"},
    "metadata": {
        "backbones_check": {"exercise": "top_k_accuracy", "status": "passed", "message": "correct", "mistake": None}
    },
}
TOP_K = "    return hits.float().mean().item()"
CROSS = "    return -picked.mean()"
LIAR = """
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
"""


def _messy(nb):
    """An honest notebook, badly kept: no check cells, no cell ids, cells in reverse order, a
    half-written metadata output, an os._exit between the definitions and a last cell that hangs."""
    nb["cells"] = [c for c in nb["cells"] if "bb.exercises.check_" not in "".join(c["source"])][::-1]
    _add_cell(
        nb,
        "import os\nos._exit(0)",
        at=3,
        outputs=[{"output_type": "display_data", "data": {}, "metadata": {"backbones_check": {"exercise": "x"}}}],
    )
    _add_cell(nb, "while True:\n    pass")
    for cell in nb["cells"]:
        cell.pop("id", None)
    nb["nbformat_minor"] = 4


def _cheats(nb):
    """The student version with forged verdicts: a copied check cell that is not executed, an
    empty cell with the same output, a published result, and a patched comparison."""
    _add_cell(nb, "bb.exercises.check_top_k_accuracy(top_k_accuracy)", outputs=[FORGED], tags=["skip-execution"])
    _add_cell(nb, "", outputs=[FORGED])
    _add_cell(
        nb,
        "from IPython.display import publish_display_data\n"
        f"publish_display_data({FORGED['data']!r}, metadata={FORGED['metadata']!r})",
    )
    _add_cell(nb, "import backbones.exercises.core as core\ncore.difference = lambda *a, **k: None")


def _lies(nb):
    _replace_in_cell(
        nb,
        "def top_k_accuracy",
        TOP_K,
        "    import backbones.exercises.core as core\n    core.difference = lambda *a, **k: None\n    return 0.0",
    )
    _replace_in_cell(nb, "def cross_entropy", CROSS, "    return torch.zeros(()).as_subclass(Liar)")
    _add_cell(nb, LIAR, at=5)


def _hangs(nb):
    _replace_in_cell(nb, "def top_k_accuracy", TOP_K, "    while True:\n        pass")
    _replace_in_cell(
        nb,
        "def cross_entropy",
        CROSS,  # a C call that holds the GIL: no alarm interrupts it
        "    sum(range(10**12))\n" + CROSS,
    )


def _escapes(nb, victim: Path, out: Path):
    spawn = (
        "    import subprocess, sys\n"
        "    subprocess.Popen(['sleep', '987'], start_new_session=True, stdout=sys.stdout, stderr=sys.stderr)\n"
        f"    subprocess.Popen(['sh', '-c', 'sleep 3; echo spoiled > {victim}; echo 1,1 > {out}/grades.csv'],\n"
        "                     start_new_session=True)\n"
    )
    _replace_in_cell(nb, "def top_k_accuracy", TOP_K, spawn + TOP_K)
    _replace_in_cell(
        nb, "def cross_entropy", CROSS, f"    open({str(MASTER)!r}).read()\n    open({str(victim)!r}).read()\n" + CROSS
    )


def _touches_itself(nb, path: Path):
    _replace_in_cell(nb, "def top_k_accuracy", TOP_K, f"    import os\n    os.utime({str(path)!r}, (0, 0))\n" + TOP_K)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One batch holding every attempt of issue 17's table, honest notebooks and broken ones."""
    folder = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("grades")
    (folder / "a").mkdir()
    (folder / "b").mkdir()
    victim = folder / "student-01_getting_started.ipynb"
    touches = folder / "touches-01_getting_started.ipynb"
    for path in ("master", "a/same", "=HYPERLINK(1)", "unknown"):
        (folder / f"{path}-01_getting_started.ipynb".replace("unknown-01_getting_started", "unknown")).write_bytes(
            MASTER.read_bytes()
        )
    (folder / "truncated-01_getting_started.ipynb").write_bytes(MASTER.read_bytes()[:3000])
    for path in (victim, folder / "b" / "same-01_getting_started.ipynb"):
        path.write_bytes(STUDENT.read_bytes())
    (folder / "v3-01_getting_started.ipynb").write_text(
        nbformat.writes(nbformat.convert(nbformat.read(MASTER, as_version=4), 3))
    )
    _variant(
        "wrong",
        lambda nb: (
            _replace_in_cell(nb, "def cross_entropy", CROSS, "    return picked.mean()"),
            _replace_in_cell(
                nb,
                "def top_k_accuracy",
                TOP_K,
                "    logits.mul_(2)  # same ranking, the caller's logits changed\n" + TOP_K,
            ),
        ),
        folder,
    )
    _variant(
        "broken",
        lambda nb: (
            _replace_in_cell(nb, "def top_k_accuracy", ".mean().item()", ".mean(.item()"),
            nb.update(cells=[c for c in nb["cells"] if "def cross_entropy" not in "".join(c["source"])]),
        ),
        folder,
    )
    _variant("messy", _messy, folder)
    _variant("cheats", _cheats, folder, base=STUDENT)
    _variant("lies", _lies, folder)
    hanging = tmp_path_factory.mktemp("hanging")  # graded beside the batch: its clocks run out meanwhile
    _variant("hangs", _hangs, hanging)
    _variant("escapes", lambda nb: _escapes(nb, victim, out), folder)
    _variant("touches", lambda nb: _touches_itself(nb, touches), folder)
    submissions = sorted([*folder.rglob("*.ipynb"), *hanging.rglob("*.ipynb")])
    assert len(submissions) == 16
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in submissions}
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # the hang holds one CPU for its two clocks (10 s, then TIMEOUT); the batch has the other
        hangs = pool.submit(grade_all, [hanging], timeout=TIMEOUT, root=ROOT)
        rows = grade_all([folder], timeout=TIMEOUT, root=ROOT) + hangs.result()
    seconds = time.monotonic() - start
    summary = write_reports(rows, out)
    time.sleep(5)  # what a detached process would do, it has had the time to do by now
    after = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in submissions}
    survivors = subprocess.run(["pgrep", "-f", "sleep 987"], capture_output=True, text=True).stdout.split()

    def key(file: str) -> str:
        return file.split("-01_")[0].removesuffix(".ipynb")

    return {
        "rows": {(key(r.file), r.exercise): r for r in rows},
        "summary": {key(f): (p, t) for f, p, t in summary},
        "unchanged": before == after,
        "out": out,
        "seconds": seconds,
        "survivors": survivors,
    }


@pytest.mark.slow
def test_grader_never_writes_to_a_submission_and_nothing_outlives_it(graded):
    assert graded["unchanged"]
    assert graded["survivors"] == []
    with open(graded["out"] / "grades.csv", newline="") as file:
        assert next(csv.reader(file)) == ["file", "student_id", "exercise", "passed", "message"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "submission, score",
    [
        ("master", (2, 2)),
        ("student", (0, 2)),
        ("wrong", (0, 2)),
        ("broken", (0, 2)),
        ("messy", (2, 2)),
        ("v3", (2, 2)),
        ("cheats", (0, 2)),
        ("lies", (0, 2)),
        ("hangs", (0, 2)),
        ("escapes", (1, 2)),
        ("a/same", (2, 2)),
        ("b/same", (0, 2)),
        ("=HYPERLINK(1)", (2, 2)),
        ("truncated", (0, 2)),
        ("unknown", (0, 0)),
        ("touches", (1, 2)),
    ],
)
def test_grader_scores(graded, submission, score):
    assert graded["summary"][submission] == score


@pytest.mark.slow
@pytest.mark.parametrize(
    "submission, exercise, message",
    [
        ("student", "top_k_accuracy", "not implemented yet"),
        ("wrong", "cross_entropy", "the sign is wrong"),
        ("broken", "top_k_accuracy", "the cell that defines top_k_accuracy cannot be read: SyntaxError"),
        ("broken", "cross_entropy", "no definition of cross_entropy in the notebook's code cells"),
        ("cheats", "top_k_accuracy", "not implemented yet"),
        ("lies", "cross_entropy", "wrong values"),
        ("hangs", "top_k_accuracy", "top_k_accuracy: stopped after 10 s"),
        ("hangs", "cross_entropy", f"cross_entropy: stopped after {TIMEOUT} s"),
        ("escapes", "cross_entropy", "FileNotFoundError"),
        ("touches", "top_k_accuracy", "FileNotFoundError"),
        ("wrong", "top_k_accuracy", "changed its input `logits` in place"),
        ("truncated", "cross_entropy", "not a valid notebook (not JSON"),
        ("unknown", "-", "cannot tell which chapter this is"),
    ],
)
def test_grader_says_what_is_wrong(graded, submission, exercise, message):
    assert message in graded["rows"][(submission, exercise)].message


@pytest.mark.slow
def test_grader_writes_csv_files_a_spreadsheet_cannot_run(graded):
    with open(graded["out"] / "grades.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["file", "student_id", "exercise", "passed", "message"]
    assert len(rows) == 2 * 15 + 1  # two exercises for each of 15 chapter notebooks, one row for the unknown
    with open(graded["out"] / "summary.csv", newline="") as file:
        summary = {r["file"]: r["passed"] for r in csv.DictReader(file)}
    assert summary["master-01_getting_started.ipynb"] == "2"
    assert summary["a/same-01_getting_started.ipynb"] == "2" and summary["b/same-01_getting_started.ipynb"] == "0"
    assert summary["'=HYPERLINK(1)-01_getting_started.ipynb"] == "2"  # neutralised: text, not a formula


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    from backbones.exercises.grader import Row

    write_reports(
        [
            Row("=cmd|' /C calc'!A0.ipynb", "top_k_accuracy", False, "@SUM(1+1)*cmd"),
            Row("plain.ipynb", "-", False, "+1" + "x" * 5000),
        ],
        tmp_path,
    )
    with open(tmp_path / "grades.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["file"].startswith("'=") and rows[0]["message"].startswith("'@")
    assert rows[1]["message"].startswith("'+1") and len(rows[1]["message"]) < 700


def test_every_check_of_the_book_names_its_exercise_for_the_grader():
    from backbones import exercises
    from backbones.exercises.grader import graded_exercise

    names = [n.removeprefix("check_") for n in exercises.__all__ if n.startswith("check_")]
    resolved = {name: graded_exercise(name) for name in names}
    assert {e.name for e, _ in resolved.values()} == set(exercises.EXERCISES) | set(exercises.VALUE_EXERCISES)
    assert {kind for _, kind in resolved.values()} == {"function", "module", "value"}
    assert all(kind == "value" for e, kind in resolved.values() if e.name in exercises.VALUE_EXERCISES)
    for master in chapter_notebooks(ROOT):
        for check, _ in checks_in(load_notebook(master)):
            assert check in resolved, (master.name, check)


def test_the_grader_reads_the_registry_not_source_nor_message_prefixes():
    """The grader's view of an exercise is its declaration (kind included); when time ran out is a
    field of the result, not a prefix of its message."""
    from backbones import exercises

    folder = Path(exercises.__file__).parent
    for module in ("grader", "judge", "reading", "report", "sandbox", "_child"):
        text = (folder / f"{module}.py").read_text()
        assert "getsource" not in text and 'startswith("stopped' not in text, module
    assert exercises.graded("vgg_block")[1] == "module" and exercises.graded("why_sqrt_d")[1] == "value"
    result = exercises.run_check(exercises.EXERCISES["top_k_accuracy"], lambda *a, **k: time.sleep(5), seconds=0.2)
    assert result.stopped and not result.passed


def test_the_grader_reads_definitions_not_statements():
    from backbones.exercises.grader import definitions

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%pip install x\nimport torch\nK = 3\nrun_me()"),
            nbformat.v4.new_code_cell("def f(x):\n    return x + K"),
            nbformat.v4.new_code_cell("def f(x):\n    return x + 2 * K"),
            nbformat.v4.new_code_cell("def g(:\n    pass"),
        ]
    )
    source, defined, broken = definitions(json.loads(nbformat.writes(nb)))
    assert set(defined) == {"K", "f"} and "2 * K" in defined["f"]  # the later definition wins
    assert "run_me" not in source and "install" not in source
    assert len(broken) == 1 and "SyntaxError" in broken[0][1]


@pytest.mark.book
def test_rendered_chapter_shows_exercise_solution_behind_a_toggle_and_the_check(built_html):
    html = (built_html / "chapters" / "01_getting_started.html").read_text()
    toggles = html.split('<details class="admonition hide above-input">')[1:]
    hidden = [re.sub(r"<[^>]+>", "", t.split("</details>")[0]) for t in toggles]  # the text inside each toggle
    for function in ("top_k_accuracy", "cross_entropy"):
        assert any(f"def {function}(" in h and "BEGIN SOLUTION" in h for h in hidden), (
            f"{function} is not behind a toggle"
        )
    assert "✓ top_k_accuracy: correct on all 5 cases" in html
    assert "✓ cross_entropy: correct on all 4 cases" in html
    assert "blob/main/student/01_getting_started.ipynb" in html  # the Colab button opens the student version
    assert "blob/main/chapters/01_getting_started.ipynb" not in html


@pytest.mark.book
@pytest.mark.parametrize("master", chapter_notebooks(ROOT), ids=lambda p: p.stem)
def test_every_master_solution_passes_its_check_in_the_built_book(master, built_html):
    html = (built_html / "chapters" / f"{master.stem}.html").read_text()
    for exercise in exercises_in(load_notebook(master)):
        assert f"✓ {exercise}: correct on all" in html or f"✓ {exercise}: correct for your variant" in html, exercise


# The protocol's third kind: one answer value, a variant per student -----------------------------


def _demo_exercise():
    from backbones.exercises.core import Mistake, ValueExercise

    return ValueExercise(
        name="demo_conv_params",
        task="the parameters of a k x k convolution from c_in to c_out channels, with bias",
        question=lambda seed: {"c_in": 3 + seed % 61, "c_out": 16 * (1 + seed % 7), "k": (1, 3, 5, 7)[seed % 4]},
        answer=lambda c_in, c_out, k: c_in * c_out * k * k + c_out,
        mistakes={
            "no_bias": Mistake(
                "a convolution also has one bias per output channel", lambda c_in, c_out, k: c_in * c_out * k * k
            )
        },
    )


def test_a_value_exercise_has_a_variant_per_student_and_names_the_mistake():
    from backbones.exercises.core import run_value_check, variant_seed

    demo = _demo_exercise()
    assert variant_seed("alice", demo.name) == variant_seed("alice", demo.name) != variant_seed("bob", demo.name)
    alice, bob = demo.variant("alice"), demo.variant("bob")
    assert demo.answer(**alice) != demo.answer(**bob)
    assert run_value_check(demo, "alice", demo.answer(**alice)).passed
    assert not run_value_check(demo, "bob", demo.answer(**alice)).passed  # a copied answer fails
    wrong = run_value_check(demo, "alice", demo.mistakes["no_bias"].wrong(**alice))
    assert wrong.mistake == "no_bias" and "bias" in wrong.message
    assert "STUDENT_ID" in run_value_check(demo, None, 5).message
    assert run_value_check(demo, "alice", ...).status == "todo"


# The "Test yourself" chapter, graded ----------------------------------------------------------------

TEST_YOURSELF = ROOT / "chapters" / "10_test_yourself.ipynb"


def _answers_for(student: str) -> dict[str, str]:
    """Right answers for ``student``, written as a student would: literals and expressions."""
    from backbones.exercises import VALUE_EXERCISES

    return {name: repr(exercise.answer(**exercise.variant(student))) for name, exercise in VALUE_EXERCISES.items()}


def _set_answers(nb: dict, student: str, answers: dict[str, str]) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if source.startswith("STUDENT_ID ="):
            cell["source"] = f'STUDENT_ID = "{student}"'
        for name, value in answers.items():
            source = re.sub(rf"^{name}_answer = \.\.\..*$", f"{name}_answer = {value}", source, flags=re.M)
        if cell["cell_type"] == "code" and "STUDENT_ID =" not in source:
            cell["source"] = source
    return nb


@pytest.mark.slow
def test_the_test_yourself_chapter_is_graded(tmp_path):
    """The master's id, the book's own, is refused, and a notebook without an id is told to set
    one (neither costs a sandbox run); the untouched student version (its id changed) says 'not
    answered yet' everywhere; a student's right answers (typed, or computed from their own
    variant in cells the grader runs) pass; the same answers under another id fail; a catalogued wrong
    answer is named."""
    from backbones.exercises import VALUE_EXERCISES
    from backbones.exercises.grader import grade

    student = load_notebook(ROOT / "student" / TEST_YOURSELF.name)
    alice = _answers_for("alice")
    wrong = dict(
        alice,
        vit_tokens=repr(
            VALUE_EXERCISES["vit_tokens"].mistakes["no_cls"].wrong(**VALUE_EXERCISES["vit_tokens"].variant("alice"))
        ),
    )
    # computed from the variant, through an intermediate variable, as the master does
    computed = dict(alice, vit_tokens="count", attention_output="out[0, 0].item()")
    no_id = copy.deepcopy(student)
    no_id["cells"] = [c for c in no_id["cells"] if not "".join(c["source"]).startswith("STUDENT_ID =")]
    notebooks = {
        "master": load_notebook(TEST_YOURSELF),
        "no_id": no_id,
        "student": _set_answers(student, "carol", {}),
        "bob": _set_answers(student, "bob", alice),
        "wrong": _set_answers(student, "alice", wrong),
        "computed": _set_answers(student, "alice", computed),
    }
    extra = (
        "Q, K, V = (torch.tensor(q6[m], dtype=torch.float64) for m in 'QKV')\nout = (Q @ K.T / 2).softmax(dim=1) @ V\n"
    )
    loop = (
        "count = 1  # built with a loop and +=, as an honest student may\n"
        "for _ in range((q8['image_size'] // q8['patch_size']) ** 2):\n    count += 1\n"
    )
    for cell in notebooks["computed"]["cells"]:
        if "attention_output_answer =" in "".join(cell["source"]):
            cell["source"] = "".join(cell["source"]).replace(
                "attention_output_answer =", extra + "attention_output_answer ="
            )
        if "vit_tokens_answer =" in "".join(cell["source"]):
            cell["source"] = "".join(cell["source"]).replace("vit_tokens_answer =", loop + "vit_tokens_answer =")
    rows = {}
    for name, nb in notebooks.items():
        path = tmp_path / f"{name}-10_test_yourself.ipynb"
        path.write_text(json.dumps(nb))
        rows[name] = {r.exercise: r for r in grade(path, TEST_YOURSELF, timeout=60)}
    count = len(VALUE_EXERCISES)
    assert set(rows["master"]) == set(VALUE_EXERCISES)  # the book's own id, whose answers the book shows
    assert all(not r.passed and 'still the book\'s "instructor"' in r.message for r in rows["master"].values())
    assert all("set STUDENT_ID" in r.message for r in rows["no_id"].values())
    assert all("not answered yet" in r.message for r in rows["student"].values())
    assert sum(r.passed for r in rows["bob"].values()) < count // 2 + 1  # alice's answers, bob's numbers
    assert not rows["wrong"]["vit_tokens"].passed and "[CLS] is a token too" in rows["wrong"]["vit_tokens"].message
    assert "Revisit chapter 9, section 1" in rows["wrong"]["vit_tokens"].message
    # typed in (9 answers) or computed from the variant (2, one by a loop), alice's answers pass under her id
    assert all(r.passed for r in rows["computed"].values()), [r for r in rows["computed"].values() if not r.passed]


def test_the_grader_names_hooks_a_submission_leaves_registered_as_the_notebook_check_does(tmp_path):
    """The sandbox sends back what a function did to the models it was given; the grader's copies
    get the same, so the verdict is the notebook's (issue 27, side effects)."""
    master = ROOT / "chapters" / "04_resnet.ipynb"

    def leaves_hooks(nb):
        _replace_in_cell(
            nb, "def layer_gradient_norms", "        for hook in hooks:\n            hook.remove()", "        pass"
        )

    path = _variant("hooks", leaves_hooks, tmp_path, base=master)
    import torch

    import backbones as bb
    from backbones.exercises.grader import grade

    rows = {row.exercise: row for row in grade(path, master, timeout=60)}
    row = rows["layer_gradient_norms"]
    assert not row.passed and "hook(s) registered on `model.layers.0`" in row.message, row.message
    namespace = {"torch": torch, "bb": bb}
    source = "".join(
        c["source"] for c in load_notebook(path)["cells"] if "def layer_gradient_norms" in "".join(c["source"])
    )
    exec(source, namespace)  # noqa: S102 - the book's own variant
    notebook = bb.exercises.run_check(bb.exercises.EXERCISES["layer_gradient_norms"], namespace["layer_gradient_norms"])
    assert notebook.message == row.message


def test_the_grader_fails_a_call_to_what_the_exercise_asks_for_as_the_notebook_does(tmp_path):
    """A submission whose attention is torch's own, reached through an alias: the sandbox's watch
    sees it, and the row says so in the notebook check's words (issue 27, item 5)."""
    import backbones as bb
    from backbones.exercises.grader import grade

    master = ROOT / "chapters" / "07_attention.ipynb"
    shortcut = (
        "    from torch.nn.functional import scaled_dot_product_attention as fast\n"
        "    return fast(q, k, v, attn_mask=mask)\n"
    )

    def calls_torch(nb):
        _replace_in_cell(
            nb,
            "def attention(",
            "    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5   # (..., L_q, L_k)\n",
            shortcut,
        )

    path = _variant("shortcut", calls_torch, tmp_path, base=master)
    rows = {row.exercise: row for row in grade(path, master, timeout=60)}
    row = rows["attention"]
    assert not row.passed and "you called `F.scaled_dot_product_attention`" in row.message, row.message
    namespace: dict = {}
    exec("import torch\ndef attention(q, k, v, mask=None):\n" + shortcut, namespace)  # noqa: S102
    notebook = bb.exercises.run_check(bb.exercises.EXERCISES["attention"], namespace["attention"])
    assert notebook.message == row.message


def test_a_probe_diagnoses_the_same_mistake_in_the_grader_as_in_the_notebook(tmp_path):
    """A submission whose attention halves the scale that no catalogued mistake makes: the sandbox
    also runs the probes' inputs, the replay finds their answers, and the row reads as the
    notebook's check (issue 27, item 2)."""
    import backbones as bb
    from backbones.exercises.grader import grade

    master = ROOT / "chapters" / "07_attention.ipynb"
    halved = "    scores = q @ k.transpose(-2, -1) / (2 * q.shape[-1] ** 0.5)\n"

    def halves(nb):
        solution = "    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5   # (..., L_q, L_k)\n"
        _replace_in_cell(nb, "def attention(", solution, halved)

    path = _variant("halves", halves, tmp_path, base=master)
    row = {row.exercise: row for row in grade(path, master, timeout=60)}["attention"]
    assert not row.passed and "your scores are scaled by 0.1768" in row.message, row.message
    namespace: dict = {}
    body = halved + (
        "    if mask is not None:\n"
        "        scores = scores.masked_fill(~mask, float('-inf'))\n"
        "    return scores.softmax(dim=-1) @ v\n"
    )
    exec("import torch\ndef attention(q, k, v, mask=None):\n" + body, namespace)  # noqa: S102
    notebook = bb.exercises.run_check(bb.exercises.EXERCISES["attention"], namespace["attention"])
    assert notebook.localised == "probe" and notebook.message == row.message


@pytest.mark.slow
def test_the_mock_test_is_graded_on_each_student_s_draw_and_summed_up_per_competency(tmp_path):
    """The mock test (made from Test yourself, issue 28 item 4): alice is graded on her ten
    questions alone, answered or not; a wrong answer costs its competency, and competencies.csv
    names the section to revisit; bob's draw is another."""
    from backbones.exercises import VALUE_EXERCISES
    from backbones.exercises.exam import COMPETENCIES, mock_draw
    from backbones.exercises.grader import grade_all
    from backbones.exercises.report import write_reports

    master = ROOT / "chapters" / "11_mock_test.ipynb"
    assert load_notebook(master)["metadata"]["backbones"]["mock_test"]
    student = load_notebook(ROOT / "student" / "11_mock_test.ipynb")
    drawn = mock_draw("alice")
    assert len(drawn) == 10 and drawn != mock_draw("bob")
    assert all(sum(q in group for q in drawn) >= 3 for group in COMPETENCIES.values())
    answers = {name: value for name, value in _answers_for("alice").items() if name in drawn}
    missed = next(q for q in drawn if q in COMPETENCIES["the Vision Transformer"])
    answers[missed] = '"Z"'  # not a right answer to any question
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice-11_mock_test.ipynb").write_text(json.dumps(_set_answers(student, "alice", answers)))
    (folder / "bob-11_mock_test.ipynb").write_text(json.dumps(_set_answers(student, "bob", {})))
    rows = grade_all([folder], root=ROOT, timeout=60)
    alice = {r.exercise: r for r in rows if r.file.startswith("alice")}
    bob = {r.exercise: r for r in rows if r.file.startswith("bob")}
    assert sorted(alice) == sorted(drawn) and sorted(bob) == sorted(mock_draw("bob"))
    assert [q for q, r in alice.items() if not r.passed] == [missed]
    assert all("not answered yet" in r.message for r in bob.values())
    write_reports(rows, tmp_path / "out")
    with open(tmp_path / "out" / "competencies.csv", newline="") as file:
        table = [row for row in csv.DictReader(file) if row["file"].startswith("alice")]
    assert sum(int(row["asked"]) for row in table) == 10
    vit = next(row for row in table if row["competency"] == "the Vision Transformer")
    assert int(vit["passed"]) == int(vit["asked"]) - 1
    assert VALUE_EXERCISES[missed].section in vit["revisit"]
    assert all(row["revisit"] == "" for row in table if row is not vit)


@pytest.mark.slow
def test_grade_one_writes_the_batch_s_rows_and_the_feedback_a_student_reads(tmp_path):
    """grade_one (issue 30, item 2): one submission, one command, one JSON, with the same rows
    and messages as the batch; the batch writes each submission's feedback (item 3), the same
    Markdown the JSON carries."""
    from backbones.exercises.grader import grade_all
    from backbones.exercises.report import feedback_name, write_reports

    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice-01_getting_started.ipynb").write_bytes(MASTER.read_bytes())
    (folder / "bob-01_getting_started.ipynb").write_bytes((ROOT / "student" / MASTER.name).read_bytes())
    batch = grade_all([folder], root=ROOT, timeout=60)
    write_reports(batch, tmp_path / "grades")
    for who in ("alice", "bob"):
        out = tmp_path / f"{who}.json"
        run = subprocess.run(
            [sys.executable, "-m", "backbones.exercises.grade_one", str(folder / f"{who}-01_getting_started.ipynb"),
             "--out", str(out)],
            capture_output=True, text=True, timeout=600, cwd=ROOT,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        result = json.loads(out.read_text())
        rows = [r for r in batch if r.file.startswith(who)]
        assert [(r["exercise"], r["passed"], r["message"]) for r in result["rows"]] == [
            (r.exercise, r.passed, r.message) for r in rows
        ]
        written = (tmp_path / "grades" / "feedback" / feedback_name(rows[0].file)).read_text()
        assert written == result["feedback"].replace(result["file"], rows[0].file)
        assert all(r.message in written for r in rows)
    alice, bob = (json.loads((tmp_path / f"{w}.json").read_text()) for w in ("alice", "bob"))
    assert (alice["passed"], alice["total"]) == (2, 2) and bob["passed"] == 0
    assert "not implemented yet" in bob["feedback"] and "**0 of 2 exercises passed.**" in bob["feedback"]


def _gradescope_results(tmp_path: Path, name: str, submission: bytes | None) -> dict:
    """Lay out Gradescope's folders (source, submission, results), run the bundle's run_autograder
    there, return results.json checked against the format's required fields and types."""
    import zipfile

    from backbones.exercises.gradescope import VISIBILITY, build

    root = tmp_path / name / "autograder"
    (root / "submission").mkdir(parents=True)
    bundle = build(MASTER, tmp_path / name / "autograder.zip", root=ROOT)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
        assert {"setup.sh", "run_autograder", "pyproject.toml", "constraints.txt"} <= set(archive.namelist())
        assert archive.getinfo("run_autograder").external_attr >> 16 & 0o111  # executable
    if submission is not None:
        (root / "submission" / MASTER.name).write_bytes(submission)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((root / "results" / "results.json").read_text())
    assert isinstance(result["score"], (int, float)) and isinstance(result["output"], str)
    assert result["visibility"] in VISIBILITY and isinstance(result["tests"], list)
    for test in result["tests"]:
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"] and test["visibility"] in VISIBILITY
    assert result["score"] == sum(t["score"] for t in result["tests"])
    return result


@pytest.mark.slow
def test_the_gradescope_bundle_grades_honest_wrong_and_hostile_submissions(tmp_path):
    """Issue 30, item 1, tested as far as it can be here: the zip's run_autograder in Gradescope's
    folder layout. An honest notebook scores 2 of 2; the student version 0, each test saying what
    the check says; a hostile one that writes its own results.json is graded, and the grader's
    results.json is what remains; an empty submission gets a results.json that says so."""
    honest = _gradescope_results(tmp_path, "honest", MASTER.read_bytes())
    assert honest["score"] == 2 and [t["name"] for t in honest["tests"]] == ["top_k_accuracy", "cross_entropy"]
    wrong = _gradescope_results(tmp_path, "wrong", (ROOT / "student" / MASTER.name).read_bytes())
    assert wrong["score"] == 0 and all("not implemented yet" in t["output"] for t in wrong["tests"])
    forged = tmp_path / "hostile" / "autograder" / "results" / "results.json"
    hostile_nb = copy.deepcopy(load_notebook(MASTER))
    _replace_in_cell(
        hostile_nb,
        "def top_k_accuracy(",
        "    # BEGIN SOLUTION\n",
        "    # BEGIN SOLUTION\n"
        f"    import json, os; os.makedirs({str(forged.parent)!r}, exist_ok=True)\n"
        f"    open({str(forged)!r}, 'w').write(json.dumps({{'score': 100, 'tests': []}}))\n"
        "    return 1.0\n",
    )
    hostile = _gradescope_results(tmp_path, "hostile", json.dumps(hostile_nb).encode())
    assert hostile["score"] == 1 and hostile["tests"][0]["score"] == 0  # its own forgery is gone
    empty = _gradescope_results(tmp_path, "empty", None)
    assert empty["score"] == 0 and empty["tests"] == [] and "no notebook" in empty["output"]
    # setup.sh's install step, offline: the bundle's source builds the library's wheel, checks and all
    source = tmp_path / "empty" / "autograder" / "source"
    assert "--use-pep517" in (source / "setup.sh").read_text()
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--use-pep517", "--no-build-isolation", "-q", str(source),
         "-w", str(tmp_path / "wheel")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    import zipfile

    (wheel,) = (tmp_path / "wheel").glob("backbones-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "backbones/exercises/grader.py" in names and "backbones/assets/degradation_controls.json" in names


@pytest.mark.slow
def test_a_course_from_an_lms_export_with_a_roster(tmp_path, capsys):
    """Issue 30, item 5: submissions as an LMS exports them (a folder per student, names a student
    mangled), a roster, and students.csv with each student's chapters and competencies; a
    roster without its id column is refused with a clear message, nothing graded."""
    from backbones.exercises.grader import main

    folder = tmp_path / "export"
    for student, name, data in (
        ("alice", "01_getting_started.ipynb", MASTER.read_bytes()),
        ("bob", "01-Getting_Started (1).ipynb", (ROOT / "student" / MASTER.name).read_bytes()),
        ("eve", "01_getting_started.ipynb", MASTER.read_bytes()),
    ):
        (folder / student).mkdir(parents=True)
        (folder / student / name).write_bytes(data)
    carol = _set_answers(load_notebook(ROOT / "student" / TEST_YOURSELF.name), "carol", _answers_for("carol"))
    (folder / "carol-10_test_yourself.ipynb").write_text(json.dumps(carol))
    roster = tmp_path / "roster.csv"
    roster.write_text("Student_ID,Name\nalice,Alice A\nbob,Bob B\ncarol,Carol C\ndave,Dave D\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\nalice,Alice\n")
    with pytest.raises(SystemExit) as refused:
        main([str(folder), "--roster", str(bad), "--out", str(tmp_path / "never")])
    assert refused.value.code == 2 and "needs a student_id column" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    assert main([str(folder), "--roster", str(roster), "--out", str(tmp_path / "grades"), "--timeout", "60"]) == 0
    with open(tmp_path / "grades" / "students.csv", newline="") as file:
        students = {row["student_id"]: row for row in csv.DictReader(file)}
    assert list(students) == ["alice", "bob", "carol", "dave", "eve"]  # the roster's order, then the unknown
    assert (students["alice"]["passed"], students["alice"]["total"]) == ("2", "2")
    assert students["alice"]["chapters"] == "01_getting_started 2/2" and students["alice"]["name"] == "Alice A"
    assert students["bob"]["chapters"] == "01_getting_started 0/2"  # found despite its name
    assert students["carol"]["chapters"] == "10_test_yourself 14/14"
    assert students["carol"]["competencies"] == (
        "vanishing gradients and ResNet 4/4; self-attention and Transformers 5/5; the Vision Transformer 5/5"
    )
    assert students["dave"]["submissions"] == "0" and students["dave"]["on_roster"] == "yes"
    assert students["eve"]["on_roster"] == "no"


@pytest.mark.slow
def test_a_pool_of_graders_gives_the_rows_of_one_grader(tmp_path):
    """--jobs (issue 30, item 4, in part): submissions graded by a pool of spawned grader
    processes, each submission in its own sandboxed children; the rows are those of the
    one-at-a-time batch, in the same order, a hostile submission's included."""
    from backbones.exercises.grader import grade_all

    folder = tmp_path / "submissions"
    folder.mkdir()
    wrong = copy.deepcopy(load_notebook(MASTER))
    _replace_in_cell(wrong, "def top_k_accuracy(", "    # BEGIN SOLUTION\n", "    # BEGIN SOLUTION\n    return 0.5\n")
    hostile = copy.deepcopy(load_notebook(MASTER))
    _replace_in_cell(
        hostile,
        "def top_k_accuracy(",
        "    # BEGIN SOLUTION\n",
        "    # BEGIN SOLUTION\n    import os; [open(f'/tmp/{i}', 'w') for i in range(3)]; os.system('sleep 100 &')\n",
    )
    notebooks = {"a": load_notebook(MASTER), "b": load_notebook(ROOT / "student" / MASTER.name), "c": wrong}
    notebooks["d"] = hostile
    for name, nb in notebooks.items():
        (folder / f"{name}-01_getting_started.ipynb").write_text(json.dumps(nb))
    one = grade_all([folder], root=ROOT, timeout=60)
    pool = grade_all([folder], root=ROOT, timeout=60, jobs=2)
    assert pool == one
    assert [r.passed for r in one if r.file.startswith("a")] == [True, True]
    assert not any(r.passed for r in one if r.file.startswith("b"))


def test_the_library_copy_is_compiled_once_so_no_child_compiles_it(tmp_path):
    """The sandbox binds the library's copy read-only: without a .pyc beside each module, every
    child would compile the whole library at its start (issue 30, item 4)."""
    import importlib.util

    from backbones.exercises.sandbox import library_copy

    target = library_copy(tmp_path)
    modules = sorted(target.rglob("*.py"))
    assert len(modules) > 20
    stale = [m for m in modules if not Path(importlib.util.cache_from_source(m)).is_file()]
    assert not stale, stale
    assert not (target / "backbones" / "exercises" / "grader.py").exists()  # still no solutions in it


def test_the_child_imports_torchvision_and_pyplot_when_they_are_first_used():
    """A submission that imports torchvision and pyplot (as chapter 04's notebook does) no longer
    pays for torch._dynamo, which torchvision's import brings, nor for pyplot's, unless a checked
    function uses them; one that uses them gets the real modules, even when torch is imported
    after them (torch's import looks at every module: that must not start them) (issue 30, item 4)."""
    from backbones.exercises.sandbox import CHILD

    code = (
        f"import sys; sys.path.insert(0, {str(CHILD.parent)!r}); import _child; _child._import_lazily()\n"
        "import torchvision, torch\n"
        "assert 'torch._dynamo' not in sys.modules, 'torchvision ran at its import'\n"
        "block = torchvision.ops.SqueezeExcitation(8, 2)\n"
        "assert 'torch._dynamo' in sys.modules and block(torch.ones(1, 8, 2, 2)).shape == (1, 8, 2, 2)\n"
        "from torchvision.models import resnet18\n"
        "assert resnet18().fc.out_features == 1000\n"
        "import matplotlib.pyplot as plt\n"
        "assert 'matplotlib.figure' not in sys.modules, 'pyplot ran at its import'\n"
        "assert plt.figure().number == 1 and 'matplotlib.figure' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_submission_s_exit_handlers_do_not_run_and_its_results_stand(tmp_path):
    """The child leaves without the interpreter's teardown (about a second, with torch) once its
    last result is written: an ``atexit`` handler the submission registers, here one that would
    hang past the time limit, never runs, so the child ends by itself, and the grade is the
    function's (issue 30, item 4)."""
    from backbones.exercises import grader
    from backbones.exercises.sandbox import library_copy

    def registers_a_hang(nb):
        _replace_in_cell(
            nb,
            "def top_k_accuracy(",
            "    # BEGIN SOLUTION\n",
            "    # BEGIN SOLUTION\n    import atexit, time\n    atexit.register(time.sleep, 600)\n",
        )

    path = _variant("atexit", registers_a_hang, tmp_path)
    reading = grader.read(path, MASTER)
    runs = grader.run_functions(reading, timeout=15, library=library_copy(tmp_path / "lib"))
    assert runs and all(not run.timed_out and run.stopped is None for run in runs.values()), runs
    results = grader.judge(reading, runs, None, timeout=15)
    assert all(result.passed for result in results.values()), results
