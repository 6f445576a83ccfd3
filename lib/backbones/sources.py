"""Every download of the book in one place: where it comes from, where it is kept, how it is checked.

The gpu profile (Colab) reads four things from the network; the quick profile reads none.

============================  ==========================================  ==============================
source                        cached in                                   checked by
============================  ==========================================  ==============================
``cifar10``                   ``$BACKBONES_DATA/cifar-10-batches-py``     torchvision's MD5 of each file
``weights/<model>``           torch's hub folder, ``checkpoints/``        the SHA-256 prefix in the name
``text8``                     ``$BACKBONES_DATA/text8.zip``               a zip holding ``text8``
``bert-base-uncased``         the Hugging Face hub's cache                the hub (ETags, hashes)
============================  ==========================================  ==============================

:func:`fetch` returns a :class:`Fetched`: the local path (``None`` when it cannot be had) and a
sentence saying where it came from, for the chapter to print. A cached copy is used without the
network; a download happens only when the server is reachable and ``BACKBONES_OFFLINE`` is unset;
a failed download is a sentence, never an exception.

**The rehearsal.** ``BACKBONES_REHEARSAL=<folder>`` points every source at a local stand-in with
the real format (:func:`standin_path` says where each lies in that folder; ``tests/rehearsal.py``
makes them): random CIFAR-10 images in torchvision's files, random weights under torchvision's
file names, a random bert-base in the hub's cache layout, a text8-like zip. Nothing else changes:
the same loaders read them. The one thing skipped is the integrity check (random files have
other hashes), and every note says ``rehearsal stand-in``.
"""

from __future__ import annotations

import os
import socket
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REHEARSAL_ENV = "BACKBONES_REHEARSAL"
OFFLINE_ENV = "BACKBONES_OFFLINE"
DATA_ENV = "BACKBONES_DATA"

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
BERT = "bert-base-uncased"
BERT_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "tokenizer.json"]
HOSTS = {
    "cifar10": ("www.cs.toronto.edu", 443),
    "weights": ("download.pytorch.org", 443),
    "text8": ("mattmahoney.net", 80),
    BERT: ("huggingface.co", 443),
}
STANDIN = "rehearsal stand-in: random values in the real format, integrity check skipped"


@dataclass(frozen=True)
class Fetched:
    """A source as it could be had: ``path`` (None: it could not) and ``note``, what happened."""

    path: Path | None
    note: str
    standin: bool = False

    def __bool__(self) -> bool:
        return self.path is not None


def data_dir() -> Path:
    """Where downloads are kept: ``$BACKBONES_DATA`` or ``~/.cache/backbones``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "backbones")


def offline_forced() -> bool:
    """True when ``BACKBONES_OFFLINE=1``: no download is even attempted."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}


def rehearsal() -> Path | None:
    """The stand-ins' folder when ``BACKBONES_REHEARSAL`` is set, else None."""
    folder = os.environ.get(REHEARSAL_ENV, "").strip()
    return Path(folder) if folder else None


def reachable(host: tuple[str, int], timeout: float = 3.0) -> bool:
    """Can we open a connection to ``host`` within ``timeout`` seconds?"""
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def _why_not(kind: str) -> str | None:
    """Why a download is not even tried (offline), or None."""
    if offline_forced():
        return f"{OFFLINE_ENV}=1"
    if not reachable(HOSTS[kind]):
        return f"offline: {HOSTS[kind][0]} unreachable"
    return None


def weights_url(model: str) -> str:
    """The URL of torchvision's default ImageNet weights for ``model`` (from its metadata)."""
    import torchvision

    return torchvision.models.get_model_weights(model).DEFAULT.url


def standin_path(source: str, folder: Path) -> Path:
    """Where a source's stand-in lies in the rehearsal's ``folder``: the same names as the real
    thing (``cifar10/cifar-10-batches-py``, ``checkpoints/<torchvision's file name>``,
    ``text8.zip``, ``huggingface/hub/models--bert-base-uncased/...``)."""
    if source == "cifar10":
        return folder / "cifar10"
    if source.startswith("weights/"):
        return folder / "checkpoints" / Path(weights_url(source.removeprefix("weights/"))).name
    if source == "text8":
        return folder / "text8.zip"
    if source == BERT:
        return folder / "huggingface" / "hub"
    raise KeyError(f"no source named {source!r}")


