"""Explorations (issue 31): one drawing function, a live form (ipywidgets) and a static one
(every state precomputed for plotly.js), with a fallback image, alt text and a caption."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import backbones as bb
from backbones import explorations, explore
from backbones.book import chapter_notebooks, load_notebook
from backbones.explore import Control, Exploration

ROOT = Path(__file__).resolve().parents[1]
SPEC = re.compile(r'<script type="application/json" class="bb-explore-spec">(.*?)</script>', re.S)


def spec_of(html: str) -> dict:
    return json.loads(SPEC.search(html).group(1).replace("<\\/", "</"))


def line(slope: float, colour: str = "red", title: str = "t") -> dict:
    return {
        "data": [
            {"type": "scatter", "x": [0, 1, 2], "y": [0, slope, 2 * slope], "line": {"color": colour}},
            {"type": "scatter", "x": [0, 2], "y": [0, 0]},
        ],
        "layout": {"title": {"text": title}},
    }


def toy(**extra) -> Exploration:
    return Exploration(
        name="toy",
        draw=lambda slope, colour: line(slope, colour, f"slope {slope} in {colour}"),
        controls={"slope": Control("slope", [0.5, 1.0, 2.0]), "colour": Control("colour", ["red", "blue"], "menu")},
        caption="Move the slope.",
        alt="A line through the origin.",
        **extra,
    )


def test_every_state_is_drawn_and_a_trace_that_does_not_change_is_stored_once():
    first, frames = explore.frames(toy())
    assert set(frames) == {"0.5|red", "0.5|blue", "1|red", "1|blue", "2|red", "2|blue"}
    assert first["data"][0]["y"] == [0, 0.5, 1.0]
    assert frames["2|blue"]["data"][0]["y"] == [0, 2.0, 4.0] and frames["2|blue"]["data"][0]["line"]["color"] == "blue"
    assert all(f["data"][1] is None for f in frames.values())  # the flat line never changes
    assert frames["2|blue"]["layout"] == {"title": {"text": "slope 2.0 in blue"}}
    assert frames["0.5|red"]["layout"] == {}  # the first state's own title is the base's


def test_numbers_are_stored_to_the_digits_a_figure_can_show():
    assert explore.compact({"y": np.array([1 / 3, float("nan")]), "n": np.int64(3)}) == {"y": [0.3333, None], "n": 3}
    assert explore.compact(torch.tensor([2.0 / 3])) == [0.6667]


def test_a_state_that_draws_another_number_of_traces_is_refused_by_name():
    bad = dataclasses.replace(
        toy(), draw=lambda slope, colour: {"data": line(slope)["data"][: 1 + (slope > 1)], "layout": {}}
    )
    with pytest.raises(ValueError, match=r"same number of traces \(1 in the first, 2 at 2\|red\)"):
        explore.frames(bad)


def test_controls_refuse_what_they_cannot_show():
    with pytest.raises(ValueError, match="'slider' or a 'menu'"):
        Control("x", [1], kind="knob")
    with pytest.raises(ValueError, match="has no values"):
        Control("x", [])
    with pytest.raises(ValueError, match="starts at 3, which is not one of its values"):
        Control("x", [1, 2], start=3)


def test_the_static_form_holds_controls_frames_a_fallback_image_with_alt_text_and_the_caption():
    html = explore.static_html(toy())
    spec = spec_of(html)
    assert set(spec["frames"]) == {"0.5|red", "0.5|blue", "1|red", "1|blue", "2|red", "2|blue"}
    assert spec["controls"] == {"slope": ["0.5", "1", "2"], "colour": ["red", "blue"]}
    assert '<input type="range" id="bb-explore-toy-slope" data-control="slope" min="0" max="2"' in html
    assert '<select id="bb-explore-toy-colour" data-control="colour">' in html
    assert "<figcaption>Move the slope.</figcaption>" in html
    assert 'role="img" aria-label="A line through the origin."' in html
    fallback = re.search(r'<noscript><img src="data:image/jpeg;base64,([^"]+)" alt="A line through the origin.">', html)
    import PIL.Image

    picture = np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(fallback.group(1)))))
    assert picture.shape[0] > 200 and picture.std() > 5  # a drawing, not a blank
    # the page's own plotly.js is used when it is there; the CDN only in a notebook without it
    assert spec["cdn"] == f"https://cdn.plot.ly/plotly-{explore.plotly_js_version()}.min.js"
    assert "if (window.Plotly) start();" in html


def test_the_fallback_warns_of_nothing_under_the_book_s_style():
    """A warning would print on the page as stderr (the book's style asks for a layout engine)."""
    import warnings

    bb.use_style()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explore.static_html(toy())


def test_the_fallback_draws_each_trace_in_its_colour_and_leaves_invisible_markers_out():
    figure = {
        "data": [
            {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "line": {"color": "#ff0000"}},
            {
                "type": "scatter",
                "mode": "markers",
                "x": [0.5],
                "y": [0.5],
                "marker": {"color": "rgba(0,0,255,0.01)", "size": 40},
            },
        ],
        "layout": {"xaxis": {"range": [0, 1]}, "yaxis": {"range": [0, 1]}},
    }
    import PIL.Image

    picture = np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(explore.fallback_png(figure)))).convert("RGB"))
    red = (picture[..., 0] > 180) & (picture[..., 1] < 110) & (picture[..., 2] < 110)
    blue = (picture[..., 2] > 180) & (picture[..., 0] < 110) & (picture[..., 1] < 110)
    assert red.sum() > 300 and blue.sum() < 10


