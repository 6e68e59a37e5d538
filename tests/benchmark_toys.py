"""Tiny hand-built material for benchmark tests: a moving-shapes clip as a MemorySource and a PSNR
metric checked against scikit-image (so tests do not depend on the metric package's internals)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from benchmark.protocol import select_samples
from benchmark.source import Frame, MemorySource, SampleSpec, Shot

PALETTE = {1: (230, 220, 200), 2: (200, 40, 40), 3: (40, 90, 200)}  # paper-ish background, disc, box


def toy_frame(t: int, size: int = 64, speed: int = 2) -> Frame:
    """Frame ``t``: a red disc moving right and a blue box moving down, black outlines, region labels."""
    labels = np.ones((size, size), np.int32)
    travel = size // 2  # shapes bounce back and forth so long shots stay in frame
    offset = (speed * t) % (2 * travel)
    offset = offset if offset < travel else 2 * travel - offset
    cv2.circle(labels, (size // 6 + offset, size // 2), size // 6, 2, -1)
    cv2.rectangle(labels, (size - 24, 4 + offset // 2), (size - 8, 18 + offset // 2), 3, -1)
    colour = np.zeros((size, size, 3), np.uint8)
    for label, rgb in PALETTE.items():
        colour[labels == label] = rgb
    edges = cv2.morphologyEx(labels.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    sketch = np.where(edges, 0, 255).astype(np.uint8)
    colour[edges] = 0
    labels[edges] = 0
    field = cv2.distanceTransform(sketch, cv2.DIST_L2, 3).astype(np.float32)
    return Frame(colour=colour, sketch=sketch, field=field / max(float(field.max()), 1.0),
                 components=labels.astype(np.uint16))


def toy_source(shots: int = 2, frames: int = 12, size: int = 64, split: str = "test") -> MemorySource:
    """``shots`` shots of ``frames`` frames; shot s moves at speed s + 1 pixels/frame."""
    frame_map, shot_list = {}, []
    for s in range(shots):
        ids = []
        for t in range(frames):
            frame_id = f"toy/{s}/{t:03d}"
            frame_map[frame_id] = toy_frame(t, size, speed=s + 1)
            ids.append(frame_id)
        shot_list.append(Shot(f"toy/{s}", tuple(ids)))
    frames_only = MemorySource({split: shot_list}, frame_map, location="toy")
    # Mined pairs as dataprep build names them (cmft-test@S), drawn with the frame-level CMFT sampler.
    mined = [SampleSpec(s.sample_id, s.reference_ids, s.target_id, {**s.attributes, "kind": f"cmft-test@{s.attributes['stride']}"})
             for s in select_samples(frames_only, split, "interval", strides=[1, 5, 10])]
    return MemorySource({split: shot_list}, frame_map, manifest={"toy": 1, "size": size}, location="toy",
                        mined={split: mined})


class LocalPSNR:
    """PSNR in dB over RGB: 10 log10(data_range^2 / MSE); inputs (H, W, 3) uint8, as the metric
    interface (benchmark.metric) takes them."""

    name = "psnr"
    higher_is_better = True

    def __init__(self, data_range: float = 255.0, max_db: float | None = None):
        self.data_range, self.max_db = data_range, max_db

    def settings(self) -> dict:
        return {"data_range": self.data_range, "colour_space": "rgb", "max_db": self.max_db}

    def score(self, pred: np.ndarray, target: np.ndarray, **extra) -> float:
        mse = float(((pred.astype(np.float64) - target.astype(np.float64)) ** 2).mean())
        value = float("inf") if mse == 0 else 10 * np.log10(self.data_range ** 2 / mse)
        return value if self.max_db is None else min(value, self.max_db)


class LocalMAE:
    name = "mae"
    higher_is_better = False

    def settings(self) -> dict:
        return {}

    def score(self, pred, target, **extra) -> float:
        return float(np.abs(pred.astype(np.float64) - target.astype(np.float64)).mean())


def local_metric_factory(spec):
    """Stand-in for the metric registry: every protocol metric becomes PSNR, or MAE for 'ssim'."""
    if spec.name == "ssim":
        return LocalMAE()
    return LocalPSNR(**spec.settings) if spec.name == "psnr" else LocalPSNR(max_db=100.0)


def one_torch_thread():
    """Generator for an autouse fixture: tiny tensors gain nothing from intra-op threads, and on a
    shared 2-core machine spinning OpenMP workers slow these tests several-fold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
