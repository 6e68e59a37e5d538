"""Components: gap closing on hand-built strokes, features against scikit-image, correspondences against
the procedural generator's ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import measure

from dataprep.components import (Component, close_gaps, component_features, extract_components, features_table,
                                 label_components, match_components, skeleton_endpoints)
from dataprep.errors import CelbenchError
from dataprep.synth import SynthClip, SynthConfig


def square_outline(size=40, gap=0, thickness=2):
    """(size, size) bool mask: a square outline from 5 to size-6, with a gap of ``gap`` px in the top side."""
    lines = np.zeros((size, size), np.uint8)
    cv2.rectangle(lines, (5, 5), (size - 6, size - 6), 1, thickness)
    if gap:
        middle = size // 2
        lines[:12, middle - gap // 2: middle - gap // 2 + gap] = 0
    return lines.astype(bool)


def n_regions(lines):
    return int(label_components(lines).max())


def test_endpoints_of_a_straight_stroke():
    skeleton = np.zeros((9, 9), bool)
    skeleton[4, 2:7] = True
    assert sorted(map(tuple, skeleton_endpoints(skeleton))) == [(4, 2), (4, 6)]


@pytest.mark.parametrize("gap", [2, 4, 6])
def test_small_gap_in_an_outline_is_closed(gap):
    lines = square_outline(gap=gap)
    assert n_regions(lines) == 1  # inside leaks into outside
    closed = close_gaps(lines, max_gap=8)
    assert n_regions(closed) == 2
    # only the gap was drawn in, the rest of the line art is untouched
    added = closed & ~lines
    assert added.any() and np.argwhere(added)[:, 0].max() < 12
    assert (closed | ~lines).all()


def test_max_gap_counts_empty_pixels_between_thin_strokes():
    lines = np.zeros((30, 40), bool)
    lines[:, 5] = lines[:, 35] = True
    lines[15, 5:15] = lines[15, 20:36] = True  # 5 empty pixels, columns 15..19
    assert n_regions(lines) == 3  # left and right margins, and the middle
    assert n_regions(close_gaps(lines, max_gap=5)) == 4
    assert n_regions(close_gaps(lines, max_gap=4)) == 3


def test_gap_wider_than_max_gap_stays_open():
    assert n_regions(close_gaps(square_outline(gap=10), max_gap=8)) == 1
    assert n_regions(close_gaps(square_outline(gap=4), max_gap=0)) == 1


def test_the_two_ends_of_one_short_stroke_are_not_joined():
    lines = np.zeros((30, 30), bool)
    lines[10:16, 10] = lines[10:16, 14] = lines[15, 10:15] = True  # a "U" with arms 3 empty px apart
    assert len(skeleton_endpoints(lines)) == 2
    np.testing.assert_array_equal(close_gaps(lines, max_gap=5), lines)
    # with the same-stroke test switched off, the U is closed into a region
    assert n_regions(close_gaps(lines, max_gap=5, same_stroke_factor=0)) == 2


def test_gap_between_two_separate_strokes_is_closed():
    lines = np.zeros((30, 40), bool)
    lines[:, 10] = True            # left wall
    lines[:, 30] = True            # right wall
    lines[15, 10:18] = True        # two half-strokes across, 4 px apart
    lines[15, 22:31] = True
    assert n_regions(lines) == 3
    assert n_regions(close_gaps(lines, max_gap=6)) == 4


def test_stroke_stopping_short_of_another_is_joined_to_it_only_straight_ahead():
    lines = np.zeros((40, 40), bool)
    lines[:, 5] = lines[:, 35] = lines[5, 5:36] = lines[35, 5:36] = True  # a box
    lines[20, 5:15] = True       # a stroke from the left wall, stopping 5 empty px short of ...
    lines[5:36, 20] = True       # ... a vertical stroke across the box (a broken T-junction)
    before = n_regions(lines)
    joined = close_gaps(lines, max_gap=6)
    assert n_regions(joined) == before + 1
    assert joined[20, 15:20].all()  # the join is the straight continuation
    assert n_regions(close_gaps(lines, max_gap=6, join_to_lines=False)) == before
    # a stroke running alongside another, 5 empty px away: nothing ahead within the 45-degree cone
    beside = np.zeros((40, 40), bool)
    beside[8, :] = beside[14, 10:20] = True
    np.testing.assert_array_equal(close_gaps(beside, max_gap=6), beside)


def test_two_strokes_ending_side_by_side_are_not_tied_together():
    lines = np.zeros((40, 40), bool)
    lines[10, 5:25] = lines[14, 5:25] = True  # two parallel strands ending at column 24, 3 empty px apart
    np.testing.assert_array_equal(close_gaps(lines, max_gap=6), lines)
    # without the direction test the gap between the tips would be closed
    assert (close_gaps(lines, max_gap=6, pair_max_angle=180) & ~lines).any()


def test_strokes_leaving_the_frame_are_not_open_ends():
    lines = np.zeros((30, 30), bool)
    lines[10:, 10] = lines[10:, 14] = lines[10, 10:15] = True  # an upside-down U cut by the bottom border
    np.testing.assert_array_equal(close_gaps(lines, max_gap=8, same_stroke_factor=0), lines)


def test_gap_closing_restores_regions_of_broken_generator_line_art():
    frame = next(iter(SynthClip(SynthConfig(width=128, height=128, shots=1, shot_length=(2, 2), seed=1)).frames()))
    lines = frame.line_art < 128
    rng = np.random.default_rng(0)
    broken = lines.copy()
    for row, col in np.argwhere(lines)[rng.choice(lines.sum(), 12, replace=False)]:
        broken[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2] = False   # 3x3 holes in the strokes

    # true regions: connected pieces (4-connected) of each generator region id, >= 12 px
    pieces = [piece for region in np.unique(frame.labels[frame.labels > 0])
              for piece in measure.regionprops(measure.label(frame.labels == region, connectivity=1))
              if piece.area >= 12]

    def regions_recovered(art):
        labels = label_components(art)
        found = 0
        for piece in pieces:
            truth = np.zeros(labels.shape, bool)
            truth[tuple(piece.coords.T)] = True
            best = np.bincount(labels[truth]).argmax()
            found += best > 0 and (truth & (labels == best)).sum() / (truth | (labels == best)).sum() >= 0.9
        return found / len(pieces)

    assert regions_recovered(lines) == 1.0
    assert regions_recovered(close_gaps(lines)) == 1.0  # closed line art is left as it is
    assert regions_recovered(broken) < 0.9
    assert regions_recovered(close_gaps(broken)) > regions_recovered(broken) + 0.1


def test_labels_areas_centroids_and_bboxes_match_regionprops():
    rng = np.random.default_rng(0)
    lines = np.zeros((64, 64), np.uint8)
    for _ in range(8):
        cv2.line(lines, tuple(int(v) for v in rng.integers(0, 64, 2)), tuple(int(v) for v in rng.integers(0, 64, 2)),
                 1, 1, cv2.LINE_8)
    lines = lines.astype(bool)
    labels = label_components(lines)
    assert labels.dtype == np.uint16 and (labels[lines] == 0).all() and (labels[~lines] > 0).all()
    reference = measure.label(~lines, connectivity=1, background=0)
    assert labels.max() == reference.max()
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    features = {c.id: c for c in component_features(labels, rgb)}
    for region in measure.regionprops(labels.astype(int)):
        c = features[region.label]
        assert c.area == region.area
        np.testing.assert_allclose(c.centroid, region.centroid)
        assert c.bbox == tuple(region.bbox)
        np.testing.assert_allclose(c.mean_rgb, rgb[labels == region.label].mean(axis=0))


def test_hu_moments_match_skimage():
    mask = np.zeros((50, 60), np.uint8)
    cv2.fillPoly(mask, [np.array([[5, 5], [50, 12], [30, 40], [8, 30]])], 1)
    labels = label_components(mask == 0)  # the polygon is "paper" enclosed by "line" pixels
    polygon = next(c for c in component_features(labels, np.zeros((50, 60, 3), np.uint8))
                   if c.bbox[0] > 0)
    crop = (labels == polygon.id).astype(float)
    reference = measure.moments_hu(measure.moments_normalized(measure.moments_central(crop, order=3), order=3))
    # skimage indexes (row, col), OpenCV (x, y): transposed axes mirror the shape, which flips the sign of hu[6]
    reference[6] *= -1
    np.testing.assert_allclose(polygon.hu, reference, rtol=1e-6, atol=1e-12)


def test_features_table_has_one_row_per_component():
    lines = square_outline()
    labels = label_components(lines)
    components = component_features(labels, np.zeros((40, 40, 3), np.uint8))
    table = features_table(components)
    assert table["id"].tolist() == [1, 2] and table["hu"].shape == (2, 7) and table["bbox"].shape == (2, 4)
    assert table["area"].sum() == (~lines).sum()
    empty = features_table([])
    assert empty["centroid"].shape == (0, 2) and empty["mean_rgb"].dtype == np.float32


def test_features_reject_mismatched_frames():
    with pytest.raises(CelbenchError, match="does not match"):
        component_features(np.zeros((4, 4), np.uint16), np.zeros((5, 4, 3), np.uint8))


def make_component(id, area, centroid, rgb, hu=(1e-1, 1e-3, 1e-4, 1e-4, 1e-8, 1e-6, 1e-9)):
    return Component(id=id, area=area, centroid=centroid, bbox=(0, 0, 1, 1), hu=hu, mean_rgb=rgb)


def test_matching_keeps_unique_colour_matches_and_drops_ambiguous_ones():
    red, blue, white = (200.0, 20.0, 20.0), (20.0, 20.0, 200.0), (250.0, 250.0, 250.0)
    frame_a = [make_component(1, 400, (50, 50), red), make_component(2, 300, (100, 100), blue),
               make_component(3, 100, (30, 150), white), make_component(4, 100, (30, 170), white),
               make_component(5, 5, (10, 10), red)]
    frame_b = [make_component(7, 420, (55, 52), (203.0, 18.0, 21.0)), make_component(8, 290, (104, 98), blue),
               make_component(9, 100, (31, 160), white), make_component(10, 100, (31, 165), white)]
    pairs = match_components(frame_a, frame_b, (200, 200))
    # two same-coloured eyes that moved by half their spacing are ambiguous: no pair for them;
    # the 5-px component is below min_area
    assert pairs == [(1, 7), (2, 8)]
    # colour beyond tolerance, or too large a shift, or a big area change: no match
    assert match_components(frame_a[:1], [make_component(7, 420, (55, 52), (180.0, 20.0, 20.0))], (200, 200)) == []
    assert match_components(frame_a[:1], [make_component(7, 400, (150, 150), red)], (200, 200)) == []
    assert match_components(frame_a[:1], [make_component(7, 1000, (50, 50), red)], (200, 200)) == []


def majority_region(labels, truth_labels):
    out = {}
    for component in np.unique(labels[labels > 0]):
        ids, counts = np.unique(truth_labels[labels == component], return_counts=True)
        out[int(component)] = int(ids[counts.argmax()])
    return out


def test_correspondences_agree_with_the_generator_ground_truth():
    true_pairs = wrong_pairs = 0
    for seed in (0, 1):
        clip = SynthClip(SynthConfig(width=128, height=128, shots=1, shot_length=(6, 6), seed=seed))
        frames = list(clip.frames())
        a, b = frames[0], frames[4]
        labels_a, comps_a = extract_components(a.line_art, a.image)
        labels_b, comps_b = extract_components(b.line_art, b.image)
        region_a, region_b = majority_region(labels_a, a.labels), majority_region(labels_b, b.labels)
        for id_a, id_b in match_components(comps_a, comps_b, a.image.shape[:2]):
            if region_a[id_a] == region_b[id_b]:
                true_pairs += 1
            else:
                wrong_pairs += 1
    assert true_pairs >= 10
    assert wrong_pairs / (true_pairs + wrong_pairs) <= 0.1


def test_components_of_real_closed_line_art_match_its_segment_map(real_data):
    """BasicPBC's toon frame 0242: line art (alpha = ink) and a per-segment id map (RGB-encoded ids)."""
    folder = real_data / "line-art" / "assets"
    lines = cv2.imread(str(folder / "line0242.png"), cv2.IMREAD_UNCHANGED)[..., 3] > 127
    seg_rgb = cv2.imread(str(folder / "seg0242.png"))[:, :, ::-1].astype(np.int64)
    segments = (seg_rgb[..., 0] << 16 | seg_rgb[..., 1] << 8 | seg_rgb[..., 2])[~lines]
    labels = label_components(lines)[~lines]
    # a bijection: every segment is exactly one component and vice versa
    n_pairs = len(np.unique(segments * 65536 + labels))
    assert n_pairs == len(np.unique(segments)) == len(np.unique(labels)) > 200


