"""The mock test's master, made from *Test yourself* so that the two cannot drift apart:
``chapters/11_mock_test.ipynb`` is written by ``python -m backbones.exercises.student`` (and
checked fresh by its ``--check``). Same questions, figures and solutions; no explanations (a test
is not a lesson); a cell that draws this student's questions (``bb.exercises.mock_test``); the
notebook's metadata marks it, so the grader grades each student on their draw alone and sums it
up per competency (``competencies.csv``)."""

from __future__ import annotations

import copy
import json
import re

from backbones.exercises.exam import COMPETENCIES, MOCK_MINUTES, MOCK_SIZE

CHECK = re.compile(r"bb\.exercises\.check_(\w+)\(STUDENT_ID")
QUESTION = re.compile(r"^### Question (\d+): (.*)$", re.M)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def _markdown(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _lines(text)}


INTRO = f"""# Mock test

A short test drawn from *Test yourself*'s questions: {MOCK_SIZE} of them, as evenly spread over the
lecture's three competencies ({", ".join(f"**{c}**" for c in COMPETENCIES)}) as ten allows, a
different set for each `STUDENT_ID`. Give yourself {MOCK_MINUTES} minutes, without the chapters.

- Set `STUDENT_ID`, run the cell below it: it lists the questions of **your** test and the time
  to stop. Answer those (each question gives the name the list uses); skip the others.
- The grader grades your questions alone and sums them up per competency ("the Vision
  Transformer 4/4, self-attention and Transformers 2/3"), with the sections to revisit for what
  you missed.
- The page you are reading is the draw of the book's own id, `"instructor"`, its solutions behind
  the toggles. For the explanation of every option, see *Test yourself*."""

HAND_IN = """## Handing it in

Save the notebook with your `STUDENT_ID` and your answers and hand in the `.ipynb` file, or see what
the grader will say: `python -m backbones.exercises.grader my-11_mock_test.ipynb --out grades/`
(`grades/competencies.csv` holds the summary per competency)."""


def mock_notebook(test_yourself: dict) -> dict:
    """The mock test's master, from the *Test yourself* master (a new dict)."""
    nb = copy.deepcopy(test_yourself)
    cells = nb["cells"]
    start = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("STUDENT_ID ="))
    out = [_markdown(INTRO, "mock-intro"), *cells[1 : start + 1]]
    out.append(
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "mock-draw",
            "metadata": {},
            "outputs": [],
            "source": _lines("drawn = bb.exercises.mock_test(STUDENT_ID)"),
        }
    )
    rest = cells[start + 1 :]
    for i, cell in enumerate(rest):
        text = "".join(cell["source"])
        if text.startswith("## Handing it in"):
            break
        if cell["cell_type"] == "code" and "bb.exercises.explain(" in text:
            continue  # the explanations stay in Test yourself
        if cell["cell_type"] == "markdown" and QUESTION.search(text):
            name = next(m.group(1) for c in rest[i:] if (m := CHECK.search("".join(c["source"]))))
            text = QUESTION.sub(lambda m: f"{m.group(0)}\n\nIn your test's list: `{name}`.", text, count=1)
            cell = {**cell, "source": _lines(text)}
        out.append(cell)
    out.append(_markdown(HAND_IN, "mock-hand-in"))
    # the figures' labels are the book's: give the copies their own
    text = json.dumps(out).replace("test-degradation", "mock-degradation").replace("test-gradient", "mock-gradient")
    nb["cells"] = [
        {**c, "id": f"mock-{c['id']}"} if "id" in c and not c["id"].startswith("mock-") else c for c in json.loads(text)
    ]
    nb.setdefault("metadata", {})["backbones"] = {"mock_test": True}
    return nb
