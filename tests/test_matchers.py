"""match-hand and match-graph on hand-built frame pairs whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.model import load_model
from benchmark.models.matchers import HandMatcher, adjacency

from benchmark_toys import one_torch_thread

single_thread = pytest.fixture(autouse=True)(one_torch_thread)

COLOURS = {1: (240, 240, 240), 2: (200, 40, 40), 3: (40, 90, 200), 4: (250, 200, 30)}


def scene(shift: int, with_star: bool) -> tuple[np.ndarray, np.ndarray]:
    """48 x 64 frame: background (1), a box (2) and a bar (3) moved right by ``shift``; optionally a new
    small square (4, a colour absent from the reference). 1-px black lines; labels 0 on lines."""
    labels = np.ones((48, 64), np.int64)
    labels[8:30, 6 + shift:26 + shift] = 2
    labels[34:44, 30 + shift:60] = 3
    if with_star:
        labels[6:16, 40:50] = 4
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