def _random_line_art(rng, height, width):
    lines = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(3, 25))):
        cv2.line(lines, tuple(int(v) for v in rng.integers(0, max(height, width), 2)),
                 tuple(int(v) for v in rng.integers(0, max(height, width), 2)), 1, int(rng.integers(1, 6)))
    lines[rng.random((height, width)) < 0.003] = 1
    return lines.astype(bool)


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_features_equal_per_component_opencv_and_bincount(seed):
    # component_features works on runs of labels with OpenCV's moment formulas; the values must be exactly those
    # of cv2.HuMoments(cv2.moments(mask)) on each cropped mask and of exact per-pixel sums (what it replaced).
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(20, 120, 2))
    labels = label_components(close_gaps(_random_line_art(rng, height, width)))
    if seed == 3:
        labels = (labels.astype(np.int64) * 7 % 23).astype(np.int32)  # ids missing, regions split over rows
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    got = component_features(labels, rgb)
    boxes = ndimage.find_objects(labels.astype(np.int64))
    present = [i for i, box in enumerate(boxes, start=1) if box is not None]
    assert [c.id for c in got] == present
    rows, cols = np.indices(labels.shape)
    for c, box in zip(got, (boxes[i - 1] for i in present)):
        inside = labels == c.id
        n = float(inside.sum())
        assert c.area == int(n)
        assert c.bbox == (box[0].start, box[1].start, box[0].stop, box[1].stop)
        assert c.centroid == (rows[inside].sum() / n, cols[inside].sum() / n)
        assert c.mean_rgb == tuple(rgb[inside].astype(np.float64).sum(axis=0) / n)
        hu = cv2.HuMoments(cv2.moments(inside[box].astype(np.uint8), binaryImage=True)).ravel()
        assert c.hu == tuple(hu.tolist())


