"""Simulated colour hints: distribution of count, size and position over many seeds; colours on a hand image."""

from __future__ import annotations

import numpy as np
import pytest

from dataprep.cli import main
from dataprep.errors import CelbenchError
from dataprep.hints import HINTS

N_SEEDS = 3000


@pytest.fixture(scope="module")
def many_samples():
    sampler = HINTS.create("gaussian-geometric")
    target = np.zeros((200, 160, 3), np.uint8)
    return [sampler.sample(target, np.random.default_rng(seed)) for seed in range(N_SEEDS)]


def test_count_is_geometric_with_mean_one_over_p(many_samples):
    counts = np.array([len(h) for h in many_samples])
    # Geometric(0.125) on {1, 2, ...}: mean 8, sd sqrt(1 - p) / p = 7.48 -> standard error 0.14 over 3000 seeds
    assert counts.min() >= 1
    assert abs(counts.mean() - 8) < 0.6
    assert abs((counts == 1).mean() - 0.125) < 0.025


def test_patch_sides_are_uniform_from_1_to_8(many_samples):
    sizes = np.array([h.size for sample in many_samples for h in sample])
    assert set(np.unique(sizes)) == set(range(1, 9))
    frequencies = np.bincount(sizes, minlength=9)[1:] / len(sizes)
    assert np.abs(frequencies - 1 / 8).max() < 0.015


def test_positions_follow_a_centred_gaussian_with_quarter_size_sigma(many_samples):
    height, width = 200, 160
    centres = np.array([(h.top + h.size / 2, h.left + h.size / 2) for s in many_samples for h in s])
    for axis, extent in enumerate((height, width)):
        offset = (centres[:, axis] - extent / 2) / (extent / 4)
        assert abs(np.median(offset)) < 0.05
        # clipping only moves points beyond 2 sigma, so the 1-sigma mass is unaffected: 68.3 %
        assert abs((np.abs(offset) < 1).mean() - 0.683) < 0.02
    tops = np.array([h.top for s in many_samples for h in s])
    lefts = np.array([h.left for s in many_samples for h in s])
    sizes = np.array([h.size for s in many_samples for h in s])
    assert tops.min() >= 0 and (tops + sizes).max() <= height
    assert lefts.min() >= 0 and (lefts + sizes).max() <= width


def test_patch_colours_are_patch_means_and_image_and_mask_agree():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    result = HINTS.create("gaussian-geometric")(target, seed=11)
    assert result.image.shape == target.shape and result.image.dtype == np.uint8
    assert result.mask.shape == target.shape[:2] and result.mask.dtype == np.uint8
    assert len(result.hints) >= 1
    expected_mask = np.zeros(target.shape[:2], np.uint8)
    for hint in result.hints:
        patch = target[hint.top:hint.top + hint.size, hint.left:hint.left + hint.size].astype(float)
        assert hint.rgb == tuple(int(v) for v in np.rint(patch.reshape(-1, 3).mean(axis=0)))
        expected_mask[hint.top:hint.top + hint.size, hint.left:hint.left + hint.size] = 255
    np.testing.assert_array_equal(result.mask, expected_mask)
    assert (result.image[result.mask == 0] == 0).all()
    last = result.hints[-1]
    assert tuple(result.image[last.top, last.left]) == last.rgb


def test_same_seed_same_hints_different_seed_different_hints():
    target = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    sampler = HINTS.create("gaussian-geometric")
    a, b = sampler(target, seed=5), sampler(target, seed=5)
    assert a.hints == b.hints
    np.testing.assert_array_equal(a.image, b.image)
    assert any(sampler(target, seed=s).hints != a.hints for s in range(6, 9))


def test_parameters_are_configurable_and_checked():
    sampler = HINTS.create("gaussian-geometric", p=1.0, min_size=3, max_size=3)
    hints = sampler(np.zeros((16, 16, 3), np.uint8), seed=0).hints
    assert len(hints) == 1 and hints[0].size == 3
    assert sampler.params["p"] == 1.0
    capped = HINTS.create("gaussian-geometric", p=0.01, max_hints=2)
    assert all(len(capped.sample(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(s))) <= 2 for s in range(20))
    with pytest.raises(CelbenchError, match="p must be"):
        HINTS.create("gaussian-geometric", p=0)


def test_ls_hints(capsys):
    assert main(["ls", "hints"]) == 0
    assert capsys.readouterr().out.startswith("gaussian-geometric\t")


def test_draws_are_those_of_the_numpy_formulation():
    # The sampler uses Python scalars for clipping, rounding and patch means; pinned against the numpy
    # formulation it replaced (np.clip, np.rint of the float mean), draw for draw, so datasets do not change.
    sampler = HINTS.create("gaussian-geometric", max_size=12)
    rng = np.random.default_rng(3)
    for seed in range(200):
        height, width = (int(v) for v in rng.integers(1, 90, 2))
        target = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        draws = np.random.default_rng(seed)
        expected = []
        for _ in range(int(draws.geometric(sampler.p))):
            centre_y, centre_x = draws.normal((height / 2, width / 2), (height / 4, width / 4))
            size = min(int(draws.integers(1, 13)), height, width)
            top = int(np.clip(round(centre_y - size / 2), 0, height - size))
            left = int(np.clip(round(centre_x - size / 2), 0, width - size))
            patch = target[top:top + size, left:left + size].reshape(-1, 3).astype(np.float64)
            expected.append((top, left, size, tuple(int(v) for v in np.rint(patch.mean(axis=0)))))
        got = sampler.sample(target, np.random.default_rng(seed))
        assert [(h.top, h.left, h.size, h.rgb) for h in got] == expected
