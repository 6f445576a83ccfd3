"""The benchmark scripts run: the GPU script in its CPU dry mode (the real run needs a lent GPU)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backbones.book import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_profile_script_runs_dry_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_profile.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_profile.py"), "--dry", "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    record = json.loads(out.read_text())
    assert record["dry"] is True and record["device"] == "cpu"
    assert "not CIFAR-10" in record["data"] and record["machine"]["cores"] >= 1
    assert set(record["degradation"]["per_network"]) == {"plain-20", "plain-56", "ResNet-20", "ResNet-56"}
    for name in ("plain-56", "ResNet-56"):
        landscape = record["landscape"][name]
        assert landscape["points_measured"] == 9 and landscape["extrapolated"] is False
        assert landscape["seconds_for_grid"] > 0


@pytest.mark.slow
def test_build_times_reports_the_machines_speed_beside_the_chapter_times():
    """The reference figures a budget is read against on another machine."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "build_times.py"), "--reference"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    record = json.loads(run.stdout)
    assert record["reference"]["matmul_gflops"] > 1 and record["reference"]["resnet56_digits_steps_per_second"] > 0.1
    assert record["machine"]["avx512"] in (True, False, None)
    recorded = json.loads((ROOT / "benchmarks" / "results" / "build_times.json").read_text())
    assert recorded["reference"]["resnet56_digits_steps_per_second"] > 0  # the chapter times have their machine's
    assert {Path(name).name for name in recorded["chapters_seconds"]} == {p.stem for p in chapter_notebooks(ROOT)}


def test_the_grading_record_measures_the_pool_against_the_grader_before_it_in_one_run():
    """Issue 30, item 4: three batches of the same 100 submissions in one run, the first the grader
    of the commit before the trims, taken from git; the pool at least three times its throughput;
    and the parts of one submission add up to the whole."""
    record = json.loads((ROOT / "benchmarks" / "results" / "grading_speed.json").read_text())
    batches = record["batches"]
    assert list(batches) == ["before (one at a time)", "trimmed, one at a time", "trimmed, a pool of 2"]
    assert "100 honest submissions of chapter 04" in record["what"] and record["machine"]["cores"] == 2
    before = batches["before (one at a time)"]["seconds"]
    for batch in batches.values():
        assert batch["speedup"] == pytest.approx(before / batch["seconds"], abs=0.01)
    assert batches["trimmed, a pool of 2"]["speedup"] >= record["target_speedup"] == 3.0
    assert re.fullmatch(r"[0-9a-f]{7,40}", record["before"].split()[1].rstrip(":"))  # the baseline's commit
    parts = record["one_submission_seconds"]
    assert parts["start"] + parts["cases"] + parts["exit"] == pytest.approx(parts["child"], abs=0.02)
    assert parts["child"] + parts["grader"] == pytest.approx(parts["total"], abs=0.02)


def test_the_exploration_record_weighs_every_chapter_s_explorations_against_its_other_cells():
    """Issue 31: each chapter 01-09 executed as the book build executes it; its exploration cells'
    time against its other cells', from the same execution; the growth within 10%."""
    record = json.loads((ROOT / "benchmarks" / "results" / "exploration_cost.json").read_text())
    rows = {row["chapter"][:2]: row for row in record["chapters"]}
    assert sorted(rows) == [f"0{k}" for k in range(1, 10)]
    for row in rows.values():
        assert row["growth"] == pytest.approx(row["explorations_s"] / row["other_cells_s"], abs=1e-3)
        assert [row["explorations_s"], row["other_cells_s"]] in row["runs"]
        assert row["other_cells_s"] > 3 and row["explorations_s"] > 0  # the chapter ran, and so did they
    assert record["within_budget"] == all(row["growth"] <= 0.10 for row in rows.values())
    assert record["within_budget"], {k: row["growth"] for k, row in rows.items()}
