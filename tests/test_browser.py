"""The rendered book in headless Chromium: every page loads, draws its images, shows no error.

A full-page screenshot of every page is kept in _build/screenshots/ for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backbones.book import toc_files
from browser import inspect_page, serve

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.mark.book
@pytest.mark.parametrize("name", toc_files(ROOT))
def test_page_reads_well(name, built_html, page, cdn_mirrors):
    html = built_html / f"{name}.html"
    assert html.is_file(), f"{name} is in _toc.yml but was not built"
    with serve(built_html) as base:
        report = inspect_page(page, f"{base}/{name}.html", SCREENSHOTS / f"{Path(name).name}.png", cdn_mirrors)
    assert report.problems == [], "\n".join(report.problems)
    assert report.screenshot.stat().st_size > 10_000  # a page, not a blank


@pytest.mark.book
def test_math_is_typeset_from_the_mirrored_mathjax(built_html, page, cdn_mirrors):
    """The intro's formula is typeset by MathJax (served from the npm copy), not left as TeX."""
    with serve(built_html) as base:
        report = inspect_page(page, f"{base}/intro.html", mirrors=cdn_mirrors)
        assert report.problems == []
        page.wait_for_selector("mjx-container", timeout=10_000)
        assert page.locator("mjx-container").count() >= 1


# The checks must be able to fail: pages made broken on purpose.
BROKEN_PAGES = {
    "broken image": ('<div class="cell_output"><img src="missing.png" alt="a plot"></div>', "image did not load"),
    "traceback": (
        '<div class="cell_output"><pre>Traceback (most recent call last):\n'
        "ZeroDivisionError: division by zero</pre></div>",
        "cell output shows an error",
    ),
    "stderr": (
        '<div class="cell_output"><div class="output stderr"><pre>Loading weights: 100%</pre></div></div>',
        "cell output shows stderr",
    ),
    "javascript error": ("<script>undefinedFunction()</script>", "JavaScript error"),
    "image without alt": ('<div class="cell_output"><img src="ok.png"></div>', "without alt text"),
    "external script": ('<script src="https://cdn.example.org/x.js"></script>', "unmirrored external host"),
    "cut code": (
        '<div class="cell_input" style="width:200px"><pre style="overflow:auto">'
        + "x = 1  # "
        + "a" * 120
        + "</pre></div>",
        "code line cut",
    ),
}


@pytest.mark.parametrize("kind", BROKEN_PAGES)
def test_a_broken_page_is_reported(kind, tmp_path, page):
    body, expected = BROKEN_PAGES[kind]
    _write_png(tmp_path / "ok.png")
    (tmp_path / "page.html").write_text(f"<html><body><h1>Broken</h1>{body}</body></html>")
    with serve(tmp_path) as base:
        report = inspect_page(page, f"{base}/page.html")
    assert any(expected in problem for problem in report.problems), report.problems


def test_a_good_page_has_no_problems(tmp_path, page):
    _write_png(tmp_path / "ok.png")
    (tmp_path / "page.html").write_text(
        '<html><body><div class="cell_output"><img src="ok.png" alt="a dot"></div></body></html>'
    )
    with serve(tmp_path) as base:
        assert inspect_page(page, f"{base}/page.html").problems == []


