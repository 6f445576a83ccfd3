"""Record the book's quick build: the numbers its prose describes (assets/quick_build.json).

Executes every chapter that calls ``bb.records.beside`` in the quick profile, as the book build does,
and keeps what each call printed, with the machine, date and commit. Run it after a change that
moves those numbers (the book's tests say when: a page whose number is far from the record's).

    python scripts/record_quick_build.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat

from backbones.records import QUICK_BUILD_ENV, write_record

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    chapters = sorted(p for p in (ROOT / "chapters").glob("*.ipynb") if "records.beside(" in p.read_text())
    with tempfile.TemporaryDirectory() as scratch:
        numbers = Path(scratch) / "numbers.json"
        os.environ[QUICK_BUILD_ENV] = str(numbers)
        os.environ.pop("BACKBONES_PROFILE", None)
        os.environ["BACKBONES_OFFLINE"] = "1"
        for path in chapters:
            print(f"executing {path.name}", flush=True)
            nb = nbformat.read(path, as_version=4)
            nbclient.NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
        recorded = json.loads(numbers.read_text())
    record = write_record(
        ROOT / "assets" / "quick_build.json",
        what="the numbers the chapters' prose describes, from the book's quick build (the quick profile, CPU)",
        settings={"chapters": [p.name for p in chapters]},
        runs=[],
        argv=sys.argv,
    )
    record["numbers"] = recorded
    (ROOT / "assets" / "quick_build.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{len(recorded)} numbers from {len(chapters)} chapters -> assets/quick_build.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
