"""The book's explorations, one or more per chapter: each takes what its chapter has already
computed (so that drawing every state costs the build little) and returns an
:class:`~backbones.explore.Exploration`, which :func:`backbones.explore.show` puts on the page,
live in a notebook and precomputed on the rendered book.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from backbones.explore import Control, Exploration, photo_layer

BLUE, ORANGE, GREEN, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"


def _hidden_axes(**extra) -> dict:
    return {"visible": False, "showgrid": False, "zeroline": False, **extra}


# -- 01: what the first network believes, image by image ---------------------------------------------------


def predictions(
    images: torch.Tensor,
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    picks: Sequence[int],
) -> Exploration:
    """A slider over test images (``picks``): the image, and the network's probability for every
    class, the true one marked. ``images`` are unnormalised, (N, C, H, W) in [0, 1]."""

    def draw(image: str) -> dict:
        i = int(image.split(":")[0])
        p = probabilities[i].tolist()
        picture = images[i].permute(1, 2, 0).squeeze(-1).clamp(0, 1).numpy()
        true, guess = int(labels[i]), int(np.argmax(p))
        colours = [GREEN if c == true else (ORANGE if c == guess else GREY) for c in range(len(classes))]
        verdict = "right" if true == guess else f"wrong: it says {classes[guess]}"
        return {
            "data": [
                {
                    "type": "bar",
                    "x": list(classes),
                    "y": p,
                    "marker": {"color": colours},
                    "xaxis": "x2",
                    "yaxis": "y2",
                    "hovertemplate": "class %{x}: %{y:.1%}<extra></extra>",
                    "name": "probability",
                }
            ],
            "layout": {
                "title": {"text": f"test image {i}, a {classes[true]} ({verdict}, {max(p):.0%} sure)"},
                "images": [photo_layer(picture)],
                "xaxis": _hidden_axes(domain=[0, 0.3], range=[-0.5, picture.shape[1] - 0.5]),
                "yaxis": _hidden_axes(range=[picture.shape[0] - 0.5, -0.5], scaleanchor="x"),
                "xaxis2": {"domain": [0.38, 1], "title": {"text": "class (green: the true one)"}, "type": "category"},
                "yaxis2": {"range": [0, 1], "title": {"text": "probability"}, "anchor": "x2"},
                "showlegend": False,
            },
        }

    names = [f"{i}: {classes[int(labels[i])]}" for i in picks]
    return Exploration(
        name="predictions",
        draw=draw,
        controls={"image": Control("test image", names)},
        caption="Move the slider through the test images: the first ones are the network's mistakes. "
        "How sure is it when it is wrong, and which class comes second?",
        alt="A test image beside a bar chart of the network's probability for each of the classes, "
        "the true class in green and a wrong guess in orange.",
        height=360,
    )


# -- 02: the top five of a pretrained network, photograph by photograph ------------------------------------


def top_five(
    names: Sequence[str], photos: Sequence[np.ndarray], predictions: Sequence[Sequence[tuple[str, float]]]
) -> Exploration:
    """A menu of photographs: the photograph and its top-5 classes, with hover."""
    by_name = dict(zip(names, zip(photos, predictions)))

    def draw(photo: str) -> dict:
        picture, top5 = by_name[photo]
        classes, p = [c for c, _ in top5][::-1], [float(q) for _, q in top5][::-1]
        return {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "x": p,
                    "y": classes,
                    "xaxis": "x2",
                    "yaxis": "y2",
                    "marker": {"color": [GREY] * 4 + [BLUE]},
                    "hovertemplate": "%{y}: %{x:.1%}<extra></extra>",
                }
            ],
            "layout": {
                "title": {
                    "text": f"{photo}: {classes[-1]} ({p[-1]:.0%}); the rest share {1 - sum(p):.0%} beyond the top five"
                },
                "images": [photo_layer(picture)],
                "xaxis": _hidden_axes(domain=[0, 0.4], range=[-0.5, picture.shape[1] - 0.5]),
                "yaxis": _hidden_axes(range=[picture.shape[0] - 0.5, -0.5], scaleanchor="x"),
                "xaxis2": {"domain": [0.62, 1], "range": [0, 1], "title": {"text": "probability"}},
                "yaxis2": {"anchor": "x2", "automargin": True, "type": "category"},
                "showlegend": False,
            },
        }

    return Exploration(
        name="top-five",
        draw=draw,
        controls={"photo": Control("photograph", list(names), kind="menu")},
        caption="Choose a photograph: how sure is the network of its first answer, and are the runners-up "
        "near misses (other cats, other cups) or unrelated? Hover a bar for its probability.",
        alt="A photograph beside a bar chart of the pretrained network's five most probable ImageNet classes for it.",
        height=380,
    )


# -- 03: receptive fields of AlexNet and VGG-16, layer by layer, on a photograph -------------------------


def _map_sizes(fields, input_size: int) -> list[int]:
    sizes, n = [], input_size
    for f in fields:
        n = (n + 2 * f.padding - (f.dilation * (f.kernel - 1) + 1)) // f.stride + 1
        sizes.append(n)
    return sizes


def _box(cx: float, cy: float, size: int) -> tuple[list[float], list[float]]:
    h = size / 2
    return [cx - h, cx + h, cx + h, cx - h, cx - h], [cy - h, cy - h, cy + h, cy + h, cy - h]


UNITS = {"centre": 0.5, "a quarter in": 0.25, "corner": 0.0}


def layer_names(model: torch.nn.Module, fields: Sequence) -> list[str]:
    """conv1, conv2, pool1, ...: each convolution and pooling layer counted by its kind."""
    counts: dict[str, int] = {}
    names = []
    for field in fields:
        kind = "conv" if isinstance(model.get_submodule(field.name), torch.nn.Conv2d) else "pool"
        counts[kind] = counts.get(kind, 0) + 1
        names.append(f"{kind}{counts[kind]}")
    return names


def receptive_fields(photo: np.ndarray, models: dict[str, torch.nn.Module]) -> Exploration:
    """A slider over layers and a menu of units (centre, a quarter in, the corner): the receptive
    field of that unit after that many layers, for each network, drawn on the photograph. A
    network with fewer layers stays at its last."""
    from backbones.receptive_field import receptive_fields as fields_of

    size = photo.shape[0]
    # the layers' order from one pass at 64 pixels (cheap); their geometry does not depend on the size
    networks = {name: fields_of(model, input_size=64) for name, model in models.items()}
    named = {name: layer_names(models[name], fields) for name, fields in networks.items()}
    maps = {name: _map_sizes(fields, size) for name, fields in networks.items()}
    depth = max(len(f) for f in networks.values())
    colours = dict(zip(networks, (ORANGE, BLUE, GREEN)))

    def draw(layers: int, unit: str) -> dict:
        data, titles = [], []
        for name, fields in networks.items():
            k = min(layers, len(fields)) - 1
            field, n = fields[k], maps[name][k]
            i = round(UNITS[unit] * (n - 1))
            centre = field.start + i * field.jump
            xs, ys = _box(centre, centre, field.size)
            outside = max(0.0, field.size / 2 - centre - 0.5)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs,
                    "y": ys,
                    "name": f"{name} {named[name][k]}",
                    "line": {"color": colours[name], "width": 3},
                    "hovertemplate": f"{name}, {named[name][k]}: field {field.size}x{field.size}, "
                    f"units {field.jump} px apart, a {n}x{n} map<extra></extra>",
                }
            )
            at = f"{name} {named[name][k]}" + (" (its last)" if layers > len(fields) else "")
            titles.append(f"{at}: {field.size} px" + (f", {outside:.0f} px of it padding" if outside else ""))
        return {
            "data": data,
            "layout": {
                "title": {"text": "<br>".join(titles), "font": {"size": 13}},
                "images": [photo_layer(photo)],
                "xaxis": _hidden_axes(range=[-110, size + 110], constrain="domain"),
                "yaxis": _hidden_axes(range=[size + 110, -110], scaleanchor="x", constrain="domain"),
                "shapes": [
                    {
                        "type": "rect",
                        "x0": -0.5,
                        "y0": -0.5,
                        "x1": size - 0.5,
                        "y1": size - 0.5,
                        "line": {"color": GREY, "width": 1, "dash": "dot"},
                    }
                ],
                "legend": {"orientation": "h", "y": -0.02},
            },
        }

    return Exploration(
        name="receptive-fields",
        draw=draw,
        controls={
            "layers": Control("layers", list(range(1, depth + 1)), start=5),
            "unit": Control("unit", list(UNITS), kind="menu"),
        },
        caption="Move the slider: AlexNet's field leaps with its 11×11, stride-4 first layer, VGG-16's "
        "grows by small steps and catches up by its last layer. Choose the corner unit: much of its "
        "field lies outside the photograph, over zero padding.",
        alt="A photograph of a cat with two squares on it, AlexNet's receptive field in orange and "
        "VGG-16's in blue, for the unit at the centre after five layers.",
        height=560,
    )


# -- 04: the gradient's norm block by block, plain and residual, by depth ----------------------------------


def gradient_flow_by_depth(flows: dict[int, dict[str, Sequence[float]]], setting: str) -> Exploration:
    """A slider over depths: the norm of the loss gradient at every block's input, first block to
    last, for the plain and the residual network of that depth (``flows[depth][name]``), measured
    as ``setting`` says."""
    colours = {"plain": ORANGE, "ResNet": BLUE}
    every = [v for by in flows.values() for norms in by.values() for v in norms]
    top, low = max(every), min(v for v in every if v > 0)

    def draw(depth: int) -> dict:
        data, ratios = [], []
        for name, norms in flows[depth].items():
            norms = [float(v) for v in norms]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": list(range(1, len(norms) + 1)),
                    "y": norms,
                    "name": f"{name}-{depth}",
                    "line": {"color": colours.get(name, GREY)},
                    "hovertemplate": f"{name}-{depth}, block %{{x}}: %{{y:.2e}}<extra></extra>",
                }
            )
            ratios.append(f"{name} {norms[0] / norms[-1]:.2g}")
        return {
            "data": data,
            "layout": {
                "title": {
                    "text": f"depth {depth}, {setting}:<br>the first block's gradient over the last's: "
                    + ", ".join(ratios),
                    "font": {"size": 13},
                },
                "xaxis": {"title": {"text": "block (input side on the left)"}},
                "yaxis": {
                    "title": {"text": "gradient norm"},
                    "type": "log",
                    "range": [float(np.log10(low)) - 0.3, float(np.log10(top)) + 0.3],
                },
            },
        }

    depths = sorted(flows)
    return Exploration(
        name="gradient-flow",
        draw=draw,
        controls={"depth": Control("depth", depths)},
        caption=f"Move the slider from depth {depths[0]} to {depths[-1]} and read the ratio in the title: "
        "how far the plain network's gradient at its first block strays from its last block's as it "
        "deepens, against the residual network's. Hover a point for its value.",
        alt=f"Gradient norm per block on a log scale for a plain and a residual network of {depths[0]} "
        f"layers, {setting}.",
        height=420,
    )


# -- 05: compound scaling, phi by phi, against the released B0-B7 ------------------------------------------


def compound_scaling(family: Sequence[dict], rule: Callable[[float], tuple[float, float, int]]) -> Exploration:
    """A phi slider: the rule's depth, width and resolution multipliers and its multiply-adds
    (``rule(phi)``), beside the released model's where phi is B0-B7's index."""
    released = {row["phi"]: row for row in family}
    parts = ["depth", "width", "resolution", "multiply-adds"]

    def draw(phi: float) -> dict:
        d, w, r = rule(phi)
        ours = [d, w, r / 224, d * w**2 * (r / 224) ** 2]
        data = [
            {
                "type": "bar",
                "x": parts,
                "y": ours,
                "name": f"the rule at phi = {phi:g}",
                "marker": {"color": BLUE},
                "hovertemplate": "%{x}: x%{y:.2f}<extra>the rule</extra>",
            }
        ]
        row = released.get(phi)
        theirs = [row["depth"], row["width"], row["resolution"] / 224, row["ratio"]] if row else [None] * 4
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": parts,
                "y": theirs,
                "name": f"{row['name']} as released" if row else "released (at whole phi only)",
                "marker": {"color": ORANGE, "size": 12, "symbol": "diamond"},
                "hovertemplate": "%{x}: x%{y:.2f}<extra>released</extra>",
            }
        )
        title = (
            f"phi = {phi:g}: depth x{d:.2f}, width x{w:.2f}, {r} px; "
            f"multiply-adds x{ours[3]:.1f} (2^phi = {2**phi:.1f})"
        )
        return {
            "data": data,
            "layout": {
                "title": {"text": title, "font": {"size": 13}},
                "yaxis": {"type": "log", "range": [-0.1, 2.2], "title": {"text": "times B0's"}},
                "legend": {"orientation": "h", "y": -0.15},
            },
        }

    phis = [p / 2 for p in range(0, 15)]
    return Exploration(
        name="compound-scaling",
        draw=draw,
        controls={"phi": Control("phi", phis)},
        caption="Move phi: every step of 1 multiplies the multiply-adds by 1.2 x 1.1² x 1.15² = 1.92 (the "
        "paper's target is 2), shared out as depth 1.2x, width 1.1x and resolution 1.15x. At whole phi "
        "the diamonds are the released model: B1-B7 do not follow the rule exactly (look at B7's depth, "
        "3.1 against the rule's 3.6).",
        alt="Bars of the depth, width, resolution and multiply-add multipliers of compound scaling at "
        "phi = 0, all 1, with diamonds for EfficientNet-B0 as released.",
        height=400,
    )


# -- 06: a word-vector projector ---------------------------------------------------------------------------


def word_projector(
    lookup: Callable[[list[str]], torch.Tensor],
    groups: dict[str, list[tuple[str, str]]],
    pca: Callable[[torch.Tensor], tuple[torch.Tensor, float]],
) -> Exploration:
    """A menu of word-pair groups (``a -> b``): the pairs' 2-D principal components, an arrow per
    pair, the words on hover; live, type your own pairs ("man woman, king queen")."""

    def draw(group: str, pairs: str = "") -> dict:
        chosen = groups[group]
        if pairs.strip():
            chosen = [tuple(p.split()) for p in pairs.split(",") if p.strip()]
            if any(len(p) != 2 for p in chosen):
                raise ValueError("type pairs of words separated by commas: man woman, king queen")
        words = [w for pair in chosen for w in pair]
        points, kept = pca(lookup(words))
        points = points.tolist()
        data = []
        for k, (a, b) in enumerate(chosen):
            (x0, y0), (x1, y1) = points[2 * k], points[2 * k + 1]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers+text",
                    "x": [x0, x1],
                    "y": [y0, y1],
                    "text": [a, b],
                    "textposition": "top center",
                    "line": {"color": BLUE, "width": 1.5},
                    "marker": {"size": [6, 10], "symbol": ["circle", "triangle-up"], "color": BLUE},
                    "hovertemplate": "%{text}<extra>" + f"{a} -> {b}" + "</extra>",
                    "showlegend": False,
                }
            )
        return {
            "data": data,
            "layout": {
                "title": {
                    "text": f"{group if not pairs.strip() else 'your pairs'}: the first two principal "
                    f"components keep {kept:.0%} of the variance"
                },
                "xaxis": {"title": {"text": "PC 1"}, "zeroline": False},
                "yaxis": {"title": {"text": "PC 2"}, "zeroline": False, "scaleanchor": "x"},
            },
        }

    return Exploration(
        name="word-projector",
        draw=draw,
        controls={"group": Control("pairs", list(groups), kind="menu")},
        typed={"pairs": ""},
        caption="Choose a relation: the more alike its offsets, the more parallel the arrows. Two "
        "principal components flatter them; the table below measures the offsets in all 50 dimensions "
        "(male to female most alike, present to past least). Hover a point for its word; live in a "
        "notebook, type your own pairs.",
        alt="Word pairs projected on two principal components, each pair joined by an arrow; the "
        "arrows of the male-female pairs run roughly parallel.",
        height=460,
    )


# -- 07: every head's attention, sentence by sentence ------------------------------------------------------


def attention_heads(
    attention: Callable[[str], tuple[list[str], torch.Tensor]],
    sentences: Sequence[str],
    layers: int,
    heads: int,
    start: tuple[int, int] = (0, 0),
) -> Exploration:
    """A menu of sentences and sliders over layers and heads: that head's attention, each row a
    token attending (queries) and each column a token attended to; live, type a sentence. Layers
    and heads are counted from 0, as the chapter prints them; ``start`` is where it opens."""
    cache = {s: attention(s) for s in sentences}

    def draw(sentence: str, layer: int, head: int, own_sentence: str = "") -> dict:
        text = own_sentence.strip() or sentence
        tokens, weights = cache[text] if text in cache else attention(text)
        labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
        z = weights[layer, head]
        strongest = z.max(dim=1).values.mean().item()
        return {
            "data": [
                {
                    "type": "heatmap",
                    "z": z.tolist(),
                    "x": labels,
                    "y": labels,
                    "colorscale": "Viridis",
                    "zmin": 0,
                    "zmax": 1,
                    "hovertemplate": "%{y} attends to %{x}: %{z:.2f}<extra></extra>",
                }
            ],
            "layout": {
                "title": {
                    "text": f"layer {layer}, head {head}: each row's largest weight is {strongest:.2f} on average",
                    "font": {"size": 13},
                },
                "xaxis": {
                    "title": {"text": "attended to (key)"},
                    "tickangle": -60,
                    "type": "category",
                    "automargin": True,
                },
                "yaxis": {
                    "title": {"text": "attending (query)"},
                    "autorange": "reversed",
                    "type": "category",
                    "automargin": True,
                },
            },
        }

    return Exploration(
        name="attention-heads",
        draw=draw,
        controls={
            "sentence": Control("sentence", list(sentences), kind="menu"),
            "layer": Control("layer", list(range(layers)), start=start[0]),
            "head": Control("head", list(range(heads)), start=start[1]),
        },
        typed={"own_sentence": ""},
        caption=f"It opens at layer {start[0]}, head {start[1]}, the head that gives 'animal' the largest share "
        "of the attention of 'it'. Switch the sentence to its control (wide for tired, so that 'it' is the street): a "
        "head that resolves the pronoun moves the row of 'it' from 'animal' to 'street'. Does this one? "
        "Then look for heads whose pattern does not change with the sentence. Live in a notebook, type "
        "your own sentence.",
        alt="A heat map of one attention head's weights over the tokens of 'The animal didn't cross the "
        "street because it was too tired.', queries as rows and keys as columns.",
        height=520,
    )


# -- 08: the sinusoidal encoding, dimension by dimension ---------------------------------------------------


def sinusoids(encoding: torch.Tensor) -> Exploration:
    """A slider over the encoding's dimension pairs: sin and cos of that pair over the positions,
    and the dot product of every position with position 0, from the whole encoding."""
    length, dim = encoding.shape
    similarity = (encoding @ encoding[0]).tolist()

    def draw(pair: int) -> dict:
        i = pair
        wavelength = 2 * np.pi * 10000 ** (2 * i / dim)
        positions = list(range(length))
        return {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": positions,
                    "y": encoding[:, 2 * i + k].tolist(),
                    "name": f"dimension {2 * i + k} ({wave})",
                    "marker": {"size": 4},
                    "line": {"color": colour},
                }
                for k, wave, colour in ((0, "sin", BLUE), (1, "cos", ORANGE))
            ]
            + [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": positions,
                    "y": [s / (dim / 2) for s in similarity],
                    "name": "PE(0)·PE(pos) / (E/2), all dimensions",
                    "line": {"color": GREY, "dash": "dot"},
                }
            ],
            "layout": {
                "title": {
                    "text": f"pair {i} of {dim // 2}: wavelength {wavelength:,.1f} positions"
                    + (" (longer than the sequence)" if wavelength > length else "")
                },
                "xaxis": {"title": {"text": "position"}},
                "yaxis": {"range": [-1.1, 1.1], "title": {"text": "value"}},
                "legend": {"orientation": "h", "y": -0.2},
            },
        }

    return Exploration(
        name="sinusoids",
        draw=draw,
        controls={"pair": Control("dimension pair", list(range(dim // 2)))},
        caption="Move the slider: the first pairs turn fast (a wavelength of 6 positions), the last ones "
        "so slowly that over 64 positions they barely move. Together they give every position its own "
        "vector. The dotted line (all dimensions) falls from 1 to about 0.4 as the offset grows, with "
        "ripples: nearer positions are more alike, roughly. It depends only on the offset, so position 0 "
        "stands for any.",
        alt="The sine and cosine of the first dimension pair of the positional encoding over 64 "
        "positions, and the dot product of each position's encoding with position 0's.",
        height=400,
    )


# -- 09: the patch size: tokens, cost, and the grid on the photograph -------------------------------------


def patch_sizes(
    photo: np.ndarray, cost: Callable[[int], dict], sizes: Sequence[int] = (8, 14, 16, 28, 32, 56), start: int = 16
) -> Exploration:
    """A slider over patch sizes: the grid on the photograph, a token per patch on hover, and the
    encoder's cost at that size (``cost(patch_size)``, :func:`backbones.models.vit.cost`)."""
    size = photo.shape[0]

    def draw(patch: int) -> dict:
        c = cost(patch)
        n = size // patch
        xs, ys = [], []
        for edge in range(0, size + 1, patch):
            xs += [edge - 0.5, edge - 0.5, None, -0.5, size - 0.5, None]
            ys += [-0.5, size - 0.5, None, edge - 0.5, edge - 0.5, None]
        centres = [(patch * (k % n) + patch / 2, patch * (k // n) + patch / 2) for k in range(n * n)]
        gmacs = (c["linear_macs"] + c["attention_macs"]) / 1e9
        return {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs,
                    "y": ys,
                    "hoverinfo": "skip",
                    "line": {"color": "white", "width": 1},
                    "showlegend": False,
                },
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [x for x, _ in centres],
                    "y": [y for _, y in centres],
                    "marker": {"size": max(4, patch // 3), "color": "rgba(255,255,255,0.01)"},
                    "text": [f"token {k + 1} (row {k // n}, column {k % n})" for k in range(n * n)],
                    "hovertemplate": "%{text}<extra></extra>",
                    "showlegend": False,
                },
            ],
            "layout": {
                "title": {
                    "text": f"patch {patch}: {n}x{n} = {n * n} tokens + [CLS]; {gmacs:.1f} GMACs an image "
                    f"(attention {c['attention_share']:.0%}); attention weights {c['attention_matrix_mb']:.0f} MB",
                    "font": {"size": 13},
                },
                "images": [photo_layer(photo)],
                "xaxis": _hidden_axes(range=[-0.5, size - 0.5]),
                "yaxis": _hidden_axes(range=[size - 0.5, -0.5], scaleanchor="x"),
            },
        }

    return Exploration(
        name="patch-sizes",
        draw=draw,
        controls={"patch": Control("patch size", list(sizes), start=start)},
        caption="Move the slider from 16 to 8: four times the tokens, more than four times the work, and "
        "sixteen times the attention weights. Hover a patch for its place in the sequence.",
        alt="A 224-pixel photograph of a cat cut by a white grid into 14 by 14 patches of 16 pixels, "
        "with the number of tokens and the encoder's cost in the title.",
        height=520,
    )
