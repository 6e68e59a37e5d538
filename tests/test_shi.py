"""Shi et al. TVCG 2023 (``shi``, ``shi-nosim``): the distance attention layer against equations 3-5 written
out with explicit matrices, chunked attention, the ablation, the losses of equations 8-10, training."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from baselines.losses import ColorizationLoss
from baselines.model import build_model, model_preset
from baselines.models.shi import DistanceAttention, chunked_attention
from baselines.train import resolve_config, train
from baselines.datasets import ShapesPairs
from dataprep.errors import CelbenchError
from benchmark_toys import one_torch_thread
from test_baselines_models import make_batch as random_batch

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def make_batch(b=1, k=2, size=32, seed=0):
    """Random batch with every key shi reads (fields too) and a ground truth; see test_baselines_models."""
    return random_batch(b=b, k=k, size=size, seed=seed)


@pytest.mark.parametrize("chunk", [1, 7, 64, None])
def test_chunked_attention_equals_the_whole_softmax_matrix(chunk):
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 50, 4, generator=g), torch.randn(2, 3 * 50, 4, generator=g), torch.randn(2, 150, 4, generator=g)
    explicit = torch.softmax(q.double() @ k.double().transpose(1, 2), -1) @ v.double()  # (HW x K*HW) matrix
    got = chunked_attention(q, k, v, scale=1.0, chunk=chunk)
    torch.testing.assert_close(got.double(), explicit, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, chunked_attention(q, k, v, scale=1.0, chunk=None), rtol=1e-5, atol=1e-6)


def cell_means(x, stride):
    """(C, h, w) -> (C, ceil(h/stride), ceil(w/stride)): the mean of each stride x stride cell (cells cut
    by the border average the pixels they hold), by explicit loops."""
    c, h, w = x.shape
    rows, cols = -(-h // stride), -(-w // stride)
    out = torch.zeros(c, rows, cols, dtype=x.dtype)
    for r in range(rows):
        for q in range(cols):
            out[:, r, q] = x[:, r * stride:(r + 1) * stride, q * stride:(q + 1) * stride].mean((1, 2))
    return out


def distance_attention_by_hand(layer: DistanceAttention, f_d, f_dr, f_y):
    """Equations 3-5 with explicit per-reference similarity matrices M_i, one softmax over {M_i}, float64
    (with ``layer.stride`` > 1: matching on cell means, f_mat upsampled bilinearly)."""
    layer = layer.double()
    f_d, f_dr, f_y = f_d.double(), f_dr.double(), f_y.double()
    b, k, c, h, w = f_dr.shape
    stride = layer.stride
    hq, wq = -(-h // stride), -(-w // stride)
    out = torch.zeros(b, c, h, w, dtype=torch.float64)
    for s in range(b):
        masks_m, masks_n, f_my, sims, values = [], [], [], [], []
        for i in range(k):
            pair = torch.cat([f_dr[s, i], f_d[s]], 0)[None]  # f_{d_i} (.) f_d
            m_i = torch.sigmoid(layer.mask_m(pair))[0]  # equation 3
            masks_n.append(torch.sigmoid(layer.mask_n(pair))[0])  # equation 4
            f_my.append(f_y[s, i] * m_i)
            q = layer.query(cell_means(f_d[s], stride)[None])[0].reshape(-1, hq * wq).T  # (hw, C~)
            key = layer.key(cell_means(f_dr[s, i], stride)[None])[0].reshape(-1, hq * wq)  # (C~, hw)
            sims.append(q @ key)  # M_i = f_d . f_{d_i}^T
            values.append(layer.value(cell_means(f_my[-1], stride)[None])[0].reshape(-1, hq * wq))  # (C~, hw)
        matching = torch.softmax(torch.cat(sims, 1), 1)  # softmax over all K*hw reference positions
        f_c = torch.cat(values, 1)  # (C~, K*hw)
        f_mat = (f_c @ matching.T).reshape(1, -1, hq, wq)
        if stride > 1:
            f_mat = F.interpolate(f_mat, size=(h, w), mode="bilinear", align_corners=False)
        f_mat = layer.out(f_mat)[0]
        out[s] = sum((1 - n) * f_mat + fm * n for n, fm in zip(masks_n, f_my)) / k  # equation 5
    return out


@pytest.mark.parametrize("budget, stride", [(2 * 3 * 20 * 3, 1), (None, 1), (2 * 3 * 6 * 2, 2), (None, 2)])
def test_distance_attention_follows_equations_3_to_5(budget, stride):
    """stride 1 is the paper's layer (3-query chunks or the whole matrix); stride 2 matches cell means."""
    torch.manual_seed(0)
    layer = DistanceAttention(16, reduction=8, budget=budget, stride=stride)
    g = torch.Generator().manual_seed(1)
    f_d, f_dr, f_y = (torch.randn(2, 16, 4, 5, generator=g), torch.randn(2, 3, 16, 4, 5, generator=g),
                      torch.randn(2, 3, 16, 4, 5, generator=g))
    got = layer(f_d, f_dr, f_y)
    assert got.shape == (2, 16, 4, 5)
    torch.testing.assert_close(got.double(), distance_attention_by_hand(layer, f_d, f_dr, f_y), rtol=1e-5, atol=1e-5)


