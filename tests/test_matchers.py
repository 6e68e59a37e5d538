"""match-hand and match-graph on hand-built frame pairs whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.model import load_model
from benchmark.models.matchers import PAINT_FLAT_TOLERANCE, HandMatcher, adjacency

from benchmark_toys import one_torch_thread

single_thread = pytest.fixture(autouse=True)(one_torch_thread)

COLOURS = {1: (240, 240, 240), 2: (200, 40, 40), 3: (40, 90, 200), 4: (250, 200, 30)}


def scene(shift: int, with_star: bool, star: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """48 x 64 frame: background (1), a box (2) and a bar (3) moved right by ``shift``; optionally a new
    small square (4, a colour absent from the reference; ``star`` px wide before its lines). 1-px black lines;
    labels 0 on lines."""
    labels = np.ones((48, 64), np.int64)
    labels[8:30, 6 + shift:26 + shift] = 2
    labels[34:44, 30 + shift:60] = 3
    if with_star:
        labels[6:6 + star, 40:40 + star] = 4
    lines = np.zeros_like(labels, bool)
    lines[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    lines[1:, :] |= labels[1:, :] != labels[:-1, :]
    labels[lines] = 0
    colour = np.zeros((48, 64, 3), np.uint8)
    for label, rgb in COLOURS.items():
        colour[labels == label] = rgb
    return labels, colour


def batch_of(reference, target) -> dict[str, torch.Tensor]:
    (ref_labels, ref_colour), (tgt_labels, _) = reference, target

    def sketch(labels):
        return torch.from_numpy(np.where(labels == 0, 0.0, 1.0).astype(np.float32))[None]

    return {"reference_colour": torch.from_numpy(ref_colour.transpose(2, 0, 1) / 255.0).float()[None, None],
            "reference_sketch": sketch(ref_labels)[None, None], "reference_field": sketch(ref_labels)[None, None],
            "target_sketch": sketch(tgt_labels)[None], "target_field": sketch(tgt_labels)[None],
            "reference_components": torch.from_numpy(ref_labels)[None, None],
            "target_components": torch.from_numpy(tgt_labels)[None]}


def test_adjacency_crosses_lines():
    labels = np.array([[1, 0, 2], [1, 0, 2], [3, 3, 3]])
    assert adjacency(labels).tolist() == [[1, 2], [1, 3], [2, 3]]
    assert adjacency(np.zeros((3, 3), int)).shape == (0, 2)


@pytest.mark.parametrize("name", ["match-hand", "match-graph"])
def test_matchers_find_moved_regions_and_refuse_new_ones(name):
    reference, target = scene(0, False), scene(3, True)
    output = load_model(name)(batch_of(reference, target))
    target_labels, target_colour = target
    # every target region has the id of its reference counterpart by construction, except the new one
    assert output.component_matches[0].tolist() == [-1, 1, 2, 3, -1]
    prediction = (output[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    for label in (1, 2, 3):
        assert (prediction[target_labels == label] == COLOURS[label]).all()
    assert output.shape == (1, 3, 48, 64)


@pytest.mark.parametrize("name", ["match-hand", "match-graph"])
def test_a_painted_reference_keeps_the_warp_unflattened_and_still_answers(name):
    from benchmark.models.flow_warp import FlowWarp

    reference, target = scene(0, False), scene(3, True)
    labels, colour = reference
    # shading: a horizontal ramp of 60 levels across every region, so few pixels are within 15 levels of
    # their region's median (flat_fraction well below 0.85)
    ramp = np.linspace(-30, 30, 64)[None, :, None]
    painted = np.where(labels[..., None] > 0, np.clip(colour + ramp, 0, 255), 0).astype(np.uint8)
    batch = batch_of((labels, painted), target)
    output = load_model(name)(batch)
    assert output.component_matches[0].tolist() == [-1, 1, 2, 3, -1]  # the answers do not depend on the gate
    torch.testing.assert_close(output, FlowWarp()(batch).float(), rtol=0, atol=0)
    # with the gate off the same pair is flat-filled: one colour per target region
    flat = HandMatcher(min_flat=0)(batch)[0].numpy()
    for label in (1, 2, 3):
        assert len(np.unique(flat[:, target[0] == label], axis=1).T) == 1


def sky_scene(shift: int) -> tuple[np.ndarray, np.ndarray]:
    """48 x 64 flat cel on a painted sky: the background (1) a horizontal ramp of 60 levels, six 8 x 8 boxes
    (2-7, flat colours) moved right by ``shift``; 1-px black lines, labels 0 on lines."""
    labels = np.ones((48, 64), np.int64)
    for k in range(6):
        row, col = 6 + 22 * (k // 3), 4 + 18 * (k % 3) + shift
        labels[row:row + 8, col:col + 8] = 2 + k
    lines = np.zeros_like(labels, bool)
    lines[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    lines[1:, :] |= labels[1:, :] != labels[:-1, :]
    labels[lines] = 0
    box_colours = [(200, 40, 40), (40, 90, 200), (250, 200, 30), (30, 160, 60), (120, 40, 160), (240, 130, 20)]
    colour = np.zeros((48, 64, 3), np.uint8)
    sky = np.clip(np.array([150.0, 180.0, 230.0]) + np.linspace(-30, 30, 64)[:, None], 0, 255)
    colour[labels == 1] = np.broadcast_to(sky[None], (48, 64, 3))[labels == 1].round()
    for k, rgb in enumerate(box_colours):
        colour[labels == 2 + k] = rgb
    return labels, colour


@pytest.mark.parametrize("name", ["match-hand", "match-graph"])
def test_flat_cels_on_a_painted_sky_are_painted_and_the_sky_keeps_the_warp(name):
    from benchmark.models.flow_warp import FlowWarp
    from benchmark.models.vote import FLAT_TOLERANCE, flat_fraction, region_flat_shares

    reference, target = sky_scene(0), sky_scene(4)  # 4 px: the warp gets some box pixels wrong
    labels, colour = reference
    # the sky holds most region pixels and half of them are more than 15 levels off its median, so the frame
    # fails the painted-reference gate; at 5 levels (FLAT_TOLERANCE) every box is exactly flat, the sky is not,
    # and 6 of the 7 regions (0.857 >= 0.85) are exactly flat: a flat cel on a painted region
    assert flat_fraction(colour.transpose(2, 0, 1) / 255.0, labels, PAINT_FLAT_TOLERANCE) < 0.85
    shares = region_flat_shares(colour.transpose(2, 0, 1) / 255.0, labels, np.arange(1, 8), FLAT_TOLERANCE)
    assert shares[0] < 0.5 and (shares[1:] == 1).all()
    batch = batch_of(reference, target)
    output = load_model(name)(batch)
    assert output.component_matches[0].tolist() == [-1, 1, 2, 3, 4, 5, 6, 7]
    warp = FlowWarp()(batch).float()
    prediction = (output[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    target_labels = target[0]
    for label in range(2, 8):  # each box its reference box's exact paint
        assert (prediction[target_labels == label] == colour[labels == label][0]).all()
    assert not torch.equal(output, warp)
    sky = torch.from_numpy(target_labels <= 1)  # the sky and the lines: the warp, unflattened
    assert torch.equal(output[0][:, sky], warp[0][:, sky])
    # the first gate (exact_tolerance=None): the whole frame is the warp
    torch.testing.assert_close(HandMatcher(exact_tolerance=None)(batch), warp, rtol=0, atol=0)


def test_no_closed_region_gives_the_warp_and_no_answers():
    reference = scene(0, False)
    blank = (np.zeros((48, 64), np.int64), np.zeros((48, 64, 3), np.uint8))
    output = load_model("match-hand")(batch_of(reference, blank))
    assert output.component_matches[0].tolist() == [-1]
    assert torch.isfinite(output).all() and output.shape == (1, 3, 48, 64)


def test_many_regions_take_the_blockwise_cheapest_match():
    # a 60 x 60 grid of 1-px cells separated by lines: 900 regions per frame, above max_assignment=100
    labels = np.zeros((121, 121), np.int64)
    labels[1::2, 1::2] = np.arange(1, 3601).reshape(60, 60)
    colour = np.zeros((121, 121, 3), np.uint8)
    colour[labels > 0] = 128
    output = HandMatcher(max_assignment=100)(batch_of((labels, colour), (labels, colour)))
    # identical frames: every cell's cheapest counterpart is itself (position decides among equal shapes)
    assert (output.component_matches[0][1:].numpy() == np.arange(1, 3601)).all()


def test_match_unet_triplet_loss_by_hand():
    from baselines.model import build_model, model_preset

    model = build_model("match-unet", **model_preset("match-unet", "tiny")["model"])
    (ref_labels, ref_colour), (tgt_labels, tgt_colour) = scene(0, False), scene(2, False)

    def chw(rgb):
        return torch.from_numpy(rgb.transpose(2, 0, 1) / 255.0).float()

    ids = torch.tensor([1, 2, 3])
    # rows: target components 1..3, columns: reference components 1..3; certain matches are t -> t
    distance = torch.tensor([[0.1, 0.3, 0.9], [0.6, 0.2, 0.45], [0.7, 0.8, 0.0]])
    loss = model.triplet_loss(distance, ids, ids, torch.from_numpy(tgt_labels), torch.from_numpy(ref_labels),
                              chw(tgt_colour), chw(ref_colour))
    # Eq. 3, margin 0.5, hardest other-colour negative: t1: 0.1 + max(0, 0.5 - 0.3) = 0.3;
    # t2: 0.2 + max(0, 0.5 - 0.45) = 0.25; t3: 0.0 + max(0, 0.5 - 0.7) = 0 -> mean 0.55 / 3
    assert float(loss) == pytest.approx(0.55 / 3)


def test_match_unet_trains_and_scores_with_answers(monkeypatch):
    from baselines.model import build_model, model_preset
    from baselines.models.match_unet import UNetMatcher

    torch.manual_seed(0)
    network = build_model("match-unet", **model_preset("match-unet", "tiny")["model"])
    reference, target = scene(0, False), scene(3, True)
    batch = batch_of(reference, target)
    batch["target_colour"] = torch.from_numpy(target[1].transpose(2, 0, 1) / 255.0).float()[None]
    network.train()
    output = network(batch)
    triplet, logged = network.auxiliary_loss(batch["target_colour"])  # what bench train adds to its loss
    assert output.shape == (1, 3, 48, 64) and float(triplet.detach()) > 0 and logged["triplet"] == float(triplet)
    (output.mean() + triplet).backward()

    def no_trust(*args, **kwargs):
        raise AssertionError("match-unet's cost has no colour term: no colour trust to work out")

    monkeypatch.setattr("benchmark.models.matchers.region_flat_shares", no_trust)
    scored = UNetMatcher(network)(batch)
    answers = scored.component_matches[0]
    assert answers.shape == (5,) and answers[0] == -1 and ((answers >= -1) & (answers <= 3)).all()


def test_match_unet_assignment_gives_each_reference_once_then_the_nearest_by_hand():
    """Distances worked out by hand: targets 0 and 1 are both nearest to reference 0 (0.1, 0.2); the
    one-to-one assignment gives reference 0 to target 0 and reference 1 (0.3) to target 1 (total 0.4 < 0.1 +
    "no match" 0.5); target 2 is within 0.5 of nothing (no match); target 3 loses reference 0 in the
    assignment and then takes it as its nearest (0.25 <= 0.5). ``nearest`` is the poster's read-out."""
    from types import SimpleNamespace

    from baselines.models.match_unet import UNetMatcher

    distance = np.array([[0.10, 0.60, 0.90],
                         [0.20, 0.30, 0.90],
                         [0.70, 0.80, 0.60],
                         [0.25, 0.90, 0.90]])
    for solver, expected in (("assignment", [0, 1, -1, 0]), ("nearest", [0, 0, -1, 0])):
        matcher = object.__new__(UNetMatcher)  # no network: the distances are given
        matcher.solver, matcher.max_assignment, matcher.geometry_weight = solver, 1500, 0.0
        matcher.network = SimpleNamespace(no_match_distance=0.5)
        matcher.distances = lambda: distance
        assert matcher.match(range(4), range(3), (1, 1)).tolist() == expected, solver
    with pytest.raises(ValueError, match="solver"):
        UNetMatcher(SimpleNamespace(eval=lambda: None), solver="spectral")


