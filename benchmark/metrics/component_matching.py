"""Index accuracy of component matching, after AnimeRun (Siyao et al., NeurIPS 2022 Datasets and Benchmarks,
"AnimeRun: 2D Animation Visual Correspondence from Open Source 3D Movies", segment matching task).

A matcher answers, for every component (line-enclosed region) of the target line art, which component of the
reference it is, or that it has none (the region is new: disoccluded, or a part that appeared). AnimeRun scores
that answer by index, not by colour: "no match" is a valid answer, right for regions that have no counterpart.

Ground truth, two kinds; the record's metric settings say which scored how many frame pairs
(``ground_truth_pairs``).

True correspondences (``parts``): when both frames carry parts (a dataset's ``frames.component_parts``, from
BasicPBC ``label/`` part maps; the generator's region ids), a target region is answered right by any reference
region of its part (an artist may split a part into several regions), or by "no match" when no reference region
has its part. Every target region is scored (:func:`region_part_match_accuracy`).

Colour-derived (``colours``), otherwise. A dataset built from video has no stored correspondence between two
frames' label maps, so it is derived from the ground-truth colours with the builder's own rule
(:func:`dataprep.components.match_arrays`, "keeping only certainly correct matches", Dang et al. 2020 section 2):

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

    return region_part_match_accuracy(matches, target_labels, region_parts(target_labels, target_parts),
                                      reference_labels, region_parts(reference_labels, reference_parts))


def region_part_match_accuracy(matches: np.ndarray, target_labels: np.ndarray, target_region_parts: np.ndarray,
                               reference_labels: np.ndarray, reference_region_parts: np.ndarray
                               ) -> dict[str, float]:
    """:func:`part_match_accuracy` with each region's part given: ``target_region_parts`` and
    ``reference_region_parts`` are ``(L + 1,)`` int arrays indexed by component id (the layout of
    :func:`dataprep.video.line_art.region_parts` and of a dataset's ``component_parts``; -2 = no part). Only the
    ids present in each label map count (a region lost to resampling is nobody's answer)."""
    target_labels, reference_labels = np.asarray(target_labels), np.asarray(reference_labels)
    ids, sizes = np.unique(target_labels[target_labels > 0], return_counts=True)
    target_region_parts = np.asarray(target_region_parts, dtype=np.int64)
    target_part = np.full(len(ids), -2, np.int64)
    has = ids < len(target_region_parts)
    target_part[has] = target_region_parts[ids[has]]
    given = np.asarray(reference_region_parts, dtype=np.int64)
    present = np.unique(reference_labels[reference_labels > 0])
    present = present[present < len(given)]
    reference_part = np.full(max(len(given), 1), -2, np.int64)  # -2 for ids with no region
    reference_part[present] = given[present]
    predicted = _predicted(matches, ids)
    known = (predicted > 0) & (predicted < len(reference_part))
    predicted_part = np.full(len(ids), -2, np.int64)
    predicted_part[known] = reference_part[predicted[known]]
    valid = np.isin(target_part, reference_part[reference_part > -2]) & (target_part > -2)
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
    ``reference_labels=`` (``(N, H, W)``), ``reference_colours=`` (ground truth, ``(N, H, W, 3)`` uint8), the
    model's ``matches=`` (``(N, L)`` int, -1 = no match; absent -> NaN) and, optional, the frames' region parts
    ``parts=`` and ``reference_parts=`` (one ``(L + 1,)`` array per frame or None, see
    :func:`region_part_match_accuracy`): a frame pair with both is scored against these true correspondences,
    any other against the colour-derived ones. ``settings()`` counts the frame pairs of each kind seen so far
    (``ground_truth_pairs``, counted whether or not the model gave matches, so every model scored on one
    dataset records the same counts)."""

    higher_is_better = True
    requires = ("labels", "reference_labels", "reference_colours")
    optional = ("matches", "parts", "reference_parts")
    key: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.ground_truth_pairs = {"parts": 0, "colours": 0}

    def settings(self) -> dict:
        return {"reference": f"AnimeRun segment matching {self.key}",
                "ground_truth": "parts: true correspondences where both frames carry region parts (a dataset's "
                                "frames.component_parts, from label/ part maps): any reference region of the "
                                "target region's part, no match where no reference region has it, every region "
                                "scored; colours otherwise: dataprep.components.match_arrays certain matches on "
                                "ground-truth colours, no match where the target colour is absent from the "
                                "reference, others left out",
                "ground_truth_pairs": dict(self.ground_truth_pairs),
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
        parts = _per_frame(extra.get("parts"), len(preds))
        reference_parts = _per_frame(extra.get("reference_parts"), len(preds))
        by_parts = [p is not None and r is not None for p, r in zip(parts, reference_parts)]
        self.ground_truth_pairs["parts"] += sum(by_parts)
        self.ground_truth_pairs["colours"] += len(by_parts) - sum(by_parts)
        matches = extra.get("matches")
        if matches is None:
            return np.full(len(preds), np.nan)
        if isinstance(matches, np.ndarray) and matches.ndim == 1 and matches.dtype != object:
            matches = [matches]  # one frame's matches
        values = []
        for i, (m, t_labels, t_rgb, r_labels, r_rgb) in enumerate(
                zip(matches, labels, targets, reference_labels, reference_colours)):
            if by_parts[i]:
                values.append(region_part_match_accuracy(m, t_labels, parts[i], r_labels, reference_parts[i]))
            else:
                values.append(match_accuracy(m, t_labels, t_rgb, r_labels, r_rgb))
        return np.array([v[self.key] for v in values], dtype=np.float64)


def _per_frame(value: Any, n: int) -> list[np.ndarray | None]:
    """``n`` per-frame part arrays (or Nones) from one array (one frame), a list or None."""
    if value is None:
        return [None] * n
    if isinstance(value, np.ndarray) and value.dtype != object and value.ndim == 1:
        return [value] if n == 1 else [None] * n
    return list(value)


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
