"""Record the install time and each chapter's execution time of a clean build.

    .venv/bin/python benchmarks/build_times.py            # install into a fresh venv, then build
    .venv/bin/python benchmarks/build_times.py --no-install
    .venv/bin/python benchmarks/build_times.py --reference     # only this machine's speed figures

The build goes to a temporary folder with an empty execution cache, so every chapter executes;
the per-chapter times are Jupyter Book's own execution report (the data behind the book's
"Build report" page). Results are written to benchmarks/results/build_times.json, with the
machine they were measured on. Budget: the whole book executes in <= 8 minutes on 2 CPU
cores, no chapter over 90 s; the script exits non-zero when a budget is exceeded.

Machines differ 2.5-4x in speed, so the chapter times stand beside two figures of the machine's
own speed (``reference``): the peak of a float32 matrix product (GFLOP/s, the roofline of any
dense work) and the unit of the book's heaviest cell, training steps per second of chapter 04's
ResNet-56 on digits (batch 64). A budget read on another machine scales by the ratio of the
steps per second: run ``--reference`` there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "build_times.json"
BOOK_BUDGET_S = 8 * 60
CHAPTER_BUDGET_S = 90


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "avx512": _has_flag("avx512f"),
    }


def _has_flag(flag: str) -> bool | None:
    try:
        return any(flag in line.split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except OSError:
        return None


def reference_speed() -> dict:
    """This machine's speed, in the two units a chapter's time is made of (see the docstring)."""
    import torch

    import backbones as bb

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(5))
    bb.seed_everything(0)
    images, labels = bb.load_digits().tensors(64)
    model = bb.models.cifar_resnet(56, in_channels=1, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    for _ in range(3):
        step()
    steps = 20
    seconds = _seconds(lambda: [step() for _ in range(steps)])
    return {
        "matmul_gflops": round(2 * 2048**3 / best / 1e9, 1),
        "resnet56_digits_steps_per_second": round(steps / seconds, 2),
        "threads": torch.get_num_threads(),
        "what": "float32 2048x2048 matrix product, best of 5; ResNet-56 (chapter 04's deepest) "
        "training steps on 8x8 digits, batch 64, SGD",
    }


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_install(workdir: Path) -> float:
    """Seconds to create a fresh virtual environment and install the book's pinned set, as the
    Makefile does (uv, installed by pip; no cache)."""
    venv = workdir / "venv"
    python = str(venv / "bin" / "python")
    requirements = ["-r", "requirements.txt", "-r", "requirements-book.txt", "-r", "requirements-test.txt"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-cache-dir", "uv", "-c", "constraints.txt"],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [
            str(venv / "bin" / "uv"),
            "pip",
            "install",
            "--quiet",
            "--no-cache",
            "--compile-bytecode",
            "--python",
            python,
            *requirements,
        ]
        + ["-c", "constraints.txt", "-e", "."],
        cwd=ROOT,
        check=True,
    )
    return time.perf_counter() - start


def time_build(workdir: Path) -> tuple[float, dict[str, float]]:
    """Seconds for a clean `jupyter-book build`, and each notebook's execution time."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    start = time.perf_counter()
    subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(workdir), "-W", "-n", "--keep-going"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    with open(workdir / "_build" / ".doctrees" / "environment.pickle", "rb") as file:
        env = pickle.load(file)
    chapters = {
        name: round(meta["exec_data"]["runtime"], 2)
        for name, meta in sorted(env.nb_metadata.items())
        if meta.get("exec_data")
    }
    return seconds, chapters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-install", action="store_true", help="skip timing a fresh install")
    parser.add_argument("--reference", action="store_true", help="only print this machine's speed figures")
    args = parser.parse_args()
    if args.reference:
        print(json.dumps({"machine": machine(), "reference": reference_speed()}, indent=2))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        install = None if args.no_install else round(time_install(Path(tmp)), 1)
        install_date = datetime.date.today().isoformat()
        if install is None and RESULTS.is_file():  # keep the last measured install time, and its date
            last = json.loads(RESULTS.read_text())
            install, install_date = last.get("install_seconds"), last.get("install_date", last.get("date"))
        build, chapters = time_build(Path(tmp) / "book")
    executed = round(sum(chapters.values()), 2)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "reference": reference_speed(),  # measured before the build, on an idle machine
        "install_seconds": install,
        "install_date": install_date,
        "build_seconds": round(build, 1),
        "execution_seconds_total": executed,
        "chapters_seconds": chapters,
        "budget": {"book_seconds": BOOK_BUDGET_S, "chapter_seconds": CHAPTER_BUDGET_S},
        "within_budget": executed <= BOOK_BUDGET_S and all(t <= CHAPTER_BUDGET_S for t in chapters.values()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
