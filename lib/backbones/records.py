"""Files the book ships in ``assets/``: diagrams and recorded runs (what does not fit a chapter's
time budget live, run once with the command, machine and date kept beside the numbers).

In a checkout they are read from ``assets/``; an install from git (Colab) carries them inside the
package as ``backbones/assets/`` (pyproject.toml maps the folder).
"""
from __future__ import annotations

import json
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def asset_path(name: str) -> Path:
    """The path of ``assets/NAME``, in a checkout or in the installed package."""
    for folder in (_HERE / "assets", _HERE.parents[1] / "assets"):  # installed wheel; a checkout (lib/backbones)
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"assets/{name} is not in this installation of backbones "
                            f"(looked in {_HERE / 'assets'} and {_HERE.parents[1] / 'assets'})")


def load_record(name: str) -> dict:
    """A recorded run, ``assets/NAME.json``: its numbers with ``command``, ``machine`` and ``date``."""
    record = json.loads(asset_path(f"{name}.json").read_text(encoding="utf-8"))
    missing = {"command", "machine", "date"} - set(record)
    if missing:
        raise ValueError(f"assets/{name}.json says nothing of {sorted(missing)}: a record must say how it was made")
    return record


def provenance(record: dict) -> str:
    """One line saying how a record was made, for the page."""
    machine = record["machine"]
    return (f"recorded {record['date']} on {machine.get('processor', '?')} ({machine.get('cores', '?')} "
            f"cores, torch {machine.get('torch', '?')})\nwith: {record['command']}")