def _write_png(path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    fig.savefig(path)
    plt.close(fig)


@pytest.mark.book
def test_exercise_solution_opens_from_its_toggle(built_html, page, cdn_mirrors):
    with serve(built_html) as base:
        report = inspect_page(page, f"{base}/chapters/01_getting_started.html", mirrors=cdn_mirrors)
        assert report.problems == []
        solution = page.locator("details.hide.above-input", has_text="def top_k_accuracy")
        assert solution.count() == 1
        code = solution.locator("pre")
        assert not code.is_visible()
        solution.locator("summary").click()
        assert code.is_visible() and "BEGIN SOLUTION" in code.inner_text()
        page.wait_for_timeout(800)  # the toggle fades in
        solution.screenshot(path=str(SCREENSHOTS / "exercise_solution_open.png"))


def _chapters_with_solutions() -> list[str]:
    from backbones.book import SOLUTION, chapter_notebooks

    return [m.stem for m in chapter_notebooks(ROOT) if SOLUTION in m.read_text()]


@pytest.mark.book
@pytest.mark.parametrize("chapter", _chapters_with_solutions())
def test_no_solution_is_visible_before_its_toggle_is_opened(chapter, built_html, page, cdn_mirrors):
    """What a reader sees of a chapter, before opening anything, holds no solution: every cell
    with `# BEGIN SOLUTION` is in a closed toggle, and no visible text on the page contains it."""
    from backbones.book import load_notebook

    master = load_notebook(ROOT / "chapters" / f"{chapter}.ipynb")
    solutions = sum("# BEGIN SOLUTION" in "".join(c["source"]) for c in master["cells"])
    with serve(built_html) as base:
        page.goto(f"{base}/chapters/{chapter}.html")
        toggles = page.locator("details.hide.above-input", has_text="BEGIN SOLUTION")
        assert toggles.count() == solutions
        shown = page.get_by_text("BEGIN SOLUTION")
        assert shown.count() >= solutions
        assert not any(shown.nth(i).is_visible() for i in range(shown.count()))


@pytest.mark.book
def test_each_question_s_answer_and_explanations_open_from_a_closed_dropdown(built_html, page, cdn_mirrors):
    """Test yourself, read without a kernel: under every question a closed dropdown holds the
    answer to the book's variant and why each wrong answer is wrong; nothing of it shows before it
    is opened, and opening one shows it (issue 28, item 3)."""
    from backbones.exercises import VALUE_EXERCISES

    with serve(built_html) as base:
        page.goto(f"{base}/chapters/10_test_yourself.html")
        dropdowns = page.locator("details.above-output", has_text="why each wrong answer is wrong")
        assert dropdowns.count() == len(VALUE_EXERCISES)
        answers = page.get_by_text("Answer: ", exact=False)
        assert not any(
            answers.nth(i).is_visible() and "taught in" in answers.nth(i).inner_text() for i in range(answers.count())
        )
        norm = dropdowns.filter(has_text="Pre-norm")
        assert norm.count() == 1
        text = norm.locator("pre")
        assert not text.is_visible()
        norm.locator("summary").click()
        page.wait_for_timeout(800)  # the toggle fades in
        shown = " ".join(text.inner_text().split())
        assert text.is_visible() and shown.startswith("Answer: ") and shown.count("wrong:") == 4
        norm.screenshot(path=str(SCREENSHOTS / "test_yourself_explanations_open.png"))


@pytest.mark.book
@pytest.mark.parametrize("chapter, expected_views", [("07_attention", 2), ("08_transformer", 1)])
def test_bertviz_views_draw_with_mirrored_scripts(chapter, expected_views, built_html, page, cdn_mirrors):
    """Every bertviz view of a chapter draws: an SVG with attention lines in each."""
    with serve(built_html) as base:
        report = inspect_page(page, f"{base}/chapters/{chapter}.html", mirrors=cdn_mirrors)
        assert report.problems == [], "\n".join(report.problems)
        views = page.locator("[id^=bertviz]")
        assert views.count() == expected_views
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('[id^=bertviz]'))"
            ".every(v => v.querySelectorAll('svg line, svg path, svg rect').length > 20)",
            timeout=15_000,
        )
        head_view = views.first
        assert head_view.locator("svg line").count() > 20  # one line per (query, key, head) pair drawn
        head_view.scroll_into_view_if_needed()
        head_view.screenshot(path=str(SCREENSHOTS / f"bertviz_{chapter}.png"))


@pytest.mark.book
def test_bertviz_draws_nothing_without_its_scripts(built_html, page):
    """The test above can fail: with the CDN unreachable and no mirror, the view stays empty."""
    with serve(built_html) as base:
        # With its scripts blocked and plotly.js in the head, Chromium never reports this page idle
        # (no request is pending): wait for the load event and a few seconds instead.
        report = inspect_page(page, f"{base}/chapters/07_attention.html", mirrors={}, settle="load")
    assert any("unmirrored external host" in p and "require" in p for p in report.problems)
    assert page.locator("[id^=bertviz] svg line").count() == 0


@pytest.mark.book
@pytest.mark.parametrize(
    "chapter, diagrams",
    [
        ("04_resnet", 2),
        ("05_se_efficientnet", 3),
        ("06_word_embeddings", 1),
        ("07_attention", 2),
        ("08_transformer", 1),
        ("09_vit", 1),
    ],
)
def test_diagrams_load_and_are_not_blank(chapter, diagrams, built_html, page, cdn_mirrors):
    """The chapters' SVG diagrams (assets/, shown by bb.show_diagram) load, with alt text, and draw."""
    from io import BytesIO

    from PIL import Image

    with serve(built_html) as base:
        report = inspect_page(page, f"{base}/chapters/{chapter}.html", mirrors=cdn_mirrors)
        assert report.problems == [], "\n".join(report.problems)
        images = page.locator(".cell_output img[src$='.svg']")
        assert images.count() == diagrams
        for i in range(diagrams):
            image = images.nth(i)
            assert len(image.get_attribute("alt") or "") > 40  # a description, not a word
            assert image.evaluate("img => img.naturalWidth") > 100
            image.scroll_into_view_if_needed()
            shot = Image.open(BytesIO(image.screenshot())).convert("L")
            dark = sum(1 for value in shot.getdata() if value < 128)
            assert dark > 0.01 * shot.width * shot.height  # boxes, arrows and text drawn
            if i == 0:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                shot.save(SCREENSHOTS / f"diagram_{chapter}.png")


