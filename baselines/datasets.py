"""Training data sources, chosen by ``bench train --data SPEC``.

``SPEC`` is a dataset directory built by ``dataprep build`` (read with ``benchmark.data.PairDataset``,
split ``train`` for training and ``val`` for validation), or ``NAME[:key=value,...]`` for a registered
in-memory source, e.g. ``shapes:n=16,size=32``. Every source is a ``torch.utils.data.Dataset`` whose items
are the batch dict of ``baselines.model`` without the batch axis: reference_colour (K,3,H,W),
reference_sketch (K,1,H,W), reference_field (K,1,H,W), target_sketch (1,H,W), target_field (1,H,W),
target_colour (3,H,W); float32 in [0, 1].
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark.data import PairDataset
from dataprep import synth
from dataprep.errors import CelbenchError
from dataprep.pairs import AllPairs, ShiSequence, ShotView, TrainWindow
from dataprep.field import DEFAULT_FIELD, FIELDS, decode_field
from dataprep.sketch.extractor import DEFAULT_EXTRACTOR
from dataprep.registry import Registry, check_params

DATASETS: Registry[Dataset] = Registry("dataset source")

_FIELD = FIELDS.create(DEFAULT_FIELD)


def sketch_from_labels(labels: np.ndarray) -> np.ndarray:
    """(H, W) int region labels -> (H, W) float32 line art, 0 on region boundaries, 1 elsewhere."""
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return np.where(edge, 0.0, 1.0).astype(np.float32)


def distance_field(sketch: np.ndarray) -> np.ndarray:
    """(H, W) float line art in [0, 1] (0 = line) -> (H, W) float32 field in [0, 1], the same field
    (``dataprep.field`` ``euclidean`` at its defaults) that ``dataprep build`` stores, so in-memory training
    data matches built datasets."""
    return _FIELD.compute(sketch < 0.5)


def pair_item(ref_colors: list[np.ndarray], ref_sketches: list[np.ndarray], target_color: np.ndarray,
              target_sketch: np.ndarray,
              fields: tuple[np.ndarray | list[np.ndarray], np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """Build one dataset item from (H, W, 3) float RGB and (H, W) line-art arrays in [0, 1]; ``fields``
    (the reference field or a list of one per reference, the target field) when stored ones exist, else
    computed."""
    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None]))

    if fields is None:
        ref_fields, target_field = [distance_field(s) for s in ref_sketches], distance_field(target_sketch)
    else:
        ref_fields, target_field = fields
        ref_fields = ref_fields if isinstance(ref_fields, list) else [ref_fields]
    return {
        "reference_colour": torch.stack([chw(c) for c in ref_colors]),
        "reference_sketch": torch.stack([chw(s) for s in ref_sketches]),
        "reference_field": torch.stack([chw(f) for f in ref_fields]),
        "target_sketch": chw(target_sketch),
        "target_field": chw(target_field),
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


def window_pairs(length: int, window: int = 40, stride: int = 5) -> list[tuple[int, int]]:
    """(reference, target) frame positions of a shot of ``length`` frames, CMFT section 4.1: the build's
    ``train-window`` sampler (:class:`dataprep.pairs.TrainWindow`): a window of ``window`` frames slides with
    ``stride``; its first frame is the reference, its last the target.

    Shots shorter than the window use a window of the whole shot (``length - 1`` frames apart), so the
    sampling scales to short clips; shots of one frame give no pair.
    """
    if length < 2:
        return []
    sampler = TrainWindow(width=min(window, length), stride=max(stride, 1))
    return [(spec.references[0], spec.target) for spec in sampler.sample(ShotView.of("", range(length)))]


def kref_clips(length: int, refs: int, window: int = 8) -> list[tuple[tuple[int, ...], int]]:
    """(reference positions, target position) of a shot of ``length`` frames, Shi et al. section 4.1: the
    build's ``shi-seq`` sampler (:class:`dataprep.pairs.ShiSequence`): consecutive clips of ``window`` frames
    tile the shot; the ``refs`` frames that divide a clip (:func:`dataprep.pairs.kref_positions`; first and last
    for ``refs=2``) are its references and every other frame of the clip a target."""
    sampler = ShiSequence(length=window, stride=window, collapse_held=False, references=refs)
    return [(spec.references, spec.target) for spec in sampler.sample(ShotView.of("", range(length)))]


def shot_pairs(length: int, pairs: str, refs: int, window: int, stride: int) -> list[tuple[tuple[int, ...], int]]:
    """(reference positions, target position) of a shot: ``pairs`` "window" (:func:`window_pairs`, one
    reference) or "kref" (:func:`kref_clips`, ``refs`` references per clip of ``window`` frames)."""
    if pairs == "window":
        return [((a,), b) for a, b in window_pairs(length, window, stride)]
    return kref_clips(length, refs, window)


def make_sketcher(sketch: str):
    """``sketch`` = "labels" (region boundaries of the synthetic label map) or a registered extractor name
    (``dataprep.sketch.extractors``, default settings; "xdog" is what ``dataprep build`` uses by default).
    Returns f(frame) -> (H, W) float32 line art in [0, 1], 0 = line, for a frame with .image (RGB uint8)."""
    if sketch == "labels":
        return None
    from dataprep.sketch.extractor import EXTRACTORS

    extractor = EXTRACTORS.create(sketch)
    return lambda rgb: extractor(rgb).astype(np.float32) / 255


@DATASETS.register("synth")
def synth_pairs(n: int = 16, size: int = 64, seed: int = 0, refs: int = 1, pairs: str = "every3",
                window: int = 40, stride: int = 5, sketch: str = "line_art", shots: int = 2,
                min_shot: int = 8, max_shot: int = 12) -> Dataset:
    """``n`` pairs from ``dataprep.synth`` clips (``shots`` shots of ``min_shot``..``max_shot`` frames,
    ``size`` px square, clip seeds ``seed``, ``seed + 1``, ...).

    ``pairs``: "every3" (the first ``refs`` frames of a shot are the references, every third later frame a
    target), "window" (CMFT section 4.1 sampling, see :func:`window_pairs`; ``refs`` must be 1) or "kref"
    (Shi et al. section 4.1: consecutive clips of ``window`` frames; the ``refs`` frames that divide a clip,
    :func:`dataprep.pairs.kref_positions`, are its references and every other frame a target; with
    ``refs=2`` the first and last frame as in the paper's training).
    ``sketch``: "line_art" (the generator's ground-truth line art), "labels" (region boundaries) or an
    extractor name such as "xdog" (the sketch a built dataset holds; see :func:`make_sketcher`)."""
    if pairs not in ("every3", "window", "kref"):
        raise CelbenchError(f"dataset 'synth': pairs must be every3, window or kref, got {pairs!r}")
    if pairs == "window" and refs != 1:
        raise CelbenchError("dataset 'synth': pairs=window takes one reference (refs=1)")
    extract = None if sketch in ("line_art", "labels") else make_sketcher(sketch)

    def sketch_of(frame) -> np.ndarray:
        if sketch == "line_art":
            return frame.line_art.astype(np.float32) / 255
        if sketch == "labels":
            return sketch_from_labels(frame.labels)
        return extract(frame.image)

    items: list[dict[str, torch.Tensor]] = []
    clip_seed = seed
    while len(items) < n:
        clip = synth.SynthClip(synth.SynthConfig(width=size, height=size, seed=clip_seed, shots=shots,
                                                 shot_length=(min_shot, max_shot), fade=False, flash=False))
        shot_frames: dict[int, list] = {}
        for frame in clip.frames():
            shot_frames.setdefault(frame.shot, []).append(frame)
        for frames in shot_frames.values():
            if pairs == "every3":
                chosen = [(frames[:refs], target) for target in frames[refs::3]] if frames[:refs] else []
            else:
                chosen = [([frames[r] for r in references], frames[t])
                          for references, t in shot_pairs(len(frames), pairs, refs, window, stride)]
            for references, target in chosen:
                if len(items) >= n:
                    break
                items.append(pair_item([r.image.astype(np.float32) / 255 for r in references],
                                       [sketch_of(r) for r in references],
                                       target.image.astype(np.float32) / 255, sketch_of(target)))
        clip_seed += 1
    return ListDataset(items)


def read_frame_folder(folder: str, size: int) -> list[np.ndarray]:
    """Frames of one shot: the image files of ``folder`` in numeric-then-name order, each resized so its
    shorter side is ``size`` and centre-cropped to ``size`` x ``size``; (size, size, 3) uint8 RGB."""
    import cv2

    def order(name: str) -> tuple:
        stem = os.path.splitext(name)[0]
        return (0, int(stem), name) if stem.isdigit() else (1, 0, name)

    names = sorted((f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg", ".webp"))),
                   key=order)
    frames = []
    for name in names:
        bgr = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CelbenchError(f"{os.path.join(folder, name)}: cannot read image")
        frames.append(square_crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
    return frames


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8: shorter side resized to ``size`` (area filter), centre crop."""
    import cv2

    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(resized[top:top + size, left:left + size])


@DATASETS.register("frames")
def frame_folder_pairs(root: str, size: int = 128, window: int = 40, stride: int = 5,
                       sketch: str = DEFAULT_EXTRACTOR, pairs: str = "window", refs: int = 1) -> Dataset:
    """Pairs from folders of colour frames: every sub-folder of ``root`` (or ``root`` itself when it holds
    images) is one shot; pairs follow CMFT section 4.1 (``pairs=window``, :func:`window_pairs`) or Shi et
    al. section 4.1 (``pairs=kref``, :func:`kref_clips`: ``refs`` references per clip of ``window``
    frames); sketches come from the extractor ``sketch`` run on the resized frame (default xdog, as
    ``dataprep build``). Frames are resized to ``size`` px (shorter side) and centre-cropped square."""
    if pairs not in ("window", "kref"):
        raise CelbenchError(f"dataset 'frames': pairs must be window or kref, got {pairs!r}")
    if pairs == "window" and refs != 1:
        raise CelbenchError("dataset 'frames': pairs=window takes one reference (refs=1)")
    if not os.path.isdir(root):
        raise CelbenchError(f"{root}: no such frame folder")
    subdirs = sorted(os.path.join(root, d) for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    folders = subdirs or [root]
    extract = make_sketcher(sketch)
    if extract is None:
        raise CelbenchError("dataset 'frames': real frames have no labels; pick an extractor such as xdog")
    items: list[dict[str, torch.Tensor]] = []
    for folder in folders:
        frames = read_frame_folder(folder, size)
        sketches = [extract(f) for f in frames]
        for references, b in shot_pairs(len(frames), pairs, refs, window, stride):
            items.append(pair_item([frames[a].astype(np.float32) / 255 for a in references],
                                   [sketches[a] for a in references], frames[b].astype(np.float32) / 255, sketches[b]))
    if not items:
        raise CelbenchError(f"{root}: no frame pairs (each shot folder needs at least 2 images)")
    return ListDataset(items)


@DATASETS.register("shots")
class ShotPairs(Dataset):
    """Every (reference, target) pair of frames of one shot of a built dataset, ``1 <= |interval| <=
    max_interval`` frames apart, both directions (a later frame may be the reference: colouring backwards
    is the same task): the ``all-pairs`` sampler (:class:`dataprep.pairs.AllPairs`) over the stored frames.
    Built datasets hold few ``train-window`` pairs (one per 40-frame window), while short real shots give
    thousands of such pairs; the intervals cover the evaluation protocols' (1-10).

    With ``refs=2`` every item is a target between two references of its shot (Shi et al. section 4.1:
    the references bracket the frames they colour), the references at most ``max_interval`` frames apart.

    Args:
        root: dataset folder written by ``dataprep build``. split: frames of this split only.
        max_interval: largest frame distance (between the two references when ``refs=2``).
        backwards: also pairs with the reference after the target (``refs=1``).
        refs: 1 (pairs) or 2 (a reference before and one after the target, in time order).

    Items as :func:`pair_item`, from the stored frames (as ``PairDataset`` decodes them), plus
    ``target_components`` (H, W) int64 (the stored component labels); whole non-square frames are cut to a
    square of their shorter side at a random position (:func:`square_crop_item`).
    """

    def __init__(self, root: str, split: str = "train", max_interval: int = 10, backwards: int = 1, refs: int = 1):
        from dataprep.dataset.reader import DatasetReader

        if not os.path.isdir(root):
            raise CelbenchError(f"{root}: no such dataset directory")
        self.reader = DatasetReader(root)
        shots: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for row in self.reader.frames:
            if row["split"] == split:
                shots.setdefault((row["video_id"], row["shot_id"]), []).append((row["frame_index"], row["frame_key"]))
        if refs not in (1, 2):
            raise CelbenchError(f"dataset 'shots': refs must be 1 or 2, got {refs}")
        sampler = AllPairs(max_interval=max_interval, backwards=bool(backwards), references=refs)
        #: (reference keys..., target key) per item.
        self.pairs: list[tuple[str, ...]] = []
        for (video_id, shot_id), frames in shots.items():
            frames.sort()
            key_of = dict(frames)
            indices = [index for index, _ in frames]
            for spec in sampler.sample(ShotView(video_id, shot_id, indices, indices)):
                self.pairs.append((*(key_of[r] for r in spec.references), key_of[spec.target]))
        if not self.pairs:
            raise CelbenchError(f"{root}: no frame {'triples' if refs == 2 else 'pairs'} within {max_interval} "
                                f"frames in split {split!r}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        *references, target = (self.reader.frame(key) for key in self.pairs[index])
        item = pair_item([r.colour.astype(np.float32) / 255 for r in references],
                         [r.sketch.astype(np.float32) / 255 for r in references],
                         target.colour.astype(np.float32) / 255, target.sketch.astype(np.float32) / 255,
                         fields=([decode_field(r.field) for r in references], decode_field(target.field)))
        item["target_components"] = torch.from_numpy(target.components.astype(np.int64))
        return square_crop_item(item, random=True)  # whole frames of any aspect ratio batch as squares


def crop_item(item: dict[str, Any], top: int, left: int, height: int, width: int) -> dict[str, Any]:
    """``item`` with every tensor whose last two axes are the target's (H, W) (colours, sketches, fields, labels,
    hints, a warp prior) cut to the ``height`` x ``width`` box at (top, left); other values unchanged."""
    full = tuple(item["target_colour"].shape[-2:])
    return {key: value[..., top:top + height, left:left + width]
            if isinstance(value, torch.Tensor) and value.ndim >= 2 and tuple(value.shape[-2:]) == full else value
            for key, value in item.items()}


class SquareCropDataset(Dataset):
    """Items of ``dataset`` cut to the square of their shorter side, so whole frames of any aspect ratio
    (``frames.resize=short-side``, the build's default) stack into batches as the old square datasets did.
    ``random``: at a random position per item (training: every part of the frame is seen over the epochs; draws
    from torch's global generator, as :class:`baselines.recipe.RandomCropDataset`), else the centre (validation,
    the square the ``centre-crop`` fit of the protocols scores). Square items pass unchanged."""

    def __init__(self, dataset: Dataset, random: bool):
        self.dataset = dataset
        self.random = random

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return square_crop_item(self.dataset[index], self.random)


def square_crop_item(item: dict[str, Any], random: bool) -> dict[str, Any]:
    """``item`` cut to the square of its shorter side at a random position (torch's global generator) or the
    centre; a square item is returned as it is."""
    height, width = item["target_colour"].shape[-2:]
    side = min(height, width)
    if height == width:
        return item
    if random:
        top = int(torch.randint(0, height - side + 1, ()))
        left = int(torch.randint(0, width - side + 1, ()))
    else:
        top, left = (height - side) // 2, (width - side) // 2
    return crop_item(item, top, left, side, side)


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


#: Pair kinds of a built dataset that training reads (``dataprep.pairs`` samplers).
TRAIN_PAIR_KINDS = ("train-window",)


def open_many(specs: list[str]) -> tuple[Dataset, Dataset | None]:
    """(training set, validation set or None) for several ``--data`` arguments: the training items of
    every source in turn, and the validation items of the built datasets that have a ``val`` split (None
    when none has: the trainer then holds out ``val_fraction`` of the training items). All sources must give
    frames of one size (a batch stacks them)."""
    if len(specs) == 1:
        return open_datasets(specs[0])
    parts = [open_datasets(spec) for spec in specs]
    sizes = {spec: tuple(train[0]["target_colour"].shape[-2:]) for spec, (train, _) in zip(specs, parts)}
    if len(set(sizes.values())) > 1:
        raise CelbenchError("--data: sources give different frame sizes "
                            + ", ".join(f"{spec}: {h}x{w}" for spec, (h, w) in sizes.items()))
    vals = [val for _, val in parts if val is not None]
    return (torch.utils.data.ConcatDataset([train for train, _ in parts]),
            torch.utils.data.ConcatDataset(vals) if vals else None)


def open_datasets(spec: str) -> tuple[Dataset, Dataset | None]:
    """(training set, validation set or None) for ``--data SPEC``; in-memory sources have no separate
    validation set (the trainer holds out ``val_fraction`` of them)."""
    if "+" in spec and not os.path.isdir(spec):
        # "A+B": the training items of every part in turn (in-memory sources only; the trainer holds
        # out val_fraction of the union).
        parts = [open_datasets(part) for part in spec.split("+")]
        if any(val is not None for _, val in parts):
            raise CelbenchError(f"--data {spec}: only in-memory sources can be joined with '+'; "
                                "give dataset directories as separate --data arguments")
        return torch.utils.data.ConcatDataset([train for train, _ in parts]), None
    if os.path.isdir(spec):
        from dataprep.dataset.validate import ValidationError, verify_shards

        try:
            verify_shards(spec)  # a truncated or edited shard is one line here, not a traceback mid-training
        except ValidationError as error:
            raise CelbenchError(f"{spec}: dataset failed its check: {error}") from None
        # CMFT section 4.1 trains on sliding-window pairs; the folder's other kinds (test protocol, Shi
        # sequences with two references) are for evaluation and would not batch with them.
        train_set = PairDataset(spec, split="train", kinds=TRAIN_PAIR_KINDS)
        if len(train_set) == 0:
            raise CelbenchError(f"{spec}: no {'/'.join(TRAIN_PAIR_KINDS)} pairs in split 'train'")
        val_set = PairDataset(spec, split="val", kinds=TRAIN_PAIR_KINDS)
        # Whole frames (any aspect ratio) become squares of their shorter side, so they batch.
        return (SquareCropDataset(train_set, random=True),
                SquareCropDataset(val_set, random=False) if len(val_set) else None)
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
    check_params(DATASETS.get(name), kwargs, name, f"dataset source {name!r}", label="--data parameter")
    return DATASETS.create(name, **kwargs), None
