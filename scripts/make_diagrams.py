"""Draw the book's block diagrams as SVG files in assets/ (run it after changing a diagram).

    .venv/bin/python scripts/make_diagrams.py

Each diagram is data flowing upwards through boxes, as the papers draw them: a few primitives
(box, arrow, adder, label) and one function per diagram. The chapters show them with
``bb.show_diagram(name)`` next to the code that builds the block (``bb.show_source``); a test
checks that every committed SVG is what this script draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from xml.sax.saxutils import escape

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
# Fills from the book's palette, light enough for dark text; each kind of operation one colour.
FILL = {
    "conv": "#cfe3f3",
    "norm": "#fde7c4",
    "act": "#d9f0d3",
    "attn": "#e6dbf2",
    "linear": "#f6d6d6",
    "io": "#ffffff",
    "op": "#eeeeee",
}
STROKE = "#333333"


class Canvas:
    def __init__(self, width: int, height: int, title: str):
        self.width, self.height, self.title, self.items = width, height, title, []

    def box(self, cx: float, cy: float, text: str, kind: str, w: float = 150, h: float = 30) -> tuple[float, float]:
        self.items.append(
            f'<rect x="{cx - w / 2:.0f}" y="{cy - h / 2:.0f}" width="{w:.0f}" height="{h:.0f}" rx="5" '
            f'fill="{FILL[kind]}" stroke="{STROKE}" stroke-width="1.2"/>'
        )
        self.label(cx, cy + 5, text)
        return cx, cy

    def label(self, x: float, y: float, text: str, size: int = 13, anchor: str = "middle", style: str = "") -> None:
        self.items.append(
            f'<text x="{x:.0f}" y="{y:.0f}" font-family="{FONT}" font-size="{size}" '
            f'text-anchor="{anchor}" fill="#111111"{style}>{escape(text)}</text>'
        )

    def arrow(self, points: list[tuple[float, float]]) -> None:
        path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
        self.items.append(
            f'<polyline points="{path}" fill="none" stroke="{STROKE}" stroke-width="1.5" marker-end="url(#head)"/>'
        )

    def adder(self, cx: float, cy: float, r: float = 11) -> None:
        self.items.append(
            f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{r}" fill="#ffffff" stroke="{STROKE}" stroke-width="1.5"/>'
        )
        self.items.append(
            f'<path d="M{cx - 6:.0f},{cy:.0f} H{cx + 6:.0f} M{cx:.0f},{cy - 6:.0f} V{cy + 6:.0f}" '
            f'stroke="{STROKE}" stroke-width="1.5"/>'
        )

    def multiplier(self, cx: float, cy: float, r: float = 11) -> None:
        self.items.append(
            f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{r}" fill="#ffffff" stroke="{STROKE}" stroke-width="1.5"/>'
        )
        self.items.append(
            f'<path d="M{cx - 5:.0f},{cy - 5:.0f} L{cx + 5:.0f},{cy + 5:.0f} M{cx - 5:.0f},{cy + 5:.0f} '
            f'L{cx + 5:.0f},{cy - 5:.0f}" stroke="{STROKE}" stroke-width="1.5"/>'
        )

    def svg(self) -> str:
        head = (
            '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{STROKE}"/></marker></defs>'
        )
        body = "\n".join(self.items)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{escape(self.title)}">\n'
            f'<title>{escape(self.title)}</title>\n<rect width="100%" height="100%" fill="#ffffff"/>\n'
            f"{head}\n{body}\n</svg>\n"
        )


def chain(c: Canvas, x: float, y0: float, steps: list[tuple[str, str]], gap: float = 48, width: float = 150) -> float:
    """Boxes from bottom (y0) upwards, joined by arrows; returns the y of the last box."""
    y = y0
    for i, (text, kind) in enumerate(steps):
        c.box(x, y, text, kind, w=width)
        if i:
            c.arrow([(x, y + gap - 15), (x, y + 15)])
        y -= gap
    return y + gap


def residual_block() -> Canvas:
    c = Canvas(640, 470, "A plain block and a residual block (BasicBlock)")
    steps = [
        ("3×3 conv", "conv"),
        ("batch norm", "norm"),
        ("ReLU", "act"),
        ("3×3 conv", "conv"),
        ("batch norm", "norm"),
    ]
    for x, title, skip in ((140, "plain block", False), (400, "residual block", True)):
        c.label(x, 24, title, size=15, style=' font-weight="bold"')
        c.label(x, 452, "x", size=14)
        c.arrow([(x, 440), (x, 415)])
        top = chain(c, x, 400, steps)
        if skip:
            c.adder(x, top - 40)
            c.arrow([(x, top - 15), (x, top - 29)])
            c.arrow([(x, 428), (x + 110, 428), (x + 110, top - 40), (x + 12, top - 40)])
            c.label(x + 116, (428 + top) / 2, "identity", anchor="start")
            c.label(x + 116, (428 + top) / 2 + 16, "(option A when", anchor="start", size=11)
            c.label(x + 116, (428 + top) / 2 + 30, "the shape changes)", anchor="start", size=11)
            c.box(x, top - 88, "ReLU", "act")
            c.arrow([(x, top - 51), (x, top - 73)])
            c.label(x, top - 126, "relu(F(x) + x)", size=13)
            c.arrow([(x, top - 103), (x, top - 119)])
        else:
            c.box(x, top - 88, "ReLU", "act")
            c.arrow([(x, top - 15), (x, top - 73)])
            c.label(x, top - 126, "relu(F(x))", size=13)
            c.arrow([(x, top - 103), (x, top - 119)])
    return c


def bottleneck() -> Canvas:
    c = Canvas(420, 470, "The bottleneck block of ResNet-50")
    x = 170
    c.label(x, 24, "Bottleneck (ResNet-50/101/152)", size=15, style=' font-weight="bold"')
    c.label(x, 452, "x: 256 channels", size=13)
    c.arrow([(x, 440), (x, 415)])
    top = chain(
        c,
        x,
        400,
        [
            ("1×1 conv, 64 (reduce)", "conv"),
            ("batch norm, ReLU", "norm"),
            ("3×3 conv, 64", "conv"),
            ("batch norm, ReLU", "norm"),
            ("1×1 conv, 256 (expand)", "conv"),
            ("batch norm", "norm"),
        ],
        gap=44,
        width=190,
    )
    c.adder(x, top - 38)
    c.arrow([(x, top - 15), (x, top - 27)])
    c.arrow([(x, 428), (x + 130, 428), (x + 130, top - 38), (x + 12, top - 38)])
    c.label(x + 136, 250, "identity, or", anchor="start", size=12)
    c.label(x + 136, 266, "1×1 conv + BN", anchor="start", size=12)
    c.label(x + 136, 282, "(projection)", anchor="start", size=12)
    c.box(x, top - 82, "ReLU", "act", w=190)
    c.arrow([(x, top - 49), (x, top - 67)])
    return c


def attention() -> Canvas:
    c = Canvas(360, 440, "Scaled dot-product attention")
    c.label(180, 24, "Scaled dot-product attention", size=15, style=' font-weight="bold"')
    for x, name in ((100, "Q"), (180, "K"), (280, "V")):
        c.label(x, 425, name, size=14)
    c.box(140, 370, "MatMul  Q Kᵀ", "op", w=130)
    c.arrow([(100, 412), (100, 385)])
    c.arrow([(180, 412), (180, 385)])
    top = chain(c, 140, 322, [("scale by 1/√d", "op"), ("mask (optional)", "op"), ("softmax", "act")], gap=48)
    c.arrow([(140, 355), (140, 337)])
    c.box(200, top - 62, "MatMul  · V", "op", w=130)
    c.arrow([(140, top - 15), (140, top - 47)])
    c.arrow([(280, 412), (280, top - 62), (265, top - 62)])
    c.label(200, top - 110, "output", size=14)
    c.arrow([(200, top - 77), (200, top - 103)])
    return c


def multi_head_attention() -> Canvas:
    c = Canvas(540, 440, "Multi-head attention")
    c.label(260, 24, "Multi-head attention", size=15, style=' font-weight="bold"')
    c.label(260, 425, "x: (batch, tokens, embed_dim)", size=13)
    for x, name in ((120, "W_q"), (260, "W_k"), (400, "W_v")):
        c.box(x, 372, f"linear {name}", "linear", w=110)
        c.arrow([(260, 410), (x, 388)])
        c.box(x, 318, "split into h heads", "op", w=130)
        c.arrow([(x, 357), (x, 334)])
        c.arrow([(x, 303), (x if x == 260 else (200 if x < 260 else 320), 258)])
    for k in range(3):  # h heads, drawn as a stack
        c.box(260 + 8 * (2 - k), 240 - 8 * (2 - k), "", "attn", w=250, h=34)
    c.label(260, 244, "scaled dot-product attention, per head", size=12)
    c.label(412, 214, "× h heads", size=13, anchor="start")
    c.box(260, 168, "concatenate the heads", "op", w=180)
    c.arrow([(260, 222), (260, 184)])
    c.box(260, 116, "linear W_o", "linear", w=110)
    c.arrow([(260, 153), (260, 132)])
    c.label(260, 64, "output: (batch, tokens, embed_dim)", size=13)
    c.arrow([(260, 101), (260, 72)])
    return c


def encoder_block() -> Canvas:
    c = Canvas(420, 470, "The Transformer encoder block (post-norm, as Vaswani et al.)")
    x = 170
    c.label(210, 24, "Encoder block (post-norm)", size=15, style=' font-weight="bold"')
    c.label(x, 452, "x: (batch, tokens, embed_dim)", size=13)
    c.arrow([(x, 440), (x, 415)])
    c.box(x, 400, "multi-head attention", "attn", w=170)
    c.adder(x, 350)
    c.arrow([(x, 385), (x, 361)])
    c.arrow([(x, 428), (x + 120, 428), (x + 120, 350), (x + 12, 350)])
    c.box(x, 304, "layer norm", "norm")
    c.arrow([(x, 339), (x, 319)])
    c.box(x, 238, "MLP: linear, ReLU, linear", "linear", w=190)
    c.arrow([(x, 289), (x, 253)])
    c.adder(x, 188)
    c.arrow([(x, 223), (x, 199)])
    c.arrow([(x, 272), (x + 120, 272), (x + 120, 188), (x + 12, 188)])
    c.box(x, 142, "layer norm", "norm")
    c.arrow([(x, 177), (x, 157)])
    c.label(x, 86, "to the next block", size=13)
    c.arrow([(x, 127), (x, 94)])
    c.label(x + 126, 392, "residual", anchor="start", size=12)
    c.label(x + 126, 232, "residual", anchor="start", size=12)
    return c


def squeeze_excitation() -> Canvas:
    c = Canvas(560, 470, "The Squeeze-and-Excitation block")
    c.label(260, 24, "Squeeze-and-Excitation", size=15, style=' font-weight="bold"')
    x, side = 130, 340
    c.label(x, 452, "x: C × H × W", size=13)
    c.arrow([(x, 440), (x, 95)])
    c.arrow([(x, 420), (side, 420), (side, 395)])
    top = chain(
        c,
        side,
        380,
        [
            ("global average pool", "op"),
            ("FC  C → C/r", "linear"),
            ("ReLU", "act"),
            ("FC  C/r → C", "linear"),
            ("sigmoid", "act"),
        ],
        gap=50,
        width=170,
    )
    c.label(side + 92, 384, "squeeze: C × 1 × 1", anchor="start", size=11)
    c.label(side + 92, 284, "excitation", anchor="start", size=11)
    c.multiplier(x, 80)
    c.arrow([(side, top - 15), (side, 80), (x + 12, 80)])
    c.label(side - 8, top - 28, "one gate per channel, in (0, 1)", anchor="end", size=11)
    c.label(x, 40, "scale: x · gate, channel by channel", size=13)
    c.arrow([(x, 68), (x, 50)])
    return c


def mbconv() -> Canvas:
    c = Canvas(540, 560, "The MBConv block of EfficientNet")
    x = 170
    c.label(210, 24, "MBConv (EfficientNet)", size=15, style=' font-weight="bold"')
    c.label(x, 544, "x: C_in × H × W", size=13)
    c.arrow([(x, 532), (x, 507)])
    top = chain(
        c,
        x,
        492,
        [
            ("1×1 conv: C_in → t·C_in", "conv"),
            ("batch norm, SiLU", "norm"),
            ("k×k depthwise conv, stride s", "conv"),
            ("batch norm, SiLU", "norm"),
            ("squeeze-and-excitation", "attn"),
            ("1×1 conv: t·C_in → C_out", "conv"),
            ("batch norm (no activation)", "norm"),
            ("stochastic depth", "op"),
        ],
        gap=50,
        width=210,
    )
    c.label(x + 112, 497, "expansion", anchor="start", size=11)
    c.label(x + 112, 397, "one filter per channel", anchor="start", size=11)
    c.label(x + 112, 247, "projection", anchor="start", size=11)
    c.adder(x, top - 40)
    c.arrow([(x, top - 15), (x, top - 29)])
    c.arrow([(x, 520), (x + 250, 520), (x + 250, top - 40), (x + 12, top - 40)])
    c.label(x + 256, 320, "identity when", anchor="start", size=11)
    c.label(x + 256, 334, "s = 1 and", anchor="start", size=11)
    c.label(x + 256, 348, "C_in = C_out", anchor="start", size=11)
    c.label(x, top - 84, "C_out × H/s × W/s", size=13)
    c.arrow([(x, top - 51), (x, top - 77)])
    return c


def skipgram() -> Canvas:
    c = Canvas(640, 500, "Skip-gram with negative sampling")
    c.label(320, 24, "Skip-gram with negative sampling", size=15, style=' font-weight="bold"')
    c.label(320, 52, "loss = −log σ(u_o · v_c) − Σ_k log σ(−u_k · v_c)", size=14)
    left, mid, right = 120, 320, 520
    for x, word, note in (
        (left, "jumps", "a context word o"),
        (mid, "fox", "the centre word c"),
        (right, "k noise words", "drawn ∝ count^¾"),
    ):
        c.box(x, 400, word, "io", w=150)
        c.label(x, 432, note, size=11)
    c.label(320, 470, "“the quick brown fox jumps over”: with a window of 2, fox pairs with quick, brown,", size=11)
    c.label(320, 486, "jumps and over; each pair is one real example, each noise word one fake", size=11)
    for x, text in ((left, "W_out row: u_o"), (mid, "W_in row: v_c"), (right, "W_out rows: u_1 … u_k")):
        c.box(x, 330, text, "linear", w=170)
        c.arrow([(x, 385), (x, 345)])
    c.box(220, 240, "u_o · v_c", "op", w=120)
    c.box(420, 240, "u_k · v_c  (k of them)", "op", w=150)
    c.arrow([(left, 315), (left, 240), (160, 240)])
    c.arrow([(mid, 315), (mid, 280), (255, 280), (255, 255)])
    c.arrow([(mid, 280), (385, 280), (385, 255)])
    c.arrow([(right, 315), (right, 240), (495, 240)])
    c.box(220, 160, "σ(score) → 1", "act", w=140)
    c.box(420, 160, "σ(−score) → 1", "act", w=140)
    c.arrow([(220, 225), (220, 175)])
    c.arrow([(420, 225), (420, 175)])
    c.label(220, 122, "real pair: raise its score", size=11)
    c.label(420, 122, "noise: lower its scores", size=11)
    c.arrow([(220, 145), (220, 132)])
    c.arrow([(420, 145), (420, 132)])
    c.arrow([(320, 112), (320, 64)])
    c.label(330, 92, "both log-sigmoids, summed", anchor="start", size=11)
    return c


def vit() -> Canvas:
    c = Canvas(640, 560, "The Vision Transformer")
    c.label(320, 24, "Vision Transformer (ViT)", size=15, style=' font-weight="bold"')
    # the image, cut into a 3 x 3 grid of patches
    x0, y0, side = 275, 440, 30
    for r in range(3):
        for q in range(3):
            c.box(x0 + q * side + side / 2, y0 + r * side + side / 2, str(3 * r + q + 1), "io", w=side, h=side)
    c.label(320, 552, "an image cut into N = (H/P)(W/P) patches of P × P pixels", size=11)
    c.arrow([(320, 438), (320, 400)])
    c.label(330, 418, "flatten each patch, times one matrix", anchor="start", size=11)
    c.label(330, 432, "(a convolution, kernel = stride = P)", anchor="start", size=11)
    tokens = ["CLS"] + [str(i) for i in range(1, 10)]
    for i, name in enumerate(tokens):
        c.box(95 + i * 50, 385, name, "attn" if name == "CLS" else "conv", w=42, h=26)
    c.label(70, 418, "[CLS], then N patch tokens", anchor="start", size=11)
    c.arrow([(320, 372), (320, 348)])
    c.box(320, 333, "+ learned position embeddings (1 + N of them)", "op", w=440)
    c.arrow([(320, 318), (320, 290)])
    c.box(320, 275, "LayerNorm → multi-head self-attention → + residual", "attn", w=440)
    c.arrow([(320, 260), (320, 242)])
    c.box(320, 227, "LayerNorm → MLP (GELU) → + residual", "linear", w=440)
    c.label(555, 255, "× L blocks", anchor="start", size=13)
    c.label(555, 272, "pre-norm", anchor="start", size=11)
    c.arrow([(95, 212), (95, 170)])
    c.label(105, 195, "keep the [CLS] token's output", anchor="start", size=11)
    c.box(95, 155, "LayerNorm → linear", "linear", w=170)
    c.arrow([(95, 140), (95, 100)])
    c.label(95, 90, "class scores", size=13)
    return c


def compound_scaling() -> Canvas:
    c = Canvas(900, 450, "Scaling a network: wider, deeper, higher resolution, or all three")
    c.label(450, 26, "Model scaling (after Tan & Le 2019, fig. 2)", size=15, style=' font-weight="bold"')
    c.label(
        450, 48, "each box is a layer (how many: depth; how wide: channels); the square is the input image", size=11
    )
    # name, layers, layer width (channels), input side (resolution), what changed, the multipliers
    panels = [
        ("(a) baseline", 3, 60, 40, "", "d = w = r = 1"),
        ("(b) width scaling", 3, 104, 40, "wider", "w > 1"),
        ("(c) depth scaling", 6, 60, 40, "deeper", "d > 1"),
        ("(d) resolution scaling", 3, 60, 64, "higher resolution", "r > 1"),
        ("(e) compound scaling", 5, 84, 54, "all three, by one φ", "d = αᵠ, w = βᵠ, r = γᵠ"),
    ]
    base = 310  # the top of the input; the layers stack upwards from just above it
    for i, (name, layers, width, side, changed, rule) in enumerate(panels):
        x = 90 + i * 180
        c.box(x, base + side / 2, "", "io", w=side, h=side)
        c.label(x, base + side + 15, "input", size=10)
        top = base - 22
        c.arrow([(x, base), (x, top + 9)])
        for k in range(layers):
            c.box(x, top - k * 26, "", "conv", w=width, h=16)
        last = top - (layers - 1) * 26
        c.arrow([(x, last - 8), (x, last - 30)])
        if changed:
            c.label(x, last - 40, changed, size=12, style=' font-style="italic"')
        c.label(x, 414, name, size=12, style=' font-weight="bold"')
        c.label(x, 432, rule, size=11)
    return c


DIAGRAMS = {
    "residual_block": residual_block,
    "bottleneck": bottleneck,
    "attention": attention,
    "multi_head_attention": multi_head_attention,
    "encoder_block": encoder_block,
    "squeeze_excitation": squeeze_excitation,
    "mbconv": mbconv,
    "skipgram": skipgram,
    "vit": vit,
    "compound_scaling": compound_scaling,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in DIAGRAMS.items():
        (args.out / f"{name}.svg").write_text(draw().svg(), encoding="utf-8")
        print(f"wrote {args.out / name}.svg")


if __name__ == "__main__":
    main()
