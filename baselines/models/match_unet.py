"""``match-unet``: the learned component matcher of the Cinnamon poster (Dang et al., SIGGRAPH 2020 posters,
"Correspondence Neural Network for Line Art Colorization"; 81.2% component accuracy against 63.7% for
hand-crafted features, Table 1).

Per frame, the line art's components (``target_components`` / ``reference_components``, or labelled here from the
sketch when the batch has none) give per-pixel shape features, Eq. 1: each pixel carries the 7 log-Hu moments
and the log relative area of its component (0 on line pixels), plus the sketch itself. A shallow U-Net with
CoordConv (Liu et al. 2018: two coordinate channels in [-1, 1] appended to the input) maps them to a feature
map; the U is two levels deep, with ``bottom_blocks`` dilated residual blocks at 1/4 resolution for context, and
the bottom's output is upsampled and concatenated to the U's last layer, then merged by a final block (the
poster's Figure 2). Embeddings are the per-component average of the feature map, Eq. 2 (a scatter-add, the
poster's "matrix multiplication with the label map"), L2-normalised, so the cosine distance is
``d = 1 - <s_u, s_v>``.

Matching (inference): a one-to-one assignment on the cosine distance plus a position and size prior (match-hand's
centroid and area terms at half weight; the poster, too, "combines hand-crafted feature extraction and neural
networks") with a "no match" option at ``no_match_distance``, then components left unmatched take their cheapest
reference component within that distance (match-hand's solver on the learned distance; ``solver="nearest"`` is
the poster's read-out, each component its nearest reference component; :class:`UNetMatcher`); it is painted by
:class:`benchmark.models.matchers.ComponentMatcher` (exact reference colours, ``output.component_matches``).
``match-graph-unet`` (:class:`UNetGraphMatcher`) puts the same embeddings into the node affinity of the ICPR'20
graph matching of ``match-graph`` instead.

Training (``bench train --model match-unet``): the forward also paints every target component with the
softmax(-d / ``temperature``)-weighted mean colour of the reference components, so the shared L1 colour loss
trains it, and adds the poster's triplet loss, Eq. 3, ``d(u, v_p) + max(0, K - d(u, v_n))`` with margin
``K = margin``, as ``auxiliary_loss`` (the trainer adds it). Positives are "certainly correct" matches from the
two ground-truth colour frames (:func:`dataprep.components.match_arrays`, as the poster: colour plus hand-crafted
features); the negative is the hardest reference component of another colour (hard example mining). The
network sees no colour at all (shape features only), so BasicPBC's random re-palette of the reference would not
change what it learns and is not applied.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from baselines.model import ColorizationModel, load_trained, register_trainable
from benchmark.model import register_model
from benchmark.models.matchers import (NO_MATCH, ComponentMatcher, CostWeights, GraphMatcher, RegionFeatures,
                                        assign_one_to_one, cost_matrix, labels_of)
from dataprep.components import component_columns, log_hu

#: Input channels: 7 log-Hu, log relative area, sketch (+ 2 coordinates).
FEATURE_CHANNELS = 9


def network_size(height: int, width: int, net_side: int) -> tuple[int, int]:
    """(h, w) the network runs at: the frame scaled so its longer side is at most ``net_side`` (0 = as is)."""
    if not net_side or max(height, width) <= net_side:
        return height, width
    scale = net_side / max(height, width)
    return max(4, round(height * scale)), max(4, round(width * scale))


def pixel_features(labels: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Eq. 1: (FEATURE_CHANNELS, h, w) float32 from (H, W) labels: log-Hu and log relative area of each pixel's
    component, and the paper mask (1 off lines; the line art as the labels see it, so training and scoring see
    the same input whichever sketch the batch carries).

    The moments are those of the full-resolution components; the map is sampled nearest-neighbour at ``size``
    ((h, w), default (H, W)): pixel (i, j) takes the label at (floor(i H / h), floor(j W / w)), the pixel
    ``F.interpolate(mode="nearest")`` picks, without a full-resolution feature map.
    """
    height, width = labels.shape
    h, w = size or (height, width)
    sampled = labels
    if (h, w) != (height, width):
        sampled = labels[np.ix_(np.arange(h) * height // h, np.arange(w) * width // w)]
    features = np.zeros((FEATURE_CHANNELS, h, w), np.float32)
    features[8] = sampled > 0
    columns = component_columns(labels, np.zeros((height, width, 3), np.uint8))
    if not columns["id"]:
        return features
    ids = np.asarray(columns["id"])
    table = np.zeros((int(labels.max()) + 1, 8), np.float32)
    # log-Hu moments reach about +-30 for thin shapes; / 10 keeps the inputs near unit scale
    table[ids, :7] = log_hu(np.asarray(columns["hu"], np.float64)) / 10.0
    table[ids, 7] = np.log(np.asarray(columns["area"], np.float64) / (height * width)) / 10.0
    features[:8] = table[sampled].transpose(2, 0, 1)
    return features


def coordinates(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """CoordConv channels: (B, 2, H, W) y and x in [-1, 1]."""
    ys = torch.linspace(-1, 1, height, device=device).view(1, 1, height, 1).expand(batch, 1, height, width)
    xs = torch.linspace(-1, 1, width, device=device).view(1, 1, 1, width).expand(batch, 1, height, width)
    return torch.cat([ys, xs], 1)


def block(inputs: int, outputs: int, dilation: int = 1) -> nn.Sequential:
    """Two 3x3 convolutions with group norm (4 channels per group) and ReLU."""
    groups = max(1, outputs // 4)
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=dilation, dilation=dilation),
                         nn.GroupNorm(groups, outputs), nn.ReLU(inplace=True),
                         nn.Conv2d(outputs, outputs, 3, padding=1), nn.GroupNorm(groups, outputs),
                         nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = block(channels, channels, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def component_means(values: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2: per-component mean of (C, H, W) ``values`` over (H, W) int64 ``labels``; returns (ids (n,) int64
    sorted, means (n, C)). Line pixels (0) are left out. Differentiable in ``values``."""
    flat = labels.reshape(-1)
    ids, inverse = torch.unique(flat, return_inverse=True)
    sums = torch.zeros(len(ids), values.shape[0], device=values.device, dtype=values.dtype)
    sums.index_add_(0, inverse, values.reshape(values.shape[0], -1).t())
    counts = torch.bincount(inverse, minlength=len(ids)).clamp(min=1).to(values.dtype)
    keep = ids > 0
    return ids[keep], sums[keep] / counts[keep, None]


def bilinear_taps(size: int, map_size: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The two source indices and weights of each of ``size`` output positions when a ``map_size`` axis is
    upsampled bilinearly with ``align_corners=False`` (PyTorch's rule: source ``(i + 0.5) map_size / size - 0.5``,
    clamped at 0; the upper tap clamped at the last index): ((i0, w0), (i1, w1)), int64 and float64 (size,)."""
    source = np.maximum((np.arange(size) + 0.5) * (map_size / size) - 0.5, 0.0)
    lower = np.minimum(source.astype(np.int64), map_size - 1)
    upper_weight = source - lower
    return (lower, 1.0 - upper_weight), (np.minimum(lower + 1, map_size - 1), upper_weight)


def region_means(values: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2 at network resolution: the per-component mean of a (C, h, w) map, bilinearly upsampled to the
    (H, W) int64 ``labels`` of the frame it covers, without building the upsampled (C, H, W) map (32 channels
    at 1080p: 265 MB, and most of the matcher's time); returns (ids (n,) int64 sorted, means (n, C)), line
    pixels (0) left out. Equal to :func:`component_means` of ``F.interpolate(values, (H, W), mode="bilinear")``.

    Each pixel's upsampled value is a weighted sum of up to four map cells (:func:`bilinear_taps` per axis),
    so a component's sum is ``sum_cells weight(component, cell) value(cell)``, the weights summed over its
    pixels. They come from the runs of equal (label, cell) codes along the rows, one pass per tap (a few
    hundred thousand runs each at 1080p), grouped once. Differentiable in ``values``.
    """
    height, width = labels.shape
    h, w = values.shape[-2:]
    if (h, w) == (height, width):
        return component_means(values, labels)
    flat_labels = labels.reshape(-1).cpu().numpy() * (h * w)
    codes, weights = [], []
    for rows, row_weights in bilinear_taps(height, h):
        for cols, col_weights in bilinear_taps(width, w):
            code = flat_labels + (rows[:, None] * w + cols[None, :]).reshape(-1)
            starts = np.flatnonzero(np.concatenate([[True], code[1:] != code[:-1]]))
            codes.append(code[starts])
            weights.append(np.add.reduceat((row_weights[:, None] * col_weights[None, :]).reshape(-1), starts))
    # hash grouping, then sorting only the distinct codes (far fewer than the runs)
    summed = pd.Series(np.concatenate(weights)).groupby(np.concatenate(codes), sort=False).sum().sort_index()
    pair_codes = torch.from_numpy(summed.index.to_numpy(copy=True)).to(values.device)
    pair_weights = torch.from_numpy(summed.to_numpy(copy=True)).to(values.device, values.dtype)
    ids, index = torch.unique_consecutive(pair_codes // (h * w), return_inverse=True)
    cells = values.reshape(values.shape[0], -1)[:, pair_codes % (h * w)].t()  # (pairs, C)
    sums = torch.zeros(len(ids), values.shape[0], device=values.device, dtype=values.dtype)
    sums.index_add_(0, index, cells * pair_weights[:, None])
    areas = torch.zeros(len(ids), device=values.device, dtype=values.dtype).index_add_(0, index, pair_weights)
    keep = ids > 0
    return ids[keep], sums[keep] / areas[keep, None]


@register_trainable("match-unet", load=lambda weights=None, device="cpu": UNetMatcher.load(weights, device))
class MatchUNet(ColorizationModel):
    """The poster's correspondence network (module docstring).

    Args:
        width: channels of the first U level (the second has 2x, the bottom 4x).
        bottom_blocks: dilated residual blocks at the bottom (context without depth).
        embedding: embedding size.
        net_side: the network runs on frames scaled so the longer side is at most this (0 = full size), and its
            map is pooled per component from that resolution, as if bilinearly upsampled to the frame's
            (:func:`region_means`), so small components keep their own embedding.
        temperature: softmax temperature of the differentiable colour painting used for the L1 loss.
        margin: triplet margin K (Eq. 3).
        triplet_weight: weight of the triplet loss next to the L1 colour loss.
        no_match_distance: cosine distance above which a target component gets no match.
    """

    requires = ("reference_colour", "reference_sketch", "target_sketch")
    presets = {
        "tiny": {"model": {"width": 4, "bottom_blocks": 1, "embedding": 8, "net_side": 0},
                 "train": {"batch_size": 2, "epochs": 1, "lr": 1e-3}},
        "cpu": {"model": {"width": 8, "bottom_blocks": 2, "embedding": 32, "net_side": 384},
                "train": {"batch_size": 4, "epochs": 200, "lr": 1e-3, "perceptual_weight": 0.0}},
        "paper": {"model": {"width": 32, "bottom_blocks": 4, "embedding": 64, "net_side": 768},
                  "train": {"batch_size": 8, "epochs": 200, "lr": 1e-4, "perceptual_weight": 0.0}},
    }

    def __init__(self, width: int = 32, bottom_blocks: int = 4, embedding: int = 64, net_side: int = 768,
                 temperature: float = 0.05, margin: float = 0.5, triplet_weight: float = 1.0,
                 no_match_distance: float = 0.5):
        super().__init__(width=width, bottom_blocks=bottom_blocks, embedding=embedding, net_side=net_side,
                         temperature=temperature, margin=margin, triplet_weight=triplet_weight,
                         no_match_distance=no_match_distance)
        self.net_side, self.temperature, self.margin = net_side, temperature, margin
        self.triplet_weight, self.no_match_distance = triplet_weight, no_match_distance
        self.level1 = block(FEATURE_CHANNELS + 2, width)
        self.level2 = block(width, 2 * width)
        self.bottom_in = block(2 * width, 4 * width)
        self.bottom = nn.Sequential(*[ResidualBlock(4 * width, 2 ** (i % 3)) for i in range(bottom_blocks)])
        self.up2 = block(6 * width, 2 * width)
        self.up1 = block(3 * width, width)
        # the merge of the two branches runs at full resolution: 1x1 convolutions keep it cheap
        self.merge = nn.Sequential(nn.Conv2d(5 * width, embedding, 1), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(embedding, embedding, 1)
        self._triplet: torch.Tensor | None = None

    def feature_map(self, features: torch.Tensor) -> torch.Tensor:
        """(B, FEATURE_CHANNELS, h, w) at network resolution (:func:`network_size`) -> (B, embedding, h, w)."""
        h, w = features.shape[-2:]
        pad_h, pad_w = (-h) % 4, (-w) % 4
        x = F.pad(features, (0, pad_w, 0, pad_h), mode="replicate")
        x = torch.cat([x, coordinates(len(x), *x.shape[-2:], x.device)], 1)
        x1 = self.level1(x)
        x2 = self.level2(F.max_pool2d(x1, 2))
        bottom = self.bottom(self.bottom_in(F.max_pool2d(x2, 2)))
        u2 = self.up2(torch.cat([F.interpolate(bottom, size=x2.shape[-2:], mode="bilinear", align_corners=False),
                                 x2], 1))
        u1 = self.up1(torch.cat([F.interpolate(u2, size=x1.shape[-2:], mode="bilinear", align_corners=False), x1], 1))
        context = F.interpolate(bottom, size=x1.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.merge(torch.cat([u1, context], 1)))[..., :h, :w]

    def embed(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per sample (ids, L2-normalised embeddings (n, embedding)) of the components of (B, H, W) ``labels``:
        the network runs at :func:`network_size` and its map is pooled there (:func:`region_means`)."""
        size = network_size(*labels.shape[-2:], self.net_side)
        features = torch.from_numpy(np.stack([pixel_features(l, size) for l in labels.cpu().numpy()]))
        maps = self.feature_map(features.to(labels.device))
        pooled = [region_means(maps[b], labels[b]) for b in range(len(labels))]
        return [(ids, F.normalize(means, dim=1)) for ids, means in pooled]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        target_labels, reference_labels = labels_of(batch, "target"), labels_of(batch, "reference")
        reference_colour = batch["reference_colour"][:, 0]
        targets, references = self.embed(target_labels), self.embed(reference_labels)
        outputs, triplets = [], []
        for b, ((t_ids, t_emb), (r_ids, r_emb)) in enumerate(zip(targets, references)):
            canvas = reference_colour[b].mean(dim=(1, 2), keepdim=True).expand_as(reference_colour[b])
            if len(t_ids) == 0 or len(r_ids) == 0:
                outputs.append(canvas + 0 * (t_emb.sum() + r_emb.sum()))  # keeps every parameter in the graph
                continue
            distance = 1 - t_emb @ r_emb.t()  # (n_t, n_r) cosine distance
            weights = torch.softmax(-distance / self.temperature, dim=1)
            _, r_colour = component_means(reference_colour[b], reference_labels[b])
            colours = weights @ r_colour  # (n_t, 3)
            lookup = torch.zeros(int(target_labels[b].max()) + 1, dtype=torch.long, device=colours.device)
            lookup[t_ids] = torch.arange(len(t_ids), device=colours.device)
            index = lookup[target_labels[b]]
            painted = colours[index].permute(2, 0, 1)
            outputs.append(torch.where(target_labels[b][None] > 0, painted, canvas))
            if self.training and "target_colour" in batch:
                triplets.append(self.triplet_loss(distance, t_ids, r_ids, target_labels[b], reference_labels[b],
                                                  batch["target_colour"][b], reference_colour[b]))
        self._triplet = (self.triplet_weight * torch.stack(triplets).mean()) if triplets else None
        return torch.stack(outputs)

    def auxiliary_loss(self, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The poster's triplet loss of the last training-mode forward (zero when it had no certain match)."""
        if self._triplet is None:
            return target.new_zeros(()), {}
        return self._triplet.float(), {"triplet": float(self._triplet.detach())}

    def triplet_loss(self, distance: torch.Tensor, t_ids: torch.Tensor, r_ids: torch.Tensor,
                     target_labels: torch.Tensor, reference_labels: torch.Tensor, target_colour: torch.Tensor,
                     reference_colour: torch.Tensor) -> torch.Tensor:
        """Eq. 3 over the certain ground-truth matches, hardest other-colour negative per anchor."""
        from dataprep.components import MatchArrays, component_features, match_arrays

        def u8(colour: torch.Tensor) -> np.ndarray:
            return (colour.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()

        t_u8, r_u8 = u8(target_colour), u8(reference_colour)
        t_np, r_np = target_labels.cpu().numpy(), reference_labels.cpu().numpy()
        t_features, r_features = component_features(t_np, t_u8), component_features(r_np, r_u8)
        pairs = match_arrays(MatchArrays.of(r_features), MatchArrays.of(t_features), t_np.shape)
        if not pairs:
            return distance.sum() * 0
        t_index = {int(i): k for k, i in enumerate(t_ids.tolist())}
        r_index = {int(i): k for k, i in enumerate(r_ids.tolist())}
        anchors = torch.tensor([t_index[t] for _, t in pairs], device=distance.device)
        positives = torch.tensor([r_index[r] for r, _ in pairs], device=distance.device)
        r_mean = torch.tensor(np.array([f.mean_rgb for f in r_features]), device=distance.device)
        t_mean = torch.tensor(np.array([f.mean_rgb for f in t_features]), device=distance.device)
        same_colour = (t_mean[anchors][:, None, :] - r_mean[None, :, :]).abs().amax(dim=2) <= 12.0
        rows = distance[anchors]
        negatives = rows.masked_fill(same_colour, float("inf")).min(dim=1).values
        positive = rows.gather(1, positives[:, None])[:, 0]
        hinge = torch.where(torch.isfinite(negatives), F.relu(self.margin - negatives), torch.zeros_like(negatives))
        return (positive + hinge).mean()


class UNetEmbeddings:
    """What the matchers built on :class:`MatchUNet` share: the network's embeddings of both frames' components
    (computed in :meth:`paint`, before the subclass matches) and their cosine distances."""

    network: MatchUNet

    def __init__(self, network: MatchUNet, **kwargs):
        super().__init__(**kwargs)
        self.network = network.eval()
        self.weights_sha256: str | None = None
        self._embeddings: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def load(cls, weights: str | os.PathLike | None = None, device: Any = "cpu", **settings):
        """The matcher on ``match-unet``'s weights (shipped ones when ``weights`` is None)."""
        colorizer = load_trained("match-unet", weights, device, preset="cpu")
        matcher = cls(colorizer.model, **settings)
        matcher.weights_sha256 = colorizer.weights_sha256
        return matcher

    @torch.no_grad()
    def paint(self, warped, reference_colour, target_labels, reference_labels):
        device = next(self.network.parameters()).device

        def embed(labels: np.ndarray) -> torch.Tensor:
            return self.network.embed(torch.from_numpy(labels.astype(np.int64))[None].to(device))[0][1].cpu()

        if target_labels.max(initial=0) > 0 and reference_labels.max(initial=0) > 0:
            self._embeddings = (embed(target_labels), embed(reference_labels))
        return super().paint(warped, reference_colour, target_labels, reference_labels)

    def distances(self, rows: slice = slice(None)) -> np.ndarray:
        """(n_target[rows], n_reference) float64 cosine distance ``1 - <s_u, s_v>`` in [0, 2] (poster, Eq. 3's d)."""
        target_embedding, reference_embedding = self._embeddings
        return (1 - target_embedding[rows] @ reference_embedding.t()).double().numpy()


class UNetMatcher(UNetEmbeddings, ComponentMatcher):
    """The scoring model of ``match-unet``: embeddings from :class:`MatchUNet` compared by cosine distance (no
    match above ``network.no_match_distance``), painted like the other matchers.

    Args: those of :class:`ComponentMatcher`, plus
        solver: ``"assignment"`` (default): a one-to-one assignment on the matching cost with a "no match"
            option at ``no_match_distance`` (:func:`assign_one_to_one`), then each component it left unmatched
            takes its cheapest reference component when that costs at most ``no_match_distance`` (match-hand's
            solver, on the learned distance); ``"nearest"``: every component takes its cheapest reference
            component (the poster's read-out). With more than ``max_assignment`` components on a side the
            assignment is skipped (cubic time). Measured on the generated clip and the real line-art clips
            (``components@2``, baselines/pretrained/MODEL_CARD.md): the assignment lifts acc by 0.006 / 0.044 /
            0.092 (generated / suneo / multigraph), and pix_acc and match-acc on all three, because two target
            components rarely are one reference component while the nearest-neighbour read-out often says so.
        geometry_weight: weight of a position and size prior added to the cosine distance ``d``. The matching
            cost is ``d + geometry_weight * (no_match_distance / weights.no_match) * (w_pos |c_t - c_r| / (0.1
            diag) + w_area |log2(a_t / a_r)|)``: match-hand's position and area terms with match-hand's weights,
            rescaled so that match-hand's "no match" cost maps to the cosine "no match" distance. Default 0.5,
            half of match-hand's (the share ``match-graph-unet`` gives match-hand's cost); 0 = the network alone.
            The poster's network sees sizes and CoordConv coordinates, but its pooled embeddings still confuse
            mid-sized regions far apart (on the real line-art clips most of the pixels match-unet got wrong and
            match-hand right were 20-320 px regions given a distant reference region); the prior costs 0.01
            acc on the generated clip and gains 0.02 / 0.04 on suneo / multigraph, with pix_acc up on both
            (baselines/pretrained/MODEL_CARD.md, "The geometry prior").
    """

    #: the geometry prior leaves match-hand's colour term out, so no colour trust is worked out
    colour_cost = False

    def __init__(self, network: MatchUNet, solver: str = "assignment", geometry_weight: float = 0.5, **kwargs):
        super().__init__(network, **kwargs)
        if solver not in ("assignment", "nearest"):
            raise ValueError(f"solver {solver!r}: use 'assignment' or 'nearest'")
        if not geometry_weight >= 0:
            raise ValueError(f"geometry_weight {geometry_weight!r}: must be >= 0")
        self.solver = solver
        self.geometry_weight = geometry_weight

    def matching_cost(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int]) -> np.ndarray:
        """(n_target, n_reference) float64: the cosine distance plus the geometry prior (class docstring)."""
        cost = self.distances()
        if self.geometry_weight:
            geometry = CostWeights(position=self.weights.position, area=self.weights.area, shape=0.0, colour=0.0,
                                   neighbours=0.0, no_match=self.weights.no_match)
            scale = self.geometry_weight * self.network.no_match_distance / self.weights.no_match
            cost = cost + scale * cost_matrix(target, reference, shape, geometry)
        return cost

    def match(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int]) -> np.ndarray:
        cost = self.matching_cost(target, reference, shape)
        no_match = self.network.no_match_distance
        best = cost.argmin(axis=1)
        nearest = np.where(cost[np.arange(len(best)), best] <= no_match, best, NO_MATCH)
        if self.solver == "nearest" or max(len(target), len(reference)) > self.max_assignment:
            return nearest
        return assign_one_to_one(cost, no_match, rest=nearest)


class UNetGraphMatcher(UNetEmbeddings, GraphMatcher):
    """``match-graph-unet``: the ICPR'20 graph matching of ``match-graph`` with the learned embeddings of
    ``match-unet`` in the node affinity, as the paper uses deep (ResNet-34) features there.

    The node cost of a candidate pair is ``hand_weight * cost_hand + unet_weight * d * no_match / no_match_distance``
    (``d`` the cosine distance, scaled so that ``no_match_distance`` costs match-hand's ``no_match``): with
    L2-normalised embeddings ``|f_t - f_r|^2 / max(|f_t|^2, |f_r|^2) = 2 d``, so the node affinity
    ``exp(-cost / node_scale)`` with ``hand_weight = 0`` is the paper's Eq. 7 on these features.

    Solved as ``match-graph`` (its default solver: row-normalised candidate scores, a one-to-one first matching
    on the node cost plus the graph-context penalty, a many-to-one second matching; ``solver="spectral"`` with
    ``top_k=5, node_scale=1, iterations=30`` is the first solver, with which the node-cost weights were chosen).

    Defaults: half of each. The network alone (``hand_weight=0``) finds more regions but loses some large ones
    that match-hand's colour and position terms keep; the sum of both at full weight costs more than the
    no-match cost too often (scores of each setting: baselines/pretrained/MODEL_CARD.md).
    """

    def __init__(self, network: MatchUNet, hand_weight: float = 0.5, unet_weight: float = 0.5, **kwargs):
        super().__init__(network, **kwargs)
        self.hand_weight, self.unet_weight = hand_weight, unet_weight

    def node_cost(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int],
                  rows: slice) -> np.ndarray:
        cost = self.distances(rows) * (self.unet_weight * self.weights.no_match / self.network.no_match_distance)
        if self.hand_weight:
            cost += self.hand_weight * cost_matrix(target, reference, shape, self.weights, rows)
        return cost


@register_model("match-graph-unet")
def match_graph_unet(weights: str | None = None, device: Any = "cpu", **settings) -> UNetGraphMatcher:
    """Component matcher: ICPR'20 graph matching with match-unet's embeddings in the node affinity."""
    return UNetGraphMatcher.load(weights, device, **settings)