def test_attention_picks_the_matching_position_in_whichever_reference_holds_it():
    # One-hot keys: target position p matches position p of reference 1 only (reference 0 is far), so the
    # joint softmax over both references must carry reference 1's value there.
    hw = 6
    keys0, keys1 = -20 * torch.eye(hw), 20 * torch.eye(hw)
    values = torch.cat([torch.zeros(hw, 1), torch.arange(1.0, hw + 1)[:, None]])  # ref 0 values 0, ref 1 1..6
    out = chunked_attention(torch.eye(hw)[None], torch.cat([keys0, keys1])[None], values[None], chunk=4)
    torch.testing.assert_close(out[0, :, 0], torch.arange(1.0, hw + 1), atol=1e-3, rtol=0)


def test_ablation_has_no_distance_attention_and_ignores_reference_geometry():
    torch.manual_seed(0)
    full = build_model("shi", **model_preset("shi", "tiny")["model"]).eval()
    nosim = build_model("shi-nosim", **model_preset("shi-nosim", "tiny")["model"]).eval()
    assert not hasattr(nosim, "sim") and not hasattr(nosim, "encoder_distance") and nosim.config["use_sim"] is False
    batch = make_batch()
    other = dict(batch, reference_field=torch.rand_like(batch["reference_field"]))
    torch.testing.assert_close(nosim(batch), nosim(other))
    assert not torch.allclose(full(batch), full(other))
    with pytest.raises(CelbenchError, match="needs 'target_field'"):
        full({k: v for k, v in batch.items() if k != "target_field"})


def test_untrained_refinement_passes_the_transform_result_through_and_any_k_works():
    torch.manual_seed(0)
    model = build_model("shi", **model_preset("shi", "tiny")["model"]).eval()
    for k in (1, 2, 5):
        batch = make_batch(k=k, seed=k)
        sizes = {key: v[..., :32, :32] for key, v in batch.items()}
        transformed = torch.sigmoid(model.transform(sizes["target_sketch"], sizes["target_field"], sizes["reference_sketch"],
                                                    sizes["reference_field"], sizes["reference_colour"])["y_trans"])
        torch.testing.assert_close(model(batch), transformed)  # zero-initialised correction


def test_frames_not_divisible_by_8_are_padded_and_cropped():
    torch.manual_seed(0)
    model = build_model("shi", **model_preset("shi", "tiny")["model"])
    batch = make_batch(size=36)
    out = model.colorize(batch)
    assert out.shape == (1, 3, 36, 36)
    padded = {k: F.pad(v.flatten(0, -4), (0, 4, 0, 4), mode="replicate").reshape(*v.shape[:-2], 40, 40)
              for k, v in batch.items()}
    torch.testing.assert_close(out, model.colorize(padded)[..., :36, :36])


def test_latent_and_gan_losses_train_generator_and_discriminator_at_their_rates():
    torch.manual_seed(0)
    model = build_model("shi", **{**model_preset("shi", "tiny")["model"], "gan": True})
    groups = model.optimizer_groups(1e-4)
    assert [g["lr"] for g in groups] == [1e-4, pytest.approx(1e-5)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    batch = make_batch(b=2)
    model.discriminator.eval()  # no spectral-norm power iteration, so D is the same function in every call
    out = model(batch)
    loss, _ = ColorizationLoss(10.0, 0.0)(out, batch["target_colour"])
    auxiliary, parts = model.auxiliary_loss(batch["target_colour"])
    assert {"latent", "temporal", "gan_g", "gan_d"} <= set(parts)
    (loss + auxiliary).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused
    # the generator's adversarial term does not reach D: D's gradient is that of its own loss alone
    d_grads = {n: p.grad.clone() for n, p in model.discriminator.named_parameters()}
    model.zero_grad()
    sketch, fake = batch["target_sketch"], out.detach()
    real_logits, fake_logits = model.discriminator(sketch, batch["target_colour"]), model.discriminator(sketch, fake)
    (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
     + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))).backward()
    for n, p in model.discriminator.named_parameters():
        torch.testing.assert_close(d_grads[n], p.grad, rtol=1e-4, atol=1e-6)


