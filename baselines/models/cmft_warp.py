"""``cmft-warp``: the CMFT generator (:mod:`baselines.models.cmft`) as a gated residual over the warp prior,
with region voting: CMFT on the shared training recipe (:mod:`baselines.recipe`).

Changes from the paper's network, and nothing else:

* ``E_h`` sees the target sketch *and* the warp evidence (:func:`baselines.recipe.warp_evidence`: the
  reference warped by ``flow-warp``'s DIS flow, the target's distance field and the reference line art
  moved by the same flow), 6 input channels, so the decoder knows what the warp claims at every pixel and
  where it drew ghost lines, while the CMFT correlations (equations 4, 6-8) carry the reference colours the
  matching finds; where the two disagree the warp is likely wrong.
* A full-resolution skip path (two 3x3 convolutions, the second dilated, ``skip_width`` channels) on the
  warp evidence beside the last decoder features: the paper's network has one convolution at full
  resolution (``E_h^3``), too shallow to move a one-pixel line, and on real frames the warp's errors are
  at lines (ghost reference lines, target lines the warp lacks). Without these two changes the residual of
  the earlier ``cmft-warp`` (4 input channels, no skip) decayed to zero during training: 3,000 fine-tuning
  steps left it at 3e-6 mean weight, the model *was* the warp (docs/recipe.md).
* The last convolutions end in a :class:`baselines.recipe.GatedResidualHead`: ``output = warp + gate *
  residual``, the residual zero-initialised, so an untrained ``cmft-warp`` *is* ``flow-warp``.
* At inference (eval mode) each target component gets the median colour of the output inside it
  (:func:`benchmark.models.vote.vote_batch`, texture-aware), when the batch has ``target_components``.
  Training sees the unvoted output (the median has no useful gradient).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from baselines.model import register_trainable
from baselines.models.cmft import LCMFTN, _conv
from baselines.recipe import GatedResidualHead, vote_output, warp_evidence
from benchmark.models.flow_warp import FlowWarp

_CPU_TRAIN = {"lr": 1e-3, "betas": [0.9, 0.999], "batch_size": 4, "image_size": 256, "epochs": 1000,
              "l1_weight": 10.0, "perceptual_weight": 0.0, "repalette": 0.5, "crop": 96}


@register_trainable("cmft-warp", preset="cpu")
class CMFTWarp(LCMFTN):
    """LCMFTN with the warp prior as input and base of the output (see the module docstring).

    Args: those of :class:`LCMFTN` (``use_cmft`` must stay True), plus
        vote: region voting on ``target_components`` at inference.
        flow_preset: DIS preset of the warp prior (``flow-warp``'s default: medium).
        skip_width: channels of the full-resolution skip path (0 = none).

    ``requires`` lists what the warp prior (distance fields) and voting (components) read; without fields
    the flow follows the sketches, without components the output is not voted.
    """

    #: warp prior RGB, target distance field, warped reference line art (baselines.recipe.warp_evidence).
    prior_channels = 5
    #: bench train adds ``warp_prior`` to training items before cropping (baselines.recipe.augment).
    uses_warp_prior = True
    requires = (*FlowWarp.requires, "target_components")

    presets = {
        "paper": {"model": dict(LCMFTN.presets["paper"]["model"]),
                  "train": {**LCMFTN.presets["paper"]["train"], "repalette": 0.5}},
        # Shipped CPU weights: narrow fine scales, and matching within the 96 px of a training crop (global
        # CMFT^2 over 128x128 positions at 256 px was 3/4 of the CPU time; docs/recipe.md).
        "cpu": {"model": {"widths": [64, 32, 16, 16], "resnext_blocks": 1, "cardinality": 4,
                          "attention_window": 96, "skip_width": 16},
                "train": _CPU_TRAIN},
        "tiny": {"model": {"widths": [16, 8, 8, 4], "resnext_blocks": 1, "cardinality": 2, "skip_width": 4},
                 "train": {**LCMFTN.presets["tiny"]["train"], "repalette": 0.5}},
    }

    def __init__(self, vote: bool = True, flow_preset: str = "medium", skip_width: int = 16, **kwargs: Any):
        if not kwargs.get("use_cmft", True):
            raise ValueError("cmft-warp needs its correlation matching (use_cmft=True)")
        super().__init__(**kwargs)
        self.config.update(vote=vote, flow_preset=flow_preset, skip_width=skip_width)
        self.vote = vote
        self.warper = FlowWarp(preset=flow_preset)
        w3 = self.widths[3]
        final_in = (3 if self.cmft_full_resolution else 2) * w3
        self.to_rgb = _conv(final_in, w3)  # features for the head instead of RGB
        self.skip = (nn.Sequential(_conv(self.prior_channels, skip_width), _conv(skip_width, skip_width, dilation=2))
                     if skip_width > 0 else None)
        self.head = GatedResidualHead(w3 + skip_width)

    def prior(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, 5, H, W): warp prior RGB, target distance field, warped reference line art."""
        return torch.cat(warp_evidence(batch, self.warper), 1)

    def output(self, features: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        features = self.to_rgb(features)
        if self.skip is not None:
            features = torch.cat([features, self.skip(prior)], 1)
        return self.head(features, prior[:, :3])

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        colour = super().forward(batch)
        if self.training or not self.vote:
            return colour
        return vote_output(colour.clamp(0, 1), batch)
