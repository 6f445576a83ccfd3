"""Stand-ins for everything the gpu profile downloads, made at test time, never committed.

``make_standins(folder)`` lays them out as :func:`backbones.sources.standin_path` expects, with
the real formats and shapes and random values:

- CIFAR-10 in torchvision's on-disk format (``cifar-10-batches-py``: five training batches and a
  test batch of pickled uint8 rows, ``batches.meta`` with the ten class names), 100 random images
  per training batch and 200 in the test batch;
- torchvision's ImageNet weights for every model a chapter loads, under torchvision's file names,
  each the state dict of the model torchvision builds (random initialisation);
- bert-base-uncased in the Hugging Face hub's cache layout (``models--bert-base-uncased/refs/main``
  and ``snapshots/<commit>/``): bert-base's 12 layers x 12 heads x 768 wide with random weights (the
  feed-forward width, which no chapter reads, cut from 3,072 to 768), and the real uncased WordPiece
  tokenizer (MiniLM's vocabulary is bert-base-uncased's);
- a text8-like ``text8.zip``: one line of lower-case words separated by single spaces, from the
  corpus gensim ships.
"""

from __future__ import annotations

import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch

from backbones.sources import BERT, standin_path

WEIGHTS = ("resnet50", "efficientnet_b0", "vit_b_16")  # what the chapters' gpu profile loads
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_standins(folder: Path) -> Path:
    """Every stand-in, in ``folder``; returns it (the value of ``BACKBONES_REHEARSAL``)."""
    folder.mkdir(parents=True, exist_ok=True)
    cifar10(standin_path("cifar10", folder))
    for model in WEIGHTS:
        weights(model, standin_path(f"weights/{model}", folder))
    bert(standin_path(BERT, folder))
    text8(standin_path("text8", folder))
    return folder


def cifar10(root: Path, *, per_batch: int = 100, test: int = 200) -> None:
    batches = root / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test if name == "test_batch" else per_batch
        entry = {
            "batch_label": name,
            "labels": [int(k) for k in rng.integers(0, 10, n)],
            "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            "filenames": [f"standin_{k}.png" for k in range(n)],
        }
        (batches / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (batches / "batches.meta").write_bytes(pickle.dumps(meta))


def weights(model: str, path: Path) -> None:
    import torchvision

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.get_model(model, weights=None).state_dict(), path)


def bert(hub: Path) -> None:
    from transformers import BertConfig, BertModel

    from backbones.text import minilm_path

    repo = hub / f"models--{BERT.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    config = BertConfig(
        vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=768
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(snapshot, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(minilm_path() / name, snapshot / name)  # bert-base-uncased's WordPiece, as MiniLM ships it


def text8(path: Path, *, words: int = 200_000) -> None:
    from gensim.test.utils import datapath

    text = Path(datapath("lee_background.cor")).read_text(encoding="utf-8").lower()
    vocabulary = re.findall(r"[a-z]+", text)
    repeated = (vocabulary * (words // len(vocabulary) + 1))[:words]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("text8", " " + " ".join(repeated))  # text8 starts with a space and has no newline
