"""The masters as committed: no outputs, the Colab setup cell first, listed in the toc; and
the set-up files that make the book reproducible."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from backbones.book import chapter_notebooks, notebook_problems, setup_cell_source, toc_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", chapter_notebooks(ROOT), ids=lambda p: p.stem)
def test_master_notebook_is_clean(path):
    assert notebook_problems(path, ROOT) == []


def test_every_toc_entry_exists():
    for name in toc_files(ROOT):
        assert any((ROOT / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")), name


def test_setup_cell_installs_from_the_configured_repository():
    source = setup_cell_source(ROOT)
    assert "git+https://github.com/backbones-book/backbones@main" in source
    assert source.startswith("# Colab setup") and "except ImportError" in source


@pytest.fixture
def scratch_book(tmp_path):
    """A copy of the book's configuration with one chapter, to break on purpose."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "chapters").mkdir()
    chapter = chapter_notebooks(ROOT)[0]
    shutil.copy(chapter, tmp_path / "chapters" / chapter.name)
    return tmp_path / "chapters" / chapter.name


def _edit(path: Path, change) -> None:
    nb = json.loads(path.read_text())
    change(nb)
    path.write_text(json.dumps(nb))


def test_a_notebook_committed_with_outputs_is_caught(scratch_book):
    assert notebook_problems(scratch_book, scratch_book.parents[1]) == []

    def add_output(nb):
        cell = [c for c in nb["cells"] if c["cell_type"] == "code"][1]
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
        cell["execution_count"] = 2

    _edit(scratch_book, add_output)
    problems = notebook_problems(scratch_book, scratch_book.parents[1])
    assert any("committed with outputs" in p for p in problems)
    assert any("execution counts" in p for p in problems)


def test_a_chapter_without_the_setup_cell_is_caught(scratch_book):
    _edit(scratch_book, lambda nb: nb["cells"].remove([c for c in nb["cells"] if c["cell_type"] == "code"][0]))
    assert any("not the Colab setup cell" in p for p in notebook_problems(scratch_book, scratch_book.parents[1]))


def test_a_chapter_missing_from_the_toc_is_caught(scratch_book):
    renamed = scratch_book.with_name("99_unlisted.ipynb")
    scratch_book.rename(renamed)
    assert any("not listed in _toc.yml" in p for p in notebook_problems(renamed, renamed.parents[1]))


