"""Sphinx extension for the book build.

- Kernels started by the build inherit this process's environment, so this is the one place
  that tells the library it is rendered into a static page rather than watched live.
- Explorations (``backbones.explore``) are drawn in their static form, and the pages that hold
  one load plotly.js, copied from the installed plotly package into ``_static`` (no CDN).
- A chapter's Colab and Binder launch buttons open its *student* notebook (exercises without
  solutions) when one exists; the repository URL still comes from `_config.yml` alone.
"""

import os
from pathlib import Path


def point_launch_buttons_at_student_notebooks(app, pagename, templatename, context, doctree):
    if not pagename.startswith("chapters/"):
        return
    name = Path(pagename).name
    if not (Path(app.srcdir) / "student" / f"{name}.ipynb").is_file():
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group["buttons"]:
            if button.get("text") in ("Colab", "Binder") and f"{pagename}.ipynb" in button.get("url", ""):
                button["url"] = button["url"].replace(f"{pagename}.ipynb", f"student/{name}.ipynb")
                button["tooltip"] += " (student version: exercises without solutions)"


def load_plotly_where_needed(app, pagename, templatename, context, doctree):
    """plotly.js, once, on a page with an exploration (and on no other page: it weighs 4.6 MB)."""
    if "bb-explore" in context.get("body", ""):
        # In the head, before the page's own scripts (require.js among them). Deferred, Chromium never
        # reported these pages idle (no request pending), which the browser tests wait for.
        app.add_js_file("plotly.min.js")


def copy_plotly(app, exception):
    if exception is None and app.builder.format == "html":
        from backbones.explore import plotly_js_path

        # bertviz's pages load require.js, whose define() would take plotly.js as an anonymous AMD
        # module (and fail) instead of window.Plotly: plotly.js runs with define hidden.
        bundle = plotly_js_path().read_bytes()
        (Path(app.outdir) / "_static" / "plotly.min.js").write_bytes(
            b"var bbDefine = window.define; window.define = undefined;\n" + bundle + b"\nwindow.define = bbDefine;\n"
        )


def setup(app):
    # A static page cannot animate a progress bar: print each training run's closing line instead.
    os.environ.setdefault("BACKBONES_PROGRESS", "summary")
    # ... and cannot run a widget: explorations are drawn in their static form (backbones.explore).
    os.environ.setdefault("BACKBONES_PAGE", "static")
    app.connect("html-page-context", load_plotly_where_needed)
    app.connect("build-finished", copy_plotly)
    # After sphinx-book-theme has added the launch buttons (its priority is 501).
    app.connect("html-page-context", point_launch_buttons_at_student_notebooks, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
