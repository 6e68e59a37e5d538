"""Region voting (benchmark.models.vote): hand-built cases with answers worked out by hand, the texture
fallback, and ``NAME+vote`` through the model registry and ``bench evaluate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.model import load_model, resolve_model_factory
from benchmark.models.vote import MIN_FLAT, TEXTURE_MAD, flat_fraction, vote_batch, vote_regions


def _two_regions() -> tuple[np.ndarray, np.ndarray]:
    """4x4 frame: column 0 is line (label 0), columns 1-2 region 1, column 3 region 2."""
    labels = np.array([[0, 1, 1, 2]] * 4)
    colour = np.zeros((3, 4, 4), np.float32)
    colour[0] = 0.5  # red channel everywhere 0.5 ...
    colour[0, 0, 1] = 1.0  # ... but one of the 8 pixels of region 1 bleeds in from a border
    colour[1, :, 3] = [0.2, 0.2, 0.2, 0.9]  # region 2, green: median of (0.2, 0.2, 0.2, 0.9) = 0.2
    colour[2, :, 0] = 0.7  # line pixels
    return colour, labels


def test_each_region_takes_its_median_colour_and_lines_are_kept():
    colour, labels = _two_regions()
    out = vote_regions(colour, labels)
    assert out.dtype == np.float32 and out.shape == colour.shape
    np.testing.assert_array_equal(out[:, :, 0], colour[:, :, 0])  # line pixels untouched
    np.testing.assert_allclose(out[0, :, 1:3], 0.5)  # the bleeding pixel is outvoted 7:1
    np.testing.assert_allclose(out[1, :, 3], 0.2)  # 3 of 4 pixels say 0.2
    np.testing.assert_allclose(out[2, :, 1:], 0.0)


def test_even_counts_take_the_mean_of_the_two_middle_values_like_numpy():
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 6, size=(9, 10))
    colour = rng.random((3, 9, 10)).astype(np.float32) * 0.05  # low spread: every region is flat
    out = vote_regions(colour, labels, texture_mad=1.0)
    for label in range(1, 6):
        mask = labels == label
        for c in range(3):
            np.testing.assert_allclose(out[c][mask], np.median(colour[c][mask]), rtol=1e-6)


def test_region_medians_equal_numpy_per_region_for_any_float32_values():
    """The per-region median (one sort of label + monotonic float bits for float32) against np.median region by
    region: negative values, signed zeros, subnormals and infinities sort as floats do."""
    from benchmark.models.vote import _region_medians

    rng = np.random.default_rng(3)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1e-40, -1e-40, np.inf, -np.inf], np.float32)
    for trial in range(30):
        n, n_labels = int(rng.integers(1, 400)), int(rng.integers(1, 12))
        labels = rng.integers(0, n_labels, n)
        values = (rng.choice(special, n) if trial % 2 else rng.normal(0, 3, n)).astype(np.float32)
        medians = _region_medians(values, labels, n_labels)
        for label in range(n_labels):
            inside = values[labels == label].astype(np.float64)
            if inside.size:
                assert medians[label] == np.median(inside) or np.isnan(np.median(inside)) and np.isnan(medians[label])
            else:
                assert np.isnan(medians[label])
        # float64 values take the two-key sort: the same medians
        np.testing.assert_array_equal(_region_medians(values.astype(np.float64), labels, n_labels), medians)


def test_textured_regions_keep_the_model_pixels():
    labels = np.ones((8, 8), int)
    gradient = np.tile(np.linspace(0, 1, 8, dtype=np.float32), (3, 8, 1))  # MAD 0.25 > threshold
    np.testing.assert_array_equal(vote_regions(gradient, labels), gradient)
    assert vote_regions(gradient, labels, texture_mad=0.3)[0].std() == 0  # a higher threshold flattens it
    assert TEXTURE_MAD < 0.25


def test_all_line_frame_and_batch_shapes():
    colour = torch.rand(2, 3, 5, 6)
    np.testing.assert_array_equal(vote_regions(colour[0].numpy(), np.zeros((5, 6), int)), colour[0].numpy())
    voted = vote_batch(colour, torch.ones(2, 5, 6, dtype=torch.int64), texture_mad=1.0)
    assert voted.shape == colour.shape and voted.dtype == torch.float32
    assert torch.allclose(voted[0, 0], colour[0, 0].median().expand(5, 6), atol=0.5)


def test_vote_suffix_wraps_any_registered_model():
    name, _ = resolve_model_factory("copy-reference+vote")
    assert name == "copy-reference+vote"
    model = load_model("copy-reference+vote")
    assert "target_components" in model.requires
    colour, labels = _two_regions()
    batch = {"reference_colour": torch.from_numpy(colour)[None, None],
             "target_components": torch.from_numpy(labels)[None]}
    np.testing.assert_allclose(model(batch)[0].numpy(), vote_regions(colour, labels))
    with pytest.raises(Exception, match="did you mean 'flow-warp'"):
        load_model("flow-wrap+vote")


def _painted_and_flat_reference() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(painted, flat, labels): 4x4 references, column 0 line, region 1 = columns 1-2, region 2 = column 3.
    flat: both regions one colour each. painted: region 1's red is a ramp 0, 0.1, ..., 0.7 over its 8 pixels
    (shading), region 2 flat."""
    labels = np.array([[0, 1, 1, 2]] * 4)
    flat = np.zeros((3, 4, 4), np.float32)
    flat[:, :, 1:3] = 0.6
    flat[:, :, 3] = 0.2
    painted = flat.copy()
    painted[0, :, 1:3] = np.linspace(0.0, 0.7, 8, dtype=np.float32).reshape(4, 2)
    return painted, flat, labels


