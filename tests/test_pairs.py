"""Pair and sequence mining (dataprep.pairs) on hand-built shots whose right answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dataprep.pairs import (SAMPLERS, CMFTTest, ShiLong, ShiSequence, ShotView, TrainWindow, held_groups,
                            unseen_fraction)


def shot(n: int, start: int = 0, groups: list[int] | None = None, unseen=None) -> ShotView:
    indices = list(range(start, start + n))
    return ShotView("v", 0, indices, groups if groups is not None else indices, seed=3, unseen=unseen)


def triples(specs):
    return [(s.references, s.target, s.interval) for s in specs]


def test_train_window_is_first_and_last_frame_of_each_window_of_40_at_stride_5():
    # 50 frames from index 100: windows start at 0, 5, 10 (10 + 39 = 49 is the last frame).
    specs = TrainWindow().sample(shot(50, start=100))
    assert triples(specs) == [((100,), 139, 39), ((105,), 144, 39), ((110,), 149, 39)]
    assert TrainWindow().sample(shot(39)) == []  # shorter than one window


def test_train_window_drops_a_window_whose_ends_are_one_held_drawing():
    groups = list(range(12))
    groups[5] = 0  # frames 0..5 one drawing (ends of window 0..5 identical)
    groups[1:5] = [0] * 4
    specs = TrainWindow(width=6, stride=1).sample(shot(12, groups=groups))
    assert [s.references[0] for s in specs] == [1, 2, 3, 4, 5, 6]  # window 0..5 dropped


def test_cmft_test_five_frames_at_stride_s_first_is_reference():
    specs = CMFTTest(strides=[5]).sample(shot(21))  # exactly one start fits: 0, 5, 10, 15, 20
    assert triples(specs) == [((0,), 5, 5), ((0,), 10, 10), ((0,), 15, 15), ((0,), 20, 20)]
    assert [s.position for s in specs] == [1, 2, 3, 4]
    assert {s.kind for s in specs} == {"cmft-test@5"}
    assert CMFTTest(strides=[10]).sample(shot(40)) == []  # needs 41 frames


def test_cmft_test_drops_identical_targets_and_large_unseen_regions():
    groups = [0, 0, 2, 3, 4, 5]  # frame 1 holds frame 0's drawing
    specs = CMFTTest(strides=[1]).sample(shot(6, groups=groups))
    # start 0 has target 1 identical to reference 0 -> dropped; start 1 is the only other candidate
    assert triples(specs) == [((1,), 2, 1), ((1,), 3, 2), ((1,), 4, 3), ((1,), 5, 4)]

    def unseen(ref, tgt):
        return 0.5 if tgt == 5 else 0.0

    assert CMFTTest(strides=[1]).sample(shot(6, groups=groups, unseen=unseen)) == []
    assert len(CMFTTest(strides=[1], max_unseen=0.6).sample(shot(6, groups=groups, unseen=unseen))) == 4


def test_cmft_test_random_start_is_seeded_and_reproducible():
    a = CMFTTest(strides=[1, 5], sequences_per_shot=2).sample(shot(60))
    b = CMFTTest(strides=[1, 5], sequences_per_shot=2).sample(shot(60))
    assert a == b and len(a) == 2 * 2 * 4
    assert len({s.sequence_id for s in a}) == 4


def test_shi_sequence_eight_frames_first_and_last_are_references():
    specs = ShiSequence().sample(shot(20))
    assert [(s.references, s.target) for s in specs[:6]] == [((0, 7), t) for t in range(1, 7)]
    assert [(s.references, s.target) for s in specs[6:]] == [((8, 15), t) for t in range(9, 15)]
    assert len(specs) == 12  # frames 16..19 do not make a sequence


def test_shi_sequence_collapses_held_frames_to_distinct_drawings():
    groups = [i - i % 2 for i in range(16)]  # on twos: 0,0,2,2,...
    specs = ShiSequence().sample(shot(16, groups=groups))
    assert [s.target for s in specs] == [2, 4, 6, 8, 10, 12]
    assert specs[0].references == (0, 14)
    assert [s.target for s in ShiSequence(collapse_held=False).sample(shot(16, groups=groups))][:2] == [1, 2]


def test_shi_long_k_references_bound_each_segment():
    specs = ShiLong(references=3, min_length=2).sample(shot(9))  # references at 0, 4, 8
    assert [(s.references, s.target) for s in specs] == [
        ((0, 4), 1), ((0, 4), 2), ((0, 4), 3), ((4, 8), 5), ((4, 8), 6), ((4, 8), 7)]
    assert {s.kind for s in specs} == {"shi-long@3"}
    one = ShiLong(references=1, min_length=2).sample(shot(4))
    assert [(s.references, s.target) for s in one] == [((0,), 1), ((0,), 2), ((0,), 3)]
    assert ShiLong().sample(shot(15)) == []  # shorter than min_length 16


def test_held_groups_compare_with_the_run_start():
    base = np.zeros((8, 8), np.uint8)
    frames = [base, base + 1, base + 3, base + 3, base + 100]
    # 1 <= 2 joins run 0; 3 > 2 from run start 0 starts a new run even though it is 2 from frame 1.
    assert held_groups(frames, threshold=2.0) == [0, 0, 2, 2, 4]


def test_unseen_fraction_counts_area_whose_colour_is_absent_from_the_reference():
    ref = [{"area": 10, "mean_rgb": [255, 0, 0]}, {"area": 5, "mean_rgb": [0, 0, 255]}]
    tgt = [{"area": 30, "mean_rgb": [250, 5, 0]}, {"area": 10, "mean_rgb": [0, 255, 0]}]
    assert unseen_fraction(ref, tgt, colour_tolerance=24) == pytest.approx(10 / 40)
    assert unseen_fraction(ref, tgt, colour_tolerance=5) == pytest.approx(1.0)
    assert unseen_fraction(ref, [], 24) == 0.0
    assert unseen_fraction([], tgt, 24) == 1.0


#: settings a sampler cannot do without (the others are created with their defaults)
REQUIRED = {"interval": {"strides": [1, 5]}}


@pytest.mark.parametrize("name", [n for n in SAMPLERS.names() if SAMPLERS.get(n).needs == "frames"])
def test_every_sampler_stays_inside_its_shot_and_orders_references(name):
    view = shot(64, start=10, groups=[10 + i - i % 3 for i in range(64)])
    specs = SAMPLERS.create(name, **REQUIRED.get(name, {})).sample(view)
    assert specs, name
    for spec in specs:
        assert all(10 <= f < 74 for f in (*spec.references, spec.target))
        assert list(spec.references) == sorted(spec.references)
        assert spec.target not in spec.references
        assert spec.interval == spec.target - spec.references[0]
    keys = [(s.sequence_id, s.target) for s in specs]
    assert len(keys) == len(set(keys))


def test_the_build_config_refuses_samplers_that_cannot_mine_pairs():
    from dataprep.config import load_config
    from dataprep.errors import CelbenchError

    assert "interval" in load_config(None, ["samplers.interval.strides=[2]"]).samplers  # frames: fine
    for name, setting in (("single", "frames_per_shot=2"), ("dataset-pairs", "kinds=[cmft-test]")):
        with pytest.raises(CelbenchError, match=f"samplers.{name}: sampler '{name}' is for evaluation only"):
            load_config(None, [f"samplers.{name}.{setting}"])


@pytest.mark.parametrize("max_interval, backwards, references",
                         [(1, True, 1), (3, False, 1), (3, True, 1), (4, True, 2)])
def test_all_pairs_are_every_pair_within_reach(max_interval, backwards, references):
    from dataprep.pairs import AllPairs, ShotView

    frames = [0, 1, 2, 4, 5, 9, 10, 11]  # gaps: frames of a held drawing left out, another split's frames
    specs = AllPairs(max_interval, backwards, references).sample(ShotView("v", 0, frames, frames))
    got = [(*s.references, s.target) for s in specs]
    if references == 1:
        expected = {(a, b) for a in frames for b in frames if 0 < abs(b - a) <= max_interval
                    and (backwards or b > a)}
    else:
        expected = {(a, b, t) for a in frames for b in frames for t in frames if a < t < b and b - a <= max_interval}
    assert len(got) == len(set(got)) and set(got) == expected
    assert len({s.sample_id for s in specs}) == len(specs)  # a build could store them under distinct keys
