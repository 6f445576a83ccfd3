"""Gradescope's autograder for a chapter: the zip Gradescope takes, and what runs inside it.

    python -m backbones.exercises.gradescope build chapters/04_resnet.ipynb --out autograder.zip
    python -m backbones.exercises.gradescope run --root /autograder --master MASTER  # in the container

The zip holds ``setup.sh`` (Gradescope runs it once, as root, on its Ubuntu image: Python, a
virtual environment, bubblewrap, this library at the pinned versions of ``constraints.txt``) and
``run_autograder`` (run for each submission): it grades the notebook in
``/autograder/submission`` with this grader, in its sandbox, against the master in
``/autograder/source``, and writes ``/autograder/results/results.json`` in Gradescope's format: a
test per exercise (``name``, ``score``, ``max_score``, ``output`` = the check's message,
``visibility``), the total, and the student's feedback as the overall ``output``.
``AUTOGRADER_ROOT`` and ``AUTOGRADER_PYTHON`` move the root and the interpreter, so a test can lay
out the same folders anywhere; that is how it is tested here (no Gradescope account).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

from backbones.book import find_root

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image (the autograder's source is unpacked in
# /autograder/source). Python, a virtual environment, bubblewrap for the grader's sandbox, and this
# library at the versions the book is tested with.
set -euo pipefail
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet --upgrade pip
/autograder/venv/bin/pip install --quiet --use-pep517 -c /autograder/source/constraints.txt /autograder/source
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission. AUTOGRADER_ROOT and AUTOGRADER_PYTHON exist for the
# local test that lays out Gradescope's folders elsewhere.
set -euo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
exec "${{AUTOGRADER_PYTHON:-/autograder/venv/bin/python}}" -m backbones.exercises.gradescope run \\
    --root "$root" --master "$root/source/chapters/{master}"
"""

VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")


def build(master: Path, out: Path, root: Path | None = None) -> Path:
    """The autograder zip for ``master``: setup.sh, run_autograder, the library's source
    (pyproject.toml, lib/ without caches, assets/ that it packages), constraints.txt and the
    master notebook."""
    root = root or find_root()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:

        def script(name: str, text: str) -> None:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable, as Gradescope needs them
            bundle.writestr(info, text)

        script("setup.sh", SETUP)
        script("run_autograder", RUN.format(master=master.name))
        for name in ("pyproject.toml", "constraints.txt", "README.md"):
            bundle.write(root / name, name)
        bundle.write(master, f"chapters/{master.name}")
        for path in sorted([*(root / "lib").rglob("*"), *(root / "assets").rglob("*")]):
            if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
                bundle.write(path, str(path.relative_to(root)))
    return out


def results(rows: list, seconds: float) -> dict:
    """Gradescope's results.json for one submission's rows: one test per exercise, one point each."""
    from backbones.exercises.report import feedback

    tests = [
        {
            "name": row.exercise,
            "score": 1.0 if row.passed else 0.0,
            "max_score": 1.0,
            "status": "passed" if row.passed else "failed",
            "output": row.message,
            "visibility": "visible",
        }
        for row in rows
        if row.exercise != "-"
    ]
    return {
        "score": sum(t["score"] for t in tests),
        "execution_time": round(seconds),
        "output": feedback(rows) if rows else "no notebook was found in the submission",
        "output_format": "md",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def run(root: Path, master: Path) -> dict:
    """Grade the submission in ``root/submission`` and write ``root/results/results.json``."""
    from backbones.exercises.grader import grade_all
    from backbones.exercises.report import Row

    start = time.monotonic()
    notebooks = sorted((root / "submission").rglob("*.ipynb"))
    if not notebooks:
        rows = []
    elif len(notebooks) > 1:
        names = ", ".join(p.name for p in notebooks)
        rows = [Row(notebooks[0].name, "-", False, f"hand in one notebook, not {len(notebooks)} ({names})")]
    else:
        rows = grade_all(notebooks, master=master)
    result = results(rows, time.monotonic() - start)
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backbones.exercises.gradescope", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="the autograder zip for a chapter")
    make.add_argument("master", type=Path, help="the chapter's master notebook, chapters/NAME.ipynb")
    make.add_argument("--out", type=Path, default=Path("autograder.zip"))
    grade = commands.add_parser("run", help="inside Gradescope's container: grade and write results.json")
    grade.add_argument("--root", type=Path, default=Path("/autograder"))
    grade.add_argument("--master", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "build":
        if not args.master.is_file():
            parser.error(f"{args.master} is not a master notebook")
        print(f"wrote {build(args.master.resolve(), args.out)}")
        return 0
    result = run(args.root, args.master)
    print(f"score {result['score']:g} of {len(result['tests'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