def test_show_is_static_on_the_book_and_live_in_a_notebook(monkeypatch):
    monkeypatch.setenv(explore.PAGE_ENV, "static")
    assert "bb-explore-spec" in explore.show(toy())._repr_html_()
    monkeypatch.delenv(explore.PAGE_ENV)
    import ipywidgets

    assert isinstance(explore.show(toy()), ipywidgets.VBox)


def test_the_live_form_draws_again_when_a_control_or_a_typed_field_changes():
    seen = []
    base = toy(typed={"note": ""})

    def draw(slope, colour, note):
        seen.append((slope, colour, note))
        return line(slope, colour)

    box = explore.live(dataclasses.replace(base, draw=draw))
    box.controls["slope"].value = 2.0
    box.controls["colour"].value = "blue"
    box.controls["note"].value = "hello"
    assert seen == [(0.5, "red", ""), (2.0, "red", ""), (2.0, "blue", ""), (2.0, "blue", "hello")]
    assert type(box.controls["slope"]).__name__ == "SelectionSlider"
    assert type(box.controls["colour"]).__name__ == "Dropdown"


def test_a_typed_word_out_of_the_vocabulary_is_said_not_raised(capsys):
    vectors = {
        "man": torch.ones(4),
        "woman": torch.zeros(4) + 2,
        "king": torch.arange(4.0),
        "queen": torch.arange(4.0) + 1,
    }

    def lookup(words):
        missing = [w for w in words if w not in vectors]
        if missing:
            raise KeyError(f"not in the vocabulary: {missing}")
        return torch.stack([vectors[w] for w in words])

    e = explorations.word_projector(lookup, {"pairs": [("man", "woman"), ("king", "queen")]}, bb.words.pca_2d)
    box = explore.live(e)
    box.controls["pairs"].value = "man woman, king qeen"  # the live form prints the message (no raise)
    with pytest.raises(KeyError, match="qeen"):
        e.draw(group="pairs", pairs="man woman, king qeen")
    with pytest.raises(ValueError, match="pairs of words separated by commas"):
        e.draw(group="pairs", pairs="man woman king")


# -- the chapters' explorations, on real inputs ----------------------------------------------------------


def test_every_chapter_from_01_to_09_shows_an_exploration_that_the_build_executes():
    found = {}
    for path in chapter_notebooks(ROOT):
        cells = load_notebook(path)["cells"]
        shown = [c for c in cells if c["cell_type"] == "code" and "bb.explore.show(" in "".join(c["source"])]
        found[path.stem[:2]] = len(shown)
        for cell in shown:
            assert not {"remove-cell", "skip-execution"} & set(cell["metadata"].get("tags", [])), path.name
    assert all(found.get(f"0{k}", 0) >= 1 for k in range(1, 10)), found


def photo() -> np.ndarray:
    return bb.load_photo("chelsea")[:224, :224].astype("uint8")


