import pytest
import torch

import backbones as bb
from backbones.runtime import get_device, get_profile


def test_cpu_machine_gets_the_quick_profile():
    profile = get_profile(torch.device("cpu"))
    assert profile.name == "quick" and "no CUDA GPU" in profile.reason


def test_a_cuda_device_gets_the_gpu_profile():
    profile = get_profile(torch.device("cuda"))
    assert profile.name == "gpu" and "BACKBONES_PROFILE=paper" in profile.reason


@pytest.mark.parametrize(
    "asked, name", [("quick", "quick"), ("gpu", "gpu"), ("paper", "paper"), ("full", "paper"), (" GPU ", "gpu")]
)
def test_environment_overrides_the_profile(monkeypatch, asked, name):
    monkeypatch.setenv("BACKBONES_PROFILE", asked)
    profile = get_profile(torch.device("cpu"))
    assert profile.name == name and "BACKBONES_PROFILE" in profile.reason
    if asked == "full":
        assert "old name" in profile.reason


def test_pick_gives_each_profile_its_value_and_paper_falls_back_to_gpu():
    values = dict(quick=1, gpu=2, paper=3)
    assert [bb.Profile(n, "").pick(**values) for n in ("quick", "gpu", "paper")] == [1, 2, 3]
    assert bb.Profile("paper", "").pick(quick=1, gpu=2) == 2
    with pytest.raises(TypeError):
        bb.Profile("gpu", "").pick(quick=1, full=2)  # the old keyword is gone: a chapter must say gpu=


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BACKBONES_PROFILE", "huge")
    with pytest.raises(ValueError, match="not a profile"):
        get_profile()


def test_device_falls_back_to_cpu_here():
    # CI machines have no GPU; on one with CUDA this would (rightly) say cuda.
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type in (expected, "mps")


def test_asking_for_cuda_without_one_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        get_device("cuda")


def test_setup_seeds_everything_and_says_what_it_chose(capsys):
    rt = bb.setup(seed=3)
    first = torch.rand(3)
    assert "profile: quick" in capsys.readouterr().out
    bb.setup(seed=3)
    assert torch.equal(first, torch.rand(3))
    assert rt.seed == 3 and rt.device.type == "cpu"
