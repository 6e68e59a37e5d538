"""BasicPBC's component accuracies on hand-built frames whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.metric import create_metric
from benchmark.metrics.component_accuracy import component_accuracy, component_colours
from dataprep.errors import CelbenchError

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def frame():
    """A 10x12 frame: line column 5 (label 0); components 1 (left, 50 px, white background), 2 (right top,
    18 px, red), 3 (right bottom, 24 px, blue), 4 (3 px speck inside 3's area, green), 5 (5 px, red)."""
    labels = np.zeros((10, 12), np.uint16)
    target = np.zeros((10, 12, 3), np.uint8)
    labels[:, :5] = 1
    target[:, :5] = WHITE
    labels[:3, 6:12] = 2
    target[:3, 6:12] = RED
    labels[3:10, 6:12] = 3
    target[3:10, 6:12] = BLUE
    labels[4, 7:10] = 4
    target[4, 7:10] = GREEN
    labels[8, 6:11] = 5
    target[8, 6:11] = RED
    return labels, target


def test_component_sizes_and_colours():
    labels, target = frame()
    ids, sizes, colours = component_colours(target, labels)
    assert ids.tolist() == [1, 2, 3, 4, 5]
    assert sizes.tolist() == [50, 18, 42 - 3 - 5, 3, 5]
    assert colours.tolist() == [0xFFFFFF, 0xFF0000, 0x0000FF, 0x00FF00, 0xFF0000]


def test_perfect_prediction_scores_one_and_line_pixels_do_not_count():
    labels, target = frame()
    pred = target.copy()
    pred[labels == 0] = GREEN  # line pixels are not part of any component
    assert component_accuracy(pred, target, labels) == {"acc": 1.0, "acc_thres": 1.0, "pix_acc": 1.0,
                                                        "pix_acc_wobg": 1.0}


def test_counts_by_hand():
    labels, target = frame()
    pred = target.copy()
    pred[labels == 1] = RED                       # background component wrong (50 px)
    pred[labels == 4] = BLUE                      # speck wrong (3 px, below the 10 px threshold)
    pred[np.where(labels == 3)[0][:10], np.where(labels == 3)[1][:10]] = BLACK  # 10 of 34 px off: mode stays
    result = component_accuracy(pred, target, labels)
    # correct: 2 (18 px), 3 (34 px), 5 (5 px); wrong: 1 (50 px), 4 (3 px)
    assert result["acc"] == pytest.approx(3 / 5)
    assert result["acc_thres"] == pytest.approx(2 / 3)            # components > 10 px: 1, 2, 3
    assert result["pix_acc"] == pytest.approx((18 + 34 + 5) / (50 + 18 + 34 + 3 + 5))
    assert result["pix_acc_wobg"] == pytest.approx((18 + 34 + 5) / (18 + 34 + 3 + 5))  # 1 is background


def test_mode_decides_and_ties_are_deterministic():
    labels = np.ones((2, 2), np.uint16)
    target = np.full((2, 2, 3), RED, np.uint8)
    pred = np.array([[RED, RED], [RED, BLUE]], np.uint8)
    assert component_accuracy(pred, target, labels)["acc"] == 1.0
    pred = np.array([[RED, RED], [BLUE, BLUE]], np.uint8)  # tie: the smaller 0xRRGGBB (blue) wins
    assert component_accuracy(pred, target, labels)["acc"] == 0.0


def test_undefined_ratios_are_nan_and_skipped_in_the_mean():
    labels = np.ones((3, 3), np.uint16)  # one 9 px component: nothing above 10 px
    target = np.full((3, 3, 3), WHITE, np.uint8)
    result = component_accuracy(target, target, labels)
    assert result["acc"] == 1.0 and np.isnan(result["acc_thres"]) and np.isnan(result["pix_acc_wobg"])
    metric = create_metric("component-acc-thres")
    big_labels, big_target = frame()
    metric.update(target, target, labels=labels)
    metric.update(big_target, big_target, labels=big_labels)
    assert metric.compute() == 1.0


def test_registered_metrics_need_labels_and_average_over_frames():
    labels, target = frame()
    wrong = target.copy()
    wrong[labels == 2] = GREEN
    for name, key in [("component-acc", "acc"), ("component-acc-thres", "acc_thres"),
                      ("component-pix-acc", "pix_acc"), ("component-pix-acc-wobg", "pix_acc_wobg")]:
        metric = create_metric(name)
        assert metric.higher_is_better and metric.requires == ("labels",)
        with pytest.raises(CelbenchError, match="labels="):
            metric.score(target, target)
        metric.update(np.stack([target, wrong]), np.stack([target, target]), labels=np.stack([labels, labels]))
        assert metric.compute() == pytest.approx((1 + component_accuracy(wrong, target, labels)[key]) / 2)
        assert metric.settings()["size_threshold_px"] == 10


def test_background_colour_and_threshold_are_parameters():
    labels, target = frame()
    pred = target.copy()
    pred[labels == 2] = GREEN  # red component 2 wrong
    assert component_accuracy(pred, target, labels, background_rgb=RED)["pix_acc_wobg"] == \
        pytest.approx((50 + 34 + 3) / (50 + 34 + 3))  # with red as background, 2 and 5 do not count
    assert component_accuracy(pred, target, labels, threshold=2)["acc_thres"] == pytest.approx(4 / 5)


def test_on_generated_frames_with_ground_truth_components():
    from dataprep.synth import SynthClip, SynthConfig

    clip = SynthClip(SynthConfig(width=96, height=96, shots=1, shot_length=(3, 3), seed=0))
    frames = list(clip.frames())
    background = [int(i) for i, region in clip.truth["regions"].items() if region["name"] == "background"]
    labels = np.stack([f.labels for f in frames])
    targets = np.stack([f.image for f in frames])
    perfect = {name: create_metric(name) for name in ["component-acc", "component-pix-acc-wobg"]}
    for metric in perfect.values():
        metric.update(targets, targets, labels=labels, background_labels=background)
        assert metric.compute() == 1.0
    # repaint the background region of every frame: only it is wrong, and pix_acc_wobg does not see it
    preds = targets.copy()
    preds[np.isin(labels, background)] = (1, 2, 3)
    frame = frames[0]
    ids = np.unique(frame.labels[frame.labels != 0])
    result = component_accuracy(preds[0], targets[0], frame.labels, background_labels=background)
    background_px = np.isin(frame.labels, background).sum()
    assert background_px > 0 and len(ids) > 2
    assert result["acc"] == pytest.approx(1 - np.isin(ids, background).sum() / len(ids))
    assert result["pix_acc"] == pytest.approx(1 - background_px / (frame.labels != 0).sum())
    assert result["pix_acc_wobg"] == 1.0


def test_mode_colours_equal_a_plain_count_per_component():
    """component_colours (hashed keys) against a per-component Counter, on noisy frames with ties."""
    from collections import Counter

    rng = np.random.default_rng(3)
    for _ in range(50):
        labels = rng.integers(0, 7, (9, 13))
        labels[0, 0] = 70000  # ids past 16 bits keep apart from the colour bits
        image = (rng.integers(0, 3, (9, 13, 3)) * 120).astype(np.uint8)
        ids, sizes, colours = component_colours(image, labels)
        expected_ids = sorted(set(labels[labels > 0].tolist()))
        assert ids.tolist() == expected_ids
        for i, size, colour in zip(ids, sizes, colours):
            counts = Counter(int(r) << 16 | int(g) << 8 | int(b) for r, g, b in image[labels == i])
            top = max(counts.values())
            assert size == (labels == i).sum() and colour == min(c for c, n in counts.items() if n == top)


def test_code_rgb_unpacks_component_colour_codes_by_hand():
    from benchmark.metrics.component_accuracy import code_rgb

    assert code_rgb(np.array([0x000000, 0xFF8001, 0x0A0B0C])).tolist() == [[0, 0, 0], [255, 128, 1], [10, 11, 12]]
    assert code_rgb(np.array(0x102030)).tolist() == [16, 32, 48]