def test_unmatched_region_takes_the_palette_colour_nearest_its_most_frequent_warped_colour():
    """Hand-built: the reference palette is light grey A = 0.8 and mid grey B = 0.5; the one target region
    (10 px) is answered "no match"; 6 of its warped pixels are A and 4 are black (the warped line at its
    border). Mean 0.48 is nearest B; the mode is A. ``unmatched_statistic="mode"`` (default) paints A,
    ``"mean"`` (the first version) B."""
    from benchmark.models.matchers import NO_MATCH, ComponentMatcher

    class Unmatched(ComponentMatcher):
        def match(self, target, reference, shape):
            return np.full(len(target), NO_MATCH, np.int64)

    target_labels = np.zeros((4, 7), np.int64)
    target_labels[1:3, 1:6] = 1
    warped = np.zeros((3, 4, 7), np.float32)
    warped[:, 1:3, 1:6] = 0.8
    warped[:, 1, 1:5] = 0.0
    reference_labels = np.zeros((4, 7), np.int64)
    reference_labels[:, :3], reference_labels[:, 4:] = 1, 2
    reference_colour = np.zeros((3, 4, 7), np.float32)
    reference_colour[:, :, :3], reference_colour[:, :, 4:] = 0.8, 0.5
    for statistic, grey in (("mode", 0.8), ("mean", 0.5)):
        matcher = Unmatched(min_flat=0.0, unmatched_statistic=statistic)
        output, matches = matcher.paint(warped, reference_colour, target_labels, reference_labels)
        assert matches.tolist() == [NO_MATCH, NO_MATCH]
        assert np.allclose(output[:, 1:3, 1:6], grey, atol=1 / 255), statistic
        assert np.array_equal(output[:, 0], warped[:, 0])  # line pixels keep the warp
    with pytest.raises(ValueError, match="unmatched_statistic"):
        Unmatched(unmatched_statistic="median")


