"""Index accuracy of component matching, after AnimeRun (Siyao et al., NeurIPS 2022 Datasets and Benchmarks,
"AnimeRun: 2D Animation Visual Correspondence from Open Source 3D Movies", segment matching task).

A matcher answers, for every component (line-enclosed region) of the target line art, which component of the
reference it is, or that it has none (the region is new: disoccluded, or a part that appeared). AnimeRun scores
that answer by index, not by colour: "no match" is a valid answer, right for regions that have no counterpart.

Ground truth. A dataset built from video has no stored correspondence between two frames' label maps, so it
is derived from the ground-truth colours with the builder's own rule (:func:`dataprep.components.match_arrays`,
"keeping only certainly correct matches", Dang et al. 2020 section 2):

- a target region with a certain match has that reference region as its answer (``valid``);
- a target region whose ground-truth colour (mode of its pixels) is the colour of no reference region has
  "no match" as its answer (``invalid``: nothing in the reference can colour it);
- every other target region (its colour exists in the reference but no match is certain, e.g. one of two
  symmetric same-colour parts) is ambiguous and left out of these four metrics (BasicPBC's colour metrics
  still score it).

Per frame, over the scored target regions, with n_c the pixel count of region c and ok_c whether the
predicted index equals the ground truth (-1 = no match on both sides counts as equal):

- ``match-acc``         = sum ok_c / #scored                            (AnimeRun "acc": all regions)
- ``match-valid-acc``   = sum_{valid} ok_c / #valid                      (regions that have a match)
- ``match-invalid-acc`` = sum_{invalid} ok_c / #invalid                  (regions that have none)
- ``match-area-acc``    = sum ok_c n_c / sum n_c                         (pixel-weighted ``match-acc``)

NaN where a denominator is zero, or where the model gives no matches (a pixel colouriser answers with colours,
not indices; see docs/models.md for how a matcher returns its matches). Higher is better, in [0, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from benchmark.metric import METRICS, PerSampleMetric
from benchmark.metrics.component_accuracy import component_colours
from dataprep.errors import CelbenchError

#: Ground-truth codes next to reference ids (which are >= 1).
NO_MATCH = -1
AMBIGUOUS = -2
KEYS = ("match_acc", "valid_acc", "invalid_acc", "area_acc")


def ground_truth_matches(target_labels: np.ndarray, target_rgb: np.ndarray, reference_labels: np.ndarray,
                         reference_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answer for every target component (see the module docstring).

    Args:
        target_labels, reference_labels: ``(H, W)`` integer label maps, 0 = line pixels.
        target_rgb, reference_rgb: ``(H, W, 3)`` uint8 RGB ground-truth colours of the two frames.
    Returns:
        ``(ids, sizes, answers)``, each ``(K,)`` int64 over the target's components in id order: the answer is
        a reference component id, :data:`NO_MATCH` or :data:`AMBIGUOUS`.
    """
    from dataprep.components import MatchArrays, component_features, match_arrays

    ids, sizes, colours = component_colours(target_rgb, target_labels)
    _, _, reference_colours = component_colours(reference_rgb, reference_labels)
    answers = np.where(np.isin(colours, reference_colours), AMBIGUOUS, NO_MATCH).astype(np.int64)
    certain = match_arrays(MatchArrays.of(component_features(reference_labels, reference_rgb)),
                           MatchArrays.of(component_features(target_labels, target_rgb)), target_labels.shape)
    for reference_id, target_id in certain:
        answers[np.searchsorted(ids, target_id)] = reference_id
    return ids, sizes, answers


def match_accuracy(matches: np.ndarray, target_labels: np.ndarray, target_rgb: np.ndarray,
                   reference_labels: np.ndarray, reference_rgb: np.ndarray) -> dict[str, float]:
    """All four AnimeRun accuracies of one frame pair; NaN where undefined.

    Args:
        matches: ``(L,)`` int, ``matches[t]`` = reference component id matched to target component ``t``,
            -1 = no match; ids beyond ``L - 1`` count as -1.
        target_labels, target_rgb, reference_labels, reference_rgb: as :func:`ground_truth_matches`.
    Returns:
        ``{"match_acc", "valid_acc", "invalid_acc", "area_acc"}`` -> float in [0, 1] or NaN.
    """
    ids, sizes, answers = ground_truth_matches(target_labels, target_rgb, reference_labels, reference_rgb)
    predicted = _predicted(matches, ids)
    scored = answers != AMBIGUOUS
    return _accuracies((predicted == answers) & scored, scored, answers > 0, answers == NO_MATCH, sizes)


