"""yuan (Yuan & Simo-Serra 2021): attention block maths, flood prior at initialisation, 0 hints, training view,
multi-scale PatchGAN, scoring with region voting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from baselines.datasets import ShapesPairs
from baselines.model import build_model, model_preset
from baselines.models.yuan import (CSABlock, HintTrainingView, MultiScalePatchGAN, adversarial_losses, hinted_regions,
                                  sketch_regions)
from baselines.train import resolve_config, train
from benchmark.model import load_model
from benchmark.models.hint_flood import NEUTRAL_GREY, flood_hints
from benchmark_toys import one_torch_thread
from dataprep.hints import HINTS, hint_channels

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def frame_batch(size: int = 32, n_hints: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """One frame of four quadrant regions split by a cross of lines, ``n_hints`` 2x2 hints."""
    labels = np.zeros((size, size), np.int64)
    h = size // 2
    labels[:h - 1, :h - 1], labels[:h - 1, h + 1:], labels[h + 1:, :h - 1], labels[h + 1:, h + 1:] = 1, 2, 3, 4
    sketch = (labels > 0).astype(np.float32)
    rng = np.random.default_rng(seed)
    hints = np.zeros((4, size, size), np.float32)
    for y, x in [(2, 2), (2, h + 3), (h + 3, 2)][:n_hints]:
        hints[:3, y:y + 2, x:x + 2] = rng.random(3)[:, None, None]
        hints[3, y:y + 2, x:x + 2] = 1
    return {"target_sketch": torch.from_numpy(sketch)[None, None], "hints": torch.from_numpy(hints)[None],
            "target_components": torch.from_numpy(labels)[None]}


def test_attention_block_is_x_plus_processed_times_spatial_map():
    torch.manual_seed(0)
    block = CSABlock(6, 3)
    x, hint = torch.randn(2, 6, 5, 7), torch.randn(2, 3, 5, 7)
    processed = block.body(x)
    attention = block.attention(torch.cat([processed, hint], dim=1))
    assert attention.shape == (2, 1, 5, 7) and bool(((attention > 0) & (attention < 1)).all())
    torch.testing.assert_close(block(x, hint), x + processed * attention)
    # the hint features steer the map: other hints, other output
    assert not torch.allclose(block(x, hint), block(x, torch.randn(2, 3, 5, 7)))


def test_untrained_flood_prior_network_starts_at_the_floor_and_handles_zero_hints():
    torch.manual_seed(0)
    model = build_model("yuan", **model_preset("yuan", "tiny")["model"]).eval()
    batch = frame_batch()
    with torch.no_grad():
        out = model(batch)
    flood = flood_hints(batch["hints"][0].numpy(), batch["target_components"][0].numpy(), batch["target_sketch"][0, 0].numpy())
    assert out.shape == (1, 3, 32, 32)
    assert torch.equal(out[0], torch.from_numpy(flood))  # the recipe's zero-initialised residual: the floor exactly
    zero = dict(batch, hints=torch.zeros_like(batch["hints"]))
    with torch.no_grad():
        flat = model(zero)
    assert torch.isfinite(flat).all()
    regions = batch["target_components"][0] > 0
    assert torch.all(flat[0][:, regions] == NEUTRAL_GREY)
    # without hints nor labels (bench speed's batches): the sketch's regions stand in, no error
    with torch.no_grad():
        assert torch.isfinite(model({"target_sketch": batch["target_sketch"]})).all()


def test_paper_preset_is_the_paper_network_and_pads_odd_sizes():
    preset = model_preset("yuan", "paper")
    assert preset["model"]["blocks"] == 8 and preset["model"]["prior"] == "none"
    assert preset["train"]["lr"] == 2e-4 and preset["train"]["betas"] == [0.5, 0.999]
    torch.manual_seed(0)
    small = build_model("yuan", widths=[4, 4, 8, 8, 8], blocks=2, hint_channels=4, prior="none")
    out = small(frame_batch(size=36))
    assert out.shape == (1, 3, 36, 36) and bool(((out >= 0) & (out <= 1)).all())


def test_training_view_crops_flips_and_draws_paper_hints():
    source = ShapesPairs(n=3, size=40, seed=2)
    view = HintTrainingView(source, stored_hint_fraction=0.0, seed=0, train=True)
    torch.manual_seed(0)
    item = view[1]
    assert set(item) == {"target_colour", "target_sketch", "target_components", "hints"}
    assert item["target_colour"].shape == (3, 40, 40) and item["hints"].shape == (4, 40, 40)
    assert item["target_components"].dtype == torch.int64
    mask = item["hints"][3] > 0
    assert mask.any()  # the paper's geometric count is at least 1
    # the hints are the paper's simulation (HINTS gaussian-geometric) on the returned crop, with the draw's seed
    torch.manual_seed(0)
    flip, _, seed = torch.randint(0, 2 ** 62, (3,)).tolist()
    target = (item["target_colour"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    patches = HINTS.create("gaussian-geometric").draw(target, np.random.default_rng(seed))
    assert np.array_equal(item["hints"].numpy(), hint_channels(patches, 40, 40))
    unflipped = source[1]["target_colour"]
    assert torch.equal(item["target_colour"], unflipped.flip(-1) if flip % 2 else unflipped)
    torch.manual_seed(0)
    assert torch.equal(view[1]["hints"], item["hints"])  # the torch generator drives every draw
    validation = HintTrainingView(source, stored_hint_fraction=0.0, seed=0, train=False)
    assert validation[2]["target_colour"].shape == (3, 40, 40)
    assert torch.equal(validation[2]["hints"], validation[2]["hints"])  # fixed validation hints
    labels = sketch_regions(source[0]["target_sketch"][0].numpy())
    assert labels.max() >= 2 and np.all(labels[source[0]["target_sketch"][0].numpy() < 0.5] == 0)


def test_bench_train_runs_yuan_with_its_hint_view(tmp_path):
    config = resolve_config("yuan", "tiny", overrides={"max_steps": 2, "val_fraction": 0.25, "device": "cpu",
                                                       "crop": 24})
    summary = train(config, ShapesPairs(n=8, size=32), tmp_path / "run", data_spec="shapes")
    assert summary["steps"] == 2 and (tmp_path / "run" / "model.safetensors").is_file()
    colorizer = load_model("yuan", str(tmp_path / "run" / "model.safetensors"))
    batch = frame_batch()
    out = colorizer(batch)
    # region voting: every region of the target is one flat colour
    for label in range(1, 5):
        region = out[0][:, batch["target_components"][0] == label]
        assert torch.equal(region.min(1).values, region.max(1).values)
    assert "target_components" not in colorizer.requires  # scoring runs without labels too (no vote then)


def test_multiscale_patchgan_and_its_losses():
    torch.manual_seed(0)
    discriminator = MultiScalePatchGAN(width=4)
    sketch, real = torch.rand(2, 1, 128, 128), torch.rand(2, 3, 128, 128)
    fake = torch.rand(2, 3, 128, 128, requires_grad=True)
    outputs = discriminator(sketch, real)
    assert len(outputs) == 3
    assert [tuple(o[-1].shape[-2:]) for o in outputs] == [(14, 14), (6, 6), (2, 2)]  # 70x70 patches at 3 scales
    d_loss, g_loss, fm_loss = adversarial_losses(discriminator, sketch, real, fake)
    assert all(torch.isfinite(v.detach()) for v in (d_loss, g_loss, fm_loss)) and float(fm_loss.detach()) > 0
    (g_loss + fm_loss).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    # identical real and fake images: no feature-matching loss
    assert float(adversarial_losses(discriminator, sketch, real, real.clone())[2]) == 0.0


def test_gan_option_trains_the_discriminator_and_resumes_it_exactly(tmp_path):
    data = ShapesPairs(n=6, size=48, seed=1)
    settings = {"epochs": 2, "val_fraction": 0.0, "checkpoint_every": 2, "val_every": 0, "log_every": 1,
                "device": "cpu", "model_args.gan": True, "model_args.discriminator_width": 4,
                "model_args.discriminator_scales": 2}
    train(resolve_config("yuan", "tiny", overrides=settings), data, tmp_path / "full")
    train(resolve_config("yuan", "tiny", overrides={**settings, "max_steps": 4}), data, tmp_path / "split")
    assert train(resolve_config("yuan", "tiny", overrides=settings), data, tmp_path / "split", resume=True)["steps"] == 6
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    discriminator = [k for k in full if ".discriminator." in k]
    assert discriminator and full.keys() == split.keys()
    assert all(torch.equal(full[k], split[k]) for k in full)  # generator and discriminator, bit for bit
    a = load_file(str(tmp_path / "full/checkpoints/step_00000006.safetensors"))
    b = load_file(str(tmp_path / "split/checkpoints/step_00000006.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("optimizer."))
    # the discriminator does train (its weights move between checkpoints), and its terms are logged
    two = load_file(str(tmp_path / "full/checkpoints/step_00000002.safetensors"))
    assert discriminator[0] in two and any(not torch.equal(two[k], a[k]) for k in discriminator)
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["gan_d"]) and np.isfinite(r["feature_matching"]) for r in rows if r["split"] == "train")


def test_generator_terms_do_not_train_the_discriminator():
    torch.manual_seed(0)
    discriminator = MultiScalePatchGAN(width=4, scales=2)
    sketch, real = torch.rand(1, 1, 64, 64), torch.rand(1, 3, 64, 64)
    fake = torch.rand(1, 3, 64, 64, requires_grad=True)
    _, g_loss, fm_loss = adversarial_losses(discriminator, sketch, real, fake)
    (g_loss + fm_loss).backward()
    assert all(p.grad is None for p in discriminator.parameters()) and fake.grad.abs().sum() > 0
    d_loss, _, _ = adversarial_losses(discriminator, sketch, real, fake)
    fake.grad = None
    d_loss.backward()
    assert fake.grad is None and all(p.grad is not None for p in discriminator.parameters())


def test_the_gate_starts_nearly_closed_in_regions_that_hold_a_hint():
    batch = frame_batch(n_hints=3)  # hints in quadrants 1, 2, 3; quadrant 4 has none
    labels = batch["target_components"][0].numpy()
    hinted = hinted_regions(batch["hints"][0].numpy(), labels)
    assert np.array_equal(hinted, np.isin(labels, [1, 2, 3]).astype(np.float32))
    assert hinted_regions(np.zeros((4, 32, 32), np.float32), labels).sum() == 0
    torch.manual_seed(0)
    model = build_model("yuan", **model_preset("yuan", "tiny")["model"]).eval()
    features = {}
    model.head.register_forward_hook(lambda module, args, out: features.update(x=args[0]))
    with torch.no_grad():
        model(batch)
        gate = torch.sigmoid(model.head.gate(features["x"]))[0, 0].numpy()
    inner = np.zeros_like(hinted, bool)
    inner[2:-2, 2:-2] = True  # away from the padded border of the 3x3 gate convolution
    closed, open_ = gate[(hinted == 1) & inner], gate[(labels == 4) & inner]
    assert closed.max() < open_.min() and closed.mean() < 0.1 < open_.mean()