def test_the_patch_size_exploration_counts_the_tokens_and_the_cost_of_each_size():
    from backbones.models import vit

    e = explorations.patch_sizes(
        photo(), lambda p: vit.cost(image_size=224, patch_size=p, embed_dim=768, depth=12, num_heads=12)
    )
    for p in (8, 16, 32):
        figure = e.draw(patch=p)
        n = 224 // p
        assert f"{n}x{n} = {n * n} tokens + [CLS]" in figure["layout"]["title"]["text"]
        assert len(figure["data"][1]["text"]) == n * n
    assert "attention weights 21 MB" in e.draw(patch=16)["layout"]["title"]["text"]  # 12 x 12 x 197^2 x 4 bytes


def test_the_corner_unit_s_field_reaches_into_the_padding_and_the_centre_unit_s_does_not():
    e = explorations.receptive_fields(photo(), {"AlexNet": bb.models.AlexNet(), "VGG-16": bb.models.vgg16()})
    last = max(e.controls["layers"].values)
    corner = e.draw(layers=last, unit="corner")["layout"]["title"]["text"]
    centre = e.draw(layers=last, unit="centre")["layout"]["title"]["text"]
    assert centre.endswith("VGG-16 pool5: 212 px")  # a 7x7 map: its centre unit's field is centred
    # AlexNet's last map is 6x6: no unit sits at the centre, and the nearest one's field pokes out
    assert "AlexNet pool3 (its last): 195 px, 2 px of it padding" in centre
    assert re.search(r"VGG-16 pool5: 212 px, \d+ px of it padding", corner)
    assert explorations.layer_names(
        bb.models.AlexNet(), [f for f in bb.receptive_field.receptive_fields(bb.models.AlexNet())]
    )[:3] == ["conv1", "pool1", "conv2"]


def test_compound_scaling_puts_the_released_model_beside_the_rule_at_whole_phi_only():
    e = explorations.compound_scaling(bb.scaling.family_table(), bb.models.efficientnet.compound_scaling)
    one, half = e.draw(phi=1.0), e.draw(phi=1.5)
    assert one["data"][1]["name"] == "B1 as released" and one["data"][1]["y"][0] == pytest.approx(1.1)
    assert half["data"][1]["y"] == [None] * 4
    assert one["data"][0]["y"][3] == pytest.approx(1.2 * 1.1**2 * (258 / 224) ** 2, rel=1e-3)  # 224 x 1.15 = 258 px


def test_the_sinusoid_exploration_shows_each_pair_s_wavelength():
    encoding = bb.models.SinusoidalPositionalEncoding(embed_dim=64, max_len=64).encoding
    e = explorations.sinusoids(encoding)
    assert len(e.controls["pair"].values) == 32
    assert "wavelength 6.3 positions" in e.draw(pair=0)["layout"]["title"]["text"]
    assert "longer than the sequence" in e.draw(pair=31)["layout"]["title"]["text"]
    assert e.draw(pair=3)["data"][0]["y"] == encoding[:, 6].tolist()
    assert e.draw(pair=3)["data"][1]["name"] == "dimension 7 (cos)"
    # the caption: PE(0)·PE(k) stands for any start, since the dot product depends only on the offset
    for k in (1, 5, 20):
        assert [(encoding[p] @ encoding[p + k]).item() for p in (10, 30)] == pytest.approx(
            [(encoding[0] @ encoding[k]).item()] * 2, rel=1e-5
        )
    dotted = e.draw(pair=0)["data"][2]["y"]
    assert dotted[0] == pytest.approx(1) and 0.35 < min(dotted) < 0.45  # "falls from 1 to about 0.4"


def test_the_attention_exploration_counts_layers_and_heads_from_0_as_the_chapter_prints_them():
    weights = torch.zeros(2, 3, 4, 4)
    weights[1, 2] = torch.eye(4)  # layer 1, head 2: each token attends to itself
    e = explorations.attention_heads(lambda s: (s.split(), weights), ["a b c d"], layers=2, heads=3, start=(1, 2))
    assert e.first_state() == {"sentence": "a b c d", "layer": 1, "head": 2}
    assert e.controls["layer"].values == [0, 1] and e.controls["head"].values == [0, 1, 2]
    figure = e.draw(**e.first_state())
    assert figure["data"][0]["z"] == torch.eye(4).tolist()
    assert "layer 1, head 2" in figure["layout"]["title"]["text"]
    assert "It opens at layer 1, head 2" in e.caption
    typed = e.draw(sentence="a b c d", layer=0, head=0, own_sentence="x y z w")
    assert typed["data"][0]["x"] == ["0:x", "1:y", "2:z", "3:w"]
