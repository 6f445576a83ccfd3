"""Tools for the book itself: its configuration, the Colab setup cell, notebook hygiene.

Used by the tests and by authors::

    python -m backbones.book check        # every chapter: no outputs, setup cell first, in the toc
    python -m backbones.book strip FILE…  # clear outputs and execution counts before a commit
    python -m backbones.book setup-cell   # print the canonical Colab setup cell
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SETUP_TAG = "remove-cell"  # the setup cell is plumbing: hidden in the rendered book
# The longest code line that fits a code box of the rendered book at a 1280-pixel-wide window
# (with _static/backbones.css); the browser tests check the same on the built pages.
CODE_WIDTH = 88


def find_root(start: Path | None = None) -> Path:
    """The book's root: the nearest folder upwards holding ``_config.yml`` and ``_toc.yml``, else
    the checkout this library is installed from (``pip install -e .``)."""
    start = Path(start or Path.cwd()).resolve()
    installed_from = Path(__file__).resolve().parents[2]  # lib/backbones/book.py in a checkout
    for folder in (start, *start.parents, installed_from):
        if (folder / "_config.yml").is_file() and (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(f"no _config.yml and _toc.yml in {start} or above: run this inside the book")


def read_yaml(path: Path) -> dict:
    import yaml  # arrives with jupyter-book

    with open(path, encoding="utf-8") as file:
        return yaml.safe_load(file) or {}


def repository(root: Path) -> tuple[str, str]:
    """``(url, branch)`` of the repository, from ``_config.yml`` (the one place it is set)."""
    repo = read_yaml(root / "_config.yml").get("repository", {})
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def setup_cell_source(root: Path) -> str:
    """The first code cell of every chapter: in Colab it installs ``backbones`` when missing.

    The library's dependencies are everything a chapter imports (a test holds that), given as
    ranges that accept what Colab already has, so the install adds packages and replaces none of
    Colab's. The cell checks its own result: a failed install stops here, with a message, rather
    than at the next cell's ``import``.
    """
    url, branch = repository(root)
    return (
        "# Colab setup: install the book's library `backbones` (and all that the chapters\n"
        "# import) when it is missing. Locally `make book` or `pip install -e .` did it already.\n"
        "try:\n"
        "    import backbones\n"
        "except ImportError:\n"
        '    print("Installing the book\'s library and what the chapters need that Colab lacks "\n'
        '          "(bertviz, gensim, the offline data and models): about 220 MB, a minute or two.")\n'
        f'    %pip install --quiet "backbones @ git+{url}@{branch}"\n'
        "    try:\n"
        "        import backbones\n"
        "    except ImportError as error:\n"
        "        raise RuntimeError(\"installing the book's library failed: read pip's \"\n"
        '                           "messages above, check that the runtime is online, "\n'
        '                           "then run this cell again") from error\n'
        '    print(f"installed backbones {backbones.__version__}: no restart is needed "\n'
        '          "(pip\'s note above is for packages imported before the install)")'
    )


def toc_files(root: Path) -> list[str]:
    """Every file listed in ``_toc.yml``, root first, without extension, in reading order."""
    toc = read_yaml(root / "_toc.yml")
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key, []))

    walk([toc])
    return files


# Chapters renamed when the book grew (old name -> new): links shared before, in Colab or in a
# course page, open a short notebook at the old path that points to the new one, and the grader
# accepts a submission named after either.
MOVED = {"05_attention": "07_attention", "06_transformer": "08_transformer"}


def chapter_notebooks(root: Path) -> list[Path]:
    """The master notebooks: ``chapters/*.ipynb``, without the pointers left at moved names."""
    return sorted(p for p in (root / "chapters").glob("*.ipynb") if p.stem not in MOVED)


def moved_notebook(root: Path, old: str, folder: str = "chapters") -> dict:
    """The notebook left at ``folder/old.ipynb``: one cell with a link to the chapter's new place."""
    url, branch = repository(root)
    new = MOVED[old]
    path = f"{folder}/{new}.ipynb"
    colab = f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{branch}/{path}"
    text = (
        f"# This chapter has moved\n\n`{old}` is now **`{new}`**: the book gained chapters before it.\n\n"
        f"- Open it in Colab: [{new}]({colab})\n- In a checkout: `{path}`\n\n"
        f"A notebook you saved under the old name is still graded as `{new}`."
    )
    lines = text.split("\n")
    return {
        "cells": [
            {
                "cell_type": "markdown",
                "id": f"moved-{old}",
                "metadata": {},
                "source": [line + "\n" for line in lines[:-1]] + [lines[-1]],
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def load_notebook(path: Path) -> dict:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


SOLUTION = "# BEGIN SOLUTION"  # exercises.student.BEGIN: a master's solution starts here
HIDDEN = "hide-input"  # what puts a cell's code behind a toggle on the rendered page


def notebook_problems(path: Path, root: Path) -> list[str]:
    """What is wrong with a master notebook as committed (an empty list when nothing is)."""
    nb = load_notebook(path)
    problems = []
    code_cells = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    for number, cell in enumerate(code_cells, start=1):
        if cell.get("outputs"):
            problems.append(
                f"code cell {number} is committed with outputs: clear them (python -m backbones.book strip {path.name})"
            )
            break
    if any(cell.get("execution_count") is not None for cell in code_cells):
        problems.append("code cells carry execution counts: strip the notebook before committing")
    if not code_cells or "".join(code_cells[0]["source"]) != setup_cell_source(root):
        problems.append("the first code cell is not the Colab setup cell (python -m backbones.book setup-cell)")
    elif SETUP_TAG not in code_cells[0].get("metadata", {}).get("tags", []):
        problems.append(f"the Colab setup cell is not tagged {SETUP_TAG!r}")
    for number, cell in enumerate(code_cells, start=1):
        if SOLUTION in "".join(cell["source"]) and HIDDEN not in cell.get("metadata", {}).get("tags", []):
            problems.append(
                f"code cell {number} holds an exercise's solution but shows it on the page: tag it "
                f"{HIDDEN!r} (the rendered book opens it from a toggle)"
            )
    for number, cell in enumerate(code_cells, start=1):
        if SETUP_TAG in cell.get("metadata", {}).get("tags", []):
            continue  # not on the page
        long = [line for line in "".join(cell["source"]).splitlines() if len(line) > CODE_WIDTH]
        if long:
            problems.append(
                f"code cell {number} has {len(long)} line(s) over {CODE_WIDTH} characters, cut "
                f"on the page: {long[0][:60]!r}..."
            )
    listed = path.relative_to(root).with_suffix("").as_posix()
    if listed not in toc_files(root):
        problems.append(f"{listed} is not listed in _toc.yml")
    return problems


def strip_outputs(path: Path) -> None:
    """Clear outputs and execution counts of every code cell, in place."""
    nb = load_notebook(path)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    write_notebook(nb, path)


def write_notebook(nb: dict, path: Path) -> None:
    """Write a notebook as Jupyter does (1-space indent, trailing newline) for small diffs."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(nb, file, indent=1, ensure_ascii=False)
        file.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbones.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check every master notebook")
    strip = sub.add_parser("strip", help="clear outputs of notebooks in place")
    strip.add_argument("notebooks", nargs="+", type=Path)
    sub.add_parser("setup-cell", help="print the canonical Colab setup cell")
    args = parser.parse_args(argv)
    root = find_root()
    if args.command == "setup-cell":
        print(setup_cell_source(root))
        return 0
    if args.command == "strip":
        for path in args.notebooks:
            strip_outputs(path)
            print(f"stripped {path}")
        return 0
    failed = 0
    for path in chapter_notebooks(root):
        for problem in notebook_problems(path, root):
            print(f"{path.relative_to(root)}: {problem}")
            failed += 1
    print("all chapters are clean" if not failed else f"{failed} problem(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
