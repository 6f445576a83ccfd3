"""Shared fixtures. The helpers the tests use live beside them (browser.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of two workers on two cores: one thread each, no spinning
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"  # the kernels and scripts it starts
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def chapter_text():
    """A chapter's source text, every cell's lines joined by single spaces, for tests that hold
    the page to a number or an attribution."""
    import json

    def read(name: str) -> str:
        cells = json.loads((ROOT / "chapters" / name).read_text())["cells"]
        return " ".join(" ".join("".join(c["source"]).split()) for c in cells)

    return read


@pytest.fixture(scope="session")
def built_html() -> Path:
    """The book built by `make book` (make test builds it first)."""
    if not (HTML / "index.html").is_file():
        pytest.fail("the book is not built: run `make test` (or `make book` before pytest)")
    return HTML


@pytest.fixture(autouse=True)
def _quiet_offline(monkeypatch):
    """Tests never wait on the network and print no progress bars."""
    monkeypatch.setenv("BACKBONES_PROGRESS", "summary")
    monkeypatch.setenv("BACKBONES_OFFLINE", "1")
    monkeypatch.delenv("BACKBONES_PROFILE", raising=False)
    monkeypatch.delenv("BACKBONES_DEVICE", raising=False)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    from browser import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it (make browser)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def cdn_mirrors():
    from browser import fetch_mirrors

    return fetch_mirrors(ROOT / "_build" / "cdn")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()
