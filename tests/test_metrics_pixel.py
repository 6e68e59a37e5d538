"""PSNR, MSE and SSIM agree with scikit-image on seeded frames; batch and per-frame APIs agree."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from benchmark.metric import create_metric
from dataprep.errors import CelbenchError


def noisy_pairs(n=3, h=48, w=64, seed=0, noise=30):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    # smooth structure as well as noise, so SSIM is neither ~0 nor ~1
    targets[:, : h // 2] = (np.linspace(0, 255, w)[None, None, :, None]).astype(np.uint8)
    preds = np.clip(targets.astype(int) + rng.integers(-noise, noise + 1, targets.shape), 0, 255).astype(np.uint8)
    return preds, targets


def skimage_ssim(p, t):
    return structural_similarity(p, t, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


@pytest.mark.parametrize("shape", [(48, 64), (37, 53), (11, 11)])
def test_matches_scikit_image(shape):
    preds, targets = noisy_pairs(h=shape[0], w=shape[1], seed=sum(shape))
    references = {"mse": mean_squared_error, "psnr": lambda p, t: peak_signal_noise_ratio(t, p, data_range=255),
                  "ssim": skimage_ssim}
    for name, reference in references.items():
        metric = create_metric(name)
        for p, t in zip(preds, targets):
            assert metric.score(p, t) == pytest.approx(reference(p, t), abs=1e-4), name


def test_batch_mean_equals_mean_of_frame_scores():
    preds, targets = noisy_pairs(n=5)
    for name in ["mse", "psnr", "ssim"]:
        metric = create_metric(name)
        metric.update(preds[:2], targets[:2])
        metric.update(preds[2:], targets[2:])
        expected = np.mean([metric.score(p, t) for p, t in zip(preds, targets)])
        assert metric.compute() == pytest.approx(expected, rel=1e-12)
        assert len(metric.scores()) == 5
        metric.reset()
        assert np.isnan(metric.compute())


def test_known_values_and_directions():
    target = np.zeros((16, 16, 3), np.uint8)
    pred = np.full((16, 16, 3), 10, np.uint8)
    assert create_metric("mse").score(pred, target) == 100.0
    assert create_metric("psnr").score(pred, target) == pytest.approx(10 * np.log10(255**2 / 100))
    assert create_metric("psnr").score(target, target) == float("inf")
    assert create_metric("psnr", max_db=60).score(target, target) == 60
    assert create_metric("ssim").score(target, target) == pytest.approx(1.0)
    assert create_metric("psnr").higher_is_better and create_metric("ssim").higher_is_better
    assert not create_metric("mse").higher_is_better


def test_settings_pin_what_changes_the_number():
    settings = create_metric("ssim").settings()
    assert settings["window_size"] == 11 and settings["sigma"] == 1.5 and settings["data_range"] == 255
    assert settings["colour_space"] == "RGB" and settings["covariance"] == "population"
    assert create_metric("ssim", sigma=0.8).settings()["window_size"] == 7


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8),
                                 np.zeros((2, 8, 8, 4), np.uint8)])
def test_rejects_non_rgb_uint8(bad):
    with pytest.raises(CelbenchError, match="expected"):
        create_metric("mse").score(bad, bad)


def test_rejects_mismatched_shapes():
    with pytest.raises(CelbenchError, match="differ in shape"):
        create_metric("psnr").update(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 9, 3), np.uint8))


def test_score_takes_one_frame_pair():
    preds, targets = noisy_pairs(n=2)
    with pytest.raises(CelbenchError, match="one frame pair"):
        create_metric("psnr").score(preds, targets)
    assert create_metric("psnr").score(preds[:1], targets[:1]) == create_metric("psnr").score(preds[0], targets[0])
