"""``warp-refine`` (baselines.models.warp_refine) and the warped reference sketch it reads
(``FlowWarp.warp_with_sketch``, ``baselines.recipe.warp_prior_with_sketch``, ``WarpPriorDataset``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from baselines.datasets import ListDataset
from baselines.model import build_model, model_preset
from baselines.recipe import augment, warp_prior_with_sketch
from benchmark.models.flow_warp import FlowWarp
from benchmark.models.vote import vote_batch

from benchmark_toys import one_torch_thread
from test_recipe import toy_batch

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def test_warped_sketch_follows_the_same_flow_as_the_colour():
    batch = toy_batch(0, 3)
    colour, sketch = FlowWarp().warp_with_sketch(batch)
    torch.testing.assert_close(colour, FlowWarp()(batch), rtol=0, atol=0)
    assert sketch.shape == (1, 1, 64, 64) and sketch.dtype == torch.float32
    # independent reference: DIS flow on the fields (as flow-warp computes it), sketch remapped by cv2 directly
    ref_field, tgt_field = batch["reference_field"][0, 0, 0].numpy(), batch["target_field"][0, 0].numpy()
    low, high = min(ref_field.min(), tgt_field.min()), max(ref_field.max(), tgt_field.max())
    to8 = [np.ascontiguousarray(((f - low) * 255 / (high - low)).round().astype(np.uint8))
           for f in (tgt_field, ref_field)]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(*to8, None)
    gx, gy = np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32))
    expected = cv2.remap(batch["reference_sketch"][0, 0, 0].numpy(), gx + flow[..., 0], gy + flow[..., 1],
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(sketch[0, 0].numpy(), expected, atol=1e-6)
    # the warp moved the reference's lines towards the target's
    target = batch["target_sketch"][0, 0]
    assert (sketch[0, 0] - target).abs().mean() < (batch["reference_sketch"][0, 0, 0] - target).abs().mean()


def test_warped_sketch_comes_from_the_reference_each_pixel_took():
    batch = toy_batch(0, 3)
    grey = batch["reference_colour"] * 0 + 0.123
    blank = {**batch, "reference_colour": torch.cat([batch["reference_colour"], grey], 1),
             "reference_sketch": torch.cat([batch["reference_sketch"], torch.ones_like(batch["reference_sketch"])], 1),
             "reference_field": torch.cat([batch["reference_field"], batch["reference_field"] * 0 + 1], 1)}
    colour, sketch = FlowWarp().warp_with_sketch(blank)
    single_colour, single_sketch = FlowWarp().warp_with_sketch(batch)
    took_first = (colour == single_colour).all(1, keepdim=True)   # pixels that picked the real reference
    assert took_first.float().mean() > 0.5
    torch.testing.assert_close(sketch[took_first], single_sketch[took_first])
    took_second = (colour == 0.123).all(1, keepdim=True)
    assert torch.equal(took_first | took_second, torch.ones_like(took_first))
    assert torch.all(sketch[~took_first] == 1)  # the blank reference's sketch is all paper


def test_prior_and_sketch_are_read_from_the_batch_and_added_to_training_items():
    batch = toy_batch()
    given = {**batch, "warp_prior": torch.rand(1, 3, 64, 64), "warp_sketch": torch.rand(1, 1, 64, 64)}
    prior, sketch = warp_prior_with_sketch(given)
    assert prior is given["warp_prior"] and sketch is given["warp_sketch"]
    item = {k: v[0] for k, v in batch.items()}
    torch.manual_seed(0)
    full = augment(ListDataset([item]), warp=True)[0]
    expected = FlowWarp().warp_with_sketch(batch)
    torch.testing.assert_close(full["warp_prior"], expected[0][0])
    torch.testing.assert_close(full["warp_sketch"], expected[1][0])
    cropped = augment(ListDataset([item]), crop=16, warp=True)[0]
    assert cropped["warp_sketch"].shape == (1, 16, 16)


def test_untrained_warp_refine_is_flow_warp_and_votes_when_asked():
    batch = toy_batch()
    model = build_model("warp-refine", **model_preset("warp-refine", "tiny")["model"]).eval()
    floor = FlowWarp()(batch)
    torch.testing.assert_close(model(batch), floor, rtol=0, atol=0)
    voting = build_model("warp-refine", **{**model_preset("warp-refine", "tiny")["model"], "vote": True}).eval()
    voting.load_state_dict(model.state_dict())
    torch.testing.assert_close(voting(batch), vote_batch(floor, batch["target_components"]), rtol=0, atol=0)
    # frame sizes not divisible by 4 are padded and cropped back; without fields the flow follows the sketches
    odd = {k: v[..., :61, :58] for k, v in batch.items()}
    no_fields = {k: v for k, v in odd.items() if not k.endswith("field")}
    assert model(odd).shape == model(no_fields).shape == (1, 3, 61, 58)
    torch.testing.assert_close(model(no_fields), FlowWarp(guide="sketch")(no_fields), rtol=0, atol=0)


def test_warp_refine_learns_to_draw_a_line_the_warp_missed():
    """A target line the warp did not draw (the warp prior has paper colour there): a few Adam steps on the
    cpu preset bring the output closer to the target there than the warp is."""
    torch.manual_seed(0)
    batch = toy_batch(0, 0, size=32)
    target = batch["target_colour"].clone()
    line = batch["target_sketch"] < 0.5
    prior = target.clone()
    prior[line.expand_as(prior)] = 0.9  # the warp erased the target's lines
    batch = {**batch, "warp_prior": prior, "warp_sketch": torch.ones_like(batch["target_sketch"])}
    model = build_model("warp-refine", **model_preset("warp-refine", "cpu")["model"]).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss = (model(batch) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        out = model(batch)
    mask = line.expand_as(target)
    assert (out - target).abs()[mask].mean() < 0.5 * (prior - target).abs()[mask].mean()
