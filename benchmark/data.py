"""PyTorch access to a built dataset (``dataprep build``): pairs joined to their frames, as tensors.

:class:`PairDataset` yields one dict per row of the pairs table (optionally filtered by split and kind)::

    reference_colour   (K, 3, H, W) float32 in [0, 1], sRGB      K = number of references of the pair
    reference_sketch   (K, 1, H, W) float32 in [0, 1], 0 = line, 1 = paper
    reference_field    (K, 1, H, W) float32 in [0, 1], distance field (dataprep.field encoding / 65535)
    reference_labels   (K, H, W)    int64 component labels, 0 = line pixels
    target_colour      (3, H, W)    float32 in [0, 1] (ground truth)
    target_sketch      (1, H, W)    float32 in [0, 1]
    target_field       (1, H, W)    float32 in [0, 1]
    target_labels      (H, W)       int64
    hints              (3, H, W)    float32 in [0, 1], 0 where no hint
    hint_mask          (1, H, W)    float32 in {0, 1}
    correspondences    (M, 2)       int64 (reference label, target label) pairs, first reference
    interval           ()           int64 frames from the first reference to the target
    kind, pair_key, target_key, split: str

Frames are found through an index of frame keys -> (shard, row) built from the key column only; shards are read
on demand and the last few kept in an LRU cache, so memory stays bounded for large datasets (pairs refer to frames
of the same unit, so consecutive pairs hit the same shard).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from dataprep.build import shard_files
from dataprep.errors import CelbenchError
from dataprep.imaging import decode_png

_FRAME_COLUMNS = ["frame_key", "colour", "sketch", "distance_field", "components"]


def _image(cell: dict) -> np.ndarray:
    return decode_png(cell["bytes"])


class PairDataset(Dataset):
    """Pairs of a dataset folder as tensors (see module docstring).

    Args:
        root: dataset folder (holding meta/info.json).
        split: keep only this split ('train', 'val', 'test'); None = all.
        kinds: keep only these pair kinds (e.g. ['train-window'] or ['cmft-test@5']); a kind ending in '@' or
            without '@' also matches every stride ('cmft-test' matches 'cmft-test@1', ...). None = all.
        cache_shards: frames shards kept decoded-free (as Arrow tables) in memory.
    """

    def __init__(self, root: str | Path, split: str | None = None, kinds: Sequence[str] | None = None,
                 cache_shards: int = 4):
        self.root = Path(root)
        self.cache_shards = cache_shards
        self._cache: OrderedDict[Path, Any] = OrderedDict()
        self.frame_index: dict[str, tuple[Path, int]] = {}
        for path in shard_files(self.root, "frames"):
            keys = pq.read_table(path, columns=["frame_key"]).column("frame_key").to_pylist()
            for row, key in enumerate(keys):
                self.frame_index[key] = (path, row)
        columns = ["pair_key", "split", "kind", "reference_keys", "target_key", "interval", "correspondences"]
        self.pairs: list[dict] = []
        self.pair_index: list[tuple[Path, int]] = []
        for path in shard_files(self.root, "pairs"):
            rows = pq.read_table(path, columns=columns).to_pylist()
            for row_number, row in enumerate(rows):
                if split is not None and row["split"] != split:
                    continue
                if kinds is not None and not any(row["kind"] == k or row["kind"].split("@")[0] == k.rstrip("@")
                                                 for k in kinds):
                    continue
                self.pairs.append(row)
                self.pair_index.append((path, row_number))
        if not self.pairs and not self.frame_index:
            raise CelbenchError(f"{self.root}: dataset has no frames")

    def __len__(self) -> int:
        return len(self.pairs)

    def _table(self, path: Path, columns: list[str]):
        key = (path, tuple(columns))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        table = pq.read_table(path, columns=columns)
        self._cache[key] = table
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return table

    def frame(self, key: str) -> dict[str, np.ndarray]:
        """Decoded images of one frame: colour (H, W, 3) uint8, sketch (H, W) uint8, field/labels (H, W) uint16."""
        try:
            path, row = self.frame_index[key]
        except KeyError:
            raise CelbenchError(f"{self.root}: pair refers to missing frame {key}") from None
        cells = self._table(path, _FRAME_COLUMNS).slice(row, 1).to_pylist()[0]
        return {"colour": _image(cells["colour"]), "sketch": _image(cells["sketch"]),
                "field": _image(cells["distance_field"]), "labels": _image(cells["components"])}

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        path, row = self.pair_index[index]
        hint_cells = self._table(path, ["hints", "hint_mask"]).slice(row, 1).to_pylist()[0]
        refs = [self.frame(k) for k in pair["reference_keys"]]
        target = self.frame(pair["target_key"])
        matches = [(c["ref_id"], c["tgt_id"]) for c in pair["correspondences"]]
        return {
            "reference_colour": torch.stack([_colour(f["colour"]) for f in refs]),
            "reference_sketch": torch.stack([_grey(f["sketch"], 255.0) for f in refs]),
            "reference_field": torch.stack([_grey(f["field"], 65535.0) for f in refs]),
            "reference_labels": torch.stack([torch.from_numpy(f["labels"].astype(np.int64)) for f in refs]),
            "target_colour": _colour(target["colour"]),
            "target_sketch": _grey(target["sketch"], 255.0),
            "target_field": _grey(target["field"], 65535.0),
            "target_labels": torch.from_numpy(target["labels"].astype(np.int64)),
            "hints": _colour(_image(hint_cells["hints"])),
            "hint_mask": _grey(_image(hint_cells["hint_mask"]), 255.0),
            "correspondences": torch.tensor(matches, dtype=torch.int64).reshape(-1, 2),
            "interval": torch.tensor(pair["interval"], dtype=torch.int64),
            "kind": pair["kind"], "pair_key": pair["pair_key"], "target_key": pair["target_key"],
            "split": pair["split"],
        }


def _colour(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def _grey(image: np.ndarray, scale: float) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / scale)[None]


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
