"""Simulated user colour hints (Yuan & Simo-Serra 2021, section 4.1, following Zhang et al. 2017).

A :class:`HintSampler` draws square colour patches from a target colour frame. Registry :data:`HINTS`; adding one
is a class and a decorator. Sampling is driven by an explicit seed (``numpy.random.Generator``), so the same
(frame, seed) always gives the same hints. This is the one hint simulator of celbench: ``dataprep build`` stores
its draws, the ``hints`` protocols of ``bench evaluate`` draw through it at protocol resolution
(:func:`hint_channels`), and training draws fresh hints through it on the fly.

A caller may ask for an exact number of patches (``count``; the hint-budget buckets of ``hints@2``); patches are
drawn one after the other from the generator, so with the same seed the first ``n`` patches of a larger budget are
the patches of budget ``n`` (budgets of one frame are nested, as a user adding hints one by one).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dataprep.errors import CelbenchError
from dataprep.sketch.extractor import check_rgb
from dataprep.registry import Registry


@dataclass(frozen=True)
class Hint:
    """One square patch: rows ``top:top+size``, columns ``left:left+size`` (cut by the image border if it
    reaches past it); ``rgb`` its colour, 0..255 (integers for every sampler but ``gaussian-geometric-clip``,
    whose unrounded patch means are floats)."""

    top: int
    left: int
    size: int
    rgb: tuple[float, float, float]


@dataclass
class Hints:
    """Hints drawn on one frame.

    ``image``: (H, W, 3) uint8 RGB, the hint colours on hint pixels and 0 elsewhere.
    ``mask``: (H, W) uint8, 255 on hint pixels and 0 elsewhere (later patches overwrite earlier ones).
    ``hints``: the patches in drawing order.
    """

    image: np.ndarray
    mask: np.ndarray
    hints: list[Hint] = field(default_factory=list)


class HintSampler(abc.ABC):
    """Target frame (H, W, 3) uint8 RGB + seed -> :class:`Hints`."""

    summary: str = ""

    @property
    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able settings for the dataset manifest (the per-frame seed is recorded by the caller)."""

    @abc.abstractmethod
    def sample(self, target: np.ndarray, rng: np.random.Generator, count: int | None = None) -> list[Hint]:
        """Draw the patches for ``target`` with ``rng``: the sampler's own number of them, or exactly ``count``."""

    def draw(self, target: np.ndarray, seed: int | Sequence[int] | np.random.Generator,
             count: int | None = None) -> list[Hint]:
        """The patches for ``target`` (H, W, 3) uint8 RGB; ``seed`` an int, a sequence of ints (numpy seed
        sequence) or a generator; ``count``: exactly this many patches (None: the sampler's distribution)."""
        if count is not None and count < 0:
            raise CelbenchError(f"hint count must be >= 0, got {count}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.sample(check_rgb(target), rng, count)

    def __call__(self, target: np.ndarray, seed: int | Sequence[int] | np.random.Generator,
                 count: int | None = None) -> Hints:
        target = check_rgb(target)
        hints = self.draw(target, seed, count)
        image = np.zeros_like(target)
        mask = np.zeros(target.shape[:2], np.uint8)
        for hint in hints:
            rows, cols = slice(hint.top, hint.top + hint.size), slice(hint.left, hint.left + hint.size)
            image[rows, cols] = [round(v) for v in hint.rgb]
            mask[rows, cols] = 255
        return Hints(image=image, mask=mask, hints=hints)


def hint_channels(hints: list[Hint], height: int, width: int) -> np.ndarray:
    """The ``hints`` input of a model (``benchmark.model``): (4, H, W) float32, RGB hint colours in [0, 1]
    (``rgb / 255``, 0 outside hints) and a mask channel (1 on hint pixels); later patches overwrite earlier ones."""
    channels = np.zeros((4, height, width), np.float32)
    for hint in hints:
        rows, cols = slice(hint.top, hint.top + hint.size), slice(hint.left, hint.left + hint.size)
        channels[:3, rows, cols] = (np.asarray(hint.rgb, np.float64) / 255.0).astype(np.float32)[:, None, None]
        channels[3, rows, cols] = 1.0
    return channels


HINTS: Registry[HintSampler] = Registry("hint sampler", entry_point_group="celbench.hints")

#: The hint simulation a build stores unless its config names another (``hints.name``): Yuan and Simo-Serra's.
DEFAULT_HINTS = "gaussian-geometric"


@HINTS.register("gaussian-geometric")
class GaussianGeometricHints(HintSampler):
    """Yuan & Simo-Serra (2021) section 4.1 / Zhang et al. (2017) hint simulation.

    * count ~ Geometric(p) on {1, 2, ...} (mean 1/p = 8 for p = 0.125), capped at ``max_hints``;
    * patch centre ~ N(mu = (H/2, W/2), Sigma = diag((H/4)^2, (W/4)^2)), rounded and clipped so the patch
      lies inside the image;
    * side ~ Uniform{min_size..max_size} (1..8 px), square;
    * colour = mean of the target over the patch, rounded to uint8 (RGB).

    Args:
        p: success probability of the geometric count.
        min_size, max_size: patch side range in pixels (inclusive).
        sigma_fraction: Gaussian standard deviation as a fraction of (H, W) (paper: 1/4).
        max_hints: cap on the count (0 = no cap).
    """

    summary = "Geometric(p=0.125) count, Gaussian positions, 1..8 px patches (Yuan & Simo-Serra 2021)"

    def __init__(self, p: float = 0.125, min_size: int = 1, max_size: int = 8, sigma_fraction: float = 0.25,
                 max_hints: int = 0):
        if not 0 < p <= 1:
            raise CelbenchError(f"hint parameter p must be in (0, 1], got {p}")
        if not 1 <= min_size <= max_size:
            raise CelbenchError(f"hint parameters need 1 <= min_size <= max_size, got {min_size}, {max_size}")
        if not sigma_fraction > 0:
            raise CelbenchError(f"hint parameter sigma_fraction must be > 0, got {sigma_fraction}")
        self.p, self.min_size, self.max_size = float(p), int(min_size), int(max_size)
        self.sigma_fraction, self.max_hints = float(sigma_fraction), int(max_hints)

    @property
    def params(self) -> dict[str, Any]:
        return {"p": self.p, "min_size": self.min_size, "max_size": self.max_size,
                "sigma_fraction": self.sigma_fraction, "max_hints": self.max_hints}

    def sample(self, target: np.ndarray, rng: np.random.Generator, count: int | None = None) -> list[Hint]:
        height, width = target.shape[:2]
        if count is None:
            count = int(rng.geometric(self.p))
            if self.max_hints:
                count = min(count, self.max_hints)
        hints = []
        centre = (height / 2, width / 2)
        sigma = (height * self.sigma_fraction, width * self.sigma_fraction)
        for _ in range(count):
            centre_y, centre_x = rng.normal(centre, sigma).tolist()
            size = int(rng.integers(self.min_size, self.max_size + 1))
            size = min(size, height, width)
            # Python scalars instead of np.clip/np.rint on scalars (same values, a fraction of the time):
            # round() is half-to-even as np.rint, and the integer patch sum is exact, as the float mean was.
            top = min(max(round(centre_y - size / 2), 0), height - size)
            left = min(max(round(centre_x - size / 2), 0), width - size)
            sums = target[top:top + size, left:left + size].sum(axis=(0, 1), dtype=np.int64).tolist()
            rgb = tuple(round(v / (size * size)) for v in sums)
            hints.append(Hint(top=top, left=left, size=size, rgb=rgb))  # type: ignore[arg-type]
        return hints


@HINTS.register("gaussian-geometric-clip")
class ClippedGaussianGeometricHints(HintSampler):
    """The formulation of protocol ``hints@1``, kept so its numbers never change.

    The same distributions as ``gaussian-geometric`` (Zhang et al. 2017), drawn in the same order (count, then
    per patch: centre row, centre column, side), but: the count is at least ``min_count``; the centre is
    clipped to the image and truncated to a pixel; the patch starts ``size // 2`` above/left of it, clipped at
    0, and is cut (not shifted) at the far border; its colour is the unrounded mean of the patch, computed in
    float32 on ``target / 255`` as ``hints@1`` always did (``rgb`` = that mean times 255, exactly).

    Args:
        p: success probability of the geometric count.
        max_size: patch side drawn from 1..max_size (pixels).
        sigma_fraction: Gaussian standard deviation as a fraction of (H, W).
        min_count: lower bound of the drawn count.
    """

    summary = "hints@1's variant of gaussian-geometric: centre clipped, patches cut at the border, unrounded colour"

    def __init__(self, p: float = 0.125, max_size: int = 8, sigma_fraction: float = 0.25, min_count: int = 1):
        if not 0 < p <= 1:
            raise CelbenchError(f"hint parameter p must be in (0, 1], got {p}")
        if max_size < 1:
            raise CelbenchError(f"hint parameter max_size must be >= 1, got {max_size}")
        if not sigma_fraction > 0:
            raise CelbenchError(f"hint parameter sigma_fraction must be > 0, got {sigma_fraction}")
        self.p, self.max_size, self.sigma_fraction, self.min_count = float(p), int(max_size), float(sigma_fraction), \
            int(min_count)

    @property
    def params(self) -> dict[str, Any]:
        return {"p": self.p, "max_size": self.max_size, "sigma_fraction": self.sigma_fraction,
                "min_count": self.min_count}

    def sample(self, target: np.ndarray, rng: np.random.Generator, count: int | None = None) -> list[Hint]:
        height, width = target.shape[:2]
        # (3, H, W) float32 in [0, 1], the layout and arithmetic hints@1 averaged in (same float32 sums).
        colour = np.ascontiguousarray((target.astype(np.float32) / 255.0).transpose(2, 0, 1))
        if count is None:
            count = max(self.min_count, int(rng.geometric(self.p)))
        hints = []
        for _ in range(count):
            centre_y = int(np.clip(rng.normal(height / 2, self.sigma_fraction * height), 0, height - 1))
            centre_x = int(np.clip(rng.normal(width / 2, self.sigma_fraction * width), 0, width - 1))
            size = int(rng.integers(1, self.max_size + 1))
            top, left = max(0, centre_y - size // 2), max(0, centre_x - size // 2)
            mean = colour[:, top:top + size, left:left + size].mean(axis=(1, 2))
            hints.append(Hint(top=top, left=left, size=size, rgb=tuple(float(v) * 255.0 for v in mean)))
        return hints
