"""FID and KID: the distance maths against hand computations and torchmetrics, and the Inception network
loading self-written weights in pytorch-fid's key layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.kid import poly_mmd

from benchmark.metric import MetricUnavailable, create_metric
from benchmark.metrics.fid import (fid_from_features, frechet_distance, kid_from_features, polynomial_kernel,
                                   trace_sqrt_product_low_rank, unbiased_mmd2)
from benchmark.metrics.inception import FID_WEIGHTS_FILE, FIDInceptionV3
from benchmark.metrics.weights import WEIGHTS_DIR_ENV


def test_frechet_distance_of_1d_gaussians_is_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == \
        pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2)


def test_frechet_distance_matches_hand_computation_and_torchmetrics():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(loc=0.5, scale=1.5, size=(50, 6)) @ rng.normal(size=(6, 6))
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # hand: sqrt of s1 s2 via sqrt(s1) s2 sqrt(s1), which is symmetric PSD and has the same trace of its root
    root1 = linalg.sqrtm(s1).real
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    hand = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(middle, 0, None)))
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(hand, rel=1e-8)
    reference = _compute_fid(*(torch.from_numpy(x) for x in (mu1, s1, mu2, s2))).item()
    assert ours == pytest.approx(reference, rel=1e-6)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(hand, rel=1e-8)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-8)


def test_few_samples_path_agrees_with_sqrtm():
    # fewer samples than dimensions: singular covariances, the sample-space formula must equal sqrtm's trace
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(5, 12)), rng.normal(loc=0.2, size=(7, 12))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(s1)  # PSD square root of the singular s1, exact unlike sqrtm here
    root1 = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    hand = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)))
    assert trace_sqrt_product_low_rank(a, b) == pytest.approx(hand, rel=1e-6)
    reference = _compute_fid(*(torch.from_numpy(x) for x in (a.mean(0), s1, b.mean(0), s2))).item()
    assert fid_from_features(a, b) == pytest.approx(reference, rel=1e-5)


def test_unbiased_mmd_matches_torchmetrics_and_a_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(loc=0.3, size=(12, 5))
    ours = unbiased_mmd2(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))
    assert ours == pytest.approx(poly_mmd(torch.from_numpy(x), torch.from_numpy(y)).item(), rel=1e-10)

    def k(u, v):
        return (u @ v / 5 + 1) ** 3

    m = len(x)
    loop = (sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
            - 2 * sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2)
    assert ours == pytest.approx(loop, rel=1e-10)


def test_kid_subsets():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(loc=1.0, size=(30, 4))
    # subset size = set size: every subset is a permutation, and the MMD does not depend on order
    mean, std = kid_from_features(x, y, subsets=5, subset_size=30)
    assert mean == pytest.approx(poly_mmd(torch.from_numpy(x), torch.from_numpy(y)).item(), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)
    # smaller subsets: seeded, so reproducible, and different subsets spread
    assert kid_from_features(x, y, subsets=20, subset_size=10, seed=3) == \
        kid_from_features(x, y, subsets=20, subset_size=10, seed=3)
    assert kid_from_features(x, y, subsets=20, subset_size=10)[1] > 0


def test_network_layout_matches_pytorch_fid_keys():
    state = FIDInceptionV3().state_dict()
    for key in ["Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
                "Mixed_6e.branch7x7dbl_5.conv.weight", "Mixed_7a.branch7x7x3_4.bn.bias",
                "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight", "fc.bias"]:
        assert key in state, key
    assert state["Mixed_5b.branch_pool.conv.weight"].shape == (32, 192, 1, 1)
    assert state["Mixed_7c.branch1x1.conv.weight"].shape == (320, 2048, 1, 1)
    assert state["fc.weight"].shape == (1008, 2048)
    assert not any("AuxLogits" in k for k in state)


def test_fid_and_kid_with_written_weights(metric_weights):
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    targets = rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    targets[1] = preds[0]
    fid = create_metric("fid", weights_dir=metric_weights, verify_sha256=False, batch_size=2)
    fid.update(preds, targets)
    pred_features, target_features = fid.accumulated()
    assert pred_features.shape == target_features.shape == (2, 2048)
    assert np.isfinite(pred_features).all() and pred_features.std(axis=0).max() > 0
    # the same image gives the same features whatever else is in its batch
    np.testing.assert_allclose(target_features[1], pred_features[0], rtol=1e-4, atol=1e-6)
    assert fid.compute() == pytest.approx(fid_from_features(pred_features, target_features), rel=1e-12)
    assert fid.compute() > 0
    settings = fid.settings()
    assert settings["weights_file"] == FID_WEIGHTS_FILE and len(settings["weights_sha256"]) == 64
    assert not fid.per_sample and not fid.higher_is_better
    fid.reset()
    assert fid.accumulated()[0].shape == (0, 2048)
    kid = create_metric("kid", weights_dir=metric_weights, verify_sha256=False, subsets=3)
    assert kid.network is fid.network  # one network per weights file and device
    assert kid.from_features(pred_features, target_features) == pytest.approx(
        kid_from_features(pred_features, target_features, subsets=3)[0], rel=1e-12)


def test_missing_weights_are_unavailable_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    for name in ["fid", "kid"]:
        with pytest.raises(MetricUnavailable, match=FID_WEIGHTS_FILE.replace(".", r"\.")):
            create_metric(name, weights_dir=tmp_path)
        with pytest.raises(MetricUnavailable, match=WEIGHTS_DIR_ENV):
            create_metric(name)


def test_weights_dir_from_environment_and_hash_check(metric_weights, monkeypatch):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(metric_weights))
    # the self-written file is not the public one: refused unless verification is switched off
    with pytest.raises(MetricUnavailable, match="6726825d"):
        create_metric("fid")
    assert create_metric("fid", verify_sha256=False).weights_path.parent == metric_weights


def test_wrong_layout_is_unavailable(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / FID_WEIGHTS_FILE)
    with pytest.raises(MetricUnavailable, match="does not fit the network: missing keys"):
        create_metric("fid", weights_dir=tmp_path, verify_sha256=False)
    (tmp_path / FID_WEIGHTS_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(MetricUnavailable, match="could not be read"):
        create_metric("fid", weights_dir=tmp_path, verify_sha256=False)