def test_flat_fraction_counts_region_pixels_near_their_region_median():
    painted, flat, labels = _painted_and_flat_reference()
    assert flat_fraction(flat, labels) == 1.0
    # region 1: red 0, .1, ..., .7, median .35; mean |RGB diff| = |red diff| / 3 <= 0.02 only for |red diff|
    # <= 0.06, i.e. .3 and .4 (0.05 away): 2 of its 8 pixels; region 2: 4 of 4. So 6 of 12.
    red = np.linspace(0.0, 0.7, 8)
    within = int((np.abs(red - np.median(red)) / 3 <= 0.02 + 1e-7).sum())
    assert within == 2
    assert flat_fraction(painted, labels) == pytest.approx((within + 4) / 12)
    assert flat_fraction(painted, np.zeros((4, 4), int)) == 1.0  # no region: nothing to judge


def test_region_flat_shares_are_flat_fraction_per_region():
    from benchmark.models.vote import region_flat_shares

    painted, flat, labels = _painted_and_flat_reference()
    # as above: region 1 has 2 of its 8 pixels within 0.02 of its median, region 2 all 4
    assert region_flat_shares(painted, labels, np.array([1, 2])).tolist() == [2 / 8, 1.0]
    assert region_flat_shares(painted, labels, np.array([2])).tolist() == [1.0]
    assert region_flat_shares(flat, labels, np.array([1, 2])).tolist() == [1.0, 1.0]
    # a wider tolerance takes in more of region 1: |red diff| / 3 <= 0.06 for |red diff| <= 0.18: .2 .3 .4 .5
    assert region_flat_shares(painted, labels, np.array([1]), tolerance=0.06).tolist() == [4 / 8]


def test_painted_references_switch_voting_off_for_their_sample():
    painted, flat, labels = _painted_and_flat_reference()
    colour = torch.rand(2, 3, 4, 4) * 0.02 + 0.5  # a model's near-flat output, voted if allowed
    target_labels = torch.from_numpy(labels)[None].repeat(2, 1, 1)
    references = torch.from_numpy(np.stack([painted, flat]))[:, None]  # sample 0 painted, sample 1 flat
    reference_labels = target_labels[:, None]
    assert flat_fraction(painted, labels) < MIN_FLAT <= flat_fraction(flat, labels)
    voted = vote_batch(colour, target_labels, reference_colour=references, reference_labels=reference_labels)
    ungated = vote_batch(colour, target_labels)
    assert torch.equal(voted[0], colour[0])  # painted reference: the model's pixels
    assert torch.equal(voted[1], ungated[1]) and not torch.equal(ungated[1], colour[1])
    assert torch.equal(vote_batch(colour, target_labels, reference_colour=references,
                                  reference_labels=reference_labels, min_flat=0), ungated)
    # NAME+vote reads the references from the batch
    model = load_model("copy-reference+vote")
    batch = {"reference_colour": references, "reference_components": reference_labels,
             "target_components": target_labels}
    out = model(batch)
    assert torch.equal(out[0], references[0, 0])
    torch.testing.assert_close(out[1], vote_batch(references[:, 0], target_labels)[1])