def test_labels_equal_scipy_label_numbering():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    for density in (0.2, 0.45, 0.6):
        lines = rng.random((57, 83)) < density
        expected, _ = ndimage.label(~lines, structure=ndimage.generate_binary_structure(2, 1))
        np.testing.assert_array_equal(label_components(lines), expected.astype(np.uint16))
    assert label_components(np.ones((3, 4), bool)).max() == 0 and label_components(np.zeros((0, 5), bool)).shape == (0, 5)


def test_tip_half_widths_equal_the_full_distance_transform():
    from scipy import ndimage

    from dataprep.components import _tip_half_widths

    rng = np.random.default_rng(2)
    lines = _random_line_art(rng, 90, 70)
    lines[10:40, 20:40] = True  # a blob wider than the search window
    points = np.argwhere(lines)[::7]
    expected = ndimage.distance_transform_edt(np.pad(lines, 1, constant_values=True))[1:-1, 1:-1]
    np.testing.assert_array_equal(_tip_half_widths(lines, points), expected[points[:, 0], points[:, 1]])


# --- the vectorised gap closing against its one-by-one statement (tests/gap_closing_reference.py) ---------------

GAP_SETTINGS = [{}, {"max_gap": 12.0}, {"max_gap": 5.0, "max_angle": 80.0, "pair_max_angle": 180.0},
                {"same_stroke_factor": 0.0}, {"join_to_lines": False}]


