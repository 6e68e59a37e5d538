"""Histogram-MSE cut detector of Shi et al. (TVCG 2023, Sec. 4.1), made resolution independent and anime-safe.

Paper: per frame a 768-d vector of the R, G and B 256-bin histograms; a new shot starts where the mean
squared error between consecutive vectors exceeds 200.

Normalisation (the paper does not give one, and with raw pixel counts "200" would scale with the square of
the pixel count): each channel's histogram is divided by the number of pixels (fractions summing to 1) and
multiplied by ``reference_pixels`` = 5760 (the pixel count of an 80x72 thumbnail). The MSE therefore does not
depend on the frame size. 5760 was calibrated once so that the paper's threshold 200 sits near the geometric
middle between the weakest hard cut (about 280) and the strongest within-shot change (about 150) of the
real test clips at the default 256-pixel analysis width (docs/shots.md has the measurements).

Anime guards, each a documented parameter:

- Flashes (``max_flash_frames``): a change only counts if it persists. A candidate cut at frame i needs
  every pair (a, b) with a in the ``max_flash_frames + 1`` frames before i and b in i .. i + max_flash_frames
  to differ by more than the threshold; a flash of up to that many frames has the same picture on both
  sides, so some pair is close and the candidate is rejected (at the flash's start and at its end).
- Fades, dissolves, colour grading, GIF palette switches, and drawing changes of flat-colour cels
  (``tone_r2``): if frame i is explained by a per-channel gain and offset of frame i-1 on a blurred
  32-pixel-wide thumbnail (half the 64-pixel :func:`frame_thumbnail`) (coefficient of determination R^2 >= ``tone_r2`` = 0.65), the layout of the
  picture is kept and only its tone or a detail changed: not a cut. On the real clips every true cut has
  R^2 <= 0.50 and every within-shot change above the MSE threshold R^2 >= 0.71 (synthetic drawing changes
  0.84-0.92), so 0.65 sits in the gap. Weak spot: a cut between two very similar compositions (the same
  close-up from two takes) keeps its layout and is missed.

The cut index is the frame where the new picture starts (i, with the change between i-1 and i), so the
frames at a cut land in the right shot.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import cv2
import numpy as np

from dataprep.shots.detector import DETECTORS, ShotDetector
from dataprep.errors import CelbenchError

#: Paper threshold on the histogram MSE (Sec. 4.1).
PAPER_THRESHOLD = 200.0
#: Pixel count the histograms are scaled to (see module docstring).
REFERENCE_PIXELS = 5760


def rgb_histogram(image: np.ndarray, reference_pixels: float = REFERENCE_PIXELS) -> np.ndarray:
    """The 768-d feature of Sec. 4.1: R, G, B 256-bin histograms, scaled to ``reference_pixels`` pixels.

    Args:
        image: (H, W, 3) uint8 RGB.
        reference_pixels: each channel's histogram sums to this (fractions of the frame x reference_pixels).

    Returns:
        (768,) float64: bins 0-255 red, 256-511 green, 512-767 blue.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    hist = np.concatenate([cv2.calcHist([image], [c], None, [256], [0, 256]).ravel() for c in range(3)])
    return hist.astype(np.float64) * (reference_pixels / (image.shape[0] * image.shape[1]))