def test_shi_trains_with_its_auxiliary_losses_logged(tmp_path):
    cfg = resolve_config("shi", "tiny", overrides={"epochs": 2, "val_fraction": 0.0, "log_every": 1,
                                                  "checkpoint_every": 0, "val_every": 0, "batch_size": 2})
    summary = train(cfg, ShapesPairs(n=4, size=16, refs=2), tmp_path / "run")
    assert summary["steps"] == 4
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert all(r["latent"] > 0 and r["loss"] > 10 * r["l1"] for r in train_rows)


def test_untrained_shi_warp_is_flow_warp_and_votes_on_components():
    from benchmark.models.flow_warp import FlowWarp
    from benchmark.models.vote import vote_batch

    torch.manual_seed(0)
    model = build_model("shi-warp", **model_preset("shi-warp", "tiny")["model"])
    batch = make_batch(k=2, size=36)  # padded to 40 inside; the prior is warped at 36
    warp = FlowWarp()(batch)
    torch.testing.assert_close(model.colorize(batch), warp)
    labels = torch.zeros(1, 36, 36, dtype=torch.int64)
    labels[:, 2:20, 3:30], labels[:, 22:34, 5:15] = 1, 2
    voted = model.colorize({**batch, "target_components": labels})
    torch.testing.assert_close(voted, vote_batch(warp, labels))
    assert "target_components" in model.requires and "reference_field" in model.requires