def _xdog_lines(rgb):
    from dataprep.sketch.extractors import EXTRACTORS

    return EXTRACTORS.create("xdog")(rgb) < 128


@pytest.mark.parametrize("settings", GAP_SETTINGS)
def test_gap_closing_equals_the_one_by_one_reference_on_generated_frames(settings):
    from gap_closing_reference import close_gaps_reference

    rng = np.random.default_rng(7)
    frames = [_random_line_art(rng, 96, 112) for _ in range(2)]
    clip = SynthClip(SynthConfig(width=128, height=96, shots=1, shot_length=(2, 2), seed=3))
    frames.append(_xdog_lines(next(iter(clip.frames())).image))
    for lines in frames:
        np.testing.assert_array_equal(close_gaps(lines, **settings), close_gaps_reference(lines, **settings))


@pytest.mark.parametrize("settings", GAP_SETTINGS[:3])
def test_gap_closing_equals_the_one_by_one_reference_on_real_frames(real_data, settings):
    # real XDoG sketches have hundreds of noisy tips whose joins depend on each other: the case the vectorised
    # step 2 redoes endpoints for
    from gap_closing_reference import close_gaps_reference

    from dataprep.imaging import fit_frame

    for bgr in _real_frames(real_data):
        rgb = fit_frame(bgr[:, :, ::-1], 160, 160, "centre-crop")
        lines = _xdog_lines(rgb)
        np.testing.assert_array_equal(close_gaps(lines, **settings), close_gaps_reference(lines, **settings))


