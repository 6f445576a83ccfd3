"""The ImageNet chapter's per-class analysis: what survives the seeds and what does not."""

from __future__ import annotations

import pytest

import backbones as bb


@pytest.mark.slow
def test_per_class_ranking_is_coarse_and_the_hardest_class_changes_with_the_seed():
    per_class, confusion = bb.experiments.per_class_accuracy(bb.load_digits(), seeds=(0, 1, 2, 3, 4))
    assert per_class.shape == (5, 10)
    assert int(confusion.sum()) == 5 * 360  # every test image, every seed
    perfect_always = (per_class == 1).all(dim=0)
    imperfect_always = (per_class < 1).all(dim=0)
    assert perfect_always.sum() >= 2 and imperfect_always.sum() >= 2  # the split that survives (4 and 4)
    assert len(set(per_class.argmin(dim=1).tolist())) > 1  # the hardest class is not stable


def test_chapter_02_says_whose_alexnet_number_it_prints_and_what_russakovsky_measured(chapter_text):
    text = chapter_text("02_imagenet.ipynb")
    torchvision_top1 = bb.pretrained.imagenet_weights("alexnet").meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert f"Its {torchvision_top1:.1f}% top-1 is torchvision's" in text
    # Krizhevsky et al. 2012, table 2: one CNN, 40.7% top-1 error on validation; seven CNNs, 15.3% top-5 on test
    assert "about 59% on the validation set (40.7% top-1 error)" in text and "15.3% top-5 error" in text
    assert "opened the field at 56.5%" not in text
    for measured in ("real-world size", "deformability", "amount of texture", "natural or man-made"):
        assert measured in text


def test_the_ilsvrc_winners_fall_year_by_year_each_with_its_source():
    import matplotlib

    matplotlib.use("Agg")
    winners = bb.experiments.ILSVRC_WINNERS
    years = [w.year for w in winners]
    assert years == sorted(years) and (years[0], years[-1]) == (2010, 2017)
    best = {}
    for w in winners:
        best[w.year] = min(best.get(w.year, 100), w.top5_error)
        assert w.source and 0 < w.top5_error < 30
    assert list(best.values()) == sorted(best.values(), reverse=True)  # every year's winner beat the last
    by_network = {w.network: w.top5_error for w in winners}
    assert by_network["AlexNet"] == 15.3 and by_network["ResNet"] == 3.57 and by_network["SENet"] == 2.25
    first_below_human = min(w.year for w in winners if w.top5_error < bb.experiments.HUMAN_TOP5_ERROR)
    assert first_below_human == 2015
    ax = bb.plots.plot_ilsvrc_winners(winners, bb.experiments.HUMAN_TOP5_ERROR)
    assert [round(p.get_height(), 2) for p in ax.patches] == [w.top5_error for w in winners]
    assert any("5.1%" in t.get_text() for t in ax.get_legend().get_texts())


def test_chapter_02_shows_the_winners_chart_with_alt_text(root):
    import json

    cells = json.loads((root / "chapters/02_imagenet.ipynb").read_text())["cells"]
    (cell,) = [c for c in cells if "plot_ilsvrc_winners" in "".join(c["source"])]
    assert len(cell["metadata"]["mystnb"]["image"]["alt"]) > 100 and cell["metadata"]["mystnb"]["figure"]["caption"]
