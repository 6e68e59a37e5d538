"""The metric interface: one maths implementation behind a per-sample and a batch-accumulating API.

A metric is a class registered in :data:`METRICS`::

    @METRICS.register("psnr")
    class PSNR(PerSampleMetric):
        higher_is_better = True
        def score_batch(self, preds, targets, **extra): ...  # -> (N,) float64

    m = METRICS.create("psnr")
    m.score(pred, target)            # one frame -> float
    m.update(preds, targets)         # any number of batches ...
    m.compute()                      # ... -> float (mean over frames)
    m.settings()                     # everything that changes the number, recorded with each result

Images are RGB ``uint8`` numpy arrays, ``(H, W, 3)`` for one frame or ``(N, H, W, 3)`` for a batch, data range
255. Extra per-frame inputs (``labels=`` for the component-accuracy family) are listed in ``requires``.

A metric that cannot run here (its weights file is missing or wrong) raises :class:`MetricUnavailable` when it
is created, with the reason; the runner records the metric as unavailable, it never skips or fakes it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from dataprep.errors import CelbenchError
from dataprep.registry import Registry


class MetricUnavailable(CelbenchError):
    """The metric cannot be computed in this environment (e.g. its weights file is missing).

    ``reason`` is a one-line explanation naming the missing/invalid file and how to supply it.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Metric(ABC):
    """A metric comparing predicted frames with ground-truth frames.

    Class attributes:
        name: registry name (equal to the name given to ``@METRICS.register``).
        higher_is_better: direction of the metric.
        per_sample: True when ``score`` is defined on one frame pair and ``compute`` is the mean of the
            per-frame scores; False for set-level metrics (FID, KID) whose ``score`` takes two sets.
        requires: names of extra keyword inputs ``score``/``update`` need (e.g. ``("labels",)``).
        needs_weights: True when the constructor takes ``weights_dir=`` and ``verify_sha256=`` and raises
            MetricUnavailable without its weights files.
    """

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool]
    per_sample: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ()
    needs_weights: ClassVar[bool] = False

    @abstractmethod
    def settings(self) -> dict:
        """Every setting that changes the number (JSON-able), e.g. colour space, data range, window, weights."""

    @abstractmethod
    def score(self, pred: np.ndarray, target: np.ndarray, **extra: Any) -> float:
        """Score one frame pair (per-sample metrics) or one pair of sets (set-level metrics)."""

    @abstractmethod
    def update(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> None:
        """Accumulate a batch ``(N, H, W, 3)`` (a single ``(H, W, 3)`` frame is accepted too)."""

    @abstractmethod
    def compute(self) -> float:
        """The metric over everything passed to ``update`` since the last ``reset``."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all accumulated state."""

    def _check_extra(self, extra: dict) -> None:
        missing = [k for k in self.requires if extra.get(k) is None]
        if missing:
            raise CelbenchError(f"metric {self.name!r} needs {', '.join(f'{k}=' for k in missing)}")


class PerSampleMetric(Metric):
    """A metric defined per frame pair; ``compute`` is the mean over all frames seen.

    Subclasses implement only :meth:`score_batch` (vectorised over N); ``score``, ``update`` and ``compute``
    all go through it, so there is one implementation of the maths. ``score_batch`` may return NaN for a frame
    where the metric is undefined (e.g. no component above the size threshold); ``compute`` ignores those.
    """

    def __init__(self) -> None:
        self._scores: list[np.ndarray] = []

    @abstractmethod
    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        """Per-frame scores, shape ``(N,)`` float64, for ``(N, H, W, 3)`` uint8 inputs."""

    def score(self, pred: np.ndarray, target: np.ndarray, **extra: Any) -> float:
        pred, target = as_image_batch(pred, "pred"), as_image_batch(target, "target")
        check_pair(pred, target)
        if len(pred) != 1:
            raise CelbenchError(f"metric {self.name!r}: score() takes one frame pair, got {len(pred)}; use update()")
        self._check_extra(extra)
        extra = {k: _as_batch_extra(v) for k, v in extra.items()}
        return float(self.score_batch(pred, target, **extra)[0])

    def update(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> None:
        preds, targets = as_image_batch(preds, "preds"), as_image_batch(targets, "targets")
        check_pair(preds, targets)
        self._check_extra(extra)
        extra = {k: _as_batch_extra(v) for k, v in extra.items()}
        self._scores.append(np.asarray(self.score_batch(preds, targets, **extra), dtype=np.float64))

    def scores(self) -> np.ndarray:
        """All per-frame scores seen since the last reset, in order, shape ``(N,)``."""
        return np.concatenate(self._scores) if self._scores else np.zeros(0)

    def compute(self) -> float:
        values = self.scores()
        values = values[~np.isnan(values)]
        if values.size == 0:
            return float("nan")
        return float(values.mean())

    def reset(self) -> None:
        self._scores = []


def as_image_batch(images: Any, what: str = "images") -> np.ndarray:
    """``(H, W, 3)`` or ``(N, H, W, 3)`` RGB uint8 -> ``(N, H, W, 3)`` uint8; anything else is an error."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise CelbenchError(f"{what}: expected RGB images of shape (N, H, W, 3) or (H, W, 3), got {array.shape}")
    if array.dtype != np.uint8:
        raise CelbenchError(f"{what}: expected uint8 RGB (data range 255), got dtype {array.dtype}")
    return array


def _as_batch_extra(value: Any) -> Any:
    # per-frame maps such as labels come as (H, W) for one frame and (N, H, W) for a batch
    if value is None:
        return None
    array = np.asarray(value)
    return array[None] if array.ndim == 2 else array


def check_pair(preds: np.ndarray, targets: np.ndarray) -> None:
    if preds.shape != targets.shape:
        raise CelbenchError(f"predictions {preds.shape} and targets {targets.shape} differ in shape")


METRICS: Registry[Metric] = Registry("metric", entry_point_group="celbench.metrics")
"""All metrics by name; the built-ins come from the ``builtin`` entry (:mod:`benchmark.metrics`) of the
``celbench.metrics`` entry-point group."""


def create_metric(name: str, **kwargs: Any) -> Metric:
    """``METRICS.create(name, **kwargs)``."""
    return METRICS.create(name, **kwargs)
