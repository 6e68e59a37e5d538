"""``warp-refine``: a small U-Net that corrects the ``flow-warp`` floor where its lines and regions are wrong.

On real painted frames most of the warp's error is not in flat regions: measured on 40 pairs (intervals
1-10) of the evaluation shots, about three quarters of flow-warp's squared error lies in pixels where the
warp is dark and the target is not (the reference's lines moved to where the target has none: *ghost lines*)
or the reverse (target lines the warp did not draw), and a third in the ~1-2 % of pixels far from any line
with large errors (regions the flow could not find: disocclusions). A network that sees the warp prior, the
target's line art and the reference line art moved by the same flow can learn both corrections locally:
draw the target's lines, paint over ghost lines with the neighbouring region's warped colour, refill what
the flow lost. That needs a receptive field of a few line widths, not correspondence, so a ~0.1 M-parameter
network learns it in a few thousand CPU steps where a correspondence network (``cmft-warp``) does not.

Network: input (B, 6, H, W) = warp prior RGB, target sketch, target distance field, warped reference sketch
(all in [0, 1]); encoder at full, 1/2 and 1/4 resolution (3x3 convolutions, stride-2 down-sampling, two
dilated convolutions at 1/4 for a ~40 px receptive field), a decoder with skip connections, and the shared
recipe's :class:`baselines.recipe.GatedResidualHead`: ``output = warp + gate * residual`` with the residual
zero-initialised, so the untrained network *is* ``flow-warp``. Optional region voting at inference
(``vote``; off in the presets: on real painted frames it costs PSNR, docs/models.md).

Sizes must be divisible by 4 for the skip connections to line up; other sizes are padded (replicate) and
cropped back.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from baselines.model import ColorizationModel, TARGET_SKETCH, register_trainable
from baselines.recipe import GatedResidualHead, vote_output, warp_evidence
from benchmark.models.flow_warp import FlowWarp

_CPU_TRAIN = {"lr": 1e-3, "betas": [0.9, 0.999], "batch_size": 8, "image_size": 256, "epochs": 1000,
              "l1_weight": 10.0, "perceptual_weight": 0.0, "repalette": 0.5, "crop": 96,
              "lr_schedule": "constant"}


def _block(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation,
                                   dilation=dilation),
                         nn.LeakyReLU(0.1, inplace=True))


@register_trainable("warp-refine", preset="cpu")
class WarpRefine(ColorizationModel):
    """Small U-Net correction of the warp prior (see the module docstring).

    Args:
        widths: channels at full, 1/2 and 1/4 resolution.
        vote: region voting on ``target_components`` at inference.
        flow_preset: DIS preset of the warp prior (``flow-warp``'s default: medium).

    ``forward(batch)`` -> (B, 3, H, W) RGB (clamped to [0, 1] and voted in eval mode; raw in training).
    """

    #: bench train adds ``warp_prior`` / ``warp_sketch`` to training items before cropping.
    uses_warp_prior = True
    requires = FlowWarp.requires
    in_channels = 6

    presets = {
        # GPU users: wider, same design (the correction is local; width buys capacity, not reach).
        "paper": {"model": {"widths": [32, 64, 128]},
                  "train": {**_CPU_TRAIN, "batch_size": 16, "crop": 128}},
        "cpu": {"model": {"widths": [16, 32, 48]}, "train": _CPU_TRAIN},
        "tiny": {"model": {"widths": [4, 8, 8]},
                 "train": {**_CPU_TRAIN, "batch_size": 2, "image_size": 32, "epochs": 1, "crop": 0,
                           "repalette": 0.5}},
    }

    def __init__(self, widths: tuple[int, int, int] | list[int] = (16, 32, 48), vote: bool = False,
                 flow_preset: str = "medium"):
        super().__init__(widths=list(widths), vote=vote, flow_preset=flow_preset)
        w0, w1, w2 = widths
        self.vote = vote
        self.warper = FlowWarp(preset=flow_preset)
        self.enc0 = nn.Sequential(_block(self.in_channels, w0), _block(w0, w0))
        self.enc1 = nn.Sequential(_block(w0, w1, stride=2), _block(w1, w1))
        self.enc2 = nn.Sequential(_block(w1, w2, stride=2), _block(w2, w2, dilation=2), _block(w2, w2, dilation=4))
        self.dec1 = _block(w2 + w1, w1)
        self.dec0 = _block(w1 + w0, w0)
        self.head = GatedResidualHead(w0)

    def inputs(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input (B, 6, H, W), warp prior (B, 3, H, W)) for ``batch``."""
        sketch = batch[TARGET_SKETCH].float()
        prior, field, warped_sketch = warp_evidence(batch, self.warper)
        return torch.cat([prior, sketch, field, warped_sketch], dim=1), prior

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x, prior = self.inputs(batch)
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        d1 = self.dec1(torch.cat([F.interpolate(e2, size=e1.shape[-2:], mode="bilinear", align_corners=False),
                                  e1], dim=1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, size=e0.shape[-2:], mode="bilinear", align_corners=False),
                                  e0], dim=1))
        colour = self.head(d0[..., :height, :width], prior)
        if self.training:
            return colour
        colour = colour.clamp(0, 1)
        return vote_output(colour, batch) if self.vote else colour
