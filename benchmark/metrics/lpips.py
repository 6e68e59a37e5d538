"""LPIPS, the learned perceptual image patch similarity (Zhang et al. 2018, Sec. 3, Eq. 1), in plain torch.

``d(x, x0) = sum_l 1/(H_l W_l) sum_{h,w} || w_l * (y_l - y0_l)[h, w] ||_2^2`` where ``y_l`` are the
channel-unit-normalised activations of layer l of a frozen ImageNet backbone and ``w_l`` the learned
per-channel weights ("linear heads", v0.1). Lower is better; 0 for identical frames.

Mirrors ``richzhang/PerceptualSimilarity`` (``lpips/lpips.py``, ``lpips/pretrained_networks.py``): input RGB
scaled to [-1, 1], then the v0.1 ``ScalingLayer`` shift/scale; AlexNet taps relu1..relu5 (torchvision
``features`` indices 1, 4, 7, 9, 11), VGG-16 taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; the heads are
1x1 convolutions without bias stored as ``lin{l}.model.1.weight``.

Weights (from ``--weights-dir`` / ``$CELBENCH_WEIGHTS_DIR``; never downloaded):

- backbone: torchvision's ImageNet checkpoints ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``
  (only the ``features.*`` keys are used),
- heads: the lpips package's v0.1 files ``alex.pth`` / ``vgg.pth`` (``lpips/weights/v0.1/``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.metric import METRICS, PerSampleMetric
from dataprep.errors import CelbenchError
from dataprep.hashing import sha256_file
from benchmark.metrics.weights import check_sha256_prefix, find_weights, load_into, load_state_dict

# Per backbone: torchvision `features` layers (conv: (in, out, kernel, stride, padding); "M": max pool 3/2
# for AlexNet, 2/2 for VGG), the feature indices after which LPIPS taps activations, the tapped channel counts,
# the checkpoint file names, and the sha256 prefixes the torchvision file names carry.
ALEXNET_LAYERS = [(3, 64, 11, 4, 2), "R", "M", (64, 192, 5, 1, 2), "R", "M", (192, 384, 3, 1, 1), "R",
                  (384, 256, 3, 1, 1), "R", (256, 256, 3, 1, 1), "R"]
VGG16_LAYERS = [(3, 64, 3, 1, 1), "R", (64, 64, 3, 1, 1), "R", "M", (64, 128, 3, 1, 1), "R", (128, 128, 3, 1, 1),
                "R", "M", (128, 256, 3, 1, 1), "R", (256, 256, 3, 1, 1), "R", (256, 256, 3, 1, 1), "R", "M",
                (256, 512, 3, 1, 1), "R", (512, 512, 3, 1, 1), "R", (512, 512, 3, 1, 1), "R", "M",
                (512, 512, 3, 1, 1), "R", (512, 512, 3, 1, 1), "R", (512, 512, 3, 1, 1), "R"]
BACKBONES = {
    "alex": {"layers": ALEXNET_LAYERS, "pool": 3, "taps": (1, 4, 7, 9, 11), "channels": (64, 192, 384, 256, 256),
             "backbone_file": "alexnet-owt-7be5be79.pth", "backbone_sha256_prefix": "7be5be79",
             "heads_file": "alex.pth"},
    "vgg": {"layers": VGG16_LAYERS, "pool": 2, "taps": (3, 8, 15, 22, 29), "channels": (64, 128, 256, 512, 512),
            "backbone_file": "vgg16-397923af.pth", "backbone_sha256_prefix": "397923af", "heads_file": "vgg.pth"},
}
# v0.1 ScalingLayer: undoes the [-1, 1] scaling and applies ImageNet mean/std in that space
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NORMALISE_EPS = 1e-10


class Backbone(nn.Module):
    """torchvision-layout ``features`` Sequential returning the activations at the LPIPS taps."""

    def __init__(self, layers: list, pool: int, taps: tuple[int, ...]):
        super().__init__()
        modules: list[nn.Module] = []
        for layer in layers:
            if layer == "R":
                modules.append(nn.ReLU())
            elif layer == "M":
                modules.append(nn.MaxPool2d(kernel_size=pool, stride=2))
            else:
                cin, cout, kernel, stride, padding = layer
                modules.append(nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding))
        self.features = nn.Sequential(*modules)
        self.taps = taps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.taps:
                outputs.append(x)
            if index == self.taps[-1]:
                break
        return outputs


class NetLinLayer(nn.Module):
    """A head: dropout (inactive at evaluation) + 1x1 conv without bias, named as in the lpips package."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LinearHeads(nn.Module):
    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        for index, c in enumerate(channels):
            self.add_module(f"lin{index}", NetLinLayer(c))

    def weights(self) -> list[torch.Tensor]:
        return [getattr(self, f"lin{i}").model[1].weight for i in range(len(self._modules))]


