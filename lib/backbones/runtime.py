"""Where the code runs, how random it is, and at what scale.

Every chapter starts with ``rt = bb.setup()``, which seeds everything, picks the device
(CUDA, then Apple MPS, then CPU) and the scale profile, and prints one line saying so.

The scale profile is the one knob between a laptop and a GPU. Three scales, one code path:

- *quick*: sized for a 2-core CPU, each chapter executes in about a minute (the book build, CI,
  a laptop). The default without a CUDA GPU.
- *gpu*: sized for a free Colab GPU (a T4): each chapter in about ten minutes, larger data
  (CIFAR-10 when reachable) and the papers' effects at a larger scale. The default on CUDA.
- *paper*: the papers' own settings (hours on a T4), only when asked for.

A chapter writes ``steps = rt.profile.size(quick=300, gpu=5_000, paper=64_000)`` for a size (steps,
images, grid points, seeds) and ``rt.profile.pick(quick="digits", gpu="cifar10")`` for a choice, and
runs the same code; ``paper`` falls back to ``gpu`` where a chapter gives none. ``BACKBONES_PROFILE``
chooses (``full``, the name of an earlier version, means ``paper``).

*The rehearsal* (``BACKBONES_REHEARSAL=<folder of stand-ins>``, see :mod:`backbones.sources`) runs
a profile's code on a CPU, offline, in CI: every ``pick`` is the profile's, every data source and
model is its stand-in, and every ``size`` is a token one (:func:`rehearsal_size`), so that the
gpu profile's branches execute in seconds.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from backbones.sources import REHEARSAL_ENV, rehearsal

PROFILE_ENV = "BACKBONES_PROFILE"
DEVICE_ENV = "BACKBONES_DEVICE"
PROFILES = ("quick", "gpu", "paper")
ALIASES = {"full": "paper"}  # earlier versions had quick and full

T = TypeVar("T")


def get_device(name: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple MPS, then CPU.

    Args:
        name: ask for a device by name (``"cpu"``, ``"cuda:1"``); the environment variable
            ``BACKBONES_DEVICE`` does the same without editing a notebook.
    """
    name = name or os.environ.get(DEVICE_ENV)
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for, but torch sees no CUDA GPU here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (every device) so a chapter draws the same figures each run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too


_MISSING = object()


@dataclass(frozen=True)
class Profile:
    """The scale a chapter runs at: ``quick`` (CPU), ``gpu`` (a Colab GPU) or ``paper`` (the papers')."""

    name: str
    reason: str
    rehearsal: bool = False  # the profile's code at token sizes, with stand-in data (CI)

    def __post_init__(self) -> None:
        if self.name not in PROFILES:
            raise ValueError(f"unknown profile {self.name!r}: choose one of {PROFILES}")

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    def pick(self, *, quick: T, gpu: T, paper: T = _MISSING) -> T:  # type: ignore[assignment]
        """The value for this profile: ``profile.pick(quick=300, gpu=5_000, paper=64_000)``;
        without ``paper``, the paper profile takes the ``gpu`` value."""
        if self.name == "quick":
            return quick
        if self.name == "paper" and paper is not _MISSING:
            return paper
        return gpu

    def size(self, *, quick: T, gpu: T, paper: T = _MISSING) -> T:  # type: ignore[assignment]
        """A size (steps, images, grid points, seeds): as :meth:`pick`, except in the rehearsal,
        where it is a token size made from the ``quick`` one (:func:`rehearsal_size`)."""
        if self.rehearsal:
            return rehearsal_size(quick)
        return self.pick(quick=quick, gpu=gpu, paper=paper)

    def __str__(self) -> str:
        return f"{self.name} profile ({self.reason})"


def rehearsal_size(quick: T) -> T:
    """The rehearsal's token size: the square root of a count (at least 2: 300 steps -> 17, a
    13-point grid -> 3), the first two of a list of sizes, anything else as it is."""
    if isinstance(quick, int) and not isinstance(quick, bool):
        return max(2, math.isqrt(quick))  # type: ignore[return-value]
    if isinstance(quick, (list, tuple)) and len(quick) > 2 and all(isinstance(q, int) for q in quick):
        return type(quick)(quick[:2])  # type: ignore[return-value]
    return quick


def get_profile(device: torch.device | None = None) -> Profile:
    """*gpu* on a CUDA GPU, *quick* elsewhere; ``BACKBONES_PROFILE=quick|gpu|paper`` overrides;
    ``BACKBONES_REHEARSAL`` makes it a rehearsal (token sizes, stand-in sources)."""
    profile = _profile(device)
    if rehearsal() is not None:
        reason = f"{profile.reason}; a rehearsal ({REHEARSAL_ENV}): token sizes, stand-in data and models"
        return Profile(profile.name, reason, rehearsal=True)
    return profile


def _profile(device: torch.device | None = None) -> Profile:
    asked = os.environ.get(PROFILE_ENV, "").strip().lower()
    if asked:
        name = ALIASES.get(asked, asked)
        if name not in PROFILES:
            raise ValueError(f"{PROFILE_ENV}={asked!r} is not a profile: use one of {PROFILES}")
        reason = f"set by {PROFILE_ENV}" + (f"; {asked!r} is the old name of {name!r}" if asked != name else "")
        return Profile(name, reason)
    device = device or get_device()
    if device.type == "cuda":
        return Profile("gpu", f"a CUDA GPU is available; {PROFILE_ENV}=paper for the papers' settings")
    return Profile("quick", f"no CUDA GPU; {PROFILE_ENV}=gpu or =paper overrides")


@dataclass(frozen=True)
class Runtime:
    """What :func:`setup` chose: the device, the scale profile and the seed."""

    device: torch.device
    profile: Profile
    seed: int

    def __str__(self) -> str:
        return (
            f"device:  {self.device} (torch {torch.__version__})\n"
            f"profile: {self.profile.name} ({self.profile.reason})\n"
            f"seed:    {self.seed}"
        )


def setup(seed: int = 0, *, device: str | None = None, style: bool = True) -> Runtime:
    """Seed everything, choose device and profile, set the book's figure style, and say so.

    Args:
        seed: the one seed of the chapter.
        device: force a device by name; by default the best one available.
        style: apply the book's matplotlib style (:func:`backbones.plots.use_style`).
    """
    from backbones.plots import use_style  # plots imports matplotlib: only when asked

    seed_everything(seed)
    chosen = get_device(device)
    runtime = Runtime(device=chosen, profile=get_profile(chosen), seed=seed)
    if style:
        use_style()
    print(runtime)
    return runtime