def part_match_accuracy(matches: np.ndarray, target_labels: np.ndarray, target_parts: np.ndarray,
                        reference_labels: np.ndarray, reference_parts: np.ndarray) -> dict[str, float]:
    """The four accuracies of :func:`match_accuracy` against true correspondences: part maps (BasicPBC's
    ``label`` files, :func:`dataprep.video.line_art.part_ids`) instead of colours.

    A region's part is the one most of its pixels carry (:func:`dataprep.video.line_art.region_parts`). A target
    region whose part some reference region has is answered right by any reference region of that part (an
    artist may split a part into several regions); one whose part no reference region has is answered right
    by "no match". Every target region is scored (nothing is ambiguous).

    Args:
        matches: as :func:`match_accuracy`.
        target_labels, reference_labels: ``(H, W)`` integer label maps, 0 = line pixels.
        target_parts, reference_parts: ``(H, W)`` integer part maps of the same frames (-1 = background).
    """
    from dataprep.video.line_art import region_parts

    ids, sizes = np.unique(np.asarray(target_labels)[np.asarray(target_labels) > 0], return_counts=True)
    target_part = region_parts(target_labels, target_parts)[ids]
    reference_part = region_parts(reference_labels, reference_parts)  # -2 for ids with no region
    predicted = _predicted(matches, ids)
    known = (predicted > 0) & (predicted < len(reference_part))
    predicted_part = np.full(len(ids), -2, np.int64)
    predicted_part[known] = reference_part[predicted[known]]
    valid = np.isin(target_part, reference_part[reference_part > -2])
    correct = np.where(valid, (predicted_part == target_part) & (predicted_part > -2), predicted == NO_MATCH)
    return _accuracies(correct, np.ones(len(ids), bool), valid, ~valid, sizes)


def _predicted(matches: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The answer for each target id of ``ids``: ``matches[id]`` when it is a component id (> 0), else NO_MATCH."""
    matches = np.asarray(matches, dtype=np.int64).reshape(-1)
    predicted = np.full(len(ids), NO_MATCH, np.int64)
    inside = ids < len(matches)
    predicted[inside] = np.where(matches[ids[inside]] > 0, matches[ids[inside]], NO_MATCH)
    return predicted


def _accuracies(correct: np.ndarray, scored: np.ndarray, valid: np.ndarray, invalid: np.ndarray,
                sizes: np.ndarray) -> dict[str, float]:
    def ratio(numerator: float, denominator: float) -> float:
        return float(numerator / denominator) if denominator > 0 else float("nan")

    return {"match_acc": ratio(correct.sum(), scored.sum()),
            "valid_acc": ratio(correct[valid].sum(), valid.sum()),
            "invalid_acc": ratio(correct[invalid].sum(), invalid.sum()),
            "area_acc": ratio(sizes[correct].sum(), sizes[scored].sum())}


class MatchAccuracyMetric(PerSampleMetric):
    """Base of the four AnimeRun accuracies. Extras: ``labels=`` (target components, ``(N, H, W)``),
    ``reference_labels=`` (``(N, H, W)``), ``reference_colours=`` (ground truth, ``(N, H, W, 3)`` uint8) and
    the model's ``matches=`` (``(N, L)`` int, -1 = no match; absent -> NaN)."""

    higher_is_better = True
    requires = ("labels", "reference_labels", "reference_colours")
    optional = ("matches",)
    key: ClassVar[str]

    def settings(self) -> dict:
        return {"reference": f"AnimeRun segment matching {self.key}",
                "ground_truth": "dataprep.components.match_arrays certain matches on ground-truth colours; "
                                "no match where the target colour is absent from the reference; others left out",
                "no_match": -1, "reduction": "mean over frames (NaN frames left out)"}

    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        labels = np.asarray(extra["labels"])
        reference_labels = np.asarray(extra["reference_labels"])
        reference_colours = np.asarray(extra["reference_colours"])
        if reference_colours.ndim == 3:
            reference_colours = reference_colours[None]
        if labels.shape != preds.shape[:3] or reference_labels.shape[0] != len(preds):
            raise CelbenchError(f"labels {labels.shape} / reference labels {reference_labels.shape} do not match "
                                f"the frames {preds.shape[:3]}")
        matches = extra.get("matches")
        if matches is None:
            return np.full(len(preds), np.nan)
        if isinstance(matches, np.ndarray) and matches.ndim == 1 and matches.dtype != object:
            matches = [matches]  # one frame's matches
        return np.array([match_accuracy(m, t_labels, t_rgb, r_labels, r_rgb)[self.key]
                         for m, t_labels, t_rgb, r_labels, r_rgb
                         in zip(matches, labels, targets, reference_labels, reference_colours)], dtype=np.float64)


@METRICS.register("match-acc")
class MatchAcc(MatchAccuracyMetric):
    """Fraction of target components given the right reference component or, rightly, none (AnimeRun)."""

    name = "match-acc"
    key = "match_acc"


@METRICS.register("match-valid-acc")
class MatchValidAcc(MatchAccuracyMetric):
    """``match-acc`` over target components that have a counterpart in the reference."""

    name = "match-valid-acc"
    key = "valid_acc"


@METRICS.register("match-invalid-acc")
class MatchInvalidAcc(MatchAccuracyMetric):
    """``match-acc`` over target components that have none (the right answer is "no match")."""

    name = "match-invalid-acc"
    key = "invalid_acc"


@METRICS.register("match-area-acc")
class MatchAreaAcc(MatchAccuracyMetric):
    """Pixel-weighted ``match-acc``."""

    name = "match-area-acc"
    key = "area_acc"