def test_match_unet_geometry_prior_by_hand():
    """Two targets and two references whose cosine distances (0.20 on the diagonal, 0.25 off it) say "same
    index", while the positions say "swapped". Frame 100 x 100: 0.1 diag = 10 sqrt 2; the prior's scale is
    geometry_weight 0.5 x no_match_distance 0.5 / match-hand's no-match cost 2.5 = 0.1. Target 0 at (0, 0),
    target 1 at (0, 50), area 100 each; reference 0 at (0, 50), area 400; reference 1 at (0, 0), area 100.
    cost(t0, r0) = 0.20 + 0.1 (50 / (10 sqrt 2) + 0.5 |log2(100 / 400)|) = 0.20 + 0.1 (3.5355 + 1) = 0.65355;
    cost(t0, r1) = 0.25; cost(t1, r0) = 0.25 + 0.1 (0 + 1) = 0.35; cost(t1, r1) = 0.20 + 0.35355 = 0.55355.
    So target 0 takes reference 1 and target 1 reference 0; without the prior, the reverse."""
    from types import SimpleNamespace

    from baselines.models.match_unet import UNetMatcher
    from benchmark.models.matchers import CostWeights, RegionFeatures

    def features(centroids, areas) -> RegionFeatures:
        n = len(areas)
        return RegionFeatures(ids=np.arange(1, n + 1), area=np.array(areas, float), centroid=np.array(centroids, float),
                              log_hu=np.zeros((n, 6)), mean_rgb=np.zeros((n, 3)), degree=np.zeros(n),
                              edges=np.zeros((0, 2), np.int64))

    target = features([(0, 0), (0, 50)], [100, 100])
    reference = features([(0, 50), (0, 0)], [400, 100])
    distance = np.array([[0.20, 0.25], [0.25, 0.20]])
    matcher = object.__new__(UNetMatcher)
    matcher.solver, matcher.max_assignment, matcher.weights = "assignment", 1500, CostWeights()
    matcher.network = SimpleNamespace(no_match_distance=0.5)
    matcher.distances = lambda: distance.copy()
    root2 = np.sqrt(2)
    for weight, expected_cost, expected in (
            (0.5, [[0.20 + 0.1 * (5 / root2 * 1 + 1), 0.25], [0.35, 0.20 + 0.1 * 5 / root2]], [1, 0]),
            (0.0, distance, [0, 1])):
        matcher.geometry_weight = weight
        assert matcher.matching_cost(target, reference, (100, 100)) == pytest.approx(np.array(expected_cost))
        assert matcher.match(target, reference, (100, 100)).tolist() == expected
    with pytest.raises(ValueError, match="geometry_weight"):
        UNetMatcher(SimpleNamespace(eval=lambda: None), geometry_weight=-1)


