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
    raise FileNotFoundError(
        f"assets/{name} is not in this installation of backbones "
        f"(looked in {_HERE / 'assets'} and {_HERE.parents[1] / 'assets'})"
    )


def load_record(name: str) -> dict:
    """A recorded run, ``assets/NAME.json``: its numbers with ``command``, ``machine`` and ``date``."""
    record = json.loads(asset_path(f"{name}.json").read_text(encoding="utf-8"))
    missing = {"command", "machine", "date"} - set(record)
    if missing:
        raise ValueError(f"assets/{name}.json says nothing of {sorted(missing)}: a record must say how it was made")
    return record


# The book's repository (as _config.yml says; a test holds the two equal): a record's script is
# linked there, for a reader in Colab, where no checkout holds it.
REPOSITORY = "https://github.com/backbones-book/backbones"
BRANCH = "main"


def provenance(record: dict) -> str:
    """How a record was made, for the page: when, on what, and the command, with its script linked
    in the book's repository."""
    machine = record["machine"]
    line = (
        f"recorded {record['date']} on {machine.get('processor', '?')} ({machine.get('cores', '?')} "
        f"cores, torch {machine.get('torch', '?')})\nwith: {record['command']}"
    )
    script = next((w for w in record["command"].split() if w.endswith(".py")), None)
    return f"{line}\n({REPOSITORY}/blob/{BRANCH}/{script})" if script else line


def machine() -> dict:
    """What a record says of the machine that made it: processor, cores, torch, Python."""
    import os
    import platform

    import torch

    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:  # Linux: the CPU's model name
            processor = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "processor": processor,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def write_record(path: Path, *, what: str, settings: dict, runs: list, argv: list[str]) -> dict:
    """Write a recorded run to ``path`` with the command, machine, date and commit that made it."""
    import subprocess
    from datetime import date

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=path.parent).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    record = {
        "what": what,
        "command": "python " + " ".join([Path(argv[0]).as_posix(), *argv[1:]]),
        "settings": settings,
        "machine": machine(),
        "date": date.today().isoformat(),
        "commit": commit,
        "runs": runs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


# The book's quick build: the numbers its prose describes, recorded once (assets/quick_build.json,
# made by scripts/record_quick_build.py) so that a reader whose run differs (a GPU profile, another
# machine) sees both side by side instead of a text that contradicts the output above it.
QUICK_BUILD = "quick_build"
QUICK_BUILD_ENV = "BACKBONES_RECORD_QUICK_BUILD"  # a JSON file: the quick build writes its numbers there


def quick_build() -> dict:
    """The book's quick-build numbers, ``{key: {"value": ..., "data": ...}}``."""
    try:
        return load_record(QUICK_BUILD)["numbers"]
    except FileNotFoundError:
        return {}


def beside(key: str, yours: float, *, fmt: str = "{:.1%}", data: str = "", within: float = 0.25) -> None:
    """Print this run's number next to the book's quick build's (the run the prose describes).

    In the quick profile a number more than ``within`` (relative) away from the book's says so:
    the text may no longer describe it. With ``BACKBONES_RECORD_QUICK_BUILD=FILE`` the quick
    profile also writes its number to FILE (scripts/record_quick_build.py)."""
    import math
    import os

    from backbones.runtime import get_profile

    yours = float(yours)
    profile = get_profile()
    run = f"profile {profile.name}" + (f", {data}" if data else "") + (", a rehearsal" if profile.rehearsal else "")
    line = f"{key}: {fmt.format(yours)} in this run ({run})"
    book = quick_build().get(key)
    if book is None:
        line += "; the book's quick build has no such number"
    else:
        line += f"; the book's quick build: {fmt.format(book['value'])}"
        if book.get("data") and book["data"] != data:
            line += f" ({book['data']})"
        far = abs(yours - book["value"]) > within * max(abs(book["value"]), 1e-12)
        if profile.quick and not profile.rehearsal and (far or math.isnan(yours)):
            line += f"\n  (more than {within:.0%} from the book's quick build: the text may describe another run)"
    print(line)
    target = os.environ.get(QUICK_BUILD_ENV)
    if target and profile.quick and not profile.rehearsal:
        path = Path(target)
        numbers = json.loads(path.read_text()) if path.is_file() else {}
        numbers[key] = {"value": yours, "data": data}
        path.write_text(json.dumps(numbers, indent=1) + "\n")
