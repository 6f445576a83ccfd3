"""Make the student notebooks: ``student/*.ipynb`` from the masters ``chapters/*.ipynb`` (and
the mock test's master, ``chapters/11_mock_test.ipynb``, from *Test yourself*'s).

    python -m backbones.exercises.student          # write student/ from chapters/
    python -m backbones.exercises.student --check  # exit 1 when student/ is not fresh

In a master, a solution is the code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (the
markers otter-grader and nbgrader use). In the student version those lines become one
``raise NotImplementedError(...)`` at the same indentation; the signature, docstring and the
rest of the cell stay. Outputs are cleared and the rendered book's ``hide-input`` tag (which
hides the solution behind a toggle) is dropped, so the student sees the stub.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

from backbones.book import MOVED, chapter_notebooks, find_root, load_notebook, moved_notebook, write_notebook
from backbones.exercises.core import BOOK_ID
from backbones.exercises.mock import mock_notebook

MOCK_TEST = "11_mock_test.ipynb"  # made from chapters/10_test_yourself.ipynb (exercises.mock)

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: replace this line with your code.")'


def _answer_stub(region: list[str]) -> str:
    """The stub of a top-level solution (an answer value): ``name = ...`` for the last variable
    it assigns (the answer; the lines before it are the master's working), so that the notebook
    still runs from top to bottom and its check says "not answered yet"."""
    for line in reversed(region):
        match = re.match(r"(\w+)\s*=[^=]", line)
        if match:
            return f"{match.group(1)} = ...  # your answer"
    return "# your answer here"


def strip_solutions(source: str) -> str:
    """Replace every solution region of a cell's source with a stub: ``raise NotImplementedError``
    inside a function, ``name = ...`` at the top level (an answer value)."""
    out, inside, region = [], False, []
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution")
            inside, region = True, []
            indent = line[: len(line) - len(line.lstrip())]
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
            out.append(indent + STUB if indent else _answer_stub(region))
        elif inside:
            region.append(line)
        else:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out)


# A student's notebook starts without an id: its first question stops, saying what to fill in.
STUDENT_ID_CELL = 'STUDENT_ID = ""  # fill in your student id, as a string: your numbers depend on it'


def student_notebook(master: dict) -> dict:
    """The student version of a master notebook (a new dict; the master is not modified)."""
    nb = copy.deepcopy(master)
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if source.startswith(f'STUDENT_ID = "{BOOK_ID}"'):  # the page's id; a student starts with none
                cell["source"] = [STUDENT_ID_CELL]
            if BEGIN in source:
                lines = strip_solutions(source).split("\n")
                cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
                tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != "hide-input"]
                if tags:
                    cell["metadata"]["tags"] = tags
                else:
                    cell.get("metadata", {}).pop("tags", None)
    return nb


def generate(root: Path) -> dict[Path, dict]:
    """``{student path: notebook}`` for every master that has exercises, and the pointers left at
    the moved chapters' old names (``chapters/`` and ``student/``)."""
    out = {}
    for old in MOVED:
        out[root / "chapters" / f"{old}.ipynb"] = moved_notebook(root, old, "chapters")
        out[root / "student" / f"{old}.ipynb"] = moved_notebook(root, old, "student")
    masters = {path: load_notebook(path) for path in chapter_notebooks(root) if path.name != MOCK_TEST}
    test_yourself = root / "chapters" / "10_test_yourself.ipynb"
    if test_yourself in masters:  # the mock test's master is made from it, then treated as any master
        masters[root / "chapters" / MOCK_TEST] = out[root / "chapters" / MOCK_TEST] = mock_notebook(
            masters[test_yourself]
        )
    for master_path, master in masters.items():
        if any(BEGIN in "".join(c["source"]) for c in master["cells"] if c["cell_type"] == "code"):
            out[root / "student" / master_path.name] = student_notebook(master)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbones.exercises.student", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that student/ is fresh")
    args = parser.parse_args(argv)
    root = find_root()
    stale = 0
    for path, nb in generate(root).items():
        if args.check:
            if not path.is_file() or load_notebook(path) != nb:
                print(f"{path.relative_to(root)} is stale: run python -m backbones.exercises.student")
                stale += 1
        else:
            path.parent.mkdir(exist_ok=True)
            write_notebook(nb, path)
            print(f"wrote {path.relative_to(root)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