def test_cost_matrix_equals_the_documented_formula_pair_by_pair():
    """match-hand's cost (five cdist calls) against the module docstring's formula evaluated per pair."""
    from benchmark.models.matchers import CostWeights, RegionFeatures, cost_matrix

    rng = np.random.default_rng(7)

    def features(n: int) -> RegionFeatures:
        return RegionFeatures(ids=np.arange(1, n + 1), area=rng.uniform(1, 5000, n),
                              centroid=rng.uniform(0, 100, (n, 2)), log_hu=rng.normal(0, 5, (n, 6)),
                              mean_rgb=rng.uniform(0, 255, (n, 3)), degree=rng.integers(0, 6, n).astype(float),
                              edges=np.zeros((0, 2), np.int64))

    target, reference, weights, shape = features(9), features(7), CostWeights(), (80, 120)
    diag = np.hypot(*shape)
    cost = cost_matrix(target, reference, shape, weights, slice(2, 8))
    assert cost.shape == (6, 7)
    for i, t in enumerate(range(2, 8)):
        for r in range(7):
            expected = (weights.position * np.linalg.norm(target.centroid[t] - reference.centroid[r]) / (0.1 * diag)
                        + weights.area * abs(np.log2(target.area[t] / reference.area[r]))
                        + weights.shape * np.mean(np.abs(target.log_hu[t] - reference.log_hu[r]))
                        + weights.colour * np.linalg.norm(target.mean_rgb[t] - reference.mean_rgb[r]) / (255 * 3 ** 0.5)
                        + weights.neighbours * abs(np.log2((1 + target.degree[t]) / (1 + reference.degree[r]))))
            assert cost[i, r] == pytest.approx(expected, rel=1e-12)

    # colour trust scales each target's colour term, and only that term
    from dataclasses import replace

    trust = rng.uniform(0, 1, 9)
    trusted = cost_matrix(replace(target, colour_trust=trust), reference, shape, weights, slice(2, 8))
    colour = weights.colour * np.linalg.norm(target.mean_rgb[2:8, None] - reference.mean_rgb[None], axis=2) / (
        255 * 3 ** 0.5)
    assert trusted == pytest.approx(cost - colour * (1 - trust[2:8, None]), rel=1e-12, abs=1e-12)


