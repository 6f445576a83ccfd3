"""Offline-first data: every dataset has a default that arrives with a package install.

``load_image_data()`` returns the data *and says which data it is and why* ("CIFAR-10
unavailable offline: using digits"), so a chapter can print what the reader is looking at.

- Offline, always: scikit-learn's handwritten digits (1,797 real 8x8 images, 10 classes) and
  photographs shipped by scikit-image, matplotlib and scikit-learn.
- Online or cached: CIFAR-10 through torchvision (downloaded once into the data folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from backbones import sources
from backbones.sources import DATA_ENV, OFFLINE_ENV, data_dir, offline_forced, reachable  # noqa: F401 (the API)

DATASETS = ("digits", "cifar10")


@dataclass
class ImageData:
    """A labelled image dataset, split in train and test, with a note on where it came from."""

    name: str
    train: Dataset
    test: Dataset
    classes: list[str]
    in_channels: int
    image_size: int
    note: str
    mean: tuple[float, ...] = field(default=(0.0,))
    std: tuple[float, ...] = field(default=(1.0,))
    train_plain: Dataset | None = None  # the training images without augmentation (None: train has none)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def loaders(self, batch_size: int, *, num_workers: int = 0, seed: int = 0) -> tuple[DataLoader, DataLoader]:
        """``(train_loader, test_loader)``: the train loader shuffles with its own seeded generator."""
        generator = torch.Generator().manual_seed(seed)
        train_loader = DataLoader(
            self.train,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=num_workers,
            generator=generator,
        )
        test_loader = DataLoader(self.test, batch_size=batch_size, num_workers=num_workers)
        return train_loader, test_loader

    def tensors(self, n: int | None = None, *, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images and labels of a split as two tensors, without augmentation."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        dataset = self.test if split == "test" else (self.train_plain or self.train)
        n = len(dataset) if n is None else min(n, len(dataset))
        images, labels = zip(*(dataset[i] for i in range(n)))
        return torch.stack(images), torch.as_tensor(labels)

    def unnormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation of a ``(B, C, H, W)`` batch, for display, clipped to [0, 1]."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (images.cpu() * std + mean).clamp(0, 1)

    def __str__(self) -> str:
        shape = f"{self.in_channels}x{self.image_size}x{self.image_size}"
        return (
            f"{self.name}: {len(self.train):,} train / {len(self.test):,} test images of {shape}, "
            f"{self.num_classes} classes\n{self.note}"
        )


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's digits: 1,797 real 8x8 grey images of handwritten 0-9, split stratified."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = digits.images.astype(np.float32) / 16.0  # pixel values are 0..16
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    mean, std = float(x_train.mean()), float(x_train.std())

    def to_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        x = torch.from_numpy((x - mean) / std).unsqueeze(1)  # (N, 1, 8, 8)
        return TensorDataset(x, torch.from_numpy(y))

    return ImageData(
        name="digits",
        train=to_dataset(x_train, y_train),
        test=to_dataset(x_test, y_test),
        classes=[str(d) for d in range(10)],
        in_channels=1,
        image_size=8,
        note="scikit-learn's handwritten digits, shipped with the package (no download).",
        mean=(mean,),
        std=(std,),
    )


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def load_cifar10(
    *, root: Path | None = None, download: bool = False, augment: bool = True, verify: bool = True
) -> ImageData:
    """CIFAR-10 through torchvision: 50,000 train / 10,000 test colour images, 32x32, 10 classes.

    Raises ``RuntimeError`` when the files are neither cached nor downloadable. ``verify=False``
    skips torchvision's MD5 check of each file (only for the rehearsal's stand-ins, whose random
    images have other hashes: :mod:`backbones.sources`).
    """
    from torchvision import transforms

    root = Path(root or data_dir())
    cifar = _cifar10_reader(verify)
    normalize = transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)
    test_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train_tf = (
        transforms.Compose(
            [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize]
        )
        if augment
        else test_tf
    )
    train = cifar(root, train=True, transform=train_tf, download=download)
    test = cifar(root, train=False, transform=test_tf, download=download)
    train_plain = cifar(root, train=True, transform=test_tf) if augment else None
    return ImageData(
        name="cifar10",
        train=train,
        test=test,
        classes=list(train.classes),
        in_channels=3,
        image_size=32,
        note=f"CIFAR-10 from {root}.",
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        train_plain=train_plain,
    )


def _cifar10_reader(verify: bool):
    """torchvision's ``CIFAR10``, or (``verify=False``) the same reader without its MD5 checks."""
    import pickle

    from torchvision import datasets

    if verify:
        return datasets.CIFAR10

    class UnverifiedCIFAR10(datasets.CIFAR10):
        def _check_integrity(self) -> bool:
            files = [*self.train_list, *self.test_list]
            return all((Path(self.root) / self.base_folder / name).is_file() for name, _ in files)

        def _load_meta(self) -> None:
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as file:
                self.classes = pickle.load(file, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    return UnverifiedCIFAR10


def load_image_data(prefer: str | None = None, *, root: Path | None = None) -> ImageData:
    """The chapter's training data: CIFAR-10 when cached or reachable, digits otherwise.

    Args:
        prefer: ``"cifar10"`` or ``"digits"``; by default the scale profile decides
            (*gpu* and *paper*: CIFAR-10, *quick*: digits, so a CPU run stays about a minute).
        root: the data folder (default :func:`data_dir`).

    The returned :class:`ImageData` says in ``note`` which dataset it is and why.
    """
    if prefer is None:
        from backbones.runtime import get_profile

        profile = get_profile()
        prefer = profile.pick(quick="digits", gpu="cifar10")
        if profile.quick:  # chosen for speed, not for want of a network
            data = load_digits()
            data.note += "\nThe quick profile's data: a GPU runtime (or BACKBONES_PROFILE=gpu) trains on CIFAR-10."
            return data
    if prefer not in DATASETS:
        raise ValueError(f"unknown dataset {prefer!r}: choose one of {DATASETS}")
    if prefer == "digits":
        return load_digits()

    fetched = sources.fetch("cifar10", root=root)  # cached, downloaded, or a stand-in (the rehearsal)
    if fetched:
        try:
            data = load_cifar10(root=fetched.path, verify=not fetched.standin)
            data.note = f"CIFAR-10, {fetched.note}."
            return data
        except Exception as error:  # a corrupt cache must not stop the chapter
            why = f"CIFAR-10 could not be read ({type(error).__name__}: {error})"
    else:
        why = f"CIFAR-10 unavailable ({fetched.note})"
    data = load_digits()
    data.note = f"{why}:\nusing scikit-learn's digits instead (offline, 8x8 grey)."
    return data


# Real photographs that arrive with installed packages: name -> (loader, what it shows).
PHOTOS: dict[str, str] = {
    "chelsea": "a tabby cat (scikit-image)",
    "astronaut": "astronaut Eileen Collins (scikit-image)",
    "coffee": "a cup of coffee (scikit-image)",
    "rocket": "a rocket on its launch pad (scikit-image)",
    "grace_hopper": "computer scientist Grace Hopper in uniform (matplotlib)",
    "china": "a Chinese pagoda (scikit-learn)",
    "flower": "a flower (scikit-learn)",
}


def load_photo(name: str = "chelsea") -> np.ndarray:
    """A real RGB photograph as a ``(H, W, 3)`` uint8 array, from an installed package (offline).

    Names: see :data:`PHOTOS`.
    """
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}: choose one of {sorted(PHOTOS)}")
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
            return np.asarray(matplotlib.image.imread(file, format="jpg"))[..., :3].copy()
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    return getattr(skimage.data, name)()[..., :3]


