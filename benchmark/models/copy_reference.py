"""``copy-reference``: the target is coloured exactly like the first reference frame.

The trivial floor of reference-based colourisation (it scores well only when nothing moves). With no
reference in the batch (the ``hints`` protocol) it paints the hint colours over a white page instead,
so it remains a floor there too.
"""

from __future__ import annotations

import torch

from benchmark.model import Batch, no_weights, register_model


class CopyReference:
    """``batch -> reference_colour[:, 0]``: (B, 3, H, W) float RGB in [0, 1]."""

    def __call__(self, batch: Batch) -> torch.Tensor:
        if "reference_colour" in batch:
            return batch["reference_colour"][:, 0]
        hints = batch["hints"]
        colour, mask = hints[:, :3], hints[:, 3:4]
        return colour * mask + (1.0 - mask)


@register_model("copy-reference")
def copy_reference(weights: str | None = None, device: torch.device | None = None) -> CopyReference:
    """Floor: the target coloured exactly like the first reference (hints over white without one)."""
    no_weights("copy-reference", weights)
    return CopyReference()