def test_colour_trust_is_the_share_of_warped_pixels_agreeing_with_their_median():
    """Where the flow fails, a region's warped pixels mix reference colours and their mean is no colour of the
    reference. Here target region 1 is reference region A (light grey) moved by (1, 2) px, but the warp paints
    it 60 % red, 40 % blue; reference region B, below A and absent from the target, is purple, the colour of
    that mean. Costs (position + colour + neighbours; area and shape are equal): with full colour weight A
    0.250 + 3.175 + 0.146 = 3.571, above the no-match cost 2.5, and B 2.247 + 0 + 0.146 = 2.393, so region 1
    goes to B; with the colour term weighted by the 60 % of warped pixels that agree with their median (red),
    A costs 0.250 + 0.6 * 3.175 + 0.146 = 2.301 and wins."""
    from benchmark.models.vote import region_flat_shares

    reference = np.zeros((40, 80), np.int64)
    reference[2:18, 5:25], reference[23:39, 5:25], reference[2:18, 55:75] = 1, 2, 3  # A, B, C
    target = np.zeros_like(reference)
    target[3:19, 7:27], target[3:19, 55:75] = 1, 2  # A moved, C; B is gone
    grey, purple, red, blue = (np.array(c, np.float32) for c in ([.8, .8, .8], [.6, 0, .4], [1, 0, 0], [0, 0, 1]))
    reference_colour = np.zeros((3, 40, 80), np.float32)
    for region, colour in ((1, grey), (2, purple), (3, red)):
        reference_colour[:, reference == region] = colour[:, None]
    warped = np.zeros((3, 40, 80), np.float32)
    warped[:, target == 2] = red[:, None]
    warped[:, 3:19, 7:19] = red[:, None, None]  # 12 of region 1's 20 columns
    warped[:, 3:19, 19:27] = blue[:, None, None]
    assert region_flat_shares(warped, target, np.array([1, 2]), PAINT_FLAT_TOLERANCE).tolist() == [0.6, 1.0]
    _, untrusting = HandMatcher(min_flat=0, colour_trust=False).paint(warped, reference_colour, target, reference)
    assert untrusting[1] == 2 and untrusting[2] == 3  # the mixed mean colour picks purple B
    out, answers = HandMatcher(min_flat=0).paint(warped, reference_colour, target, reference)
    assert answers[1] == 1 and answers[2] == 3
    assert np.allclose(out[:, target == 1], np.round(grey * 255)[:, None] / 255)

