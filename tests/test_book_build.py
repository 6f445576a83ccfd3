"""The book build: every chapter executes with zero warnings, and a chapter that raises fails it."""

from __future__ import annotations

import math
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from backbones.book import toc_files

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPHINX_WARNING = re.compile(r"(^|: )(WARNING|ERROR|CRITICAL):", re.MULTILINE)


@pytest.fixture(scope="module")
def build_log(built_html) -> str:
    return ANSI.sub("", (ROOT / "_build" / "build.log").read_text())


@pytest.mark.book
def test_build_succeeded_with_no_warnings(build_log):
    assert "build succeeded" in build_log
    assert SPHINX_WARNING.findall(build_log) == []


@pytest.mark.book
def test_every_notebook_executed(built_html):
    with open(ROOT / "_build" / ".doctrees" / "environment.pickle", "rb") as file:
        env = pickle.load(file)
    notebooks = [name for name in toc_files(ROOT) if (ROOT / f"{name}.ipynb").is_file()]
    assert notebooks, "no chapter in the toc"
    for name in notebooks:
        run = env.nb_metadata[name]["exec_data"]
        assert run["succeeded"], f"{name}: {run['error']}"
        html = (built_html / f"{name}.html").read_text()
        assert html.count('class="cell_output') >= 3, f"{name} shows no outputs"


@pytest.mark.slow
def test_a_chapter_that_raises_fails_the_build(tmp_path):
    """The book's own configuration turns an exception in a chapter into a failed build."""
    for name in ("_config.yml", "references.bib", "references.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext")
    (tmp_path / "intro.md").write_text("# Intro\n\nA scratch book.\n")
    (tmp_path / "chapters").mkdir()
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Broken"),
        nbformat.v4.new_code_cell("raise RuntimeError('this chapter is broken on purpose')"),
    ]
    nbformat.write(notebook, tmp_path / "chapters" / "broken.ipynb")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: chapters/broken\n  - file: references\n"
    )
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(tmp_path), "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode != 0, output[-2000:]
    assert "this chapter is broken on purpose" in output


@pytest.mark.book
def test_chapter_05_offline_says_which_network_ran_not_that_random_weights_were_kept(built_html):
    import html

    text = html.unescape(re.sub(r"<[^>]+>", " ", (built_html / "chapters" / "05_se_efficientnet.html").read_text()))
    assert "ran: EfficientNet-Lite0 only (B0's weights must be downloaded" in text
    assert "random weights kept" not in text


@pytest.mark.book
def test_chapter_04s_landscape_table_is_what_its_text_says(built_html):
    """'four to five orders of magnitude below the plain network's': the printed max losses."""
    import html

    text = html.unescape(re.sub(r"<[^>]+>", " ", (built_html / "chapters" / "04_resnet.html").read_text()))
    rows = dict(re.findall(r"(plain-56|ResNet-56)\s+[\d.]+\s+([\d.e+]+)\s+\d+%", text))
    orders = math.log10(float(rows["plain-56"]) / float(rows["ResNet-56"]))
    assert 4 <= orders <= 5.5, rows


@pytest.mark.book
def test_chapter_07_shows_that_the_heads_do_not_change_the_parameter_count(built_html):
    """The sentence Test yourself's multi-head question rests on, with its control on the page:
    the same layer with 1, 8 and 64 heads has 4d^2 + 4d parameters each time."""
    html = (built_html / "chapters" / "07_attention.html").read_text()
    for heads in (" 1 heads", " 8 heads", "64 heads"):
        assert f"{heads}: 16,640 parameters" in html
    assert "4 * 64**2 + 4 * 64 = 16,640" in html
