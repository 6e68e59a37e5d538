"""Region voting (benchmark.models.vote): hand-built cases with answers worked out by hand, the texture
fallback, and ``NAME+vote`` through the model registry and ``bench evaluate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.model import load_model, resolve_model_factory
from benchmark.models.vote import TEXTURE_MAD, vote_batch, vote_regions


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