def test_region_means_pool_at_network_resolution_by_hand():
    """match-unet's pooling at network resolution equals pooling the bilinearly upsampled map: worked out by
    hand on a 1 x 4 frame over a 1 x 2 map, and against ``F.interpolate`` + per-component mean on random maps."""
    from baselines.models.match_unet import bilinear_taps, component_means, region_means

    # upsampling 2 -> 4 (align_corners=False): sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (both taps on the
    # last cell) -> values a, .75a + .25b, .25a + .75b, b
    (lower, lower_weight), (upper, upper_weight) = bilinear_taps(4, 2)
    assert lower.tolist() == [0, 0, 0, 1] and upper.tolist() == [1, 1, 1, 1]
    assert upper_weight.tolist() == pytest.approx([0, 0.25, 0.75, 0.25])
    assert (lower_weight + upper_weight).tolist() == pytest.approx([1, 1, 1, 1])
    values = torch.tensor([[[2.0, 6.0]]])  # (C=1, 1, 2)
    ids, means = region_means(values, torch.tensor([[1, 1, 0, 2]]))
    assert ids.tolist() == [1, 2]
    assert means[:, 0].tolist() == pytest.approx([(2 + 0.75 * 2 + 0.25 * 6) / 2, 6.0])
    rng = torch.Generator().manual_seed(3)
    for size, map_size in (((30, 45), (10, 15)), ((37, 53), (9, 14))):
        labels = torch.randint(0, 9, size, generator=rng)
        maps = torch.rand(4, *map_size, generator=rng, requires_grad=True)
        ids, means = region_means(maps, labels)
        upsampled = torch.nn.functional.interpolate(maps[None], size=size, mode="bilinear", align_corners=False)[0]
        full_ids, full_means = component_means(upsampled, labels)
        assert ids.tolist() == full_ids.tolist() and torch.allclose(means, full_means, atol=1e-5)
    means.sum().backward()  # differentiable in the map, as training needs
    assert maps.grad is not None and maps.grad.abs().sum() > 0


def test_match_graph_unet_node_cost_is_the_scaled_cosine_distance_plus_the_hand_cost():
    """match-graph-unet's node cost: hand_weight * match-hand's cost + unet_weight * d * no_match / no_match_distance,
    with d = 1 - cosine similarity of the network's embeddings (here set by hand)."""
    from baselines.model import build_model, model_preset
    from baselines.models.match_unet import UNetGraphMatcher
    from benchmark.models.matchers import cost_matrix, region_features

    network = build_model("match-unet", **model_preset("match-unet", "tiny")["model"])
    (ref_labels, ref_colour), (tgt_labels, tgt_colour) = scene(0, False), scene(3, True)
    target, reference = region_features(tgt_labels, tgt_colour), region_features(ref_labels, ref_colour)
    t_emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1], [1, 1], [1, -1]]), dim=1)
    r_emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1], [-1, 0]]), dim=1)
    matcher = UNetGraphMatcher(network, hand_weight=0.25, unet_weight=2.0)
    matcher._embeddings = (t_emb, r_emb)
    half = 0.5 ** 0.5
    cosine = np.array([[1, 0, -1], [0, 1, 0], [half, half, -half], [half, -half, -half]])
    hand = cost_matrix(target, reference, (48, 64), matcher.weights)
    expected = 0.25 * hand + 2.0 * (1 - cosine) * matcher.weights.no_match / network.no_match_distance
    np.testing.assert_allclose(matcher.node_cost(target, reference, (48, 64), slice(None)), expected, rtol=1e-6)
    np.testing.assert_allclose(matcher.node_cost(target, reference, (48, 64), slice(1, 3)), expected[1:3], rtol=1e-6)


def test_match_graph_unet_scores_with_answers():
    from baselines.model import build_model, model_preset
    from baselines.models.match_unet import UNetGraphMatcher

    torch.manual_seed(0)
    network = build_model("match-unet", **model_preset("match-unet", "tiny")["model"])
    output = UNetGraphMatcher(network)(batch_of(scene(0, False), scene(3, True)))
    answers = output.component_matches[0]
    assert output.shape == (1, 3, 48, 64) and torch.isfinite(output).all()
    assert answers.shape == (5,) and answers[0] == -1 and ((answers >= -1) & (answers <= 3)).all()


def regions(n: int, edges=()) -> "RegionFeatures":
    from benchmark.models.matchers import RegionFeatures

    return RegionFeatures(ids=np.arange(1, n + 1), area=np.full(n, 100.0), centroid=np.zeros((n, 2)),
                          log_hu=np.zeros((n, 6)), mean_rgb=np.zeros((n, 3)), degree=np.zeros(n),
                          edges=np.array(edges, np.int64).reshape(-1, 2))


