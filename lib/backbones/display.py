"""Show on the page what the book teaches: a library object's own source, highlighted, and the
diagrams in ``assets/``. Both are taken from the library at run time, so the page, the diagram's
caption and the code cannot drift apart.

In the static book and in Colab (where the assets travel inside the installed package) alike.
"""

from __future__ import annotations

import inspect

from backbones.records import asset_path


def show_source(obj, *, start: str | None = None, stop: str | None = None):
    """Display the source of a class or function from the library, highlighted.

    Args:
        obj: e.g. ``bb.models.BasicBlock`` or ``bb.experiments.degradation``.
        start: show from the first line containing this text (e.g. ``"def forward"``).
        stop: and up to (not including) the next line after it containing this text.
    """
    from IPython.display import Code

    lines = inspect.getsource(obj).splitlines()
    first, last = 0, len(lines)
    if start is not None:
        first = next((i for i, line in enumerate(lines) if start in line), None)
        if first is None:
            raise ValueError(f"{start!r} is not in the source of {obj.__qualname__}")
    if stop is not None:
        last = next((i for i in range(first + 1, len(lines)) if stop in lines[i]), None)
        if last is None:
            raise ValueError(f"{stop!r} is not in the source of {obj.__qualname__} after {start!r}")
    shown = lines[first:last]
    while shown and not shown[-1].strip():
        shown.pop()
    indent = min(len(line) - len(line.lstrip()) for line in shown if line.strip())
    return Code("\n".join(line[indent:] for line in shown) + "\n", language="python")


def show_diagram(name: str):
    """Display ``assets/NAME.svg``, one of the book's diagrams (made by scripts/make_diagrams.py)."""
    from IPython.display import SVG

    return SVG(asset_path(f"{name}.svg").read_text(encoding="utf-8"))
