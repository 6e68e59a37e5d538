"""PyTorch access to a built dataset (``dataprep build``): pairs joined to their frames, as tensors.

:class:`PairDataset` yields one dict per row of the pairs table (optionally filtered by split and kind), keyed by
the canonical names of :mod:`dataprep.dataset.keys` (the same keys ``bench evaluate`` gives models)::

    reference_colour      (K, 3, H, W) float32 in [0, 1], sRGB      K = number of references of the pair
    reference_sketch      (K, 1, H, W) float32 in [0, 1], 0 = line, 1 = paper
    reference_field       (K, 1, H, W) float32 in [0, 1] (``dataprep.field.decode_field``)
    reference_components  (K, H, W)    int64 component labels, 0 = line pixels
    target_colour         (3, H, W)    float32 in [0, 1] (ground truth)
    target_sketch         (1, H, W)    float32 in [0, 1]
    target_field          (1, H, W)    float32 in [0, 1]
    target_components     (H, W)       int64
    hints                 (4, H, W)    float32: RGB hint colours in [0, 1] (0 where no hint) and the mask (1 = hint)
    correspondences       (M, 2)       int64 (reference label, target label) pairs, first reference
    interval              ()           int64 frames from the first reference to the target
    kind, pair_key, target_key, split: str

Frames are read through the dataset contract's one reader (:class:`dataprep.dataset.reader.DatasetReader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dataprep.dataset import keys
from dataprep.dataset.reader import DatasetReader, StoredFrame
from dataprep.errors import CelbenchError
from dataprep.field import decode_field

_PAIR_COLUMNS = ["pair_key", "split", "kind", "reference_keys", "target_key", "interval", "correspondences"]


class PairDataset(Dataset):
    """Pairs of a dataset folder as tensors (see module docstring).

    Args:
        root: dataset folder (holding meta/info.json).
        split: keep only this split ('train', 'val', 'test'); None = all.
        kinds: keep only these pair kinds (e.g. ['train-window'] or ['cmft-test@5']); a kind ending in '@' or
            without '@' also matches every stride ('cmft-test' matches 'cmft-test@1', ...). None = all.
        cache_shards: shards kept in memory (see :class:`DatasetReader`).
    """

    def __init__(self, root: str | Path, split: str | None = None, kinds: Sequence[str] | None = None,
                 cache_shards: int = 4):
        self.root = Path(root)
        self.reader = DatasetReader(self.root, cache_shards=cache_shards)
        self.pairs: list[dict] = []
        self.pair_index: list[tuple[Path, int]] = []
        for path, row_number, row in self.reader.pairs(_PAIR_COLUMNS):
            if split is not None and row["split"] != split:
                continue
            if kinds is not None and not any(row["kind"] == k or row["kind"].split("@")[0] == k.rstrip("@")
                                             for k in kinds):
                continue
            self.pairs.append(row)
            self.pair_index.append((path, row_number))
        if not self.pairs and not self.reader.frames:
            raise CelbenchError(f"{self.root}: dataset has no frames")

    def __len__(self) -> int:
        return len(self.pairs)

    def frame(self, key: str) -> StoredFrame:
        """The stored images of one frame (see :class:`StoredFrame`)."""
        if key not in self.reader:
            raise CelbenchError(f"{self.root}: pair refers to missing frame {key}")
        return self.reader.frame(key)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        path, row = self.pair_index[index]
        refs = [self.frame(k) for k in pair["reference_keys"]]
        target = self.frame(pair["target_key"])
        matches = [(c["ref_id"], c["tgt_id"]) for c in pair["correspondences"]]
        hints = self.reader.pair_hints(path, row)
        return {
            keys.REFERENCE_COLOUR: torch.stack([_colour(f.colour) for f in refs]),
            keys.REFERENCE_SKETCH: torch.stack([_sketch(f.sketch) for f in refs]),
            keys.REFERENCE_FIELD: torch.stack([_field(f.field) for f in refs]),
            keys.REFERENCE_COMPONENTS: torch.stack([_labels(f.components) for f in refs]),
            keys.TARGET_COLOUR: _colour(target.colour),
            keys.TARGET_SKETCH: _sketch(target.sketch),
            keys.TARGET_FIELD: _field(target.field),
            keys.TARGET_COMPONENTS: _labels(target.components),
            keys.HINTS: torch.from_numpy(np.ascontiguousarray(hints.transpose(2, 0, 1))),
            keys.CORRESPONDENCES: torch.tensor(matches, dtype=torch.int64).reshape(-1, 2),
            keys.INTERVAL: torch.tensor(pair["interval"], dtype=torch.int64),
            "kind": pair["kind"], "pair_key": pair["pair_key"], "target_key": pair["target_key"],
            "split": pair["split"],
        }


def _sketch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 255.0)[None]


def _field(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(decode_field(image))[None]


def _labels(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.int64))


def _colour(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``DataLoader`` collate for :class:`PairDataset` items.

    Tensors of equal shape are stacked (batch first); tensors whose shapes differ across the batch (a varying
    number K of references, M of correspondences, or sizes under ``frames.resize=keep-aspect``) and strings are
    returned as lists.
    """
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor) and all(v.shape == values[0].shape for v in values):
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