def _real_frames(real_data):
    """BGR frames of four real sources: a feature film, a photo-like interior, a TV clip and a Ghibli shot."""
    for path in (real_data / "colour-shots" / "lvcd_sample_1" / "0.png",
                 real_data / "frame-pairs" / "assets" / "72105_388.mp4_00-00.png"):
        yield cv2.imread(str(path))
    for path, frame, columns in ((real_data / "cut-clips" / "onepiece_demo.mp4", 120, slice(None)),
                                 (real_data / "shot-clips" / "tre-net" / "1PM_scene818.mp4", 5, slice(0, 409))):
        capture = cv2.VideoCapture(str(path))
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, image = capture.read()
        capture.release()
        assert ok, path
        yield image[:, columns]


def test_walks_towards_a_target_square_are_exact_inside_it():
    # gap closing only reads a walk near its start; pruned walks must agree there with full breadth-first walks
    from scipy import ndimage

    from dataprep.components import _unpack, _walks

    rng = np.random.default_rng(11)
    mask = rng.random((80, 90)) < 0.55
    starts = np.argwhere(mask)[::37]
    steps, target = 24, 9
    reach = _unpack(_walks(mask, starts, steps, target), 2 * steps + 1)
    full = _unpack(_walks(mask, starts, steps), 2 * steps + 1)
    padded = np.pad(mask, steps)
    for window, start, pruned in zip(full, starts, reach):
        seed = np.zeros((2 * steps + 1,) * 2, bool)
        seed[steps, steps] = True
        box = padded[start[0]:start[0] + 2 * steps + 1, start[1]:start[1] + 2 * steps + 1]
        expected = ndimage.binary_dilation(seed, ndimage.generate_binary_structure(2, 2), iterations=steps,
                                           mask=box)
        np.testing.assert_array_equal(window, expected)
        inside = slice(steps - target, steps + target + 1)
        np.testing.assert_array_equal(pruned[inside, inside], expected[inside, inside])
        assert not (pruned & ~expected).any()  # never more than the walk reaches
    assert reach.sum() < full.sum()  # the pruning does skip pixels


