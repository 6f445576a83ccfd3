"""The Colab GPU path, rehearsed (issue 29): every chapter's gpu profile executed on a CPU, offline.

``BACKBONES_PROFILE=gpu`` with ``BACKBONES_REHEARSAL`` pointing at stand-ins made here
(``tests/rehearsal.py``): every gpu branch and data source of the chapters runs, at token sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbclient
import nbformat
import pytest
import torch

import backbones as bb
from backbones import sources
from backbones.book import MOVED, chapter_notebooks
from backbones.runtime import Profile
from rehearsal import make_standins
from test_student_notebooks import opening_and_exercises

ROOT = Path(__file__).resolve().parents[1]
FALLBACKS = ("using scikit-learn's digits instead", "random weights kept", "unavailable", "using the packaged MiniLM")
CIFAR = "CIFAR-10, rehearsal stand-in"
# what each chapter's gpu profile must report using (a fallback would report something else)
EXPECTED = {
    "01_getting_started": [CIFAR],
    "02_imagenet": [CIFAR, "loaded torchvision's ResNet50_Weights.IMAGENET1K_V2 (rehearsal stand-in"],
    "04_resnet": [CIFAR, "loaded torchvision's ResNet50_Weights.IMAGENET1K_V2 (rehearsal stand-in"],
    "05_se_efficientnet": [CIFAR, "loaded torchvision's EfficientNet_B0_Weights.IMAGENET1K_V1 (rehearsal stand-in"],
    "06_word_embeddings": ["text8"],
    "07_attention": ["bert-base-uncased from the Hugging Face hub (rehearsal stand-in", "(12 layers x 12 heads)"],
    "09_vit": [CIFAR, "loaded torchvision's ViT_B_16_Weights.IMAGENET1K_V1 (rehearsal stand-in"],
}


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> Path:
    return make_standins(tmp_path_factory.mktemp("standins"))


@pytest.fixture
def rehearsal(standins, monkeypatch, tmp_path) -> Path:
    """The gpu profile in the rehearsal, with empty caches: nothing real is within reach."""
    monkeypatch.setenv("BACKBONES_REHEARSAL", str(standins))
    monkeypatch.setenv("BACKBONES_PROFILE", "gpu")
    monkeypatch.setenv("BACKBONES_DEVICE", "cpu")
    monkeypatch.setenv("BACKBONES_OFFLINE", "1")  # the rehearsal needs no network, and tries none
    monkeypatch.setenv("BACKBONES_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "huggingface"))
    return standins


def test_every_download_goes_through_the_seam():
    """No module of the library but ``sources`` reaches for a server or a download cache."""
    network = re.compile(
        r"urlretrieve|urlopen|download=True|get_state_dict\(|load_state_dict_from_url|snapshot_download"
        r"|from_pretrained\(\s*(prefer|\"bert)|create_connection"
    )
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in (ROOT / "lib" / "backbones").rglob("*.py")
        if path.name != "sources.py"
        for line in path.read_text().splitlines()
        if network.search(line)
    ]
    assert not offenders, offenders


def test_the_rehearsal_serves_every_source_from_its_stand_in(rehearsal):
    data = bb.load_image_data()
    assert data.name == "cifar10" and (len(data.train), len(data.test)) == (500, 200)
    assert data.note.startswith(CIFAR) and "integrity check skipped" in data.note
    x, y = data.test[0]
    assert x.shape == (3, 32, 32) and 0 <= y < 10 and data.classes[0] == "airplane"
    import torchvision

    for name in ("resnet50", "efficientnet_b0", "vit_b_16"):
        loaded, note = bb.pretrained.load_imagenet_weights(torchvision.models.get_model(name), name)
        assert loaded and "rehearsal stand-in" in note, note
    text = bb.text.load_text_model("bert-base-uncased")
    assert text.name == "bert-base-uncased" and "rehearsal stand-in" in text.note
    assert (text.model.config.num_hidden_layers, text.model.config.num_attention_heads) == (12, 12)
    minilm = bb.text.load_text_model()
    sentence = "Karel is teacher and Mario is plumber."
    assert text.tokenizer(sentence)["input_ids"] == minilm.tokenizer(sentence)["input_ids"]  # the real WordPiece
    corpus = bb.word2vec.load_corpus("text8")
    assert corpus.name == "text8" and "rehearsal stand-in" in corpus.note


def test_outside_the_rehearsal_an_offline_run_says_why_for_every_source(monkeypatch, tmp_path):
    monkeypatch.delenv("BACKBONES_REHEARSAL", raising=False)
    monkeypatch.setenv("BACKBONES_OFFLINE", "1")
    monkeypatch.setenv("BACKBONES_DATA", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "huggingface"))
    for name in ("cifar10", "weights/resnet50", "text8", "bert-base-uncased"):
        fetched = sources.fetch(name)
        assert not fetched and "BACKBONES_OFFLINE=1" in fetched.note and not fetched.standin, (name, fetched)


def test_a_rehearsal_keeps_every_choice_and_cuts_every_size():
    profile = Profile("gpu", "test", rehearsal=True)
    assert profile.pick(quick="digits", gpu="cifar10") == "cifar10"
    assert profile.pick(quick=2, gpu=4) == 4  # a patch size is a choice
    assert profile.size(quick=300, gpu=3000) == 17 and profile.size(quick=13, gpu=21, paper=51) == 3
    assert profile.size(quick=(0,), gpu=(0, 1, 2)) == (0,)
    assert profile.size(quick=[128, 256, 512, 1024], gpu=[512, 1024]) == [128, 256]
    assert Profile("gpu", "test").size(quick=300, gpu=3000) == 3000


def _outputs(nb) -> str:
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") if output.get("output_type") == "stream" else "")
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)


def _execute(nb, folder: Path) -> str:
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(folder)}}
    ).execute()  # raises on a cell's error
    return _outputs(nb)


@pytest.mark.slow
@pytest.mark.rehearsal
@pytest.mark.parametrize("master", [p for p in chapter_notebooks(ROOT)], ids=lambda p: p.stem)
def test_every_chapter_runs_its_gpu_profile_in_the_rehearsal(master, rehearsal):
    """The whole chapter, gpu profile, stand-in sources: no error, the gpu profile's data and models
    reported (not a fallback), and every figure and table the chapter draws, drawn."""
    nb = nbformat.read(master, as_version=4)
    shown = _execute(nb, master.parent)
    assert "profile: gpu" in shown and "rehearsal" in shown
    for expected in EXPECTED.get(master.stem, []):
        assert expected in shown, f"{master.stem} does not report {expected!r}"
    if "records.beside(" in master.read_text():  # the reader's numbers beside the book's (item 5)
        assert "in this run (profile gpu" in shown and "the book's quick build: " in shown
    fallbacks = [f for f in FALLBACKS if f in shown]
    assert not fallbacks, f"{master.stem} fell back: {fallbacks}"
    for i, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and not tags & {"remove-output", "remove-cell", "skip-execution"}:
            if re.search(r"\b(plt\.show|show_diagram|plot_|fig\.)", cell.source):
                kinds = {k for o in cell.outputs for k in o.get("data", {})}
                drawn = {"image/png", "image/svg+xml", "text/html", "application/vnd.jupyter.widget-view+json"}
                assert kinds & drawn, f"{master.stem}, cell {i}: no figure"


@pytest.mark.slow
@pytest.mark.rehearsal
@pytest.mark.parametrize(
    "student", [p for p in sorted((ROOT / "student").glob("*.ipynb")) if p.stem not in MOVED], ids=lambda p: p.stem
)
def test_every_student_notebook_runs_its_gpu_profile_in_the_rehearsal(student, rehearsal):
    """A student's notebook in the rehearsal: its set-up, then its exercise section (the rest is
    the master's, run above), with "not implemented yet" and no error."""
    nb = nbformat.read(student, as_version=4)
    nb.cells = opening_and_exercises(nb)
    shown = _execute(nb, student.parent)
    assert "not implemented yet" in shown or "not answered yet" in shown


def test_mixed_precision_on_a_gpu_takes_the_float16_path_with_a_scaler(monkeypatch):
    """What a T4 runs (float16 autocast, a GradScaler), run on the CPU with the device's answers
    patched: the loss scale is used and the model still learns."""
    from backbones import train

    monkeypatch.setattr(train, "amp_dtype", lambda device: torch.float16)
    scalers = []
    real = torch.amp.GradScaler

    def recording(*args, **kwargs):
        scalers.append(real(*args, **kwargs))
        return scalers[-1]

    monkeypatch.setattr(torch.amp, "GradScaler", recording)
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    history = bb.fit(model, loader, steps=60, lr=0.1, device="cpu")
    assert scalers and scalers[0].is_enabled() and scalers[0].get_scale() > 1
    assert history.loss[-1] < history.loss[0]
