"""Sketch (line-art) extraction from colour frames: the interface and the registry.

A :class:`SketchExtractor` turns one RGB frame (H, W, 3) uint8 into line art (H, W) uint8 with
0 = line (ink) and 255 = paper, the convention of the synthetic generator and of the Shi et al. (TVCG 2023,
section 3.1) data preparation. Implementations live in :mod:`dataprep.sketch.extractors`; adding one is a class and a
decorator::

    @EXTRACTORS.register("my-extractor")
    class MyExtractor(SketchExtractor): ...

``EXTRACTORS.create("xdog", sigma=0.8)`` builds one; ``extractor.params`` is the JSON-able record of every
setting (including seeds of randomised variants) that the dataset manifest stores next to the sketches.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from dataprep.errors import CelbenchError
from dataprep.registry import Registry


class SketchExtractor(abc.ABC):
    """Colour frame -> line art.

    Subclasses implement :meth:`extract` and keep their settings in :attr:`params`.
    """

    #: Short description shown by ``dataprep ls extractors``.
    summary: str = ""

    @property
    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able settings that, with the name, reproduce this extractor's output exactly."""

    @abc.abstractmethod
    def extract(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) uint8 line art, 0 = line, 255 = paper."""

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        rgb = check_rgb(rgb)
        sketch = self.extract(rgb)
        assert sketch.shape == rgb.shape[:2] and sketch.dtype == np.uint8, (sketch.shape, sketch.dtype)
        return sketch


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Validate an (H, W, 3) uint8 frame; anything else is a user error."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CelbenchError(f"expected an (H, W, 3) uint8 RGB frame, got shape {rgb.shape} dtype {rgb.dtype}")
    return rgb


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luma in [0, 1] (ITU-R BT.601 weights, as OpenCV)."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


EXTRACTORS: Registry[SketchExtractor] = Registry("extractor", entry_point_group="celbench.extractors")

#: The extractor a build uses unless its config names another (``sketch.name``), and what training sources that
#: compute sketches use to match built datasets.
DEFAULT_EXTRACTOR = "xdog"