def reversal_task(
    *, length: int = 8, vocab_size: int = 10, train_size: int = 10_000, test_size: int = 1_000, seed: int = 0
) -> tuple[TensorDataset, TensorDataset]:
    """A sequence task whose attention is easy to read: output position i must be input position
    ``length - 1 - i``. Returns ``(train, test)`` datasets of ``(tokens, reversed tokens)``."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(vocab_size, (train_size + test_size, length), generator=generator)
    targets = tokens.flip(1)
    return (
        TensorDataset(tokens[:train_size], targets[:train_size]),
        TensorDataset(tokens[train_size:], targets[train_size:]),
    )


# Texture patches: real photographs where resolution carries information --------------------

# scikit-image's grey textures and microscope/telescope images (offline): name -> what it shows.
TEXTURES: dict[str, str] = {
    "brick": "a brick wall",
    "grass": "grass",
    "gravel": "gravel",
    "moon": "the moon's surface",
    "cell": "a cell under a microscope",
    "immunohistochemistry": "stained tissue",
    "hubble_deep_field": "galaxies (Hubble)",
    "retina": "a retina",
}


def load_textures(
    resolution: int = 16, *, patch: int = 64, train_per_class: int = 200, test_per_class: int = 50, seed: int = 0
) -> ImageData:
    """Which picture is this patch from? Eight real images of scikit-image, one class each.

    Each sample is a ``patch`` x ``patch`` square cut at random from one picture (grey), shrunk
    to ``resolution`` pixels (antialiased) and normalised on its own (zero mean, unit variance),
    so that only the patch's texture tells the class, not its brightness or contrast. Training
    patches come from the top three quarters of each picture, test patches from the bottom
    quarter: no test pixel was seen in training. Unlike 8x8 digits, here more pixels carry more
    information (grass blades, cells, galaxies are finer than a 16-pixel patch can show), which
    makes it a task on which scaling *resolution* can pay.
    """
    import skimage.data
    from skimage.color import rgb2gray

    if resolution < 4 or resolution > patch:
        raise ValueError(f"resolution must be between 4 and the patch size {patch}, not {resolution}")
    generator = torch.Generator().manual_seed(seed)
    splits = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(TEXTURES):
        image = getattr(skimage.data, name)()
        image = torch.from_numpy((rgb2gray(image) * 255 if image.ndim == 3 else image).astype(np.float32))
        height, width = image.shape
        cut = int(height * 0.75)
        for split, (low, high), count in (
            ("train", (0, cut - patch), train_per_class),
            ("test", (cut, height - patch), test_per_class),
        ):
            rows = torch.randint(low, high + 1, (count,), generator=generator)
            cols = torch.randint(0, width - patch + 1, (count,), generator=generator)
            splits[split][0].extend(image[r : r + patch, c : c + patch] for r, c in zip(rows.tolist(), cols.tolist()))
            splits[split][1].extend([label] * count)

    def to_dataset(patches: list[torch.Tensor], labels: list[int]) -> TensorDataset:
        x = torch.stack(patches).unsqueeze(1)  # (N, 1, patch, patch)
        x = torch.nn.functional.interpolate(
            x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )  # (N, 1, r, r)
        x = (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-3)
        return TensorDataset(x, torch.tensor(labels))

    return ImageData(
        name="textures",
        train=to_dataset(*splits["train"]),
        test=to_dataset(*splits["test"]),
        classes=list(TEXTURES),
        in_channels=1,
        image_size=resolution,
        note=(
            f"patches of {patch}x{patch} pixels from {len(TEXTURES)} scikit-image pictures, "
            f"shrunk to {resolution}x{resolution} (offline); test patches from regions "
            f"never trained on."
        ),
    )
