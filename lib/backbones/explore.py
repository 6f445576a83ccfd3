"""Explorations: one drawing function, two forms.

An :class:`Exploration` is a function that draws one state of a figure (a Plotly figure as plain
data: ``{"data": [...], "layout": {...}}``) and the controls that choose the state. :func:`show`
puts it on the page in the form the reader can use:

- **live** (Colab, Jupyter): ipywidgets controls (ipywidgets 7 and 8), each change drawing the new
  state on the fly, with typed fields (a sentence, a list of words) where computing is cheap;
- **static** (the rendered book, no kernel): every combination of the controls drawn at build
  time, and HTML controls that switch between them in the browser, with hover. plotly.js comes
  from the book's ``_static`` (the book's Sphinx extension adds it to the pages that need it); a
  ``<noscript>`` image of the first state, with alt text, stands in for readers without JavaScript.

The book build sets ``BACKBONES_PAGE=static`` (``_ext/backbones_build.py``); anything else is live.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PAGE_ENV = "BACKBONES_PAGE"
PLOTLY_JS = "plotly.min.js"
FRAME_LAYOUT = (
    "title",
    "shapes",
    "annotations",
    "images",
)  # what a state may change in the layout  # served from the book's _static; the plotly package ships it


@dataclass(frozen=True)
class Control:
    """A control over ``values``: a ``slider`` (ordered values) or a ``menu`` (a choice)."""

    label: str
    values: Sequence[Any]
    kind: str = "slider"
    start: Any = None

    def __post_init__(self) -> None:
        if self.kind not in ("slider", "menu"):
            raise ValueError(f"a control is a 'slider' or a 'menu', not {self.kind!r}")
        if not self.values:
            raise ValueError(f"the control {self.label!r} has no values")
        if self.start is not None and self.start not in self.values:
            raise ValueError(f"{self.label!r} starts at {self.start!r}, which is not one of its values")

    @property
    def first(self) -> Any:
        return self.values[0] if self.start is None else self.start


@dataclass(frozen=True)
class Exploration:
    """``draw(**state)`` returns one state of the figure; ``controls`` name its keyword arguments.

    ``typed`` are live-only text fields (name: default), passed to ``draw`` as well; the static
    page draws them at their defaults. ``caption`` says what to try; ``alt`` describes the figure
    for a reader who cannot see it.
    """

    name: str
    draw: Callable[..., dict]
    controls: dict[str, Control]
    caption: str
    alt: str
    typed: dict[str, str] = field(default_factory=dict)
    height: int = 420

    def states(self) -> list[dict]:
        names = list(self.controls)
        return [dict(zip(names, combo)) for combo in itertools.product(*(c.values for c in self.controls.values()))]

    def first_state(self) -> dict:
        return {name: c.first for name, c in self.controls.items()}


def key(state: dict) -> str:
    """A state's name in the page's frames: the values' labels joined by '|'."""
    return "|".join(label(v) for v in state.values())


def label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- plain data for JSON: numbers rounded to what a figure can show ----------------------------------------