# Issue 31: an exploration in every chapter from 01 to 09, precomputed for plotly.js.
EXPLORATIONS = {
    "01_getting_started": "predictions",
    "02_imagenet": "top-five",
    "03_alexnet_vgg": "receptive-fields",
    "04_resnet": "gradient-flow",
    "05_se_efficientnet": "compound-scaling",
    "06_word_embeddings": "word-projector",
    "07_attention": "attention-heads",
    "08_transformer": "sinusoids",
    "09_vit": "patch-sizes",
}
PAGE_BUDGET = 6_000_000  # bytes a reader downloads for one page, with its data and plotly.js

_DRAWN = """root => {
  const plot = root.querySelector('.bb-explore-plot');
  return {svg: plot.querySelector('.main-svg') !== null,
          traces: plot.querySelectorAll('.trace, .hm, .imagelayer image, .layer-below image').length,
          state: root.getAttribute('data-state'), picture: plot.innerHTML.length + '|' + plot.innerHTML};
}"""


@pytest.mark.book
@pytest.mark.parametrize("chapter, name", EXPLORATIONS.items())
def test_each_exploration_draws_and_every_control_changes_what_is_drawn(chapter, name, built_html, page, cdn_mirrors):
    """The static form: it draws (plotly.js from the book's _static, once), and moving each slider
    or choosing from each menu draws another state; no request leaves the book (inspect_page); and
    what a reader downloads for the page (served gzipped, as GitHub Pages does), plotly.js and the
    explorations' frames included, stays under 6 MB."""
    requests, sizes = [], {}
    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfinished", lambda request: sizes.__setitem__(request.url, request.sizes()["responseBodySize"]))
    with serve(built_html, gzipped=True) as base:
        report = inspect_page(page, f"{base}/chapters/{chapter}.html", mirrors=cdn_mirrors)
        assert report.problems == [], "\n".join(report.problems)
        total, largest = sum(sizes.values()), sorted(sizes.items(), key=lambda item: -item[1])[:5]
        assert total < PAGE_BUDGET, f"{chapter}: {total:,} bytes; the largest: {largest}"
        root = page.locator(f"#bb-explore-{name}")
        root.scroll_into_view_if_needed()
        page.wait_for_function(
            "root => root.querySelector('.bb-explore-plot .main-svg') !== null",
            arg=root.element_handle(),
            timeout=30_000,
        )
        first = root.evaluate(_DRAWN)
        assert first["svg"] and first["traces"] >= 1, first
        controls = root.locator("[data-control]")
        assert controls.count() >= 1
        for i in range(controls.count()):
            control = controls.nth(i)
            before = root.evaluate(_DRAWN)
            if control.evaluate("c => c.tagName") == "SELECT":
                options = control.locator("option")
                control.select_option(
                    index=options.count() - 1 if control.input_value() != options.last.get_attribute("value") else 0
                )
            else:
                top = int(control.get_attribute("max"))
                control.fill(str(top if control.input_value() != str(top) else 0))
            page.wait_for_function(
                "([root, state]) => root.getAttribute('data-state') !== state",
                arg=[root.element_handle(), before["state"]],
            )
            page.wait_for_timeout(300)  # plotly draws asynchronously
            after = root.evaluate(_DRAWN)
            assert after["picture"] != before["picture"], (
                f"{name}: moving {control.get_attribute('data-control')} drew nothing new"
            )
        root.screenshot(path=str(SCREENSHOTS / f"explore_{chapter}.png"))
    plotly = [url for url in requests if url.split("?")[0].endswith("plotly.min.js")]
    assert len(plotly) == 1 and plotly[0].startswith(base) and "/_static/" in plotly[0], plotly


@pytest.mark.book
def test_a_page_without_an_exploration_does_not_load_plotly(built_html, page, cdn_mirrors):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    with serve(built_html) as base:
        inspect_page(page, f"{base}/chapters/10_test_yourself.html", mirrors=cdn_mirrors)
    assert requests and not [url for url in requests if "plotly" in url]


@pytest.mark.book
def test_without_javascript_an_exploration_shows_its_fallback_image_and_alt_text(built_html, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        with serve(built_html) as base:
            page.goto(f"{base}/chapters/09_vit.html", wait_until="load")
            image = page.locator("#bb-explore-patch-sizes noscript img, #bb-explore-patch-sizes img").first
            image.scroll_into_view_if_needed()
            assert image.evaluate("img => img.naturalWidth") > 300
            assert "photograph of a cat cut by a white grid" in image.get_attribute("alt")
            assert "Move the slider from 16 to 8" in page.locator("#bb-explore-patch-sizes figcaption").inner_text()
    finally:
        context.close()
