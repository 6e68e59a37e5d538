"""Shipped weights (and the paper networks that have none), the untrained escape hatch, CMFT section 4.1 pair sampling, frame-folder and joined
data sources, the wall-time budget and the interval evaluation's PSNR."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open
from skimage.metrics import peak_signal_noise_ratio

from baselines import checkpoint as ckpt
from baselines.datasets import open_datasets, square_crop, synth_pairs, window_pairs
from baselines.model import build_model, load_trained, model_preset
from baselines.models.cmft import load_cmft, load_cmft_nocmft
from baselines.pretrained import FOLDER, NOT_SHIPPED, shipped_weights
from baselines.train import resolve_config, train
from dataprep.errors import CelbenchError
from benchmark_toys import one_torch_thread


single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def batch(size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"reference_colour": torch.rand(1, 1, 3, size, size, generator=g),
            "reference_sketch": (torch.rand(1, 1, 1, size, size, generator=g) > 0.1).float(),
            "target_sketch": (torch.rand(1, 1, size, size, generator=g) > 0.1).float()}


@pytest.mark.parametrize("name, loader", [("cmft", load_cmft), ("cmft-nocmft", load_cmft_nocmft),
                                          ("shi", lambda w: load_trained("shi", w)),
                                          ("shi-nosim", lambda w: load_trained("shi-nosim", w))])
def test_paper_networks_ship_no_weights_and_say_what_to_do(name, loader, tmp_path, capsys):
    # CPU-trained paper-size weights scored below copy-reference on real anime: none are bundled, and asking
    # for them says so in one line, names the model and points to training, --weights and the recipe models.
    assert not (FOLDER / f"{name}.safetensors").exists() and name in NOT_SHIPPED
    with pytest.raises(CelbenchError, match=f"^{name}: no bundled weights: .*copy-reference.*--weights FILE"):
        loader(None)
    from benchmark.cli import main as bench_main

    assert bench_main(["speed", "--model", name, "--size", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}: no bundled weights" in err and "warp-refine" in err
    assert "Traceback" not in err
    # the network itself stays available: untrained, or from a file bench train wrote
    untrained = loader("none")
    if name.startswith("cmft"):  # shi's batch needs distance fields and K references: forwarded in test_shi.py
        out = untrained(batch())
        assert out.shape == (1, 3, 48, 48) and torch.isfinite(out).all()
    model = build_model(name, **model_preset(name, "tiny")["model"])
    ckpt.save_model_file(tmp_path / "m.safetensors", model, name, model.config)
    assert loader(str(tmp_path / "m.safetensors")).weights_sha256 == hashlib.sha256(
        (tmp_path / "m.safetensors").read_bytes()).hexdigest()


def test_a_file_of_the_other_model_is_refused(tmp_path):
    model = build_model("cmft-nocmft", **model_preset("cmft-nocmft", "tiny")["model"])
    ckpt.save_model_file(tmp_path / "m.safetensors", model, "cmft-nocmft", model.config)
    with pytest.raises(CelbenchError, match="holds a cmft-nocmft network, not cmft"):
        load_cmft(str(tmp_path / "m.safetensors"))


def test_window_pairs_follow_cmft_sampling_and_scale_to_short_shots():
    # section 4.1: width 40, stride 5, first and last frame of each window
    assert window_pairs(50) == [(0, 39), (5, 44), (10, 49)]
    assert window_pairs(44) == [(0, 39)]
    assert window_pairs(12) == [(0, 11)]  # shorter than the window: the whole shot
    assert window_pairs(10, window=4, stride=3) == [(0, 3), (3, 6), (6, 9)]
    assert window_pairs(1) == []


def test_synth_window_pairs_are_frames_of_one_shot_with_xdog_sketches():
    from dataprep.sketch.extractor import EXTRACTORS
    from dataprep.synth import SynthClip, SynthConfig

    data = synth_pairs(n=3, size=32, seed=7, pairs="window", window=5, stride=2, sketch="xdog", shots=1,
                       min_shot=9, max_shot=9)
    frames = list(SynthClip(SynthConfig(width=32, height=32, seed=7, shots=1, shot_length=(9, 9), fade=False,
                                        flash=False)).frames())
    xdog = EXTRACTORS.create("xdog")
    for item, (a, b) in zip(data, [(0, 4), (2, 6), (4, 8)]):
        np.testing.assert_array_equal(item["reference_colour"][0].permute(1, 2, 0).numpy(),
                                      frames[a].image.astype(np.float32) / 255)
        np.testing.assert_array_equal(item["target_colour"].permute(1, 2, 0).numpy(),
                                      frames[b].image.astype(np.float32) / 255)
        np.testing.assert_array_equal(item["target_sketch"][0].numpy(), xdog(frames[b].image).astype(np.float32) / 255)
    with pytest.raises(CelbenchError, match="pairs must be every3, window or kref"):
        synth_pairs(n=1, pairs="random")


def test_frame_folders_give_window_pairs_and_join_with_plus(tmp_path):
    rng = np.random.default_rng(0)
    for shot, count in (("a", 6), ("b", 3)):
        (tmp_path / shot).mkdir()
        for index in range(count):
            cv2.imwrite(str(tmp_path / shot / f"{index}.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    data, val = open_datasets(f"frames:root={tmp_path},size=16,window=3,stride=2")
    assert val is None and len(data) == 2 + 1  # a: (0,2),(2,4); b: (0,2)
    frame = cv2.cvtColor(cv2.imread(str(tmp_path / "a" / "4.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(data[1]["target_colour"].permute(1, 2, 0).numpy(),
                                  square_crop(frame, 16).astype(np.float32) / 255)
    assert data[0]["target_colour"].shape == (3, 16, 16)
    joined, _ = open_datasets(f"frames:root={tmp_path},size=16,window=3,stride=2+shapes:n=4,size=16")
    assert len(joined) == 3 + 4
    with pytest.raises(CelbenchError, match="no such frame folder"):
        open_datasets(f"frames:root={tmp_path / 'missing'}")


def test_square_crop_keeps_aspect_and_centres():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255  # the central square
    np.testing.assert_array_equal(square_crop(image, 20), np.full((20, 20, 3), 255, np.uint8))


def test_max_seconds_budget_stops_training_with_a_checkpoint(tmp_path):
    from baselines.datasets import ShapesPairs

    cfg = resolve_config("cmft", "tiny", overrides={"val_every": 0, "epochs": 50, "max_seconds": 0.0,
                                                    "model_args.widths": [8, 8, 4, 4]})
    summary = train(cfg, ShapesPairs(n=4, size=16), tmp_path / "run")
    assert summary["steps"] == 1  # the budget is checked after every step
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_interval_eval_psnr_matches_scikit_image():
    from baselines.interval_eval import CAP_DB, score

    rng = np.random.default_rng(1)
    still = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    frames = [still, still, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)]
    grey = {"grey": lambda b: torch.full((1, 3, 16, 16), 0.5)}
    result = score([frames], [1, 2], grey, start_step=1)
    assert result[1]["copy-reference"]["all"] == CAP_DB  # held drawing: copying is exact
    assert result[1]["copy-reference"]["moving_pairs"] == 0
    expected = peak_signal_noise_ratio(frames[2], still, data_range=255)
    assert result[2]["copy-reference"]["all"] == pytest.approx(expected, rel=1e-9)
    expected_grey = peak_signal_noise_ratio(frames[2], np.full_like(still, 128), data_range=255)
    assert result[2]["grey"]["all"] == pytest.approx(expected_grey, rel=1e-9)


def test_shipped_cmft_warp_is_the_cpu_preset_small_and_votes():
    from baselines.model import load_trained

    path = shipped_weights("cmft-warp")
    assert path.stat().st_size < 5 * 2**20
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["celbench_model"] == "cmft-warp"
    config = json.loads(meta["celbench_model_config"])
    assert config["widths"] == [64, 32, 16, 16] and config["attention_window"] == 96  # the cpu preset
    assert config["skip_width"] == 16
    assert (FOLDER / "cmft-warp.json").is_file()
    colorizer = load_trained("cmft-warp")
    assert colorizer.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    sample = batch()
    out = colorizer(sample)
    assert out.shape == (1, 3, 48, 48) and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    # trained: no longer the untrained network (which is exactly the flow-warp prior)
    assert not torch.equal(out, load_trained("cmft-warp", "none")(sample))