def test_graph_candidate_scores_by_hand():
    from scipy import sparse

    from benchmark.models.matchers import GraphMatcher

    # 2 target components x 2 candidates: node affinities 1, 0.5 | 0.2, 0.8 on the diagonal, one edge affinity
    # 0.6 between (t0, c0) and (t1, c1). One step from uniform 1/2: (0.5 + 0.3, 0.25 | 0.1, 0.4 + 0.3)
    matrix = sparse.csr_matrix(np.array([[1, 0, 0, 0.6], [0, 0.5, 0, 0], [0, 0, 0.2, 0], [0.6, 0, 0, 0.8]]))
    rows = GraphMatcher(iterations=1).scores(matrix, (2, 2))
    np.testing.assert_allclose(rows, [[0.8 / 1.05, 0.25 / 1.05], [0.1 / 0.8, 0.7 / 0.8]])  # each row sums to 1
    spectral = GraphMatcher(iterations=1, solver="spectral").scores(matrix, (2, 2))
    np.testing.assert_allclose(spectral, np.array([[0.8, 0.25], [0.1, 0.7]]) / np.sqrt(1.2025))
    with pytest.raises(ValueError, match="solver"):
        GraphMatcher(solver="sinkhorn")


def test_graph_first_one_to_one_then_many_to_one_by_hand():
    from benchmark.models.matchers import GraphMatcher

    class FixedCost(GraphMatcher):
        def node_cost(self, target, reference, shape, rows):
            return np.array([[0.2, 2.0], [0.3, 2.2], [1.9, 0.1]])[rows]

    # node_scale 1, no edges: 10 row-normalised steps give scores proportional to exp(-10 cost), so the context
    # penalty of a candidate is min(10 (cost - the row's cheapest), 5) x 0.3: t0 (0.2, 2.0 + 1.5), t1 (0.3, 2.2 + 1.5),
    # t2 (1.9 + 1.5, 0.1). One-to-one with "no match" at 2.5: t2 -> r1 (0.1), then r0 goes to t0 (0.2 + t1's
    # 2.5 = 2.7 < t1's 0.3 + t0's 2.5 = 2.8). Second matching: t1 takes its cheapest, r0 (0.3 < 2.5).
    answers = FixedCost(node_scale=1.0).match(regions(3), regions(2), (10, 10))
    assert answers.tolist() == [0, 0, 1]
    # with spectral matching each component takes its best-scoring candidate: the same here
    assert FixedCost(node_scale=1.0, solver="spectral").match(regions(3), regions(2), (10, 10)).tolist() == [0, 0, 1]


def test_graph_context_overrules_a_cheaper_one_to_one_answer():
    from scipy import sparse

    from benchmark.models.matchers import GraphMatcher

    class Pinned(GraphMatcher):
        """Costs t0 (0.5, 0.7), t1 (0.7, 0.5); the graph: node affinities exp(-cost) and an edge of 5 between
        the candidates (t0, r1) and (t1, r0) (say their neighbours agree on that swap)."""

        def node_cost(self, target, reference, shape, rows):
            return np.array([[0.5, 0.7], [0.7, 0.5]])[rows]

        def affinity(self, target, reference, shape, candidates, costs):
            matrix = np.diag(np.exp(-costs).ravel())
            matrix[1, 2] = matrix[2, 1] = 5.0
            return sparse.csr_matrix(matrix)

    # without the penalty: the one-to-one answer of least cost, t0 -> r0, t1 -> r1 (1.0 against 1.4)
    assert Pinned(context_weight=0.0).match(regions(2), regions(2), (10, 10)).tolist() == [0, 1]
    # with it: each step multiplies score(t0, r0) / score(t0, r1) by about exp(-0.5) / 5, so after 10 steps the
    # penalty of (t0, r0) and (t1, r1) is the cap, 5: costs t0 (0.5 + 1.5, 0.7), t1 (0.7, 0.5 + 1.5) -> swapped
    assert Pinned().match(regions(2), regions(2), (10, 10)).tolist() == [1, 0]