def _requirements(path: Path) -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {Requirement(line).name.lower(): Requirement(line) for line in lines if line}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_library_dependencies_match_requirements():
    """requirements.txt (what a reader installs) is exactly the library's dependencies, same ranges,
    and holds none of the book-building tools (which downgrade Colab's Sphinx and markdown-it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = _requirements(ROOT / "requirements.txt")
    dependencies = {Requirement(line).name.lower(): Requirement(line) for line in project["dependencies"]}
    assert requirements.keys() == dependencies.keys()
    for name, dep in dependencies.items():
        assert requirements[name].specifier == dep.specifier, name


def test_constraints_pin_the_tested_versions_inside_the_ranges():
    pins = _pins(ROOT / "constraints.txt")
    assert pins["torch"].startswith("2.14.") and pins["torchvision"].startswith("0.29.")
    assert pins["jupyter-book"] == "1.0.4.post1"
    for name in ("requirements.txt", "requirements-book.txt", "requirements-test.txt"):
        for dep_name, dep in _requirements(ROOT / name).items():
            assert dep_name in pins, f"{dep_name} is not pinned in constraints.txt"
            assert dep.specifier.contains(pins[dep_name], prereleases=True), f"{dep_name}=={pins[dep_name]} vs {dep}"
    assert (
        Requirement("jupyter-book>=1.0,<2").specifier
        == _requirements(ROOT / "requirements-book.txt")["jupyter-book"].specifier
    )


def test_ci_runs_exactly_the_readme_test_command():
    run = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert run[-1] == "make test"
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


# Words that may stand before "chapter" without naming another chapter ("this chapter", "every
# chapter"); anything else ("the ResNet chapter", "the next chapter") must be a {doc} link, so
# that the nitpicky build fails when the chapter it names does not exist.
_GENERIC = {
    "this",
    "the",
    "each",
    "every",
    "a",
    "later",
    "other",
    "its",
    "whole",
    "same",
    "one",
    "first",
    "of",
    "that",
    "which",
    "our",
    "your",
    "any",
    "their",
}


def _prose(path: Path) -> str:
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", [ROOT / "intro.md", *chapter_notebooks(ROOT)], ids=lambda p: p.stem)
def test_other_chapters_are_named_by_real_links(path):
    text = _prose(path)
    loose = [
        m.group(0)
        for m in re.finditer(r"([\w'-]+)\s+chapters?\b", text)
        if m.group(1).lower().removesuffix("'s") not in _GENERIC
    ]
    loose += [m.group(0) for m in re.finditer(r"\b(?:next|previous|following)\s+chapter", text, re.IGNORECASE)]
    assert loose == [], f"name other chapters with {{doc}} links, not in words: {loose}"
    for target in re.findall(r"\{doc\}`([^`<]+)`", text):  # and every link points at a chapter in the toc
        resolved = (path.parent / target).resolve().relative_to(ROOT).as_posix()
        assert resolved in toc_files(ROOT), f"{target} is not a chapter of the book"


def test_the_package_list_names_every_library_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {
        p.parent.relative_to(ROOT / "lib").as_posix().replace("/", ".") for p in (ROOT / "lib").rglob("__init__.py")
    }
    assert found | {"backbones.assets"} == set(packages)


@pytest.mark.slow
def test_assets_ship_inside_the_package(tmp_path):
    """An install from git (Colab) has no checkout: the recorded runs must travel in the wheel."""
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for folder in ("lib", "assets"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("backbones-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in (ROOT / "assets").rglob("*"):
        if asset.suffix in (".json", ".svg"):
            assert f"backbones/assets/{asset.relative_to(ROOT / 'assets').as_posix()}" in names


def test_a_record_must_say_how_it_was_made(tmp_path, monkeypatch):
    import backbones.records as records

    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "bare.json").write_text('{"runs": []}')
    monkeypatch.setattr(records, "_HERE", tmp_path / "lib" / "backbones")
    with pytest.raises(ValueError, match="must say how it was made"):
        records.load_record("bare")
    with pytest.raises(FileNotFoundError, match="assets/missing.json is not in this installation"):
        records.load_record("missing")


def test_diagrams_are_what_the_script_draws(tmp_path):
    """assets/*.svg are generated: a hand edit, or a script change not re-run, is caught."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_diagrams.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    drawn = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert drawn and drawn == sorted(p.name for p in (ROOT / "assets").glob("*.svg"))
    for name in drawn:
        assert (tmp_path / name).read_text() == (ROOT / "assets" / name).read_text(), name


def test_show_source_and_show_diagram_come_from_the_library():
    import backbones as bb

    code = bb.show_source(bb.models.BasicBlock, start="def forward")
    assert code.data.startswith("def forward(self, x: torch.Tensor)") and "out = out + identity" in code.data
    shown = bb.show_source(bb.layers.MultiHeadAttention, start="def forward", stop="@classmethod").data
    assert "from_torch" not in shown and shown.rstrip().endswith("return (out, weights) if return_weights else out")
    with pytest.raises(ValueError, match="is not in the source"):
        bb.show_source(bb.models.BasicBlock, start="def backward")
    svg = bb.show_diagram("residual_block").data
    assert svg.lstrip().startswith("<svg") and "<title>" in svg


def test_a_code_line_too_wide_for_the_page_is_caught(scratch_book):
    def widen(nb):
        cell = [c for c in nb["cells"] if c["cell_type"] == "code"][1]
        cell["source"] = ["x = 1  # " + "a" * 100]

    _edit(scratch_book, widen)
    assert any("over 88 characters" in p for p in notebook_problems(scratch_book, scratch_book.parents[1]))


def _shown_calls() -> list[tuple[str, dict]]:
    """Every bb.show_source(...) call of the chapters, with the names it can read."""
    import ast

    import backbones

    calls = []
    for path in chapter_notebooks(ROOT):
        # bb, and what the chapter imports from the library (from backbones.models import vit)
        namespace = {"bb": backbones}
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code":
                continue
            try:
                tree = ast.parse(source)
            except SyntaxError:  # the setup cell's %pip: IPython, not Python
                continue
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backbones"):
                    exec(ast.unparse(node), namespace)  # noqa: S102 - the book's own chapters
            if "bb.show_source(" in source:
                calls += [
                    (ast.unparse(node), namespace)
                    for node in ast.walk(tree)
                    if isinstance(node, ast.Call) and ast.unparse(node.func) == "bb.show_source"
                ]
    assert len(calls) >= 8
    return calls


def test_library_source_shown_on_a_page_fits_it():
    """Every bb.show_source(...) call of a chapter shows lines within the page's code width."""
    from backbones.book import CODE_WIDTH

    for call, namespace in _shown_calls():
        code = eval(call, namespace)  # noqa: S307 - the book's own chapters
        wide = [line for line in code.data.splitlines() if len(line) > CODE_WIDTH]
        assert wide == [], f"{call} shows lines wider than the page: {wide}"


def test_library_source_shown_on_a_page_is_laid_out_by_hand():
    """The formatter never rewrites a page: each object a chapter shows sits between
    ``# fmt: off`` and ``# fmt: on`` (its aligned comments and line breaks are the author's)."""
    import ast
    import inspect

    loose = []
    for call, namespace in _shown_calls():
        shown = eval(ast.unparse(ast.parse(call).body[0].value.args[0]), namespace)  # noqa: S307
        shown = inspect.unwrap(shown)  # torch.no_grad's wrapper: the function itself
        lines, first = inspect.getsourcelines(shown)
        source = Path(inspect.getsourcefile(shown)).read_text().splitlines()
        marks = ("# fmt: off", "# fmt: on")
        before = [line.strip() for line in source[: first - 1] if line.strip() in marks]
        after = [line.strip() for line in source[first - 1 + len(lines) :] if line.strip() in marks]
        if before[-1:] != ["# fmt: off"] or after[:1] != ["# fmt: on"]:
            loose.append(f"{shown.__qualname__} ({Path(inspect.getsourcefile(shown)).name}:{first})")
    assert loose == [], f"shown on a page but left to the formatter: {sorted(set(loose))}"


def test_a_solution_shown_on_the_page_is_caught(scratch_book):
    """A master's solution cell must be behind a toggle on the rendered page (tag hide-input)."""
    from backbones.book import HIDDEN, SOLUTION
    from backbones.exercises.student import BEGIN

    assert SOLUTION == BEGIN

    def show_a_solution(nb):
        cell = next(c for c in nb["cells"] if SOLUTION in "".join(c["source"]))
        cell["metadata"]["tags"].remove(HIDDEN)

    _edit(scratch_book, show_a_solution)
    assert any("shows it on the page" in p for p in notebook_problems(scratch_book, scratch_book.parents[1]))


@pytest.mark.parametrize("path", chapter_notebooks(ROOT), ids=lambda p: p.name)
def test_numbered_sections_follow_each_other(path):
    """A chapter's numbered sections ("## 1. ...", "## 2. ...") count up by one from 1."""
    numbers = [
        int(match.group(1))
        for cell in json.loads(path.read_text())["cells"]
        if cell["cell_type"] == "markdown"
        for match in re.finditer(r"^## (\d+)\. ", "".join(cell["source"]), re.MULTILINE)
    ]
    assert numbers == list(range(1, len(numbers) + 1)), numbers


def test_a_records_script_is_linked_in_the_books_repository(tmp_path):
    """A reader in Colab has no checkout: the script that made a record is a link (issue 29, item 7)."""
    from backbones import records
    from backbones.book import repository

    assert (records.REPOSITORY, records.BRANCH) == repository(ROOT)
    line = records.provenance(records.load_record("vit_runs"))
    script = re.search(r"/blob/main/(\S+)\)$", line).group(1)
    assert (ROOT / script).is_file() and line.endswith(f"{records.REPOSITORY}/blob/main/{script})")