def test_warp_candidates_rank_the_references_by_agreement_with_the_target_lines():
    from baselines.models.shi import warp_candidates
    from benchmark.models.flow_warp import FlowWarp

    # Reference 0's lines are the target's shifted away; reference 1 is the target's drawing exactly.
    size = 48
    target = torch.ones(1, 1, size, size)
    target[..., 10:12, 5:40] = 0
    target[..., 30:32, 8:44] = 0
    shifted = torch.roll(target, 9, dims=-1)
    field = lambda s: 1 - s  # noqa: E731  (any smooth-enough guide; flow follows the lines)
    batch = {"reference_colour": torch.stack([torch.full((3, size, size), 0.2), torch.full((3, size, size), 0.8)])[None],
             "reference_sketch": torch.stack([shifted[0], target[0]])[None],
             "reference_field": torch.stack([field(shifted)[0], field(target)[0]])[None],
             "target_sketch": target, "target_field": field(target)}
    warper = FlowWarp()
    got = warp_candidates(batch, warper)
    assert got.shape == (1, 9, size, size)
    torch.testing.assert_close(got[:, :3], warper(batch), rtol=0, atol=0)  # the flow-warp prediction
    colours, sketches, costs = warper.warp_references(batch)
    # per pixel: channels 7 and 8 are the smallest and the largest of the two disagreements
    torch.testing.assert_close(got[:, 7], costs.min(1).values[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(got[:, 8], costs.max(1).values[:, 0], rtol=0, atol=0)
    on_line = target[0, 0] < 0.5
    assert (got[0, 0][on_line] == 0.8).float().mean() > 0.9  # the agreeing reference wins on its lines
    assert torch.all(got[0, 3][on_line & (got[0, 0] == 0.8)] == 0.2)  # ... and the other is runner-up
    ties = costs[0, 0, 0] == costs[0, 1, 0]
    assert torch.all(got[0, 0][ties] == colours[0, 0, 0][ties])  # ties: the first reference, as flow-warp
    best_sketch = torch.where(got[0, 7] == costs[0, 0, 0], sketches[0, 0, 0], sketches[0, 1, 0])
    torch.testing.assert_close(got[0, 6], best_sketch, rtol=0, atol=0)
    # one reference: the runner-up is the best again
    one = {key: (value[:, 1:] if key.startswith("reference") else value) for key, value in batch.items()}
    single = warp_candidates(one, warper)
    torch.testing.assert_close(single[:, 3:6], single[:, :3], rtol=0, atol=0)
    torch.testing.assert_close(single[:, 8], single[:, 7], rtol=0, atol=0)
    assert warp_candidates({**batch, "warp_candidates": single}, warper) is single


def test_shi_warp_training_items_get_whole_frame_candidates_then_the_crop():
    from baselines.models.shi import ShiWarp, warp_candidates
    from benchmark.models.flow_warp import FlowWarp

    data = ShapesPairs(n=3, size=40, refs=2, seed=2)
    torch.manual_seed(0)
    view = ShiWarp.training_view(data, {"train_crop": 24, "single_reference": 0.0}, seed=0, train=True)
    item = view[1]
    assert item["warp_candidates"].shape == (9, 24, 24) and item["target_colour"].shape == (3, 24, 24)
    whole = warp_candidates({k: v[None] for k, v in data[1].items()}, FlowWarp())[0]
    # the crop's candidates are a window of the whole frame's at the crop's position
    windows = whole.unfold(1, 24, 1).unfold(2, 24, 1)  # (9, 17, 17, 24, 24)
    target = data[1]["target_colour"].unfold(1, 24, 1).unfold(2, 24, 1)
    hits = [(r, c) for r in range(17) for c in range(17)
            if torch.equal(windows[:, r, c], item["warp_candidates"]) and torch.equal(target[:, r, c], item["target_colour"])]
    assert hits
    single = ShiWarp.training_view(data, {"single_reference": 1.0}, seed=0, train=True)[0]
    assert torch.equal(single["reference_colour"][0], single["reference_colour"][1])
    # the same reference twice: the runner-up is the best again (DIS threads may differ in the last bits)
    torch.testing.assert_close(single["warp_candidates"][3:6], single["warp_candidates"][:3], rtol=0, atol=0.02)
    assert ShiWarp.training_view(data, {"train_crop": 24}, seed=0, train=False) is data


def test_kref_clips_follow_shi_section_4_1():
    from baselines.datasets import kref_clips

    # 8-frame clips tile the shot; first and last are the references, the 6 between them targets
    assert kref_clips(17, 2, 8) == [((0, 7), t) for t in range(1, 7)] + [((8, 15), t) for t in range(9, 15)]
    assert kref_clips(8, 3, 8) == [((0, 4, 7), t) for t in (1, 2, 3, 5, 6)]  # the protocol's K = 3 positions
    assert kref_clips(7, 2, 8) == []


def test_frame_folders_give_kref_pairs_with_the_dividing_frames_as_references(tmp_path):
    import cv2
    import numpy as np

    from baselines.datasets import open_datasets

    shot = tmp_path / "shot"
    shot.mkdir()
    for index in range(9):  # frame i is a flat grey of level 20 * i with a black square (a line to extract)
        image = np.full((24, 24, 3), 20 * index + 10, np.uint8)
        cv2.rectangle(image, (6, 6), (17, 17), (0, 0, 0), 1)
        cv2.imwrite(str(shot / f"{index}.png"), image)
    data, _ = open_datasets(f"frames:root={tmp_path},size=16,pairs=kref,refs=2,window=8")
    assert len(data) == 6
    levels = [(round(float(item["reference_colour"][0, 0, 1, 1]) * 255), round(float(item["reference_colour"][1, 0, 1, 1]) * 255),
               round(float(item["target_colour"][0, 1, 1]) * 255)) for item in data]
    assert levels == [(10, 150, 20 * t + 10) for t in range(1, 7)]
    with pytest.raises(CelbenchError, match="pairs must be window or kref"):
        open_datasets(f"frames:root={tmp_path},pairs=every3")


@pytest.mark.parametrize("name", ["shi", "shi-warp"])
def test_bf16_autocast_training_path_runs_with_finite_losses(tmp_path, name):
    """The path CUDA takes by default (autocast bf16), here with CPU autocast; GAN on for shi."""
    extra = {"model_args.gan": True} if name == "shi" else {}
    cfg = resolve_config(name, "tiny", overrides={"epochs": 1, "val_fraction": 0.0, "log_every": 1, "checkpoint_every": 0,
                                                 "val_every": 0, "batch_size": 2, "amp": "bf16", **extra})
    summary = train(cfg, ShapesPairs(n=2, size=16, refs=2), tmp_path / "run")
    assert summary["amp_dtype"] == "bfloat16" and summary["steps"] == 1
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows if r["split"] == "train")
