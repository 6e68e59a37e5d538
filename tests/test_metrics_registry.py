"""Every registered metric, present and future, has a direction and settings and gives finite numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import benchmark.metrics  # noqa: F401  (registers the built-ins)
from benchmark.metric import METRICS, Metric, MetricUnavailable
from benchmark.metrics.testing import random_weights_kwargs
from benchmark.timing import measure
from dataprep.errors import CelbenchError


def seeded_pair(n=2, h=32, w=32):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 5, dtype=np.uint16).repeat(h // 4)[:, None], w, axis=1)
    labels[:, w // 2] = 0  # a line column
    targets = np.zeros((n, h, w, 3), np.uint8)
    palette = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    targets[:] = palette[labels]
    preds = targets.copy()
    preds[1, : h // 4] = palette[4]  # one component of the second frame gets a wrong colour
    preds[0, -1, -1] = 255 - preds[0, -1, -1]  # one pixel off in the first (finite PSNR; mode colours unchanged)
    # the reference is the target with region 1 in a colour the target lacks (so one region has no match);
    # a matcher that answers "each region is itself" (index = id)
    reference = targets.copy()
    reference[:, : h // 4] = (1, 2, 3)
    return preds, targets, {"labels": np.stack([labels] * n), "reference_labels": np.stack([labels] * n),
                            "reference_colours": reference, "matches": np.stack([np.arange(5)] * n)}


def test_builtins_are_registered():
    assert {"psnr", "mse", "ssim", "lpips", "fid", "kid", "component-acc", "component-acc-thres",
            "component-pix-acc", "component-pix-acc-wobg", "match-acc", "match-valid-acc", "match-invalid-acc",
            "match-area-acc"} <= set(METRICS.names())


def test_unknown_name_suggests():
    with pytest.raises(CelbenchError, match="did you mean 'psnr'"):
        METRICS.create("pnsr")


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric(name, metric_weights):
    cls = METRICS.get(name)
    assert issubclass(cls, Metric) and isinstance(cls.higher_is_better, bool)
    metric = cls(**random_weights_kwargs(cls, metric_weights))
    assert metric.name == name
    settings = metric.settings()
    assert settings and json.loads(json.dumps(settings)) == settings  # JSON-able, recorded with each result
    preds, targets, extra = seeded_pair()
    extra = {k: v for k, v in extra.items() if k in (*cls.requires, *getattr(cls, "optional", ()))}
    if cls.per_sample:
        assert math.isfinite(metric.score(preds[0], targets[0], **{k: v[0] for k, v in extra.items()}))
    (_, seconds, peak_bytes) = measure(metric.update, preds, targets, **extra)
    assert seconds >= 0 and peak_bytes > 0
    value = metric.compute()
    assert math.isfinite(value)
    metric.reset()
    if cls.per_sample:
        metric.update(preds, targets, **extra)
        assert metric.compute() == pytest.approx(value, rel=1e-6, abs=1e-9)  # reset forgets everything
    else:
        with pytest.raises(CelbenchError, match="at least 2"):
            metric.compute()


@pytest.mark.parametrize("name", [n for n in METRICS.names() if METRICS.get(n).needs_weights])
def test_weight_needing_metrics_are_unavailable_without_weights(name, tmp_path):
    with pytest.raises(MetricUnavailable, match="not found") as error:
        METRICS.create(name, weights_dir=tmp_path)
    assert error.value.reason == str(error.value) and isinstance(error.value, CelbenchError)
