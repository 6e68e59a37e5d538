"""Adapters running PySceneDetect's detectors (``scenedetect-headless``) on frames decoded by celbench.

Each adapter feeds the frames (converted to BGR, as PySceneDetect expects) to the detector's
``process_frame`` with a frame-number timecode and returns the cut frame numbers it reports. Defaults are
PySceneDetect's own, except where a parameter is passed. PySceneDetect detectors also enforce
``min_scene_len`` (its default: 15 frames), unlike histogram-mse, which leaves short shots to the
``min_length`` filter of :mod:`dataprep.shots.detect`.
"""

from __future__ import annotations

import cv2
import numpy as np

from dataprep.shots.detector import DETECTORS, ShotDetector


class _SceneDetectAdapter(ShotDetector):
    """Wraps a ``scenedetect`` detector class; ``kwargs`` go to its constructor."""

    detector_class_name = ""
    # PySceneDetect may hold a cut back (flash filter, adaptive window); generous bound for the caller's buffer.
    max_delay = 256

    def __init__(self, analysis_width: int | None = 256, **kwargs):
        self.analysis_width = analysis_width
        self.kwargs = kwargs
        import scenedetect.detectors as sd_detectors

        self._class = getattr(sd_detectors, self.detector_class_name)
        self._class(**kwargs)  # fail early on bad parameters
        self.reset(24.0)

    def params(self) -> dict:
        return {"analysis_width": self.analysis_width, **self.kwargs}

    def reset(self, fps: float) -> None:
        super().reset(fps)
        self._detector = self._class(**self.kwargs)
        self._last = 0

    def _timecode(self, index: int):
        from scenedetect import FrameTimecode

        return FrameTimecode(index, fps=self.fps)

    def process(self, index: int, image: np.ndarray) -> list[int]:
        self._last = index
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return [int(tc.frame_num) for tc in self._detector.process_frame(self._timecode(index), bgr)]

    def finish(self) -> list[int]:
        return [int(tc.frame_num) for tc in self._detector.post_process(self._timecode(self._last))]


@DETECTORS.register("content")
class ContentDetector(_SceneDetectAdapter):
    """PySceneDetect ``ContentDetector``: weighted HSV + edge change between consecutive frames."""

    detector_class_name = "ContentDetector"


@DETECTORS.register("adaptive")
class AdaptiveDetector(_SceneDetectAdapter):
    """PySceneDetect ``AdaptiveDetector``: content score relative to a rolling average."""

    detector_class_name = "AdaptiveDetector"
    threshold_param = "adaptive_threshold"


@DETECTORS.register("histogram")
class HistogramDetector(_SceneDetectAdapter):
    """PySceneDetect ``HistogramDetector``: Y-channel histogram correlation."""

    detector_class_name = "HistogramDetector"


@DETECTORS.register("hash")
class HashDetector(_SceneDetectAdapter):
    """PySceneDetect ``HashDetector``: perceptual-hash distance."""

    detector_class_name = "HashDetector"
