"""LPIPS: the formula against a hand NumPy version, and the network (self-written weights in the public key
layout) against a hand-written AlexNet forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.metric import MetricUnavailable, create_metric
from benchmark.metrics.lpips import SCALE, SHIFT, lpips_from_features


def hand_lpips(features_a, features_b, heads):
    """Zhang et al. 2018 Eq. 1 with explicit loops over pixels (NumPy, float64)."""
    total = 0.0
    for a, b, w in zip(features_a, features_b, heads):
        _, h, wd = a.shape
        layer = 0.0
        for y in range(h):
            for x in range(wd):
                ua = a[:, y, x] / (np.sqrt(np.sum(a[:, y, x] ** 2)) + 1e-10)
                ub = b[:, y, x] / (np.sqrt(np.sum(b[:, y, x] ** 2)) + 1e-10)
                layer += np.sum(w * (ua - ub) ** 2)
        total += layer / (h * wd)
    return total


def test_formula_matches_hand_computation_on_tiny_features():
    rng = np.random.default_rng(0)
    shapes = [(4, 3, 5), (6, 2, 2)]
    features_a = [rng.normal(size=s) for s in shapes]
    features_b = [rng.normal(size=s) for s in shapes]
    heads = [rng.uniform(size=s[0]) for s in shapes]
    ours = lpips_from_features([torch.from_numpy(f[None]) for f in features_a],
                               [torch.from_numpy(f[None]) for f in features_b],
                               [torch.from_numpy(w.reshape(1, -1, 1, 1)) for w in heads])
    assert ours.shape == (1,)
    assert ours.item() == pytest.approx(hand_lpips(features_a, features_b, heads), rel=1e-10)


def hand_alexnet_lpips(pred, target, backbone, heads):
    """AlexNet taps written out from the torchvision layout, then the NumPy formula."""
    def taps(image):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 127.5 - 1
        x = (x - torch.tensor(SHIFT).double().view(1, 3, 1, 1)) / torch.tensor(SCALE).double().view(1, 3, 1, 1)
        out = []
        for index, (stride, padding, pool) in zip([0, 3, 6, 8, 10], [(4, 2, False), (1, 2, True), (1, 1, True),
                                                                     (1, 1, False), (1, 1, False)]):
            if pool:
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(F.conv2d(x, backbone[f"features.{index}.weight"].double(),
                                backbone[f"features.{index}.bias"].double(), stride=stride, padding=padding))
            out.append(x[0].numpy())
        return out

    head_weights = [heads[f"lin{i}.model.1.weight"].double().numpy().reshape(-1) for i in range(5)]
    return hand_lpips(taps(pred), taps(target), head_weights)


def test_alexnet_lpips_with_written_weights(metric_weights):
    rng = np.random.default_rng(1)
    preds = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    targets = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    metric = create_metric("lpips", weights_dir=metric_weights, verify_sha256=False)
    backbone = torch.load(metric_weights / "alexnet-owt-7be5be79.pth", weights_only=True)
    heads = torch.load(metric_weights / "alex.pth", weights_only=True)
    assert set(heads) == {f"lin{i}.model.1.weight" for i in range(5)}
    for p, t in zip(preds, targets):
        assert metric.score(p, t) > 0.01
        assert metric.score(p, t) == pytest.approx(hand_alexnet_lpips(p, t, backbone, heads), rel=1e-4)
    assert metric.score(preds[0], preds[0]) == pytest.approx(0.0, abs=1e-7)
    metric.update(preds, targets)
    assert metric.compute() == pytest.approx(np.mean([metric.score(p, t) for p, t in zip(preds, targets)]),
                                             rel=1e-6)
    settings = metric.settings()
    assert settings["backbone"] == "alex" and settings["heads_file"] == "alex.pth"
    assert len(settings["backbone_sha256"]) == 64 and len(settings["heads_sha256"]) == 64
    assert not metric.higher_is_better


def test_vgg_backbone_loads_and_scores(metric_weights):
    rng = np.random.default_rng(2)
    pred, target = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    metric = create_metric("lpips", net="vgg", weights_dir=metric_weights, verify_sha256=False)
    value = metric.score(pred, target)
    assert np.isfinite(value) and value > 0
    assert metric.settings()["backbone_file"] == "vgg16-397923af.pth"


def test_missing_or_unverified_weights_are_unavailable(metric_weights, tmp_path):
    backbone = "alexnet-owt-7be5be79.pth"
    (tmp_path / backbone).write_bytes((metric_weights / backbone).read_bytes())
    with pytest.raises(MetricUnavailable, match=r"alex\.pth not found"):
        create_metric("lpips", weights_dir=tmp_path, verify_sha256=False)
    with pytest.raises(MetricUnavailable, match="7be5be79"):
        create_metric("lpips", weights_dir=metric_weights)