@pytest.mark.parametrize("steps, target", [(6, None), (24, 12), (31, None), (31, 5), (40, 9)])
def test_one_word_and_multi_word_walks_equal_scipy_dilation(steps, target):
    # windows of at most 64 columns (2 * steps + 1 <= 64) grow through _grow_narrow, wider ones through
    # _grow_words; a narrow window padded with an empty word must walk alike through _grow_words, and both must
    # be the masked dilation (exact everywhere without a target, inside the target square with one)
    from scipy import ndimage

    from dataprep.components import _grow, _grow_words, _pack_windows, _seed, _unpack

    rng = np.random.default_rng(steps)
    mask = rng.random((70, 110)) < 0.5
    starts = np.argwhere(mask)[::41]
    size = 2 * steps + 1
    windows = _pack_windows(mask, starts, steps)
    reach = _seed(windows)
    _grow(reach, windows, 1, steps, target)
    if windows.shape[1] == 1:
        wide_windows = np.concatenate([windows, np.zeros_like(windows)], axis=1)
        wide = np.concatenate([_seed(windows), np.zeros_like(windows)], axis=1)
        _grow_words(wide, wide_windows, 1, steps, target)
        assert not wide[:, 1].any()
        np.testing.assert_array_equal(wide[:, :1], reach)
    padded = np.pad(mask, steps)
    seed = np.zeros((size, size), bool)
    seed[steps, steps] = True
    inside = slice(0, size) if target is None else slice(steps - target, steps + target + 1)
    for got, start in zip(_unpack(reach, size), starts):
        box = padded[start[0]:start[0] + size, start[1]:start[1] + size]
        expected = ndimage.binary_dilation(seed, ndimage.generate_binary_structure(2, 2), iterations=steps,
                                           mask=box)
        np.testing.assert_array_equal(got[inside, inside], expected[inside, inside])
        assert not (got & ~expected).any()


@pytest.mark.parametrize("radius", [3, 25])
def test_join_pixels_near_endpoints_equal_a_brute_force_search(radius):
    # step 2 finds the join pixels in each endpoint's window by a range search on pixels sorted by column block
    # and row; it must find exactly the (endpoint, pixel) pairs within ``radius`` rows and columns whose owner
    # comes before the endpoint, also for windows reaching past the frame's edges
    from types import SimpleNamespace

    from dataprep.components import _LineJoins

    rng = np.random.default_rng(radius)
    height, width = 90, 170
    ends = np.concatenate([rng.integers(0, (height, width), (60, 2)), [[0, 0], [height - 1, width - 1]]])
    ends = ends[np.lexsort((ends[:, 1], ends[:, 0]))]
    owner = rng.integers(0, len(ends), 400)
    rows, cols = rng.integers(0, height, 400), rng.integers(0, width, 400)
    joins = SimpleNamespace(radius=radius, frame=(height, width), ends=ends)
    endpoints = np.flatnonzero(rng.random(len(ends)) < 0.7)
    endpoint, d_row, d_col, point = _LineJoins._pixels_near(joins, (owner, rows, cols), endpoints)
    got = sorted(zip(endpoint.tolist(), point.tolist()))
    expected = sorted((int(e), int(p)) for e in endpoints for p in range(len(owner))
                      if abs(rows[p] - ends[e, 0]) <= radius and abs(cols[p] - ends[e, 1]) <= radius
                      and owner[p] < e)
    assert got == expected and len(expected) > 0
    np.testing.assert_array_equal(d_row, rows[point] - ends[endpoint, 0])
    np.testing.assert_array_equal(d_col, cols[point] - ends[endpoint, 1])


