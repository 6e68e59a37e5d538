"""Classical (non-learned) sketch extractors: XDoG, Canny, dark-pixel threshold.

All take (H, W, 3) uint8 RGB and return (H, W) uint8 line art, 0 = line, 255 = paper.
"""

from __future__ import annotations

import zlib
from typing import Any

import cv2
import numpy as np

from dataprep.errors import CelbenchError
from dataprep.sketch.extractor import EXTRACTORS, SketchExtractor, rgb_to_gray


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise CelbenchError(f"extractor parameter {name} must be > 0, got {value}")
    return float(value)


@EXTRACTORS.register("xdog")
class XDoG(SketchExtractor):
    """Extended difference of Gaussians (Winnemoeller, Kyprianidis & Olsen 2012, eqs. 5 and 7).

    On luma ``I`` in [0, 1]::

        D = (1 + p) * G(I, sigma) - p * G(I, k * sigma)                      (eq. 5, "p" form)
        T = 1                              if D >= epsilon
            1 + tanh(phi * (D - epsilon))  otherwise                           (eq. 7)

    and the sketch is ``round(255 * T)`` (dark where the sharpened image falls below ``epsilon``).
    The defaults were tuned on real cel-animation frames (see docs/stages.md): k = 1.6 is the paper's
    DoG-approximates-LoG ratio; with p = 40 and epsilon = 0.02 only the dark side of strokes and strong
    luminance steps falls below epsilon, while flat dark fills (black hair, trousers: luma ~0.1) stay paper
    (epsilon = 0.1 already floods them); phi = 50 keeps a narrow anti-aliased ramp instead of a hard binary
    threshold.

    Args:
        sigma: inner Gaussian standard deviation in pixels (line scale).
        k: ratio of the outer to the inner Gaussian.
        p: sharpening strength.
        epsilon: threshold on D (in luma units, D can exceed [0, 1]).
        phi: steepness of the soft threshold; ``inf`` gives a binary sketch.
        sigma_jitter: data augmentation; when > 0, each frame's sigma is drawn uniformly from
            ``sigma * [1 - sigma_jitter, 1 + sigma_jitter]`` by a generator seeded with ``(seed, crc32(frame))``,
            so the result depends only on the frame and the seed, not on processing order or sharding.
        seed: seed of the jitter (recorded in :attr:`params`).
    """

    summary = "extended difference of Gaussians (Winnemoeller et al. 2012); soft-thresholded"

    def __init__(self, sigma: float = 0.8, k: float = 1.6, p: float = 40.0, epsilon: float = 0.02,
                 phi: float = 50.0, sigma_jitter: float = 0.0, seed: int = 0):
        self.sigma = _positive("sigma", sigma)
        self.k = _positive("k", k)
        self.p = float(p)
        self.epsilon = float(epsilon)
        self.phi = _positive("phi", phi)
        if not 0 <= sigma_jitter < 1:
            raise CelbenchError(f"extractor parameter sigma_jitter must be in [0, 1), got {sigma_jitter}")
        self.sigma_jitter = float(sigma_jitter)
        self.seed = int(seed)

    @property
    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "k": self.k, "p": self.p, "epsilon": self.epsilon, "phi": self.phi,
                "sigma_jitter": self.sigma_jitter, "seed": self.seed}

    def frame_sigma(self, rgb: np.ndarray) -> float:
        """The sigma used for this frame (``sigma`` unless jitter is on)."""
        if self.sigma_jitter == 0:
            return self.sigma
        rng = np.random.default_rng([self.seed, zlib.crc32(np.ascontiguousarray(rgb).data)])
        return self.sigma * float(rng.uniform(1 - self.sigma_jitter, 1 + self.sigma_jitter))

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        gray = rgb_to_gray(rgb)
        sigma = self.frame_sigma(rgb)
        # ksize (0, 0): OpenCV sizes the kernel from sigma (about 6 sigma + 1), so truncation error is negligible.
        inner = cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        outer = cv2.GaussianBlur(gray, (0, 0), sigma * self.k, borderType=cv2.BORDER_REFLECT)
        dog = (1 + self.p) * inner - self.p * outer
        tone = np.where(dog >= self.epsilon, 1.0, 1.0 + np.tanh(self.phi * (dog - self.epsilon)))
        return np.clip(np.rint(tone * 255), 0, 255).astype(np.uint8)


@EXTRACTORS.register("canny")
class Canny(SketchExtractor):
    """Canny edges (Canny 1986, via ``cv2.Canny``) drawn as 1-px black lines on white.

    Shi et al. (TVCG 2023, section 3.1 and Fig. 1b) show why Canny sketches differ from drawn line art
    (double edges on both sides of a stroke); it is here as a cheap, widely used baseline.

    Args:
        blur_sigma: Gaussian pre-smoothing in pixels (0 = none); suppresses compression noise.
        low, high: hysteresis thresholds on the 8-bit luma gradient (L2 norm); OpenCV's example values 100/200.
    """

    summary = "Canny edges on luma (cv2.Canny), 1-px lines"

    def __init__(self, blur_sigma: float = 1.0, low: float = 50.0, high: float = 150.0):
        if blur_sigma < 0:
            raise CelbenchError(f"extractor parameter blur_sigma must be >= 0, got {blur_sigma}")
        if not 0 <= low <= high:
            raise CelbenchError(f"extractor parameters need 0 <= low <= high, got low={low} high={high}")
        self.blur_sigma, self.low, self.high = float(blur_sigma), float(low), float(high)

    @property
    def params(self) -> dict[str, Any]:
        return {"blur_sigma": self.blur_sigma, "low": self.low, "high": self.high}

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.blur_sigma > 0:
            gray = cv2.GaussianBlur(gray, (0, 0), self.blur_sigma)
        edges = cv2.Canny(gray, self.low, self.high, L2gradient=True)
        return np.where(edges > 0, 0, 255).astype(np.uint8)


@EXTRACTORS.register("threshold-dark")
class ThresholdDark(SketchExtractor):
    """Pixels darker than a threshold are line; for frames whose outlines are already clean black ink.

    Uses the HSV value ``max(R, G, B)`` rather than luma so that saturated mid-tone fills (pure blue has luma
    29/255) are not mistaken for ink; only pixels dark in every channel count.

    Args:
        threshold: value (0..255) below which a pixel is line.
    """

    summary = "max(R,G,B) < threshold is line; for clean black outlines"

    def __init__(self, threshold: int = 80):
        if not 0 < threshold <= 255:
            raise CelbenchError(f"extractor parameter threshold must be in 1..255, got {threshold}")
        self.threshold = int(threshold)

    @property
    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        return np.where(rgb.max(axis=2) < self.threshold, 0, 255).astype(np.uint8)
