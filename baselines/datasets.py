"""Training data sources, chosen by ``bench train --data SPEC``.

``SPEC`` is a dataset directory built by ``dataprep build`` (read with ``benchmark.data.PairDataset``,
split ``train`` for training and ``val`` for validation), or ``NAME[:key=value,...]`` for a registered
in-memory source, e.g. ``shapes:n=16,size=32``. Every source is a ``torch.utils.data.Dataset`` whose items
are the batch dict of ``baselines.model`` without the batch axis: reference_colour (K,3,H,W),
reference_sketch (K,1,H,W), reference_field (K,1,H,W), target_sketch (1,H,W), target_field (1,H,W),
target_colour (3,H,W); float32 in [0, 1].
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from dataprep.errors import CelbenchError
from dataprep.registry import Registry

DATASETS: Registry[Dataset] = Registry("dataset source")

#: Distances (pixels) are divided by this and clipped to 1 in the distance fields built here.
DISTANCE_SCALE = 16.0


def sketch_from_labels(labels: np.ndarray) -> np.ndarray:
    """(H, W) int region labels -> (H, W) float32 line art, 0 on region boundaries, 1 elsewhere."""
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return np.where(edge, 0.0, 1.0).astype(np.float32)


def distance_field(sketch: np.ndarray, scale: float = DISTANCE_SCALE) -> np.ndarray:
    """(H, W) line art (0 = line) -> (H, W) float32 Euclidean distance to the nearest line / scale, in [0, 1]."""
    dist = ndimage.distance_transform_edt(sketch > 0.5)
    return np.minimum(dist / scale, 1.0).astype(np.float32)


def pair_item(ref_colors: list[np.ndarray], ref_sketches: list[np.ndarray], target_color: np.ndarray,
              target_sketch: np.ndarray) -> dict[str, torch.Tensor]:
    """Build one dataset item from (H, W, 3) float RGB and (H, W) line-art arrays in [0, 1]."""
    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None]))

    return {
        "reference_colour": torch.stack([chw(c) for c in ref_colors]),
        "reference_sketch": torch.stack([chw(s) for s in ref_sketches]),
        "reference_field": torch.stack([chw(distance_field(s)) for s in ref_sketches]),
        "target_sketch": chw(target_sketch),
        "target_field": chw(distance_field(target_sketch)),
        "target_colour": chw(target_color),
    }


@DATASETS.register("shapes")
class ShapesPairs(Dataset):
    """Procedural flat-colour pairs: random ellipses on a coloured background; the target moves every
    shape by a small random offset, so the reference colours must be carried to new positions.

    Args:
        n: number of pairs. size: frame side (px). shapes: ellipses per frame. shift: max offset (px).
        refs: K reference frames per pair (each with its own offset). seed: base seed (item i uses seed+i).
    Items are generated once and cached (the whole set is small).
    """

    def __init__(self, n: int = 16, size: int = 32, shapes: int = 4, shift: int = 3, refs: int = 1, seed: int = 0):
        self.n, self.size, self.shapes, self.shift, self.refs, self.seed = n, size, shapes, shift, refs, seed
        self._cache: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.n

    def _render(self, rng: np.random.Generator, centres: np.ndarray, radii: np.ndarray,
                palette: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        yy, xx = np.mgrid[: self.size, : self.size].astype(np.float32)
        labels = np.zeros((self.size, self.size), np.int32)
        for index, ((cy, cx), (ry, rx)) in enumerate(zip(centres + offset, radii), start=1):
            labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = index
        sketch = sketch_from_labels(labels)
        color = palette[labels] * sketch[..., None]  # lines drawn black on the colour frame
        return color.astype(np.float32), sketch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0 or index >= self.n:
            raise IndexError(index)
        if index not in self._cache:
            rng = np.random.default_rng(self.seed + index)
            s = self.size
            centres = rng.uniform(0.2 * s, 0.8 * s, (self.shapes, 2))
            radii = rng.uniform(0.08 * s, 0.25 * s, (self.shapes, 2))
            palette = rng.uniform(0.05, 1.0, (self.shapes + 1, 3)).astype(np.float32)
            frames = [self._render(rng, centres, radii, palette, rng.integers(-self.shift, self.shift + 1, 2))
                      for _ in range(self.refs + 1)]
            target, refs = frames[0], frames[1:]
            self._cache[index] = pair_item([c for c, _ in refs], [k for _, k in refs], target[0], target[1])
        return self._cache[index]


@DATASETS.register("synth")
def synth_pairs(n: int = 16, size: int = 64, seed: int = 0, refs: int = 1) -> Dataset:
    """Pairs from ``dataprep.synth`` clips: the first frame of a shot is the reference, later frames of the
    same shot are targets (sketch = the clip's line art)."""
    try:
        synth = importlib.import_module("dataprep.synth")
    except ImportError:
        raise CelbenchError("dataset 'synth': dataprep.synth is not available in this install") from None
    items: list[dict[str, torch.Tensor]] = []
    clip_seed = seed
    while len(items) < n:
        clip = synth.SynthClip(synth.SynthConfig(width=size, height=size, seed=clip_seed, shots=2,
                                                 shot_length=(8, 12), fade=False, flash=False))
        shot_frames: dict[int, list] = {}
        for frame in clip.frames():
            shot_frames.setdefault(frame.shot, []).append(frame)
        for frames in shot_frames.values():
            references, targets = frames[:refs], frames[refs::3]
            for target in targets:
                if len(items) >= n or not references:
                    break
                items.append(pair_item([r.image.astype(np.float32) / 255 for r in references],
                                       [r.line_art.astype(np.float32) / 255 for r in references],
                                       target.image.astype(np.float32) / 255,
                                       target.line_art.astype(np.float32) / 255))
        clip_seed += 1
    return ListDataset(items)


class ListDataset(Dataset):
    """A list of ready items as a Dataset."""

    def __init__(self, items: list[dict[str, torch.Tensor]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def open_dataset(spec: str) -> Dataset:
    """The training Dataset for ``--data SPEC`` (see the module docstring)."""
    return open_datasets(spec)[0]


def open_datasets(spec: str) -> tuple[Dataset, Dataset | None]:
    """(training set, validation set or None) for ``--data SPEC``; in-memory sources have no separate
    validation set (the trainer holds out ``val_fraction`` of them)."""
    if os.path.isdir(spec):
        try:
            reader = importlib.import_module("benchmark.data")
        except ImportError:
            raise CelbenchError(f"{spec}: reading dataset folders needs benchmark.data, not in this install") from None
        train_set = reader.PairDataset(spec, split="train")
        if len(train_set) == 0:
            raise CelbenchError(f"{spec}: no pairs in split 'train'")
        val_set = reader.PairDataset(spec, split="val")
        return train_set, (val_set if len(val_set) else None)
    name, _, args = spec.partition(":")
    if name not in DATASETS:
        if "/" in spec or os.sep in spec:
            raise CelbenchError(f"{spec}: no such dataset directory")
        raise CelbenchError(DATASETS.unknown_message(name) + "; or pass a dataset directory")
    kwargs = {}
    for part in filter(None, args.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise CelbenchError(f"--data {spec}: expected key=value, got {part!r}")
        kwargs[key.strip()] = _parse_value(value.strip())
    try:
        return DATASETS.create(name, **kwargs), None
    except TypeError as error:
        raise CelbenchError(f"--data {spec}: {error}") from None
