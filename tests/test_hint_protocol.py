"""The hints protocols draw through dataprep.hints.HINTS: hints@1 exactly as it always did, hints@2 by budget."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import torch

from benchmark.evaluate import FrameLoader, build_batch
from benchmark.protocol import PROTOCOL_DIR, HintSpec, draw_hints, load_protocol
from benchmark.source import Frame, MemorySource, SampleSpec, Shot
from dataprep.errors import CelbenchError
from dataprep.hints import HINTS, hint_channels


def hints_v1_reference(colour: np.ndarray, seed: int, sample_id: str, geometric_p: float = 0.125,
                       max_patch: int = 8, location_sigma: float = 0.25, min_points: int = 1) -> np.ndarray:
    """The function hints@1 was scored with before the protocol drew through HINTS (copied verbatim):
    (3, H, W) float32 colour in [0, 1] -> (4, H, W) float32 hints + mask."""
    _, height, width = colour.shape
    rng = np.random.default_rng([seed, zlib.crc32(sample_id.encode())])
    hints = np.zeros((4, height, width), dtype=np.float32)
    count = max(min_points, int(rng.geometric(geometric_p)))
    for _ in range(count):
        cy = int(np.clip(rng.normal(height / 2, location_sigma * height), 0, height - 1))
        cx = int(np.clip(rng.normal(width / 2, location_sigma * width), 0, width - 1))
        size = int(rng.integers(1, max_patch + 1))
        y0, x0 = max(0, cy - size // 2), max(0, cx - size // 2)
        y1, x1 = min(height, y0 + size), min(width, x0 + size)
        hints[:3, y0:y1, x0:x1] = colour[:, y0:y1, x0:x1].mean(axis=(1, 2))[:, None, None]
        hints[3, y0:y1, x0:x1] = 1.0
    return hints


def test_hints_v1_draws_are_bit_identical_to_before():
    protocol = load_protocol("hints@1")
    assert protocol.hints == HintSpec("gaussian-geometric-clip",
                                      {"p": 0.125, "max_size": 8, "sigma_fraction": 0.25, "min_count": 1}, 0)
    sampler = protocol.hints.sampler()
    rng = np.random.default_rng(0)
    for i in range(60):
        height, width = (int(v) for v in rng.integers(5, 40, 2))
        colour_u8 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        # as evaluate.prepare_frame gives it: uint8 / 255 in float32, (3, H, W) contiguous
        colour = np.ascontiguousarray((colour_u8.astype(np.float32) / 255.0).transpose(2, 0, 1))
        sample = SampleSpec(f"shot{i}/{i % 7}", (), f"frame{i}", {})
        got = draw_hints(protocol.hints, sample, colour_u8, sampler)
        assert np.array_equal(got, hints_v1_reference(colour, 0, sample.sample_id)), i


def _source(n_frames: int = 6, size: int = 32) -> MemorySource:
    rng = np.random.default_rng(3)
    frames = {f"f{i}": Frame(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), np.full((size, size), 255, np.uint8),
                             np.zeros((size, size), np.float32), np.ones((size, size), np.uint16))
              for i in range(n_frames)}
    return MemorySource({"test": [Shot("s", tuple(frames))]}, frames)


def test_hints_v2_gives_each_target_every_budget_with_nested_hints():
    protocol = load_protocol("hints@2")
    assert protocol.bucket == "hints" and protocol.hints.name == "gaussian-geometric"
    source = _source()
    samples = protocol.select(source, "test")
    budgets = [0, 1, 2, 4, 8, 16, 32]
    assert [s.attributes["hints"] for s in samples[:7]] == budgets
    assert len(samples) == 4 * len(budgets) and len({s.sample_id for s in samples}) == len(samples)
    inputs, truth, _ = build_batch(samples[:7], FrameLoader(source, protocol.resolution), protocol)
    hints = inputs["hints"]
    assert hints.shape == (7, 4, 256, 256)
    assert hints[0].abs().sum() == 0  # budget 0: no hint at all
    target_u8 = (truth[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    sampler = HINTS.create("gaussian-geometric")
    for row, budget in enumerate(budgets):
        patches = sampler.draw(target_u8, [0, zlib.crc32(samples[row].target_id.encode())], budget)
        assert len(patches) == budget
        assert np.array_equal(hints[row].numpy(), hint_channels(patches, 256, 256))
        # each hint colour is the rounded mean of the target under its patch (recomputed here)
        for patch in patches:
            block = target_u8[patch.top:patch.top + patch.size, patch.left:patch.left + patch.size]
            assert patch.rgb == tuple(int(v) for v in np.rint(block.reshape(-1, 3).mean(0)))
    # nested: budget 4's hint pixels are a subset of budget 8's, which are a subset of budget 32's
    masks = hints[:, 3] > 0
    assert bool((masks[3] <= masks[4]).all() and (masks[4] <= masks[6]).all())
    assert int(masks[1].sum()) >= 1 and int(masks[6].sum()) > int(masks[3].sum())


def test_hint_spec_rejects_unknown_keys_and_samplers(tmp_path):
    with pytest.raises(ValueError):
        HintSpec.parse({"geometric_p": 0.1, "colour": "red"})
    data = json.loads((PROTOCOL_DIR / "hints@2.json").read_text())
    data["hints"]["name"] = "gausian-geometric"
    bad = tmp_path / "bad@1.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CelbenchError, match="gaussian-geometric"):
        load_protocol(str(bad))
