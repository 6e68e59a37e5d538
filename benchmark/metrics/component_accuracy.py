"""Region-level accuracy of paint-bucket colourisation, after BasicPBC (``ykdai/BasicPBC``, ``paint/utils.py``,
``eval_json``; Dai et al. 2024, "Learning Inclusion Matching for Animation Paint Bucket Colorization", CVPR 2024).

A frame's line art splits it into components (line-enclosed regions), given as a label map: ``(H, W)`` uint16,
0 = line pixels, every other value one component. A component is coloured correctly when its predicted
colour equals its ground-truth colour exactly. BasicPBC's models output one colour per component; for RGB
predictions a component's colour is the mode (most frequent RGB value, ties -> smallest 0xRRGGBB) of its
pixels, in the prediction and in the ground truth alike (ground truth is flat within a component, so its mode
is its colour).

Per frame, with n_c the pixel count of component c and ok_c whether it is correct:

- ``component-acc``           = sum_c ok_c / #components                         (BasicPBC ``acc``)
- ``component-acc-thres``     = sum_{n_c > T} ok_c / #{c : n_c > T}, T = 10 px     (``acc_thres``)
- ``component-pix-acc``       = sum_c ok_c n_c / sum_c n_c  (line pixels excluded) (``pix_acc``)
- ``component-pix-acc-wobg``  = the same over components whose ground-truth colour is not background
  (``pix_acc_wobg``; BasicPBC's background is the transparent white ``[255, 255, 255, 0]`` of its RGBA ground
  truth, here the ground-truth colour ``background_rgb``, white by default, since frames are RGB - or the
  component ids passed as ``background_labels=``, e.g. the synthetic generator's "background" region).

BasicPBC computes the ``acc_thres`` denominator as ``#{labels incl. the line label with > T px} - 1``, which
equals the count above whenever the line label has more than T pixels (always on real line art); here the
line label is simply left out. A frame where a denominator is zero (no component above T, only background)
scores NaN and is left out of the mean, where BasicPBC would divide by zero. All four are higher-is-better
fractions in [0, 1]; the batch value is the mean over frames, as BasicPBC's per-image average.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from benchmark.metric import METRICS, PerSampleMetric
from dataprep.errors import CelbenchError

SIZE_THRESHOLD = 10  # BasicPBC eval_json(threshold=10): components of at most 10 px are ignored by acc_thres
BACKGROUND_RGB = (255, 255, 255)
KEYS = ("acc", "acc_thres", "pix_acc", "pix_acc_wobg")


def component_colours(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mode colour of every component of one frame.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        labels: ``(H, W)`` integer label map, 0 = line pixels.
    Returns:
        ``(ids, sizes, colours)``: component ids (sorted, 0 excluded), their pixel counts, and their mode
        colours as 0xRRGGBB integers, each ``(K,)`` int64.
    """
    # One hashed pass over (id, colour) keys of all pixels (pandas.factorize: linear time, no sort of the
    # whole frame); line pixels (id 0) are dropped from the few distinct keys afterwards.
    rgb = np.asarray(image).astype(np.uint32)
    keys = (np.asarray(labels).astype(np.int64) << 24) | ((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    index, pairs = pd.factorize(keys.ravel(), sort=False)
    counts = np.bincount(index, minlength=len(pairs))
    pair_ids, pair_colours = pairs >> 24, pairs & 0xFFFFFF
    keep = pair_ids != 0
    pair_ids, pair_colours, counts = pair_ids[keep], pair_colours[keep], counts[keep]
    # per component the most frequent colour, the smallest colour first among equally frequent ones
    order = np.lexsort((pair_colours, -counts, pair_ids))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair_ids[order][1:] != pair_ids[order][:-1]
    chosen = order[first]
    component_ids = pair_ids[chosen]
    sizes = np.bincount(np.searchsorted(component_ids, pair_ids), weights=counts, minlength=len(component_ids))
    return component_ids, sizes.astype(np.int64), pair_colours[chosen]


def code_rgb(codes: np.ndarray) -> np.ndarray:
    """0xRRGGBB integer codes (as :func:`component_colours` returns them), shape (...), -> (..., 3) int64 RGB
    0..255."""
    codes = np.asarray(codes, np.int64)
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1)


def colours_equal(first: np.ndarray, second: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Element-wise: 0xRRGGBB codes equal, or (``tolerance`` > 0) no channel differs by more than it."""
    if tolerance <= 0:
        return first == second
    difference = np.stack([np.abs(((first >> shift) & 255) - ((second >> shift) & 255)) for shift in (16, 8, 0)])
    return difference.max(axis=0) <= tolerance


def component_accuracy(pred: np.ndarray, target: np.ndarray, labels: np.ndarray, *,
                       threshold: int = SIZE_THRESHOLD,
                       background_rgb: tuple[int, int, int] = BACKGROUND_RGB,
                       background_labels: Sequence[int] | np.ndarray | None = None,
                       colour_tolerance: int = 0) -> dict[str, float]:
    """All four BasicPBC accuracies of one frame (see the module docstring); NaN where undefined.

    Args:
        pred, target: ``(H, W, 3)`` uint8 RGB.
        labels: ``(H, W)`` uint16 component map of the frame's line art, 0 = line pixels.
        background_labels: component ids that are background (e.g. the synthetic generator's region named
            "background", which is painted, not white); when given, ``background_rgb`` is not used.
        colour_tolerance: 0 (BasicPBC: exact colours) or the largest per-channel difference (0..255) still
            counted as the same colour, for ground truth decoded from lossy video, where a flat region's
            colour drifts by a few levels from frame to frame.
    Returns:
        ``{"acc", "acc_thres", "pix_acc", "pix_acc_wobg"}`` -> float in [0, 1] or NaN.
    """
    if labels.shape != pred.shape[:2]:
        raise CelbenchError(f"labels {labels.shape} do not match the frame size {pred.shape[:2]}")
    ids, sizes, target_colours = component_colours(target, labels)
    pred_ids, _, pred_colours = component_colours(pred, labels)
    assert np.array_equal(ids, pred_ids)  # same label map, so same components
    correct = colours_equal(pred_colours, target_colours, colour_tolerance)
    if background_labels is not None:
        foreground = ~np.isin(ids, np.asarray(background_labels, dtype=np.int64))
    else:
        background_code = (int(background_rgb[0]) << 16) | (int(background_rgb[1]) << 8) | int(background_rgb[2])
        foreground = target_colours != background_code
    large = sizes > threshold

    def ratio(numerator: float, denominator: float) -> float:
        return float(numerator / denominator) if denominator > 0 else float("nan")

    return {"acc": ratio(correct.sum(), len(ids)),
            "acc_thres": ratio((correct & large).sum(), large.sum()),
            "pix_acc": ratio(sizes[correct].sum(), sizes.sum()),
            "pix_acc_wobg": ratio(sizes[correct & foreground].sum(), sizes[foreground].sum())}


class ComponentAccuracyMetric(PerSampleMetric):
    """Base of the four component accuracies; needs ``labels=`` (``(H, W)`` or ``(N, H, W)`` uint16).

    Optional extra ``background_labels=``: component ids (one list for the whole batch; the generator's ids
    are unique per clip) that count as background for ``pix_acc_wobg`` instead of the colour rule.

    Args:
        threshold: component size (px) that ``acc_thres`` requires to be exceeded (BasicPBC: 10).
        background_rgb: ground-truth colour that marks background components for ``pix_acc_wobg``.
        colour_tolerance: see :func:`component_accuracy` (0 = exact, BasicPBC).
    """

    higher_is_better = True
    requires = ("labels",)
    key: ClassVar[str]

    def __init__(self, threshold: int = SIZE_THRESHOLD, background_rgb: tuple[int, int, int] = BACKGROUND_RGB,
                 colour_tolerance: int = 0):
        super().__init__()
        self.threshold = int(threshold)
        self.background_rgb = tuple(int(v) for v in background_rgb)
        self.colour_tolerance = int(colour_tolerance)

    def settings(self) -> dict:
        colour_match = ("exact RGB" if self.colour_tolerance <= 0
                        else f"RGB, each channel within {self.colour_tolerance} of 255")
        return {"reference": f"BasicPBC paint/utils.py eval_json {self.key}", "colour_match": colour_match,
                "component_colour": "mode of the component's pixels", "line_label": 0,
                "size_threshold_px": self.threshold,
                "background": f"ground-truth colour {list(self.background_rgb)}, "
                              "or the component ids given as background_labels=",
                "reduction": "mean over frames (NaN frames left out)"}

    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        labels = np.asarray(extra["labels"])
        if labels.ndim != 3 or labels.shape != preds.shape[:3]:
            raise CelbenchError(f"labels {labels.shape} do not match the frames {preds.shape[:3]}")
        background_labels = extra.get("background_labels")
        return np.array([component_accuracy(p, t, l, threshold=self.threshold, background_rgb=self.background_rgb,
                                            background_labels=background_labels,
                                            colour_tolerance=self.colour_tolerance)[self.key]
                         for p, t, l in zip(preds, targets, labels)], dtype=np.float64)


@METRICS.register("component-acc")
class ComponentAcc(ComponentAccuracyMetric):
    """Fraction of components coloured exactly right (BasicPBC ``acc``)."""

    name = "component-acc"
    key = "acc"


@METRICS.register("component-acc-thres")
class ComponentAccThres(ComponentAccuracyMetric):
    """Fraction of components larger than ``threshold`` px coloured exactly right (BasicPBC ``acc_thres``)."""

    name = "component-acc-thres"
    key = "acc_thres"


@METRICS.register("component-pix-acc")
class ComponentPixAcc(ComponentAccuracyMetric):
    """Fraction of non-line pixels in correctly coloured components (BasicPBC ``pix_acc``)."""

    name = "component-pix-acc"
    key = "pix_acc"


@METRICS.register("component-pix-acc-wobg")
class ComponentPixAccWithoutBackground(ComponentAccuracyMetric):
    """``component-pix-acc`` over non-background components only (BasicPBC ``pix_acc_wobg``)."""

    name = "component-pix-acc-wobg"
    key = "pix_acc_wobg"