class ScoredGraph:
    """A GraphMatcher with fixed node costs and fixed candidate scores (the graph's part worked out by hand
    elsewhere): 4 target components (background, box, bar, the new square) x 3 reference components."""

    COSTS = np.array([[0.1, 2.0, 2.0], [2.0, 0.1, 2.0], [2.0, 2.0, 0.1], [2.9, 2.6, 2.8]])
    SCORES = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.1, 0.7]])

    @staticmethod
    def make(**settings):
        from benchmark.models.matchers import GraphMatcher

        class Fixed(GraphMatcher):
            def node_cost(self, target, reference, shape, rows):
                return ScoredGraph.COSTS[rows]

            def scores(self, matrix, shape):
                return ScoredGraph.SCORES

        return Fixed(**settings)


def test_graph_paints_an_unmatched_component_with_its_best_scoring_candidate():
    from benchmark.models.matchers import GraphMatcher

    reference, target = scene(0, False), scene(3, True)
    target_labels, _ = target
    star = target_labels == 4
    # the new square costs >= 2.6 against every reference component, over the no-match cost 2.5: it is answered
    # "no match" either way; the others take their 0.1 counterparts (3 candidates = every reference component,
    # so candidate j is reference row j)
    graph = ScoredGraph.make(unmatched_max_area=None)(batch_of(reference, target))
    assert graph.component_matches[0].tolist() == [-1, 1, 2, 3, -1]
    painted = (graph[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    # painted with its best-scoring candidate, reference row 2 (the blue bar; score 0.7), not its cheapest
    # (row 1, red, 2.6): the graph decides
    assert (painted[star] == COLOURS[3]).all()
    for label in (1, 2, 3):
        assert (painted[target_labels == label] == COLOURS[label]).all()
    # unmatched_colour="warp" paints it as match-hand does: the palette colour nearest its mean warped colour
    # (the reference has background there); the answers are the same
    warp = ScoredGraph.make(unmatched_colour="warp")(batch_of(reference, target))
    assert warp.component_matches[0].tolist() == [-1, 1, 2, 3, -1]
    painted = (warp[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert (painted[star] == COLOURS[1]).all()
    # by default only specks (at most 10 px) take the graph's colour: the 8 x 8 square is painted from the warp
    assert star.sum() > 10
    default = ScoredGraph.make()(batch_of(reference, target))
    assert torch.equal(default, warp)
    hand = load_model("match-hand")(batch_of(reference, target))
    assert ((hand[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)[star] == COLOURS[1]).all()
    with pytest.raises(ValueError, match="unmatched_colour"):
        GraphMatcher(unmatched_colour="nearest")


def test_graph_paints_unmatched_components_from_the_warp_when_the_reference_is_shaded():
    from benchmark.models.vote import MIN_FLAT, flat_fraction

    (labels, colour), target = scene(0, False), scene(3, True)
    # painted shading: a horizontal ramp of -24..+24 levels over every region, so most region pixels are more
    # than FLAT_TOLERANCE (about 5 levels) from their region's median: not a flat cel
    ramp = np.linspace(-24, 24, labels.shape[1])[None, :, None]
    shaded = np.where(labels[..., None] > 0, np.clip(colour + ramp, 0, 255), colour).astype(np.uint8)
    assert flat_fraction(shaded.transpose(2, 0, 1) / 255.0, labels) < MIN_FLAT
    assert flat_fraction(colour.transpose(2, 0, 1) / 255.0, labels) == 1.0
    graph = ScoredGraph.make(unmatched_max_area=None)(batch_of((labels, shaded), target))
    warp = ScoredGraph.make(unmatched_colour="warp")(batch_of((labels, shaded), target))
    # the gate: on a shaded reference the default paints the unmatched square as "warp" does (same frame)
    assert graph.component_matches[0].tolist() == warp.component_matches[0].tolist() == [-1, 1, 2, 3, -1]
    assert torch.equal(graph, warp)


def test_graph_paints_an_unmatched_speck_with_its_best_scoring_candidate_by_default():
    # a 3 x 3 square whose top and left rows are lines: a 2 x 2 speck of 4 px, at most 10 px
    reference, target = scene(0, False), scene(3, True, star=3)
    speck = target[0] == 4
    assert speck.sum() == 4
    default = ScoredGraph.make()(batch_of(reference, target))
    assert default.component_matches[0].tolist() == [-1, 1, 2, 3, -1]
    painted = (default[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert (painted[speck] == COLOURS[3]).all()  # the best-scoring candidate's colour, as above
    warp = ScoredGraph.make(unmatched_colour="warp")(batch_of(reference, target))
    assert not ((warp[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)[speck] == COLOURS[3]).all()
