"""The book's quick build beside a reader's run (issue 29, item 5): a passage that describes the
quick build's numbers names that run, and the cell above it prints the reader's number next to
the book's, so that a Colab reader on the gpu profile compares rather than is contradicted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from backbones import records
from backbones.book import chapter_notebooks, load_notebook

ROOT = Path(__file__).resolve().parents[1]
BESIDE = re.compile(r"beside\(\s*f?\"([^\"]+)\"")


def test_a_reader_on_the_gpu_profile_sees_the_books_number_beside_their_own(monkeypatch, capsys):
    monkeypatch.setenv("BACKBONES_PROFILE", "gpu")
    book = records.quick_build()["04 plain-56 / plain-20 final training loss"]
    assert records.beside("04 plain-56 / plain-20 final training loss", 3.0, fmt="{:.1f}x", data="cifar10") is None
    line = capsys.readouterr().out.strip()  # printed, and nothing returned for a cell to show again
    assert line.startswith("04 plain-56 / plain-20 final training loss: 3.0x in this run (profile gpu, cifar10)")
    assert f"the book's quick build: {book['value']:.1f}x (digits)" in line
    assert "more than" not in line  # a gpu run is not expected to match the quick build


def test_in_the_quick_profile_a_number_far_from_the_books_says_the_text_may_describe_another_run(monkeypatch, capsys):
    monkeypatch.setenv("BACKBONES_PROFILE", "quick")
    book = records.quick_build()["01 test error"]["value"]

    def shown(*args, **kwargs) -> str:
        records.beside(*args, **kwargs)
        return capsys.readouterr().out

    assert "more than" not in shown("01 test error", book * 1.1, data="digits")
    far = shown("01 test error", book * 2, data="digits")
    assert "more than 25% from the book's quick build: the text may describe another run" in far
    assert "the book's quick build has no such number" in shown("no such key", 0.5)


def test_the_quick_build_writes_its_numbers_where_the_recording_script_asks(monkeypatch, tmp_path):
    target = tmp_path / "numbers.json"
    monkeypatch.setenv(records.QUICK_BUILD_ENV, str(target))
    monkeypatch.setenv("BACKBONES_PROFILE", "gpu")
    records.beside("a", 0.5)
    assert not target.exists(), "only the quick profile records the book's numbers"
    monkeypatch.setenv("BACKBONES_PROFILE", "quick")
    records.beside("a", 0.5, data="digits")
    records.beside("b", 2.0, fmt="{:.1f}x")
    assert json.loads(target.read_text()) == {"a": {"value": 0.5, "data": "digits"}, "b": {"value": 2.0, "data": ""}}


def _beside_keys(nb) -> list[str]:
    return [
        key for cell in nb["cells"] if cell["cell_type"] == "code" for key in BESIDE.findall("".join(cell["source"]))
    ]


def test_every_number_a_chapter_puts_beside_the_books_is_recorded_and_its_passage_names_the_run():
    """Each chapter's ``beside`` keys are in assets/quick_build.json (the record is made by
    scripts/record_quick_build.py from these chapters), and the first text after the cell says
    which run it describes."""
    recorded = records.quick_build()
    assert records.load_record(records.QUICK_BUILD)["command"] == "python scripts/record_quick_build.py"
    chapters = 0
    for path in chapter_notebooks(ROOT):
        nb = load_notebook(path)
        cells = nb["cells"]
        for i, cell in enumerate(cells):
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "records.beside(" not in source:
                continue
            chapters += 1
            for key in BESIDE.findall(source):
                prefix = key.split("{")[0]
                assert any(k.startswith(prefix) for k in recorded), f"{path.name}: {key!r} is not recorded"
            after = next(  # the first passage after it, an exploration's one-line lead-in aside
                "".join(c["source"])
                for c in cells[i + 1 :]
                if c["cell_type"] == "markdown" and not "".join(c["source"]).startswith("**Explore.**")
            )
            assert re.search(r"the book's quick build|the recorded runs", after), (
                f"{path.name}, cell {i}: the passage after it does not name the run it describes"
            )
    assert chapters >= 6
    assert {k.split()[0] for k in recorded} == {"01", "02", "04", "05", "06", "09"}


@pytest.mark.book
def test_the_built_book_matches_the_quick_build_its_text_describes(built_html):
    """Every number the built pages put beside the book's is within its bound of the record: the
    prose still describes this build. When a change moves one, run scripts/record_quick_build.py
    and reread the passage."""
    import html

    shown = []
    for page in sorted((built_html / "chapters").glob("*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        lines = re.findall(r"^.*in this run \(profile quick.*$", text, re.MULTILINE)
        assert not [line for line in lines if line.startswith(("'", '"'))], "a cell shows beside()'s value again"
        shown += lines
        assert "the text may describe another run" not in text, page.name
    assert len(shown) == len(records.quick_build()), shown
    assert all("the book's quick build: " in line for line in shown), shown
