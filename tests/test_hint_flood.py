"""hint-flood: regions take the colour of their hints, else of the nearest hint; hand-built frames."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.model import load_model
from benchmark.models.hint_flood import NEUTRAL_GREY, flood_hints

RED, BLUE, GREEN = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)


def three_columns() -> tuple[np.ndarray, np.ndarray]:
    """12 x 20 frame: regions 1 (columns 0-4), 2 (6-12), 3 (14-19); line pixels at columns 5 and 13."""
    labels = np.zeros((12, 20), np.int64)
    labels[:, :5], labels[:, 6:13], labels[:, 14:] = 1, 2, 3
    sketch = np.where(labels > 0, 1.0, 0.2).astype(np.float32)
    return labels, sketch


def hints_at(shape: tuple[int, int], *patches: tuple[int, int, int, tuple[float, float, float]]) -> np.ndarray:
    hints = np.zeros((4, *shape), np.float32)
    for top, left, size, rgb in patches:
        hints[:3, top:top + size, left:left + size] = np.asarray(rgb, np.float32)[:, None, None]
        hints[3, top:top + size, left:left + size] = 1
    return hints


def test_each_region_takes_its_hint_and_lines_stay_as_drawn():
    labels, sketch = three_columns()
    out = flood_hints(hints_at(labels.shape, (2, 1, 2, RED), (5, 8, 3, BLUE), (9, 15, 1, GREEN)), labels, sketch)
    assert out.shape == (3, 12, 20) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, labels == 1], np.repeat(np.array(RED, np.float32)[:, None], 60, axis=1))
    assert np.all(out[:, labels == 2] == np.array(BLUE, np.float32)[:, None])
    assert np.all(out[:, labels == 3] == np.array(GREEN, np.float32)[:, None])
    assert np.all(out[:, labels == 0] == 0.2)  # the sketch's grey on line pixels


def test_region_without_hint_takes_the_nearest_hint():
    labels, sketch = three_columns()
    # region 2 (columns 6-12) has no hint: red at column 0 is 6 px from it, blue at column 17 is 5 px away
    out = flood_hints(hints_at(labels.shape, (0, 0, 1, RED), (0, 17, 1, BLUE)), labels, sketch)
    assert np.all(out[:, labels == 2] == np.array(BLUE, np.float32)[:, None])
    assert np.all(out[:, labels == 1] == np.array(RED, np.float32)[:, None])
    # move the red hint next to region 2: now it is the nearest (1 px from column 6 vs 5 px)
    out = flood_hints(hints_at(labels.shape, (0, 4, 1, RED), (0, 17, 1, BLUE)), labels, sketch)
    assert np.all(out[:, labels == 2] == np.array(RED, np.float32)[:, None])


def test_several_hints_in_one_region_vote_by_median():
    labels, sketch = three_columns()
    # region 1: 4 red pixels (2x2) and 1 green pixel: the per-channel median is red
    out = flood_hints(hints_at(labels.shape, (0, 0, 2, RED), (8, 3, 1, GREEN)), labels, sketch)
    assert np.all(out[:, labels == 1] == np.array(RED, np.float32)[:, None])


def test_no_hint_gives_flat_neutral_regions_and_no_regions_gives_the_sketch():
    labels, sketch = three_columns()
    out = flood_hints(np.zeros((4, 12, 20), np.float32), labels, sketch)
    assert np.isfinite(out).all() and np.all(out[:, labels > 0] == NEUTRAL_GREY)
    assert np.all(out[:, labels == 0] == 0.2)
    lines_only = flood_hints(hints_at(labels.shape, (0, 0, 1, RED)), np.zeros_like(labels), sketch)
    assert np.array_equal(lines_only, np.repeat(sketch[None], 3, axis=0))


def test_registered_model_runs_on_a_batch():
    labels, sketch = three_columns()
    model = load_model("hint-flood")
    assert set(model.requires) == {"hints", "target_components", "target_sketch"}
    hints = hints_at(labels.shape, (2, 1, 2, RED), (5, 8, 3, BLUE))
    batch = {"hints": torch.from_numpy(np.stack([hints, np.zeros_like(hints)])),
             "target_components": torch.from_numpy(np.stack([labels, labels])),
             "target_sketch": torch.from_numpy(np.stack([sketch, sketch]))[:, None]}
    out = model(batch)
    assert out.shape == (2, 3, 12, 20) and out.dtype == torch.float32
    np.testing.assert_array_equal(out[0].numpy(), flood_hints(hints, labels, sketch))
    assert torch.all(out[1][:, torch.from_numpy(labels > 0)] == NEUTRAL_GREY)
