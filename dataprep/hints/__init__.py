"""Simulated user colour hints (Yuan & Simo-Serra 2021, section 4.1, following Zhang et al. 2017).

A :class:`HintSampler` draws square colour patches from a target colour frame. Registry :data:`HINTS`; adding one
is a class and a decorator. Sampling is driven by an explicit seed (``numpy.random.Generator``), so the same
(frame, seed) always gives the same hints.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprep.errors import CelbenchError
from dataprep.sketch.extractor import check_rgb
from dataprep.registry import Registry


@dataclass(frozen=True)
class Hint:
    """One square patch: rows ``top:top+size``, columns ``left:left+size``; ``rgb`` its colour (0..255)."""

    top: int
    left: int
    size: int
    rgb: tuple[int, int, int]


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
    def sample(self, target: np.ndarray, rng: np.random.Generator) -> list[Hint]:
        """Draw the patches for ``target`` with ``rng``."""

    def __call__(self, target: np.ndarray, seed: int | np.random.Generator) -> Hints:
        target = check_rgb(target)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        hints = self.sample(target, rng)
        image = np.zeros_like(target)
        mask = np.zeros(target.shape[:2], np.uint8)
        for hint in hints:
            rows, cols = slice(hint.top, hint.top + hint.size), slice(hint.left, hint.left + hint.size)
            image[rows, cols] = hint.rgb
            mask[rows, cols] = 255
        return Hints(image=image, mask=mask, hints=hints)


HINTS: Registry[HintSampler] = Registry("hint sampler", entry_point_group="celbench.hints")


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

    def sample(self, target: np.ndarray, rng: np.random.Generator) -> list[Hint]:
        height, width = target.shape[:2]
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