def normalise_channels(features: torch.Tensor, eps: float = NORMALISE_EPS) -> torch.Tensor:
    """Unit-normalise each spatial feature vector over channels (lpips ``normalize_tensor``)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def lpips_from_features(features_a: list[torch.Tensor], features_b: list[torch.Tensor],
                        head_weights: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS distance ``(N,)`` from per-layer activations ``(N, C_l, H_l, W_l)`` and heads ``(1, C_l, 1, 1)``.

    Zhang et al. 2018, Eq. 1: per layer, the squared difference of channel-normalised features, weighted per
    channel by the head, summed over channels, averaged over space; then summed over layers.
    """
    total = None
    for a, b, weight in zip(features_a, features_b, head_weights):
        squared = (normalise_channels(a) - normalise_channels(b)) ** 2
        layer = F.conv2d(squared, weight).mean(dim=(1, 2, 3))
        total = layer if total is None else total + layer
    return total


@METRICS.register("lpips")
class LPIPS(PerSampleMetric):
    """LPIPS v0.1 (lower is better) with an AlexNet (default, as the lpips package) or VGG-16 backbone.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        weights_dir: folder holding the backbone and head files (default ``$CELBENCH_WEIGHTS_DIR``).
        device: torch device; batch_size: frames per network call (memory only).
        verify_sha256: require the backbone file's sha256 to start with torchvision's published prefix
            (disable for self-made test weights; the hashes are recorded in settings either way).
    Inputs are RGB uint8 at their own resolution (no resizing, as the lpips package).
    """

    name = "lpips"
    higher_is_better = False
    needs_weights = True

    def __init__(self, net: str = "alex", weights_dir: str | os.PathLike | None = None, device: str = "cpu",
                 batch_size: int = 16, verify_sha256: bool = True):
        super().__init__()
        if net not in BACKBONES:
            raise CelbenchError(f"lpips: unknown backbone {net!r} (known: {', '.join(BACKBONES)})")
        spec = BACKBONES[net]
        self.net = net
        self.device = str(device)
        self.batch_size = int(batch_size)
        backbone_path = find_weights("lpips", spec["backbone_file"], weights_dir)
        heads_path = find_weights("lpips", spec["heads_file"], weights_dir)
        self.backbone_sha256 = sha256_file(backbone_path)
        self.heads_sha256 = sha256_file(heads_path)
        check_sha256_prefix("lpips", backbone_path, self.backbone_sha256,
                            spec["backbone_sha256_prefix"] if verify_sha256 else None)
        self.backbone = Backbone(spec["layers"], spec["pool"], spec["taps"])
        state = load_state_dict("lpips", backbone_path)
        # torchvision checkpoints also hold the classifier, which LPIPS does not use
        load_into("lpips", self.backbone, {k: v for k, v in state.items() if k.startswith("features.")},
                  backbone_path)
        self.heads = LinearHeads(spec["channels"])
        load_into("lpips", self.heads, load_state_dict("lpips", heads_path), heads_path)
        self.backbone = self.backbone.eval().requires_grad_(False).to(self.device)
        self.heads = self.heads.eval().requires_grad_(False).to(self.device)
        self.shift = torch.tensor(SHIFT, device=self.device).view(1, 3, 1, 1)
        self.scale = torch.tensor(SCALE, device=self.device).view(1, 3, 1, 1)

    def settings(self) -> dict:
        spec = BACKBONES[self.net]
        return {"version": "0.1", "backbone": self.net, "colour_space": "RGB", "input": "[-1, 1], no resizing",
                "backbone_file": spec["backbone_file"], "backbone_sha256": self.backbone_sha256,
                "heads_file": spec["heads_file"], "heads_sha256": self.heads_sha256, "precision": "float32",
                "reduction": "mean of per-frame LPIPS"}

    def to_network_input(self, images: np.ndarray) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float32 after [-1, 1] scaling and the v0.1 ScalingLayer."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        return (x / 127.5 - 1.0 - self.shift) / self.scale

    @torch.no_grad()
    def score_batch(self, preds: np.ndarray, targets: np.ndarray, **extra: Any) -> np.ndarray:
        values = []
        for start in range(0, len(preds), self.batch_size):
            stop = start + self.batch_size
            features_a = self.backbone(self.to_network_input(preds[start:stop]))
            features_b = self.backbone(self.to_network_input(targets[start:stop]))
            values.append(lpips_from_features(features_a, features_b, self.heads.weights()).double().cpu().numpy())
        return np.concatenate(values)