def test_skeleton_endpoints_are_pixels_with_one_neighbour_counted_by_a_box_filter():
    rng = np.random.default_rng(3)
    for density in (0.05, 0.2, 0.5):
        skeleton = rng.random((37, 53)) < density
        neighbours = cv2.filter2D(skeleton.view(np.uint8), -1, np.ones((3, 3), np.float32),
                                  borderType=cv2.BORDER_CONSTANT)  # the pixel itself + its 8 neighbours
        assert np.array_equal(skeleton_endpoints(skeleton), np.argwhere(skeleton & (neighbours == 2)))
    assert skeleton_endpoints(np.zeros((4, 4), bool)).shape == (0, 2)
    for shape, expected in (((1, 6), [[0, 0], [0, 5]]), ((6, 1), [[0, 0], [5, 0]]), ((1, 1), []), ((0, 3), []),
                            ((3, 0), [])):  # thin and empty frames
        got = skeleton_endpoints(np.ones(shape, bool))
        np.testing.assert_array_equal(got, np.array(expected, np.intp).reshape(-1, 2))
        assert got.shape == (len(expected), 2)


def test_popcount_without_numpy_bitwise_count_counts_the_same_bits():
    from dataprep.components import _popcount_bytes

    words = np.random.default_rng(0).integers(0, 2**63, size=(5, 7), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = np.array([[bin(int(w)).count("1") for w in row] for row in words])
    assert np.array_equal(_popcount_bytes(words), expected)
    assert np.array_equal(_popcount_bytes(words[:, ::2]), expected[:, ::2])  # strided input


def _skeleton_test_images():
    """(name, (H, W) bool) images for the skeleton comparison: random, hand-made, at the borders, degenerate."""
    rng = np.random.default_rng(18)
    for density in (0.05, 0.3, 0.5, 0.7, 0.95):  # random noise, sparse to nearly full
        for shape in ((17, 23), (40, 40), (1, 30), (30, 1), (2, 9)):
            yield f"noise {density} {shape}", rng.random(shape) < density
    for seed in range(20):  # random thick strokes and filled blobs, some crossing the image edge
        canvas = np.zeros((64, 80), np.uint8)
        for _ in range(int(rng.integers(1, 8))):
            x0, x1 = rng.integers(-10, 90, 2)
            y0, y1 = rng.integers(-10, 74, 2)
            cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 1, int(rng.integers(1, 9)))
            cv2.circle(canvas, (int(x1), int(y0)), int(rng.integers(1, 12)), 1, int(rng.choice([-1, 1, 3])))
        yield f"strokes {seed}", canvas.astype(bool)
    yield "empty", np.zeros((12, 15), bool)
    yield "full", np.ones((12, 15), bool)
    yield "one pixel", np.ones((1, 1), bool)
    yield "zero rows", np.zeros((0, 5), bool)
    yield "one row", np.ones((1, 40), bool)
    yield "one column", np.ones((40, 1), bool)
    yield "two rows", np.ones((2, 40), bool)
    yield "diagonal", np.eye(30, dtype=bool) | np.eye(30, k=1, dtype=bool)
    yield "thin square", square_outline(thickness=1)
    yield "thick square", square_outline(thickness=6)
    border = np.zeros((20, 30), bool)
    border[:3] = border[:, -4:] = True  # thick strokes along the image edge
    yield "edge strokes", border
    frame = SynthClip(SynthConfig(width=192, height=128, shots=1, shot_length=(2, 2), seed=5))
    yield "generator line art", next(iter(frame.frames())).line_art < 128
    yield "xdog of a generator frame", _xdog_lines(next(iter(frame.frames())).image)


def test_skeletonize_equals_scikit_image_zhang_suen():
    from skimage.morphology import skeletonize as skimage_skeletonize

    from dataprep.components import skeletonize

    for name, image in _skeleton_test_images():
        got = skeletonize(image)
        assert got.dtype == bool and got.shape == image.shape, name
        assert np.array_equal(got, skimage_skeletonize(image)), name
