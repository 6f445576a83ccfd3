"""Sphinx extension for the book build.

- Kernels started by the build inherit this process's environment, so this is the one place
  that tells the library it is rendered into a static page rather than watched live.
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


def setup(app):
    # A static page cannot animate a progress bar: print each training run's closing line instead.
    os.environ.setdefault("BACKBONES_PROGRESS", "summary")
    # After sphinx-book-theme has added the launch buttons (its priority is 501).
    app.connect("html-page-context", point_launch_buttons_at_student_notebooks, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