def compact(value: Any, digits: int = 4) -> Any:
    """Arrays to lists and floats to ``digits`` significant digits (a figure shows no more)."""
    if isinstance(value, np.ndarray) or type(value).__module__ == "torch":
        value = np.asarray(value.tolist() if hasattr(value, "detach") else value)
        return compact(value.tolist(), digits)
    if isinstance(value, dict):
        return {k: compact(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [compact(v, digits) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def image_source(image: np.ndarray) -> str:
    """An image (H, W[, 3], floats in [0, 1] or uint8) as a data URI, for a layout image: a
    photograph as JPEG (a fifth of the PNG's bytes), a small or grey image as PNG (exact pixels)."""
    import matplotlib.image

    buffer = io.BytesIO()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
    photograph = array.ndim == 3 and array.shape[0] * array.shape[1] > 64 * 64
    kind = "jpeg" if photograph else "png"
    options = {"pil_kwargs": {"quality": 85}} if photograph else {"cmap": "gray" if array.ndim == 2 else None}
    matplotlib.image.imsave(buffer, array, format=kind, **options)
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_layer(image: np.ndarray, *, xref: str = "x", yref: str = "y") -> dict:
    """A layout image filling the axes' pixel coordinates (x right, y down), drawn below the traces."""
    height, width = np.asarray(image).shape[:2]
    return {
        "source": image_source(image),
        "xref": xref,
        "yref": yref,
        "x": -0.5,
        "y": -0.5,
        "sizex": width,
        "sizey": height,
        "sizing": "stretch",
        "layer": "below",
        "xanchor": "left",
        "yanchor": "top",
    }


# -- the static form -------------------------------------------------------------------------------------


def frames(exploration: Exploration) -> tuple[dict, dict[str, dict]]:
    """The first state's figure, and every state's traces and titles: a trace equal to the first
    state's is ``null`` (the page reuses it), so a photograph is stored once."""
    first = compact(exploration.draw(**exploration.first_state(), **exploration.typed))
    count = len(first["data"])
    stored = {}
    base = [json.dumps(t, sort_keys=True) for t in first["data"]]
    for state in exploration.states():
        figure = compact(exploration.draw(**state, **exploration.typed))
        if len(figure["data"]) != count:
            raise ValueError(
                f"{exploration.name}: every state must draw the same number of traces "
                f"({count} in the first, {len(figure['data'])} at {key(state)})"
            )
        data = [None if json.dumps(t, sort_keys=True) == b else t for t, b in zip(figure["data"], base)]
        layout = {  # what changes from state to state; the rest is the first state's
            k: figure["layout"][k]
            for k in FRAME_LAYOUT
            if k in figure["layout"] and figure["layout"][k] != first["layout"].get(k)
        }
        stored[key(state)] = {"data": data, "layout": layout}
    return first, stored


_SCRIPT = """(function () {
  var root = document.getElementById(%(id)s);
  var spec = JSON.parse(root.querySelector('script.bb-explore-spec').textContent);
  var plot = root.querySelector('.bb-explore-plot');
  var inputs = Array.prototype.slice.call(root.querySelectorAll('[data-control]'));
  function state() {
    return inputs.map(function (input) {
      var values = spec.controls[input.getAttribute('data-control')];
      return input.tagName === 'SELECT' ? input.value : values[Number(input.value)];
    }).join('|');
  }
  function draw() {
    var frame = spec.frames[state()];
    var data = frame.data.map(function (trace, i) { return trace === null ? spec.base.data[i] : trace; });
    var layout = Object.assign({}, spec.base.layout, frame.layout);
    inputs.forEach(function (input) {
      var shown = root.querySelector('[data-shows="' + input.getAttribute('data-control') + '"]');
      if (shown) shown.textContent = spec.controls[input.getAttribute('data-control')][Number(input.value)];
    });
    root.setAttribute('data-state', state());
    return Plotly.react(plot, data, layout, spec.config);
  }
  function start() {
    inputs.forEach(function (input) { input.addEventListener('input', draw); input.addEventListener('change', draw); });
    draw();
  }
  function ready() {
    if (window.Plotly) return start();
    // a notebook (Colab, Jupyter) has no _static: plotly.js from its CDN, at the plotly package's version
    // with define hidden: in a notebook that has require.js, plotly.js would be an AMD module
    var define = window.define, script = document.createElement('script');
    window.define = undefined;
    script.src = spec.cdn;
    script.onload = function () { window.define = define; start(); };
    document.head.appendChild(script);
  }
  if (window.Plotly) start();
  else if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready);
  else ready();
})();"""


def _controls_html(exploration: Exploration, element: str) -> str:
    parts = []
    for name, control in exploration.controls.items():
        ident = f"{element}-{name}"
        labels = [label(v) for v in control.values]
        index = list(control.values).index(control.first)
        if control.kind == "menu":
            options = "".join(
                f'<option value="{html.escape(v)}"{" selected" if i == index else ""}>{html.escape(v)}</option>'
                for i, v in enumerate(labels)
            )
            widget = f'<select id="{ident}" data-control="{html.escape(name)}">{options}</select>'
        else:
            widget = (
                f'<input type="range" id="{ident}" data-control="{html.escape(name)}" min="0" '
                f'max="{len(labels) - 1}" step="1" value="{index}"> '
                f'<output data-shows="{html.escape(name)}">{html.escape(labels[index])}</output>'
            )
        name_tag = f'<label for="{ident}">{html.escape(control.label)}</label>'
        parts.append(f'<span class="bb-explore-control">{name_tag} {widget}</span>')
    return '<div class="bb-explore-controls">' + " ".join(parts) + "</div>"


def _plot(exploration: Exploration, config: dict) -> tuple[str, dict, str]:
    """The element's id, the first state's figure, and the spec and script that draw every state."""
    base, stored = frames(exploration)
    element = f"bb-explore-{exploration.name}"
    layout = {"height": exploration.height, "margin": {"l": 50, "r": 20, "t": 50, "b": 45}, **base["layout"]}
    spec = {
        "base": {"data": base["data"], "layout": layout},
        "frames": stored,
        "controls": {name: [label(v) for v in c.values] for name, c in exploration.controls.items()},
        "config": {"displaylogo": False, "responsive": True, **config},
        "cdn": f"https://cdn.plot.ly/plotly-{plotly_js_version()}.min.js",
    }
    payload = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    scripts = (
        f'<script type="application/json" class="bb-explore-spec">{payload}</script>'
        f"<script>{_SCRIPT % {'id': json.dumps(element)}}</script>"
    )
    return element, base, scripts


def static_html(exploration: Exploration) -> str:
    """The exploration as a self-contained piece of a page: controls, plot, fallback image, caption."""
    element, base, scripts = _plot(exploration, {"modeBarButtonsToRemove": ["sendDataToCloud"]})
    fallback = fallback_png(base, exploration.height)
    alt = html.escape(exploration.alt, quote=True)
    return (
        f'<figure class="bb-explore" id="{element}">'
        f"{_controls_html(exploration, element)}"
        f'<div class="bb-explore-plot" role="img" aria-label="{alt}" style="min-height:{exploration.height}px"></div>'
        f'<noscript><img src="data:image/jpeg;base64,{fallback}" alt="{alt}"></noscript>'
        f"<figcaption>{html.escape(exploration.caption)}</figcaption>"
        f"{scripts}</figure>"
    )


def plotly_js_version() -> str:
    """The version of the plotly.js the plotly package ships (its file's first lines say it)."""
    try:
        with plotly_js_path().open("rb") as file:
            head = file.read(100).decode("ascii", "replace")
    except (ImportError, OSError):  # the live form needs no plotly package: plotly 5.24's plotly.js
        return "2.35.2"
    return head.split("plotly.js v", 1)[1].split()[0]


def plotly_js_path():
    """The plotly.js the book serves, from the installed plotly package (no CDN)."""
    from importlib.resources import files

    return files("plotly") / "package_data" / PLOTLY_JS


# -- the fallback image: the first state, drawn with matplotlib -----------------------------------------


def fallback_png(figure: dict, height: int = 420) -> str:
    """The figure's first state as a JPEG (base64), for readers without JavaScript: scatter, bar and
    heatmap traces, layout images and rectangle or line shapes, on one or more axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import PIL.Image
    from matplotlib.figure import Figure

    layout = figure.get("layout", {})
    fig = Figure(figsize=(8, height / 80), dpi=80, layout="none")  # axes placed by hand, whatever the style says
    axes: dict[str, Any] = {}

    def axis(xref: str = "x", yref: str = "y"):
        name = xref + yref
        if name not in axes:
            xa = layout.get("xaxis" + xref[1:], {})
            ya = layout.get("yaxis" + yref[1:], {})
            (x0, x1), (y0, y1) = xa.get("domain", [0, 1]), ya.get("domain", [0, 1])
            ax = fig.add_axes([0.08 + 0.88 * x0, 0.1 + 0.78 * y0, 0.88 * (x1 - x0) - 0.04, 0.78 * (y1 - y0) - 0.04])
            ax.set_xlabel(_text(xa.get("title")))
            ax.set_ylabel(_text(ya.get("title")))
            for settings, limits in ((xa, ax.set_xlim), (ya, ax.set_ylim)):
                if settings.get("range"):  # a log axis's range is in powers of ten, as in plotly
                    low, high = settings["range"]
                    limits((10**low, 10**high) if settings.get("type") == "log" else (low, high))
            if ya.get("autorange") == "reversed":
                ax.invert_yaxis()
            if xa.get("type") == "log":
                ax.set_xscale("log")
            if ya.get("type") == "log":
                ax.set_yscale("log")
            if not xa.get("visible", True):
                ax.set_xticks([])
            if not ya.get("visible", True):
                ax.set_yticks([])
            axes[name] = ax
        return axes[name]

    for trace in figure.get("data", []):
        if trace is None:
            continue
        ax = axis(trace.get("xaxis", "x"), trace.get("yaxis", "y"))
        kind = trace.get("type", "scatter")
        name = trace.get("name")
        if kind == "heatmap":
            z = np.asarray(trace["z"], dtype=float)
            ax.imshow(z, cmap="viridis", aspect="auto", origin="upper", interpolation="nearest")
        elif kind == "bar":
            x, y = trace.get("x", []), trace.get("y", [])
            if trace.get("orientation") == "h":
                ax.barh(range(len(y)), x, label=name, color=_colour(trace.get("marker", {}).get("color")))
                ax.set_yticks(range(len(y)), [str(v) for v in y])
            else:
                ax.bar([str(v) for v in x], y, label=name, color=_colour(trace.get("marker", {}).get("color")))
        else:
            x = [np.nan if v is None else v for v in trace.get("x", [])]
            y = [np.nan if v is None else v for v in trace.get("y", [])]
            mode = trace.get("mode", "lines+markers")
            style = ("-" if "lines" in mode else "") + ("o" if "markers" in mode else "")
            colour = _colour(trace.get("line", {}).get("color") or trace.get("marker", {}).get("color"))
            if "lines" not in mode and colour is None:  # invisible markers, there for their hover text
                style = ""
            if style:
                width = trace.get("line", {}).get("width", 2)  # plotly's default width
                ax.plot(x, y, style, label=name, markersize=4, color=colour or "C0", linewidth=width)
            if "text" in mode:
                for xi, yi, t in zip(x, y, trace.get("text", [])):
                    ax.annotate(str(t), (xi, yi), fontsize=8, xytext=(3, 3), textcoords="offset points")
    for image in layout.get("images", []):
        ax = axis(image.get("xref", "x"), image.get("yref", "y"))
        data = base64.b64decode(image["source"].split(",", 1)[1])
        array = np.asarray(PIL.Image.open(io.BytesIO(data)))
        x0, y0 = image["x"], image["y"]
        ax.imshow(array, extent=(x0, x0 + image["sizex"], y0 + image["sizey"], y0), zorder=0)
    for shape in layout.get("shapes", []):
        ax = axis(shape.get("xref", "x"), shape.get("yref", "y"))
        line = shape.get("line", {})
        color = line.get("color", "black")
        if shape.get("type") == "rect":
            ax.add_patch(
                plt.Rectangle(
                    (shape["x0"], shape["y0"]),
                    shape["x1"] - shape["x0"],
                    shape["y1"] - shape["y0"],
                    fill=False,
                    edgecolor=color,
                    linewidth=line.get("width", 2),
                )
            )
        elif shape.get("type") == "line":
            ax.plot([shape["x0"], shape["x1"]], [shape["y0"], shape["y1"]], color=color)
    for ax in axes.values():
        if any(line.get_label() and not line.get_label().startswith("_") for line in ax.get_lines() + ax.patches):
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(_text(layout.get("title")), fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", pil_kwargs={"quality": 80})
    return base64.b64encode(buffer.getvalue()).decode()


def _colour(colour: Any) -> Any:
    """A plotly colour for matplotlib: a name or '#rrggbb' as it is, 'rgba(r,g,b,a)' as a tuple
    (None if nearly transparent), a list of colours as a list."""
    if isinstance(colour, list):
        return [_colour(c) for c in colour]
    if isinstance(colour, str) and colour.startswith("rgb"):
        parts = [float(v) for v in colour[colour.index("(") + 1 : -1].split(",")]
        alpha = parts[3] if len(parts) > 3 else 1.0
        return None if alpha < 0.05 else (parts[0] / 255, parts[1] / 255, parts[2] / 255, alpha)
    return colour


def _text(title: Any) -> str:
    if isinstance(title, dict):
        title = title.get("text", "")
    return (title or "").replace("<br>", "\n").replace("<b>", "").replace("</b>", "")


# -- the live form ---------------------------------------------------------------------------------------


def live(exploration: Exploration):
    """The exploration as ipywidgets: a slider or a dropdown per control, a text field per typed
    input, and the figure, drawn anew on every change."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    controls = {}
    for name, control in exploration.controls.items():
        options = [(label(v), v) for v in control.values]
        if control.kind == "menu":
            controls[name] = widgets.Dropdown(options=options, value=control.first, description=control.label)
        else:
            controls[name] = widgets.SelectionSlider(options=options, value=control.first, description=control.label)
    for name, default in exploration.typed.items():
        controls[name] = widgets.Text(value=default, description=name.replace("_", " "), continuous_update=False)
    output = widgets.Output()

    def redraw(change=None):
        state = {name: w.value for name, w in controls.items()}
        with output:
            output.clear_output(wait=True)
            try:
                figure = exploration.draw(**state)
            except (ValueError, KeyError) as error:  # a typed word out of the vocabulary: say which
                print(error)
                return
            display(HTML(figure_html(figure, exploration.height)))

    for widget in controls.values():
        widget.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([*controls.values(), output])
    box.redraw = redraw  # for tests and for a reader's own code
    box.controls = controls
    return box


def figure_html(figure: dict, height: int = 420) -> str:
    """One state, drawn by plotly.js (already on the page, or from its CDN in a notebook)."""
    one = Exploration(
        name=f"live-{uuid.uuid4().hex[:8]}", draw=lambda: figure, controls={}, caption="", alt="", height=height
    )
    element, _, scripts = _plot(one, {})
    return f'<div class="bb-explore" id="{element}"><div class="bb-explore-plot"></div>{scripts}</div>'


class _Static:
    def __init__(self, exploration: Exploration) -> None:
        self.html = static_html(exploration)

    def _repr_html_(self) -> str:
        return self.html


def show(exploration: Exploration):
    """The static form on the book's pages (``BACKBONES_PAGE=static``), the live one elsewhere."""
    if os.environ.get(PAGE_ENV) == "static":
        return _Static(exploration)
    return live(exploration)
