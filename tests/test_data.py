import numpy as np
import pytest
import torch

import backbones as bb
from backbones import sources


def test_digits_are_real_and_split_stratified():
    data = bb.load_digits()
    assert (len(data.train), len(data.test)) == (1437, 360)
    x, y = data.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    assert data.num_classes == 10 and data.in_channels == 1
    test_labels = torch.stack([y for _, y in data.test])
    assert torch.bincount(test_labels).min() >= 35  # every class in the test split
    train_x = torch.stack([x for x, _ in data.train])
    assert abs(train_x.mean()) < 1e-4 and abs(train_x.std() - 1) < 1e-2  # normalised


def test_quick_profile_asks_for_digits():
    data = bb.load_image_data()
    assert data.name == "digits" and "The quick profile's data" in data.note and "offline" not in data.note
    assert max(len(line) for line in str(data).splitlines()) <= 88  # printed on the page: no line cut off


def test_cifar10_offline_falls_back_to_digits_and_says_why(monkeypatch, tmp_path):
    monkeypatch.delenv("BACKBONES_OFFLINE")
    monkeypatch.setattr(sources, "reachable", lambda host, timeout=3.0: False)
    data = bb.load_image_data("cifar10", root=tmp_path)
    assert data.name == "digits"
    assert data.note.startswith("CIFAR-10 unavailable (not cached and offline: www.cs.toronto.edu unreachable)")
    assert "using scikit-learn's digits" in data.note and "CIFAR-10 unavailable" in str(data)


def test_offline_switch_skips_the_network(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was tried although BACKBONES_OFFLINE=1")

    monkeypatch.setattr(sources, "reachable", no_network)
    data = bb.load_image_data("cifar10", root=tmp_path)
    assert data.name == "digits" and "BACKBONES_OFFLINE=1" in data.note


def test_a_failed_download_does_not_stop_the_chapter(monkeypatch, tmp_path):
    from torchvision import datasets

    monkeypatch.delenv("BACKBONES_OFFLINE")
    monkeypatch.setattr(sources, "reachable", lambda host, timeout=3.0: True)

    def flaky(self):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(datasets.CIFAR10, "download", flaky)
    data = bb.load_image_data("cifar10", root=tmp_path)
    assert data.name == "digits" and "download failed (ConnectionResetError" in data.note


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        bb.load_image_data("imagenet")


def test_loaders_shuffle_reproducibly():
    data = bb.load_digits()
    first = next(iter(data.loaders(32, seed=1)[0]))[1]
    again = next(iter(data.loaders(32, seed=1)[0]))[1]
    other = next(iter(data.loaders(32, seed=2)[0]))[1]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_unnormalize_recovers_pixel_range():
    data = bb.load_digits()
    images = next(iter(data.loaders(64)[1]))[0]
    pixels = data.unnormalize(images)
    assert pixels.min() >= 0 and pixels.max() <= 1 and pixels.max() > 0.9


@pytest.mark.parametrize("name", sorted(bb.PHOTOS))
def test_photos_arrive_offline(name):
    photo = bb.load_photo(name)
    assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    assert min(photo.shape[:2]) >= 256 and photo.std() > 20  # a real photograph, not a blank


def test_unknown_photo_lists_the_choices():
    with pytest.raises(ValueError, match="chelsea"):
        bb.load_photo("dog")
