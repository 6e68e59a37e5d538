"""The shot-boundary detector interface and the ``DETECTORS`` registry.

A detector sees the frames of one video in order and reports *cuts*: the index of the first frame of
every shot but the first. Cuts may be decided late (a detector that checks whether a change persists
needs to see a few more frames), so :meth:`ShotDetector.process` returns the cuts decided so far and
:meth:`ShotDetector.finish` the rest. Adding a detector is one class in ``dataprep/shots/detectors/`` with
``@DETECTORS.register("name")``.

The work is in two parts so that most of it runs beside the decoder, on several threads: :meth:`ShotDetector.features`
(what depends on one frame alone: histograms, thumbnails) may be called for many frames at once and in any order;
:meth:`ShotDetector.process` then takes those features frame by frame, in order, and decides.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from dataprep.registry import Registry


class ShotDetector(ABC):
    """Finds hard cuts in a stream of frames.

    Attributes:
        analysis_width: frames are shrunk to at most this width (aspect kept) before :meth:`process`;
            None asks for full resolution. Detection runs on these small frames, which is what makes it
            fast; the cut indices refer to the original decoded frames either way.
        max_delay: the most frames a cut can be reported after it happened (the caller buffers this many).
        threshold_param: name of the constructor argument that ``--threshold`` sets.
        fps: frame rate of the video, set by :meth:`reset` (some detectors count time).
    """

    analysis_width: int | None = 256
    max_delay: int = 0
    threshold_param: str = "threshold"

    def reset(self, fps: float) -> None:
        """Start a new video at frame rate ``fps``; called before the first :meth:`process`."""
        self.fps = fps

    def features(self, image: np.ndarray) -> Any:
        """The per-frame part of the work on one (H, W, 3) uint8 RGB analysis frame; the default is the frame.

        Called on decoding threads, several frames at once, in any order: it must depend on ``image`` and the
        constructor's parameters only (no state of the video being processed).
        """
        return image

    @abstractmethod
    def process(self, index: int, features: Any) -> list[int]:
        """Take frame ``index`` (consecutive indices from 0) as :meth:`features` returned it.

        Returns:
            Cut indices (ascending, each the first frame of a new shot) decided by this call.
        """

    def finish(self) -> list[int]:
        """End of video: cut indices still pending."""
        return []

    def params(self) -> dict:
        """The settings that change this detector's output, for the result's ``params``."""
        return {}


DETECTORS: Registry[ShotDetector] = Registry("detector", entry_point_group="celbench.detectors")

#: The detector used when none is named (Shi et al. section 4.1: RGB-histogram MSE), everywhere.
DEFAULT_DETECTOR = "histogram-mse"


def load_detectors() -> Registry[ShotDetector]:
    """The detector registry (built-ins come from the ``builtin`` entry of ``celbench.detectors``)."""
    return DETECTORS

