"""components@2: AnimeRun's index accuracies and BasicPBC's per-clip averaging at the stored resolution, each
against a hand-built case worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.evaluate import evaluate
from benchmark.metric import create_metric
from benchmark.metrics.component_matching import (AMBIGUOUS, NO_MATCH, ground_truth_matches, match_accuracy,
                                                  part_match_accuracy)
from benchmark.model import load_model
from benchmark.protocol import load_protocol
from benchmark.source import Frame, MemorySource, Shot

from benchmark_toys import one_torch_thread

single_thread = pytest.fixture(autouse=True)(one_torch_thread)

RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 230, 20)


def paint(labels: np.ndarray, colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    for label, colour in colours.items():
        rgb[labels == label] = colour
    return rgb


def animerun_case():
    """Reference 21 x 32: lines at columns 10 and 21 -> A (red, 1), B (green, 2), C (blue, 3), 210 px each.
    Target: A split by a line at row 10 into two red halves (1 top, 4 bottom, 100 px each: half A's area, so
    no certain match, yet red is in the reference -> ambiguous); B' green (2) over columns 11-23 (273 px, its
    certain match is B); C' yellow (3) over columns 25-31 (147 px): yellow is nowhere in the reference, so the
    right answer is "no match"."""
    reference = np.zeros((21, 32), np.uint16)
    reference[:, :10], reference[:, 11:21], reference[:, 22:] = 1, 2, 3
    target = np.zeros((21, 32), np.uint16)
    target[:10, :10], target[11:, :10], target[:, 11:24], target[:, 25:] = 1, 4, 2, 3
    return (target, paint(target, {1: RED, 4: RED, 2: GREEN, 3: YELLOW}),
            reference, paint(reference, {1: RED, 2: GREEN, 3: BLUE}))


def test_ground_truth_answers_follow_colours_and_certain_matches():
    ids, sizes, answers = ground_truth_matches(*animerun_case())
    assert ids.tolist() == [1, 2, 3, 4]
    assert sizes.tolist() == [100, 273, 147, 100]
    assert answers.tolist() == [AMBIGUOUS, 2, NO_MATCH, AMBIGUOUS]


@pytest.mark.parametrize("matches, expected", [
    # t1 -> A and t4 -> A are not scored (ambiguous); t2 -> B right; t3 -> C wrong (the answer is none):
    # match 1/2, valid 1/1, invalid 0/1, area 273 / (273 + 147)
    ([-1, 1, 2, 3, 1], {"match_acc": 0.5, "valid_acc": 1.0, "invalid_acc": 0.0, "area_acc": 273 / 420}),
    # "no match" for t3 is right; t2 -> C wrong: match 1/2, valid 0/1, invalid 1/1, area 147 / 420
    ([-1, 1, 3, -1, 1], {"match_acc": 0.5, "valid_acc": 0.0, "invalid_acc": 1.0, "area_acc": 147 / 420}),
    # a short answer array: target ids past its end count as "no match" (t3 right, t2 = wrong)
    ([-1, 1], {"match_acc": 0.5, "valid_acc": 0.0, "invalid_acc": 1.0, "area_acc": 147 / 420}),
    ([-1, 5, 2, -1, 7], {"match_acc": 1.0, "valid_acc": 1.0, "invalid_acc": 1.0, "area_acc": 1.0}),
])
def test_animerun_accuracies_by_hand(matches, expected):
    scores = match_accuracy(np.array(matches), *animerun_case())
    assert scores == pytest.approx(expected)


@pytest.mark.parametrize("matches, expected", [
    # parts: reference A = part 5, B = part 5 (one part split in two), C = part 9; target t1, t4 (A's halves)
    # part 5, t2 part 9, t3 part 12 (in no reference region). t1 -> B is right (same part), t4 -> A right,
    # t2 -> A wrong (part 5, not 9), t3 "no match" right: match 3/4, valid 2/3, invalid 1/1,
    # area (100 + 147 + 100) / 620
    ([-1, 2, 1, -1, 1], {"match_acc": 0.75, "valid_acc": 2 / 3, "invalid_acc": 1.0, "area_acc": 347 / 620}),
    # t2 -> C right; t3 -> C wrong (its part is nowhere in the reference); t1, t4 with no answer wrong
    ([-1, -1, 3, 3, -1], {"match_acc": 0.25, "valid_acc": 1 / 3, "invalid_acc": 0.0, "area_acc": 273 / 620}),
])
def test_animerun_accuracies_on_part_maps_by_hand(matches, expected):
    target_labels, _, reference_labels, _ = animerun_case()
    reference_parts = np.select([reference_labels == 3], [9], 5)  # lines too: a region takes its pixels' part
    target_parts = np.select([target_labels == 2, target_labels == 3], [9, 12], 5)
    target_parts[0, 0] = 9  # one pixel of another part: t1 keeps its majority part, 5
    scores = part_match_accuracy(np.array(matches), target_labels, target_parts, reference_labels, reference_parts)
    assert scores == pytest.approx(expected)


def test_match_metrics_through_the_registry_and_without_matches():
    target_labels, target_rgb, reference_labels, reference_rgb = animerun_case()
    metric = create_metric("match-invalid-acc")
    extra = {"labels": target_labels, "reference_labels": reference_labels, "reference_colours": reference_rgb}
    assert metric.score(target_rgb, target_rgb, matches=np.array([-1, 1, 2, -1, 1]), **extra) == 1.0
    assert math.isnan(metric.score(target_rgb, target_rgb, **extra))  # a pixel model gives no matches


def test_part_ground_truth_differs_from_colours_and_the_record_says_which():
    """The hand case of the two tests above, through the registry: the same answers score 1/2 against the
    colour-derived ground truth and 3/4 against the parts (region arrays as a dataset stores them)."""
    target_labels, target_rgb, reference_labels, reference_rgb = animerun_case()
    extra = {"labels": target_labels, "reference_labels": reference_labels, "reference_colours": reference_rgb}
    answers = np.array([-1, 2, 1, -1, 1])
    # colours: t1, t4 ambiguous (left out); t2 -> A wrong (its certain match is B); t3 "no match" right
    colour = {name: create_metric(name) for name in ("match-acc", "match-valid-acc", "match-area-acc")}
    assert [m.score(target_rgb, target_rgb, matches=answers, **extra) for m in colour.values()] == \
        pytest.approx([1 / 2, 0 / 1, 147 / 420])
    # parts per region id (-2 for the line label): reference A, B part 5, C part 9; target t1, t4 part 5,
    # t2 part 9, t3 part 12: t1 -> B right, t2 -> A wrong, t3 none right, t4 -> A right
    parts = {"parts": np.array([-2, 5, 9, 12, 5]), "reference_parts": np.array([-2, 5, 5, 9])}
    by_parts = {name: create_metric(name) for name in colour}
    assert [m.score(target_rgb, target_rgb, matches=answers, **extra, **parts) for m in by_parts.values()] == \
        pytest.approx([3 / 4, 2 / 3, 347 / 620])
    assert colour["match-acc"].settings()["ground_truth_pairs"] == {"parts": 0, "colours": 1}
    assert by_parts["match-acc"].settings()["ground_truth_pairs"] == {"parts": 1, "colours": 0}
    # one side without parts: colours again; a pixel model (no answers) is counted too, and scores NaN
    metric = create_metric("match-acc")
    assert metric.score(target_rgb, target_rgb, matches=answers, **extra, parts=parts["parts"]) == 0.5
    assert math.isnan(metric.score(target_rgb, target_rgb, **extra, **parts))
    assert metric.settings()["ground_truth_pairs"] == {"parts": 1, "colours": 1}


def two_region_frame(left, right, parts=None) -> Frame:
    """8 x 20: a line at column 8; region 1 = columns 0-7 (64 px), region 2 = columns 9-19 (88 px)."""
    labels = np.zeros((8, 20), np.uint16)
    labels[:, :8], labels[:, 9:] = 1, 2
    colour = paint(labels, {1: left, 2: right})
    sketch = np.where(labels == 0, 0, 255).astype(np.uint8)
    return Frame(colour=colour, sketch=sketch, field=(sketch / 255.0).astype(np.float32), components=labels,
                 parts=None if parts is None else np.array([-2, *parts]))


def clip_source() -> MemorySource:
    frames = {"a/0": two_region_frame(RED, BLUE), "a/1": two_region_frame(RED, GREEN),
              "a/2": two_region_frame(RED, GREEN), "b/0": two_region_frame(RED, BLUE),
              "b/1": two_region_frame(RED, BLUE)}
    shots = [Shot("a", ("a/0", "a/1", "a/2")), Shot("b", ("b/0", "b/1"))]
    return MemorySource({"test": shots}, frames, manifest={"clips": 2})


class IdentityMatcher:
    """Copies the reference and answers "target region t is reference region t"."""

    def __call__(self, batch):
        output = batch["reference_colour"][:, 0].clone()
        labels = batch["target_components"]
        output.component_matches = torch.arange(int(labels.max()) + 1).expand(len(labels), -1)
        return output


def test_components2_averages_per_clip_then_over_clips_at_stored_size():
    protocol = load_protocol("components@2")
    assert protocol.resolution is None and protocol.average == "clip"
    record = evaluate(load_model("copy-reference"), "copy-reference", clip_source(), protocol).record
    # copy-reference pairs: a 0->1 acc 1/2 (blue != green), a 1->2 acc 1, a 0->2 (gap 2) acc 1/2, b 0->1 acc 1.
    # Per clip: a = (1/2 + 1 + 1/2) / 3 = 2/3, b = 1 -> over clips 5/6 (a per-sample mean would say 3/4).
    assert record.metric("component-acc").value == pytest.approx(5 / 6)
    assert record.metric("component-acc").buckets == pytest.approx({"1": (0.75 + 1) / 2, "2": 0.5})
    pix_a = (64 / 152 + 1 + 64 / 152) / 3
    assert record.metric("component-pix-acc").value == pytest.approx((pix_a + 1) / 2)
    assert record.resolution == [] and record.signature_fields["resolution"] == "stored"
    assert record.metric("match-acc").value is None  # copy-reference answers with colours only
    assert record.bucket_counts == {"1": 3, "2": 1}


def test_components2_scores_a_matchers_answers():
    record = evaluate(IdentityMatcher(), "identity", clip_source(), load_protocol("components@2")).record
    # a 0->1 and a 0->2: region 1 red -> red (certain, right), region 2 green is absent from the blue/red
    # reference -> "no match" is right, the identity answers 2: 1/2. a 1->2 and b 0->1: both right.
    assert record.metric("match-acc").value == pytest.approx(((0.5 + 1 + 0.5) / 3 + 1) / 2)
    assert record.metric("match-invalid-acc").value == pytest.approx(0.0)
    assert record.metric("match-valid-acc").value == pytest.approx(1.0)


def test_components2_scores_answers_against_parts_where_the_frames_have_them():
    # clip a carries parts; in a/2 the two regions are each other's part (region 1 is part 2): the identity
    # is right on a 0->1 (1) and wrong on both regions of a 1->2 and a 0->2 (0, 0): clip a 1/3. Clip b has
    # no parts: colours, both regions right (1). Over clips (1/3 + 1) / 2 = 2/3; colours alone gave 5/6.
    frames = {"a/0": two_region_frame(RED, BLUE, [1, 2]), "a/1": two_region_frame(RED, GREEN, [1, 2]),
              "a/2": two_region_frame(RED, GREEN, [2, 1]), "b/0": two_region_frame(RED, BLUE),
              "b/1": two_region_frame(RED, BLUE)}
    source = MemorySource({"test": [Shot("a", ("a/0", "a/1", "a/2")), Shot("b", ("b/0", "b/1"))]}, frames,
                          manifest={"clips": 2, "parts": "a"})
    record = evaluate(IdentityMatcher(), "identity", source, load_protocol("components@2")).record
    assert record.metric("match-acc").value == pytest.approx((1 / 3 + 1) / 2)
    assert record.metric("match-valid-acc").value == pytest.approx((1 / 3 + 1) / 2)
    assert record.metric("match-invalid-acc").value is None  # every region has its part in the reference
    assert record.metric("match-acc").settings["ground_truth_pairs"] == {"parts": 3, "colours": 1}
    # the colour metrics do not change: a 0->1 and a 0->2 lose region 2 (green is not blue) as before
    assert record.metric("component-acc").value == pytest.approx(((0.5 + 1 + 0.5) / 3 + 1) / 2)


def test_components1_still_loads_with_its_fixed_resolution():
    protocol = load_protocol("components@1")
    assert protocol.resolution == (256, 256) and protocol.average is None


def test_colour_tolerance_counts_near_colours_as_equal():
    from benchmark.metrics.component_accuracy import component_accuracy

    labels = np.zeros((4, 9), np.uint16)
    labels[:, :4], labels[:, 5:] = 1, 2
    truth = paint(labels, {1: (100, 100, 100), 2: (10, 200, 30)})
    prediction = paint(labels, {1: (103, 98, 100), 2: (10, 209, 30)})  # off by 3 and by 9 levels
    assert component_accuracy(prediction, truth, labels)["acc"] == 0.0  # BasicPBC: exact
    assert component_accuracy(prediction, truth, labels, colour_tolerance=3)["acc"] == 0.5
    assert component_accuracy(prediction, truth, labels, colour_tolerance=9)["acc"] == 1.0