def fetch(source: str, *, root: Path | None = None) -> Fetched:
    """A source's local copy: ``"cifar10"`` (a root for torchvision's ``CIFAR10``),
    ``"weights/<model>"`` (a ``.pth`` file), ``"text8"`` (the zip) or ``"bert-base-uncased"`` (a
    folder ``from_pretrained`` reads). Cached, else downloaded, else a note saying why not."""
    folder = rehearsal()
    if folder is not None:
        path = standin_path(source, folder)
        try:
            path = _bert_snapshot(cache_dir=path, local_only=True) if source == BERT else path
        except Exception as error:
            return Fetched(None, f"no rehearsal stand-in at {path} ({type(error).__name__})")
        if not path.exists():
            return Fetched(None, f"no rehearsal stand-in at {path}")
        return Fetched(path, STANDIN, standin=True)
    if source == "cifar10":
        return _cifar10(Path(root or data_dir()))
    if source.startswith("weights/"):
        return _weights(source.removeprefix("weights/"))
    if source == "text8":
        return _text8()
    if source == BERT:
        return _bert()
    raise KeyError(f"no source named {source!r}")


def _cifar10(root: Path) -> Fetched:
    from torchvision import datasets

    try:
        datasets.CIFAR10(root, train=False, download=False)  # torchvision checks each file's MD5
        return Fetched(root, f"cached in {root}")
    except RuntimeError:
        pass
    why = _why_not("cifar10")
    if why:
        return Fetched(None, f"not cached and {why}")
    try:
        datasets.CIFAR10(root, train=True, download=True)  # downloads, then checks the MD5s
        return Fetched(root, f"downloaded once from {datasets.CIFAR10.url} and cached in {root}")
    except Exception as error:  # a broken download must not stop the chapter
        return Fetched(None, f"download failed ({type(error).__name__}: {error})")


def _weights(model: str) -> Fetched:
    import torch

    url = weights_url(model)
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if path.is_file():
        return Fetched(path, f"cached in {path.parent}")
    why = _why_not("weights")
    if why:
        return Fetched(None, f"not cached, {why}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = Path(url).stem.rsplit("-", 1)[-1]  # torchvision names a file after its SHA-256
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=False)
        return Fetched(path, f"downloaded from {url}")
    except Exception as error:
        return Fetched(None, f"download failed ({type(error).__name__})")


def _text8() -> Fetched:
    path = data_dir() / "text8.zip"
    if not path.exists():
        why = _why_not("text8")
        if why:
            return Fetched(None, why)
        part = path.with_suffix(".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            urllib.request.urlretrieve(TEXT8_URL, part)
            with zipfile.ZipFile(part) as archive:
                if archive.namelist() != ["text8"]:
                    raise ValueError("not text8's zip")
            part.rename(path)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            part.unlink(missing_ok=True)
            return Fetched(None, f"download failed ({type(error).__name__})")
        return Fetched(path, f"downloaded from {TEXT8_URL}")
    return Fetched(path, f"cached in {path.parent}")


def _bert_snapshot(*, cache_dir: Path | None = None, local_only: bool = False) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(BERT, allow_patterns=BERT_FILES, cache_dir=cache_dir, local_files_only=local_only))


def _bert() -> Fetched:
    try:
        return Fetched(_bert_snapshot(local_only=True), "cached by the Hugging Face hub")
    except Exception:
        pass
    why = _why_not(BERT)
    if why:
        return Fetched(None, why)
    try:
        return Fetched(_bert_snapshot(), "from the Hugging Face hub")
    except Exception as error:  # a failed download must not stop the chapter
        return Fetched(None, f"download failed ({type(error).__name__})")