def histogram_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error between two 768-d histogram vectors (the paper's frame difference)."""
    diff = a - b
    return float(np.dot(diff, diff) / diff.size)


#: Width of the frame thumbnail shared by the tone test and the shot filters (:mod:`dataprep.shots.detect`).
THUMBNAIL_WIDTH = 64


def frame_thumbnail(image: np.ndarray) -> np.ndarray:
    """(h, 64, 3) uint8 area-averaged thumbnail of an (H, W, 3) uint8 RGB frame, aspect kept (h >= 2)."""
    h, w = image.shape[:2]
    size = (THUMBNAIL_WIDTH, max(2, round(THUMBNAIL_WIDTH * h / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def tone_thumbnail(thumbnail: np.ndarray) -> np.ndarray:
    """(h, 32, 3) float32 blurred thumbnail used by the tone-change test (structure, not texture or dither).

    Args:
        thumbnail: the :func:`frame_thumbnail` of the frame; halving it (an exact 2x2 box where its height
            is even) is far cheaper than a second area resize of the whole frame.
    """
    h, w = thumbnail.shape[:2]
    small = cv2.resize(thumbnail, (w // 2, max(2, round(h / 2))), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small.astype(np.float32), (3, 3), 0)


def tone_r2(previous: np.ndarray, current: np.ndarray) -> float:
    """R^2 of the best per-channel affine map ``current ~ g * previous + o`` (1 = a pure tone change).

    Both inputs are thumbnails from :func:`tone_thumbnail`. Channels are pooled: the score is
    1 - (sum of squared residuals) / (sum of squared deviations of ``current`` from its channel means).
    A channel that is flat in ``previous`` (fade from black) is fitted by its mean.
    """
    residual = total = 0.0
    for c in range(3):
        x = previous[..., c].ravel().astype(np.float64)
        y = current[..., c].ravel().astype(np.float64)
        yc = y - y.mean()
        total += float(np.dot(yc, yc))
        xc = x - x.mean()
        var = float(np.dot(xc, xc))
        fitted = yc if var < 1e-6 else yc - xc * (np.dot(xc, yc) / var)
        residual += float(np.dot(fitted, fitted))
    if total < 1e-6 * y.size * 3:
        return 1.0  # current frame is flat (e.g. black): any tone map reaches it
    return 1.0 - residual / total


class FrameFeatures(NamedTuple):
    """What :meth:`HistogramMSEDetector.features` computes per frame (the shot filters reuse the first two)."""

    histogram: np.ndarray  #: (768,) float64, :func:`rgb_histogram`
    thumbnail: np.ndarray  #: (h, 64, 3) uint8 RGB, :func:`frame_thumbnail`
    tone: np.ndarray  #: (h', 32, 3) float32, :func:`tone_thumbnail`


@DETECTORS.register("histogram-mse")
class HistogramMSEDetector(ShotDetector):
    """Shi et al. Sec. 4.1 histogram-MSE cuts with resolution-independent histograms and anime guards.

    Args:
        threshold: MSE between consecutive 768-d histogram vectors above which a cut is a candidate
            (paper: 200).
        reference_pixels: histogram scale (see module docstring).
        max_flash_frames: longest flash (bright or otherwise different frames between two identical
            pictures) that must not produce a cut; 0 disables the persistence check.
        tone_r2: minimum R^2 of a per-channel gain/offset fit that marks a change as a fade or
            tone change rather than a cut; values > 1 disable the test.
        analysis_width: frames are shrunk to this width (aspect kept) before the histograms.
    """

    def __init__(self, threshold: float = PAPER_THRESHOLD, reference_pixels: float = REFERENCE_PIXELS,
                 max_flash_frames: int = 2, tone_r2: float = 0.65, analysis_width: int | None = 256):
        if threshold <= 0 or reference_pixels <= 0 or max_flash_frames < 0:
            raise CelbenchError("histogram-mse: threshold and reference_pixels must be > 0, max_flash_frames >= 0")
        self.threshold = float(threshold)
        self.reference_pixels = float(reference_pixels)
        self.max_flash_frames = int(max_flash_frames)
        self.tone_r2 = float(tone_r2)
        self.analysis_width = analysis_width
        self.max_delay = self.max_flash_frames
        self.reset(24.0)

    def params(self) -> dict:
        return {"threshold": self.threshold, "reference_pixels": self.reference_pixels,
                "max_flash_frames": self.max_flash_frames, "tone_r2": self.tone_r2,
                "analysis_width": self.analysis_width}

    def reset(self, fps: float) -> None:
        super().reset(fps)
        span = self.max_flash_frames + 1
        # (index, histogram, thumbnail) of the last 2 * span frames: enough for one candidate's windows.
        self._recent: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=2 * span)
        self._candidates: deque[int] = deque()
        self._last_cut = 0

    def features(self, image: np.ndarray) -> FrameFeatures:
        thumbnail = frame_thumbnail(image)
        return FrameFeatures(rgb_histogram(image, self.reference_pixels), thumbnail, tone_thumbnail(thumbnail))

    def process(self, index: int, features: FrameFeatures) -> list[int]:
        hist, thumb = features.histogram, features.tone
        if self._recent:
            _, prev_hist, prev_thumb = self._recent[-1]
            if (histogram_mse(prev_hist, hist) > self.threshold
                    and tone_r2(prev_thumb, thumb) < self.tone_r2):
                self._candidates.append(index)
        self._recent.append((index, hist, thumb))
        return self._decide(index, final=False)

    def finish(self) -> list[int]:
        return self._decide(None, final=True)

    def _decide(self, newest: int | None, final: bool) -> list[int]:
        cuts = []
        while self._candidates:
            candidate = self._candidates[0]
            if not final and newest < candidate + self.max_flash_frames:
                break  # the frames after the candidate are not in yet
            self._candidates.popleft()
            if self._persists(candidate):
                cuts.append(candidate)
                self._last_cut = candidate
        return cuts

    def _persists(self, candidate: int) -> bool:
        span = self.max_flash_frames + 1
        # Frames before the candidate but not before the previous cut: the earlier shot is not "the picture
        # before a flash".
        before = [h for i, h, _ in self._recent if max(candidate - span, self._last_cut) <= i < candidate]
        after = [h for i, h, _ in self._recent if candidate <= i < candidate + span]
        return all(histogram_mse(a, b) > self.threshold for a in before for b in after)
