"""``flow-warp``: classical optical-flow warping of the reference colours onto the target.

For every reference, OpenCV's DIS optical flow (Kroeger et al., ECCV 2016) is estimated from the
target line drawing to the reference line drawing, and the reference colour is backward-warped with
``cv2.remap``: ``pred(x) = ref_colour(x + flow(x))``. Flow is computed on the distance fields by
default, because a distance field is smooth where a sketch is a thin binary line, which gives the
flow's gradient-based refinement something to follow. With several references, each pixel takes the
reference whose warped line drawing agrees best with the target around it (box-filtered absolute
difference), the multi-reference idea of Shi et al. (TVCG 2023, section 3) without learning.

No learning, no weights: a floor that a learned model should beat as the interval grows.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from benchmark.model import Batch, no_weights, register_model

_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def _to_uint8(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two (H, W) float images -> uint8 on one shared scale spanning both (DIS needs 8-bit grey input;
    a shared scale keeps equal values equal, which the flow's brightness constancy relies on)."""
    low, high = min(float(first.min()), float(second.min())), max(float(first.max()), float(second.max()))
    scale = 255.0 / (high - low) if high > low else 0.0
    return tuple(np.ascontiguousarray(((image - low) * scale).round().astype(np.uint8)) for image in (first, second))


class FlowWarp:
    """DIS flow + backward warp of the reference colour(s); see the module docstring.

    Args:
        guide: ``"field"`` (distance fields) or ``"sketch"`` (line art) drives the flow.
        preset: DIS preset, ``ultrafast`` / ``fast`` / ``medium`` (OpenCV's speed/quality trade-off).
        agreement_window: side in pixels of the box filter that scores warped references per pixel.
    """

    #: Batch keys this model cannot work without (``bench demo`` skips protocols that lack them).
    requires = ("reference_colour", "reference_sketch", "reference_field", "target_sketch", "target_field")

    def __init__(self, guide: str = "field", preset: str = "medium", agreement_window: int = 9):
        if guide not in ("field", "sketch"):
            raise ValueError(f"guide must be 'field' or 'sketch', not {guide!r}")
        self.guide = guide
        self.preset = preset
        self.agreement_window = agreement_window
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[preset])

    def _warp_one(self, target_guide: np.ndarray, reference_guide: np.ndarray, reference_colour: np.ndarray,
                  target_sketch: np.ndarray, reference_sketch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        flow = self._dis.calc(*_to_uint8(target_guide, reference_guide), None)
        height, width = target_guide.shape
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
        warped = cv2.remap(reference_colour, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_sketch = cv2.remap(reference_sketch, map_x, map_y, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        disagreement = cv2.blur(np.abs(warped_sketch - target_sketch), (self.agreement_window,) * 2)
        return warped, warped_sketch, disagreement

    def warp_references(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every reference warped onto the target, before the per-pixel choice.

        Returns float32 tensors on the batch's device: warped colour (B, K, 3, H, W) RGB in [0, 1], warped
        reference line art (B, K, 1, H, W) (1 = paper) and disagreement (B, K, 1, H, W), the box-filtered
        absolute difference between the warped and the target line art (0 = the warp agrees with the
        target's lines around the pixel; lower is better).
        """
        key = "field" if self.guide == "field" else "sketch"
        ref_colour = batch["reference_colour"].detach().cpu().float().numpy()
        ref_guide = batch[f"reference_{key}"].detach().cpu().float().numpy()[:, :, 0]
        ref_sketch = batch["reference_sketch"].detach().cpu().float().numpy()[:, :, 0]
        tgt_guide = batch[f"target_{key}"].detach().cpu().float().numpy()[:, 0]
        tgt_sketch = batch["target_sketch"].detach().cpu().float().numpy()[:, 0]
        b_count, k_count, _, height, width = ref_colour.shape
        colours = np.empty((b_count, k_count, 3, height, width), np.float32)
        sketches = np.empty((b_count, k_count, 1, height, width), np.float32)
        costs = np.empty((b_count, k_count, 1, height, width), np.float32)
        for b in range(b_count):
            target = np.ascontiguousarray(tgt_sketch[b])
            for k in range(k_count):
                colour_hwc = np.ascontiguousarray(ref_colour[b, k].transpose(1, 2, 0))
                warped, warped_sketch, costs[b, k, 0] = self._warp_one(
                    tgt_guide[b], ref_guide[b, k], colour_hwc, target, np.ascontiguousarray(ref_sketch[b, k]))
                colours[b, k] = np.clip(warped, 0.0, 1.0).transpose(2, 0, 1)
                sketches[b, k, 0] = warped_sketch
        device = batch["reference_colour"].device
        return tuple(torch.from_numpy(a).to(device) for a in (colours, sketches, costs))

    def __call__(self, batch: Batch) -> torch.Tensor:
        colours, _, costs = self.warp_references(batch)
        best = costs.argmin(1, keepdim=True)  # first reference wins ties: deterministic
        return colours.gather(1, best.expand(-1, -1, 3, -1, -1))[:, 0]


@register_model("flow-warp")
def flow_warp(weights: str | None = None, device: torch.device | None = None, **settings) -> FlowWarp:
    """Floor: DIS optical flow from target to reference line art, reference colour backward-warped."""
    no_weights("flow-warp", weights)
    return FlowWarp(**settings)
