"""Set-level metrics on Inception features: FID (Heusel et al. 2017) and KID (Binkowski et al. 2018).

Both compare the distribution of predicted frames with that of ground-truth frames through 2048-d pool3
features of the FID Inception-v3 (:mod:`benchmark.metrics.inception`, weights file
``pt_inception-2015-12-05-6726825d.pth`` from ``--weights-dir`` / ``$CELBENCH_WEIGHTS_DIR``). ``update``
accumulates features of both sets; ``compute`` returns the distance. ``score(preds, targets)`` scores one
pair of sets at once without touching the accumulated state. Neither is defined per frame
(``per_sample = False``).

The network runs in float32 (no autocast even on CUDA: half precision would change the numbers); the
statistics are float64 numpy.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import linalg

from benchmark.metric import METRICS, Metric, as_image_batch, check_pair
from benchmark.metrics.inception import (FEATURE_DIM, FID_WEIGHTS_FILE, FID_WEIGHTS_SHA256_PREFIX, INPUT_SIZE,
                                         FIDInceptionV3)
from dataprep.hashing import sha256_file
from benchmark.metrics.weights import check_sha256_prefix, find_weights, load_into, load_state_dict
from dataprep.errors import CelbenchError

_NETWORKS: dict[tuple[str, str, str], FIDInceptionV3] = {}


def load_fid_inception(path: Path, sha256: str, device: str, metric: str = "fid") -> FIDInceptionV3:
    """The FID Inception with the weights at ``path`` on ``device`` (cached per file hash and device)."""
    key = (str(path), sha256, str(device))
    if key not in _NETWORKS:
        network = FIDInceptionV3()
        load_into(metric, network, load_state_dict(metric, path), path)
        _NETWORKS[key] = network.eval().requires_grad_(False).to(device)
    return _NETWORKS[key]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, Eq. 6).

    ``d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``, with the matrix square root from
    ``scipy.linalg.sqrtm`` as pytorch-fid's ``calculate_frechet_distance``: if the product is singular
    enough for sqrtm to return non-finite values, ``eps`` is added to both diagonals; a complex result with
    negligible imaginary part (numerical noise) keeps its real part.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # a near-singular product is handled below, as pytorch-fid does
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise CelbenchError(f"FID: matrix square root has a large imaginary part "
                                f"({np.max(np.abs(covmean.imag)):.3g}); too few samples for the feature size?")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features_pred: np.ndarray, features_target: np.ndarray) -> float:
    """FID between two feature sets ``(N, D)``; means and unbiased covariances (``np.cov``), as pytorch-fid.

    With at least D + 1 frames in each set this is :func:`frechet_distance` (``scipy.linalg.sqrtm``, as
    pytorch-fid). With fewer, both covariances are singular, sqrtm of their product is ill-conditioned and
    slow (2048x2048), and the same quantity is computed exactly in the sample space instead
    (:func:`trace_sqrt_product_low_rank`).
    """
    n_pred, n_target = len(features_pred), len(features_target)
    for what, n in (("predicted", n_pred), ("target", n_target)):
        if n < 2:
            raise CelbenchError(f"FID needs at least 2 {what} frames, got {n}")
    mu1, mu2 = features_pred.mean(axis=0), features_target.mean(axis=0)
    dimension = features_pred.shape[1]
    if min(n_pred, n_target) > dimension:
        return frechet_distance(mu1, np.cov(features_pred, rowvar=False),
                                mu2, np.cov(features_target, rowvar=False))
    diff = mu1 - mu2
    trace1 = np.sum((features_pred - mu1) ** 2) / (n_pred - 1)
    trace2 = np.sum((features_target - mu2) ** 2) / (n_target - 1)
    return float(diff @ diff + trace1 + trace2 - 2 * trace_sqrt_product_low_rank(features_pred, features_target))


def trace_sqrt_product_low_rank(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """``Tr((S_a S_b)^(1/2))`` for the unbiased covariances of ``(n_a, D)`` and ``(n_b, D)`` samples.

    With centred samples A, B, ``S_a S_b = A^T (A B^T) B / c`` (c = (n_a - 1)(n_b - 1)) has the same non-zero
    eigenvalues as ``(A B^T)(A B^T)^T / c``, so the trace of its square root is the sum of the singular
    values of ``A B^T``, divided by sqrt(c): exact, in O(n_a n_b D).
    """
    a = features_a - features_a.mean(axis=0)
    b = features_b - features_b.mean(axis=0)
    singular_values = np.linalg.svd(a @ b.T, compute_uv=False)
    return float(singular_values.sum() / np.sqrt((len(a) - 1) * (len(b) - 1)))


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> np.ndarray:
    """``k(x, y) = (gamma <x, y> + coef)^degree`` for rows of ``x (m, D)`` and ``y (n, D)``; gamma 1/D by default."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def unbiased_mmd2(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased squared MMD from kernel matrices of two samples of equal size m (Binkowski et al. 2018, Eq. 3).

    ``sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2``
    (the cross term includes i = j, as torchmetrics and the KID reference code do).
    """
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid_from_features(features_pred: np.ndarray, features_target: np.ndarray, *, subsets: int = 100,
                      subset_size: int = 1000, degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                      seed: int = 0) -> tuple[float, float]:
    """KID mean and standard deviation over random subsets (torchmetrics' ``KernelInceptionDistance`` recipe).

    Each of ``subsets`` rounds draws ``subset_size`` rows without replacement from each set (numpy
    ``default_rng(seed)``) and computes the unbiased polynomial-kernel MMD^2. When a set is smaller than
    ``subset_size`` the subset size becomes the smaller set size (torchmetrics raises instead), so small
    evaluation sets still get a number; the effective size is returned by :func:`kid_subset_size`.
    Returns ``(mean, std)`` with the population std, as torchmetrics.
    """
    size = kid_subset_size(len(features_pred), len(features_target), subset_size)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = features_pred[rng.permutation(len(features_pred))[:size]]
        y = features_target[rng.permutation(len(features_target))[:size]]
        values.append(unbiased_mmd2(polynomial_kernel(x, x, degree, gamma, coef),
                                    polynomial_kernel(x, y, degree, gamma, coef),
                                    polynomial_kernel(y, y, degree, gamma, coef)))
    values_array = np.asarray(values)
    return float(values_array.mean()), float(values_array.std())


def kid_subset_size(n_pred: int, n_target: int, subset_size: int) -> int:
    size = min(subset_size, n_pred, n_target)
    if size < 2:
        raise CelbenchError(f"KID needs at least 2 frames in each set, got {n_pred} predicted and {n_target} target")
    return size


class InceptionSetMetric(Metric):
    """Shared part of FID and KID: the weights, the feature extractor and the accumulated features.

    Args:
        weights_dir: folder holding ``pt_inception-2015-12-05-6726825d.pth`` (default ``$CELBENCH_WEIGHTS_DIR``).
        device: torch device for the network (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        batch_size: frames per network call (memory only; does not change the number).
        verify_sha256: require the weights file's sha256 to start with the public file's published prefix
            (6726825d); False accepts any file (e.g. self-made test weights). The hash is recorded in settings.
    """

    per_sample = False
    needs_weights = True

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 16,
                 verify_sha256: bool = True):
        name = self.name
        self.weights_path = find_weights(name, FID_WEIGHTS_FILE, weights_dir)
        self.weights_sha256 = sha256_file(self.weights_path)
        check_sha256_prefix(name, self.weights_path, self.weights_sha256,
                            FID_WEIGHTS_SHA256_PREFIX if verify_sha256 else None)
        self.device = str(device)
        self.batch_size = int(batch_size)
        self.network = load_fid_inception(self.weights_path, self.weights_sha256, self.device, name)
        self.reset()

    def feature_settings(self) -> dict:
        return {"feature_extractor": "FID Inception-v3 (pytorch-fid port of TF inception-2015-12-05)",
                "features": f"pool3, {FEATURE_DIM}-d", "input": f"RGB resized bilinear to {INPUT_SIZE}x{INPUT_SIZE}, "
                "scaled to [-1, 1]", "weights_file": FID_WEIGHTS_FILE, "weights_sha256": self.weights_sha256,
                "precision": "float32"}

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        """Pool3 features ``(N, 2048)`` float64 of ``(N, H, W, 3)`` uint8 RGB frames."""
        images = as_image_batch(images)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + self.batch_size]))
            batch = batch.to(self.device).permute(0, 3, 1, 2).float() / 255.0
            chunks.append(self.network(batch).double().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, FEATURE_DIM))

    def update(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> None:
        preds, targets = as_image_batch(preds, "preds"), as_image_batch(targets, "targets")
        check_pair(preds, targets)
        self._pred_features.append(self.features(preds))
        self._target_features.append(self.features(targets))

    def accumulated(self) -> tuple[np.ndarray, np.ndarray]:
        """The predicted and target features seen since the last reset, ``(N, 2048)`` each."""
        empty = np.zeros((0, FEATURE_DIM))
        return (np.concatenate(self._pred_features) if self._pred_features else empty,
                np.concatenate(self._target_features) if self._target_features else empty)

    def reset(self) -> None:
        self._pred_features: list[np.ndarray] = []
        self._target_features: list[np.ndarray] = []

    def compute(self) -> float:
        return self.from_features(*self.accumulated())

    def score(self, pred: np.ndarray, target: np.ndarray, **extra: Any) -> float:
        """The metric between the set ``pred (N, H, W, 3)`` and the set ``target (M, H', W', 3)``."""
        return self.from_features(self.features(pred), self.features(target))

    def from_features(self, features_pred: np.ndarray, features_target: np.ndarray) -> float:
        raise NotImplementedError


@METRICS.register("fid")
class FID(InceptionSetMetric):
    """Frechet Inception Distance (lower is better); see :func:`frechet_distance`."""

    name = "fid"
    higher_is_better = False

    def settings(self) -> dict:
        return {**self.feature_settings(), "covariance": "unbiased (N-1)",
                "trace_sqrt": "scipy.linalg.sqrtm if N > 2048 per set, else exact sample-space SVD"}

    def from_features(self, features_pred: np.ndarray, features_target: np.ndarray) -> float:
        return fid_from_features(features_pred, features_target)


@METRICS.register("kid")
class KID(InceptionSetMetric):
    """Kernel Inception Distance (lower is better): mean unbiased polynomial MMD^2 over random subsets.

    Defaults follow torchmetrics' ``KernelInceptionDistance`` (Binkowski et al. 2018): 100 subsets of 1000,
    kernel ``(<x, y> / 2048 + 1)^3``; subsets are drawn with ``numpy.random.default_rng(seed)``.
    """

    name = "kid"
    higher_is_better = False

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 16,
                 verify_sha256: bool = True, subsets: int = 100,
                 subset_size: int = 1000, degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                 seed: int = 0):
        super().__init__(weights_dir, device, batch_size, verify_sha256)
        self.subsets, self.subset_size, self.degree = subsets, subset_size, degree
        self.gamma, self.coef, self.seed = gamma, coef, seed
        self.last_std: float | None = None

    def settings(self) -> dict:
        return {**self.feature_settings(), "subsets": self.subsets, "subset_size": self.subset_size,
                "subset_size_rule": "min(subset_size, n_pred, n_target)", "kernel": "polynomial",
                "degree": self.degree, "gamma": self.gamma if self.gamma is not None else f"1/{FEATURE_DIM}",
                "coef": self.coef, "seed": self.seed}

    def from_features(self, features_pred: np.ndarray, features_target: np.ndarray) -> float:
        mean, self.last_std = kid_from_features(features_pred, features_target, subsets=self.subsets,
                                                subset_size=self.subset_size, degree=self.degree,
                                                gamma=self.gamma, coef=self.coef, seed=self.seed)
        return mean
