"""Full-reference pixel metrics on RGB uint8 frames: MSE, PSNR, SSIM.

All three are computed on RGB (not luma), data range 255, and match scikit-image
(``skimage.metrics.mean_squared_error``, ``peak_signal_noise_ratio``,
``structural_similarity(..., channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``) to 1e-4 per frame (tests/test_metrics_pixel.py). MSE/PSNR are one
vectorised integer reduction over the batch. SSIM filters the five local moments of each frame, each an
(H, W, 3) float64 image, with OpenCV's separable ``sepFilter2D`` (the fastest of the filters compared in
docs/metrics.md); the results agree with scikit-image to 1e-14.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from benchmark.metric import METRICS, PerSampleMetric
from dataprep.errors import CelbenchError

DATA_RANGE = 255.0


def mse_batch(preds: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean squared error per frame over all pixels and the 3 RGB channels.

    Args:
        preds, targets: ``(N, H, W, 3)`` uint8 RGB.
    Returns:
        ``(N,)`` float64, in (uint8 units)^2, i.e. range [0, 255^2].
    """
    # integer differences: the squared-error sum is exact, only the final division rounds
    diff = preds.astype(np.int32) - targets.astype(np.int32)
    squared = np.einsum("nhwc,nhwc->n", diff, diff, dtype=np.int64)
    return squared / float(diff[0].size)


def psnr_from_mse(mse: np.ndarray, data_range: float = DATA_RANGE) -> np.ndarray:
    """PSNR = 10 log10(data_range^2 / MSE) in dB; +inf where MSE is 0 (identical frames), as scikit-image."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / np.asarray(mse, dtype=np.float64))


def gaussian_kernel_1d(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """The normalised 1-D Gaussian scikit-image's SSIM uses (via ``scipy.ndimage.gaussian_filter``).

    Radius ``int(truncate * sigma + 0.5)``: 5 for sigma 1.5, i.e. an 11-tap window (Wang et al. 2004, Sec. III-C).
    """
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def ssim_batch(preds: np.ndarray, targets: np.ndarray, *, sigma: float = 1.5, truncate: float = 3.5,
               k1: float = 0.01, k2: float = 0.03, data_range: float = DATA_RANGE) -> np.ndarray:
    """Mean SSIM per frame (Wang et al. 2004, Eq. 13 with Gaussian weighting, Sec. III-C), RGB channels averaged.

    Local statistics use a Gaussian window (11 taps for sigma 1.5) and population (not sample) covariance;
    C1 = (k1 L)^2, C2 = (k2 L)^2 with L = data_range. As scikit-image, the SSIM map is averaged over the
    frame minus a border of the window radius on each side; since no window centred there touches the
    border, the padding mode does not matter (OpenCV BORDER_REFLECT, scipy's "reflect" as in scikit-image, is used).

    Args:
        preds, targets: ``(N, H, W, 3)`` uint8 RGB, H and W at least the window size.
    Returns:
        ``(N,)`` float64 in [-1, 1].
    """
    kernel = gaussian_kernel_1d(sigma, truncate)
    n, h, w, _ = preds.shape
    if h < len(kernel) or w < len(kernel):
        raise CelbenchError(f"SSIM needs frames of at least {len(kernel)}x{len(kernel)} pixels, got {h}x{w}")
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    return np.array([_ssim_frame(p, t, kernel, c1, c2) for p, t in zip(preds, targets)], dtype=np.float64).reshape(n)


def _ssim_frame(pred: np.ndarray, target: np.ndarray, kernel: np.ndarray, c1: float, c2: float) -> float:
    """Mean over R, G, B of each channel's mean SSIM for one (H, W, 3) uint8 frame pair."""
    radius = len(kernel) // 2
    h, w, _ = pred.shape
    p = pred.astype(np.float64)
    t = target.astype(np.float64)

    def local_mean(image: np.ndarray) -> np.ndarray:
        # BORDER_REFLECT is scipy's (and scikit-image's) "reflect"; the cropped border makes it moot anyway
        filtered = cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        return filtered[radius:h - radius, radius:w - radius]

    mu_p, mu_t = local_mean(p), local_mean(t)
    var_p = local_mean(p * p) - mu_p * mu_p
    var_t = local_mean(t * t) - mu_t * mu_t
    cov = local_mean(p * t) - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    # per-channel means, then their mean (scikit-image's channel_axis behaviour)
    return float(ssim_map.reshape(-1, 3).mean(axis=0).mean())


@METRICS.register("mse")
class MSE(PerSampleMetric):
    """Mean squared error on RGB uint8 values (range [0, 65025]); lower is better. Per-frame mean over frames."""

    name = "mse"
    higher_is_better = False

    def settings(self) -> dict:
        return {"colour_space": "RGB", "data_range": DATA_RANGE, "reduction": "mean over frames"}

    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        return mse_batch(preds, targets)


@METRICS.register("psnr")
class PSNR(PerSampleMetric):
    """Peak signal-to-noise ratio in dB on RGB, data range 255; higher is better.

    Per frame ``10 log10(255^2 / MSE)`` (MSE over all pixels and channels), then the mean over frames.
    Identical frames give +inf (as scikit-image); the mean is then +inf too, unless ``max_db`` caps each frame.
    """

    name = "psnr"
    higher_is_better = True

    def __init__(self, max_db: float | None = None):
        super().__init__()
        self.max_db = max_db

    def settings(self) -> dict:
        return {"colour_space": "RGB", "data_range": DATA_RANGE, "max_db": self.max_db,
                "reduction": "mean of per-frame PSNR"}

    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        values = psnr_from_mse(mse_batch(preds, targets))
        if self.max_db is not None:
            values = np.minimum(values, self.max_db)
        return values


@METRICS.register("ssim")
class SSIM(PerSampleMetric):
    """Structural similarity (Wang et al. 2004) on RGB, data range 255, Gaussian window; higher is better.

    Settings (each changes the number): sigma 1.5 (11-tap window, truncate 3.5), K1 0.01, K2 0.03, population
    covariance, per-channel SSIM averaged over R, G, B, border of 5 px excluded from the mean.
    """

    name = "ssim"
    higher_is_better = True

    def __init__(self, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03):
        super().__init__()
        self.sigma, self.k1, self.k2 = sigma, k1, k2

    def settings(self) -> dict:
        return {"colour_space": "RGB", "data_range": DATA_RANGE, "window": "gaussian",
                "window_size": len(gaussian_kernel_1d(self.sigma)), "sigma": self.sigma, "k1": self.k1,
                "k2": self.k2, "covariance": "population", "channels": "mean of R, G, B"}

    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        return ssim_batch(preds, targets, sigma=self.sigma, k1=self.k1, k2=self.k2)


__all__ = ["MSE", "PSNR", "SSIM", "mse_batch", "psnr_from_mse", "ssim_batch", "gaussian_kernel_1d"]
