"""Can torchmetrics be celbench's PSNR/SSIM implementation without changing any number? Prints the largest
per-frame differences between celbench's metrics (benchmark/metrics/pixel.py, equal to scikit-image) and
torchmetrics' functional PSNR and SSIM with the settings that should match (RGB, data range 255, Gaussian
window sigma 1.5, 11 taps), on generated cel frames with small perturbations (the case a leaderboard sees).

    python docs/scripts/torchmetrics_check.py
"""

from __future__ import annotations

import numpy as np
import torch
import torchmetrics
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from benchmark.metrics.pixel import mse_batch, psnr_from_mse, ssim_batch
from dataprep.synth import SynthClip, demo_config


def main() -> None:
    frames = [f.image for _, f in zip(range(24), SynthClip(demo_config()).frames())]
    rng = np.random.default_rng(0)
    targets = np.stack(frames).astype(np.uint8)
    noise = rng.normal(0, 6, targets.shape)
    preds = np.clip(targets + noise, 0, 255).astype(np.uint8)
    ours_psnr = psnr_from_mse(mse_batch(preds, targets))
    ours_ssim = ssim_batch(preds, targets)
    p = torch.from_numpy(preds).permute(0, 3, 1, 2).double()
    t = torch.from_numpy(targets).permute(0, 3, 1, 2).double()
    tm_psnr = peak_signal_noise_ratio(p, t, data_range=255.0, reduction="none", dim=(1, 2, 3)).numpy()
    tm_ssim = structural_similarity_index_measure(p, t, gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                                  data_range=255.0, reduction="none").numpy()
    print(f"torchmetrics {torchmetrics.__version__}, {len(frames)} frames {targets.shape[1:3]}")
    print(f"PSNR: max |celbench - torchmetrics| = {np.abs(ours_psnr - tm_psnr).max():.3e} dB "
          f"(celbench mean {ours_psnr.mean():.6f})")
    print(f"SSIM: max |celbench - torchmetrics| = {np.abs(ours_ssim - tm_ssim).max():.3e} "
          f"(celbench mean {ours_ssim.mean():.6f}, torchmetrics mean {tm_ssim.mean():.6f})")


if __name__ == "__main__":
    main()
