"""Component matchers (paint-bucket colourisers): ``match-hand`` and ``match-graph``.

A matcher answers, for every line-enclosed component of the target line art (``target_components``), which
component of the reference (``reference_components[:, 0]``) it is, or "no match", and paints each matched
target component with its reference component's colour (the mode of the reference's pixels there, so flat
cel paint is copied exactly). It returns the colour frame, (B, 3, H, W) float RGB in [0, 1], carrying its
answers as ``output.component_matches``: (B, L) int64, entry ``t`` = the reference component id of target
component ``t``, -1 = no match (docs/models.md; ``components@2`` scores them with AnimeRun's metrics).
Components left without a match are filled with the reference palette colour nearest to the most frequent
flow-warped reference colour over them (``unmatched_statistic="mode"``; the first version took the mean colour,
which the warped line pixels at a region's border pull away from its paint, so an unmatched region the warp
itself colours right could be painted wrong)
(:class:`benchmark.models.flow_warp.FlowWarp`, run with the longer side scaled to at most ``flow_side`` pixels and
the warp scaled back: the colour feature needs region means, not sharp borders, and DIS at 1080p costs seconds);
line pixels keep the warped colour.
``match-graph`` (and ``match-graph-unet``) paint unmatched specks (at most 10 px) instead with the colour of their
best-scoring graph candidate, their answer staying "no match", when the reference is a flat cel (the painted-
reference gate below; ``GraphMatcher(unmatched_colour="graph", unmatched_max_area=10)``, the default): on the
real line-art clips most components both matchers get wrong are specks of a few pixels answered "no match",
whose warped colour is mostly the line's (baselines/pretrained/MODEL_CARD.md).

Painted references: a paint bucket gives every region one colour, which on a frame painted with shading and
texture (Ghibli, LVCD) flattens what the artist painted: on the real painted evaluation shots the painted
frames scored 1-5 dB below the flow warp they start from and, at short intervals, below ``copy-reference``. So
the colour frame follows the idea of region voting's painted-frame gate (:mod:`benchmark.models.vote`): when
the share of the reference's region pixels within ``flat_tolerance`` of their region's median colour
(:func:`benchmark.models.vote.flat_fraction`) is below ``min_flat``, the colour frame is the flow warp,
unflattened; the answers (``component_matches``) are computed and returned either way; ``min_flat=0`` paints
every frame. The defaults (tolerance 0.06, about 15 of 255 levels; ``min_flat`` 0.85) are wider than voting's
because paint-bucket colours must survive video compression: measured on every reference of the
``cmft-interval@1`` samples, the demo's H.264 flat cels score 0.88-0.98 (at voting's 0.02 tolerance: 0.56-0.94,
half of them below voting's 0.8), the painted lvcd_sample_1 0.76-0.78 and tre-net 0.60-0.90 (3 of 44 above
0.85: near-flat Ghibli backgrounds, painted).
A frame the gate calls painted can still be a flat cel on one painted region, a gradient sky: then at least
``min_flat`` of its reference regions (by count) are *exactly* flat, at least ``min_flat`` of their pixels within
``exact_tolerance`` (voting's 0.02) of their median, and the target regions matched to one of those are painted
while every other region keeps the warp (``exact_tolerance=None``: the whole frame keeps the warp, the first
version). Measured on the references the gate calls painted: generated clips with a gradient sky 0.92-0.96 of
their regions exactly flat; the real painted lvcd_sample_1 0.52-0.58 and tre-net 0.15-0.63, so their frames
stay the warp (their PSNR is unchanged). On generated clips no model was tuned on (seeds 8-13) every matcher's
acc and pix_acc rose or stayed equal on every seed (baselines/pretrained/MODEL_CARD.md).

``match-hand`` is the hand-crafted baseline of the Cinnamon poster (Dang et al., SIGGRAPH 2020 posters,
"Correspondence Neural Network for Line Art Colorization", Table 1, 63.7%): per component log-Hu moments,
area, centroid and neighbour count, plus the mean colour of the flow-warped reference inside the component.
The cost of matching target component t to reference component r (all terms dimensionless):

    cost(t, r) = w_pos |c_t - c_r| / (0.1 diag) + w_area |log2(a_t / a_r)| + w_shape mean|logHu_t - logHu_r|
               + w_colour trust_t |warp_t - colour_r| / (255 sqrt 3) + w_nbr |log2((1 + n_t) / (1 + n_r))|

``trust_t`` (``colour_trust=True``, the default) is the share of component t's flow-warped pixels within
``flat_tolerance`` of their median colour (:func:`benchmark.models.vote.region_flat_shares`): where the flow
fails (large motion), a component's warped pixels mix the colours of several reference regions and their mean
is the colour of none of them, or of a wrong one, which then outweighed a right shape and position. Measured
with ``docs/scripts/match_table.py`` on generated clips no model was tuned on (seeds 8-13, where the rule was
chosen), component accuracy rose on five of six and tied on one; on the sets of the model card afterwards
match-hand's rose everywhere (suneo 0.924 -> 0.968; baselines/pretrained/MODEL_CARD.md). ``colour_trust=False``
is the first version, every colour term at full weight.

solved as a one-to-one assignment (``scipy.optimize.linear_sum_assignment``) with one "no match" column per
target component at cost ``no_match_cost``; a target component left on its "no match" column then takes its
cheapest reference component if that costs less than ``no_match_cost`` (one reference region often splits
into several target regions: many-to-one, as the ICPR paper's second matching).

``match-graph`` is the graph matching of Do et al. (ICPR 2020, "Anime Sketch Colorization by Component-based
Matching using Deep Appearance Features and Graph Representation"): candidates are each target component's
``top_k`` cheapest reference components under match-hand's cost (the full affinity matrix would be
(n_ref n_tgt)^2); node affinity ``exp(-cost / node_scale)`` (their Eq. 7 with match-hand's features in place of
ResNet-34 features); edge affinity between candidates (t1, r1), (t2, r2) for adjacent target components
t1 ~ t2: ``Q_shape(t1, r1) Q_shape(t2, r2)`` (Eq. 6) times the area term of Eq. 5
``exp(-beta |a_t1 a_t2 - a_r1 a_r2| / max(a_t1 a_t2, a_r1 a_r2))``, times a relative-position term
``exp(-|(c_t2 - c_t1) - (c_r2 - c_r1)|^2 / (2 (0.1 diag)^2))``, doubled when r1 ~ r2 are adjacent too. Row-
normalised iterations of that affinity matrix score each component's candidates (how well its neighbours'
candidates agree with each); then, as the paper's two matchings, a one-to-one first matching (assignment on
match-hand's cost plus a penalty for candidates the graph scores low, with a "no match" option) and a
many-to-one second matching for the components left over (``GraphMatcher``, ``solver="assignment"``).
The first version solved it by spectral matching alone (principal eigenvector by power iteration, Leordeanu and
Hebert 2005, each component taking its best-scoring candidate); that lost to match-hand on the multigraph clips
(component accuracy 0.662 against 0.730). What was measured there: each component's cheapest candidate alone
scores 0.586, so match-hand's strength is its one-to-one assignment, which the spectral solver lacked; an
assignment on the eigenvector's scores alone gives 0.708, on match-hand's cost plus the context penalty 0.723
(baselines/pretrained/MODEL_CARD.md). ``match-graph-unet`` uses the same solver (its node-cost weights were chosen
with the first one, ``solver="spectral"``).

Limits: a target with no closed region (label map all 0) returns the flow-warped colour and no answers; with
more than ``max_assignment`` components on a side the one-to-one assignment (cubic time) is replaced by each
target component's cheapest reference component (match-graph: its best-scoring candidate), computed in blocks
of rows: memory stays bounded and the time grows with n_target * n_reference instead of cubically (docs/models.md; docs/scripts/match_speed.py times a
4,608-region 1080p pair).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from benchmark.metrics.component_accuracy import SIZE_THRESHOLD, code_rgb, component_colours
from benchmark.model import Batch, no_weights, register_model
from benchmark.models.flow_warp import FlowWarp
from benchmark.models.vote import FLAT_TOLERANCE, Flatness, region_flat_shares
from dataprep.components import component_columns, label_components, log_hu

#: Painted-reference gate of the colour frame (module docstring): a reference whose share of region pixels within
#: PAINT_FLAT_TOLERANCE (RGB in [0, 1]) of their region's median is below PAINT_MIN_FLAT is not flat-filled.
PAINT_FLAT_TOLERANCE = 0.06
PAINT_MIN_FLAT = 0.85
NO_MATCH = -1


def assign_one_to_one(cost: np.ndarray, no_match: float, rest: np.ndarray | None = None) -> np.ndarray:
    """One-to-one assignment on ``cost`` (n_target x n_reference, float) where each target may instead take
    "no match" at cost ``no_match``; returns (n_target,) int64 reference indices, NO_MATCH for unmatched, or,
    given ``rest`` (n_target,) int64, ``rest``'s answer for the targets the assignment left unmatched (the
    matchers' second, many-to-one matching)."""
    n_target = cost.shape[0]
    dummy = np.full((n_target, n_target), np.inf)
    np.fill_diagonal(dummy, no_match)
    assigned_rows, assigned_cols = linear_sum_assignment(np.concatenate([cost, dummy], axis=1))
    one_to_one = np.full(n_target, NO_MATCH, np.int64) if rest is None else np.array(rest, np.int64)
    real = assigned_cols < cost.shape[1]
    one_to_one[assigned_rows[real]] = assigned_cols[real]
    return one_to_one


@dataclass(frozen=True)
class RegionFeatures:
    """Per-component features of one frame, one row per component in id order.

    ids (n,) int64; area (n,) float64 px; centroid (n, 2) float64 (row, col); log_hu (n, 6) float64
    (:func:`dataprep.components.log_hu`, hu[6] dropped: it flips sign under reflection); mean_rgb (n, 3) float64
    0..255 of the colour image given; degree (n,) number of adjacent components; edges (m, 2) int64 row indices
    of adjacent component pairs (i < j); colour_trust (n,) float64 in [0, 1] or None: how far the colour cost
    term trusts ``mean_rgb`` (:meth:`ComponentMatcher.paint`: the share of the component's flow-warped pixels
    that agree with their median colour; None = fully).
    """

    ids: np.ndarray
    area: np.ndarray
    centroid: np.ndarray
    log_hu: np.ndarray
    mean_rgb: np.ndarray
    degree: np.ndarray
    edges: np.ndarray
    colour_trust: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def adjacency(labels: np.ndarray) -> np.ndarray:
    """Pairs of components that touch across a line: (m, 2) int64 label ids, a < b, sorted.

    Line pixels (0) are given the label of the nearest component pixel (OpenCV's Euclidean distance transform
    with the nearest pixel's index, ``DIST_LABEL_PIXEL``, which numbers region pixels in raster order), so two
    regions are adjacent when the line between them is the border of their grown areas.
    """
    labels = np.asarray(labels, dtype=np.int32)  # half the memory traffic of int64; codes below are int64
    if labels.max(initial=0) == 0:
        return np.zeros((0, 2), np.int64)
    grown = labels
    if (labels == 0).any():
        _, nearest = cv2.distanceTransformWithLabels((labels == 0).view(np.uint8), cv2.DIST_L2, 5,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
        grown = labels[labels != 0][nearest - 1]
    base = int(grown.max()) + 1
    codes = []
    for first, second in ((grown[:, 1:], grown[:, :-1]), (grown[1:, :], grown[:-1, :])):
        differ = first != second
        a, b = first[differ], second[differ]
        codes.append(np.minimum(a, b).astype(np.int64) * base + np.maximum(a, b))
    codes = np.unique(np.concatenate(codes))
    return np.stack([codes // base, codes % base], axis=1)


def region_features(labels: np.ndarray, rgb: np.ndarray) -> RegionFeatures:
    """Features of the components of ``labels`` ((H, W) int, 0 = line) over ``rgb`` ((H, W, 3) uint8)."""
    columns = component_columns(labels, rgb)
    ids = np.asarray(columns["id"], np.int64)
    n = len(ids)
    pairs = adjacency(labels)
    edges = np.searchsorted(ids, pairs) if len(pairs) else np.zeros((0, 2), np.int64)
    degree = np.bincount(edges.ravel(), minlength=n).astype(np.float64) if n else np.zeros(0)
    return RegionFeatures(ids=ids, area=np.asarray(columns["area"], np.float64).reshape(n),
                          centroid=np.asarray(columns["centroid"], np.float64).reshape(n, 2),
                          log_hu=log_hu(np.asarray(columns["hu"], np.float64).reshape(n, 7))[:, :6],
                          mean_rgb=np.asarray(columns["mean_rgb"], np.float64).reshape(n, 3),
                          degree=degree, edges=edges)


@dataclass(frozen=True)
class CostWeights:
    """Weights of match-hand's cost terms (module docstring) and the cost of answering "no match"."""

    position: float = 1.0
    area: float = 0.5
    shape: float = 0.1
    colour: float = 6.0
    neighbours: float = 0.25
    no_match: float = 2.5


def cost_matrix(target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int],
                weights: CostWeights, rows: slice = slice(None)) -> np.ndarray:
    """match-hand's cost, (n_target[rows], n_reference) float64 (module docstring).

    Each term is a distance between per-component vectors (``|log2(a_t / a_r)| = |log2 a_t - log2 a_r|``), so
    every term is one ``scipy.spatial.distance.cdist`` call: a C loop without the (n_t, n_r, d) temporaries
    of broadcasting (about 10x faster at thousands of components).
    """
    scale = 0.1 * float(np.hypot(*shape))

    def distance(first: np.ndarray, second: np.ndarray, metric: str) -> np.ndarray:
        return cdist(first.reshape(len(first), -1), second.reshape(len(second), -1), metric)

    # (weight, target vector, reference vector, metric, per-target factor or None)
    terms = ((weights.position / scale, target.centroid, reference.centroid, "euclidean", None),
             (weights.area, np.log2(target.area), np.log2(reference.area), "cityblock", None),
             (weights.shape / target.log_hu.shape[1], target.log_hu, reference.log_hu, "cityblock", None),
             (weights.colour / (255 * 3 ** 0.5), target.mean_rgb, reference.mean_rgb, "euclidean",
              target.colour_trust),
             (weights.neighbours, np.log2(1 + target.degree), np.log2(1 + reference.degree), "cityblock", None))
    cost = np.zeros((len(target.ids[rows]), len(reference)))
    for weight, first, second, metric, factor in terms:
        if weight:  # a term weighted 0 (match-unet's position and size prior uses two) costs no cdist call
            term = distance(first[rows], second, metric) * weight
            cost += term if factor is None else term * factor[rows][:, None]
    return cost


def labels_of(batch: Batch, side: str) -> torch.Tensor:
    """(B, H, W) int64 component labels of the target (``side="target"``) or first reference: from the batch
    (``*_components`` as ``bench`` gives them, ``*_labels`` as :class:`benchmark.data.PairDataset` does), else
    the 4-connected non-line regions of the sketch (lines: sketch < 0.5; :func:`dataprep.components.label_components`)."""
    for key in (f"{side}_components", f"{side}_labels"):
        if key in batch:
            labels = batch[key]
            return (labels[:, 0] if labels.ndim == 4 else labels).long()
    sketch = batch[f"{side}_sketch"]
    sketch = sketch[:, 0] if side == "reference" else sketch
    masks = (sketch[:, 0] < 0.5).cpu().numpy()
    return torch.from_numpy(np.stack([label_components(m).astype(np.int64) for m in masks])).to(sketch.device)


def _to_u8(image: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 (values rounded half to even, as ``np.round``)."""
    scaled = np.clip(image, 0, 1, dtype=np.float32)  # one new array, then in place: 1080p frames are 25 MB each
    scaled *= 255
    np.rint(scaled, out=scaled)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(1, 2, 0))


class ComponentMatcher:
    """Shared frame of the matchers: features, flow warp, painting; subclasses implement :meth:`match`.

    Args:
        weights: match-hand's cost weights.
        max_assignment: largest component count solved as a one-to-one assignment (see module docstring).
        flow_preset: DIS preset of the flow warp that gives the colour feature and the fallback colour.
        flow_side: longer side (pixels) at which the flow is computed.
        min_flat, flat_tolerance: references less flat than ``min_flat``
            (:func:`benchmark.models.vote.flat_fraction` at ``flat_tolerance``) get the flow warp as colour frame
            (module docstring).
        unmatched_statistic: which warped colour of a component left unmatched picks its palette colour:
            ``"mode"`` (default), its most frequent warped colour, or ``"mean"`` (the first version) (module
            docstring).
        colour_trust: weight each target component's colour cost term by the share of its flow-warped pixels
            within ``flat_tolerance`` of their median colour (module docstring); False = the first version,
            every colour term at full weight.
        exact_tolerance: on a reference that fails the ``min_flat`` gate, regions within this tolerance are
            exactly flat; when at least ``min_flat`` of the regions are, the target regions matched to them are
            painted and the rest keep the warp (module docstring); None = the whole frame keeps the warp.
    """

    #: component labels are used when the batch has them, else made from the sketches (:func:`labels_of`)
    requires = ("reference_colour", "reference_sketch", "reference_field", "target_sketch", "target_field")
    #: whether :meth:`match` scores match-hand's colour term (the colour trust is worked out only then)
    colour_cost = True

    def __init__(self, weights: CostWeights | None = None, max_assignment: int = 1500, flow_preset: str = "medium",
                 flow_side: int = 640, min_flat: float = PAINT_MIN_FLAT, flat_tolerance: float = PAINT_FLAT_TOLERANCE,
                 unmatched_statistic: str = "mode", colour_trust: bool = True,
                 exact_tolerance: float | None = FLAT_TOLERANCE):
        if unmatched_statistic not in ("mode", "mean"):
            raise ValueError(f"unmatched_statistic {unmatched_statistic!r}: use 'mode' or 'mean'")
        self.exact_tolerance = exact_tolerance
        self.unmatched_statistic = unmatched_statistic
        self.colour_trust = colour_trust
        #: set by :meth:`match` (else None): (n_target,) reference row per target component whose colour paints
        #: it when it is left unmatched (and no larger than ``unmatched_max_area``), in place of the palette
        #: colour nearest its most frequent (or mean) warped colour
        self.fallback: np.ndarray | None = None
        self.unmatched_max_area: float | None = None
        self.weights = weights or CostWeights()
        self.min_flat = min_flat
        self.flat_tolerance = flat_tolerance
        self.max_assignment = max_assignment
        self.flow = FlowWarp(preset=flow_preset)
        self.flow_side = flow_side

    def warp(self, batch: Batch) -> np.ndarray:
        """Flow-warped reference colour, (B, 3, H, W) float32 in [0, 1], computed at ``flow_side``."""
        height, width = batch["target_sketch"].shape[-2:]
        scale = self.flow_side / max(height, width)
        if scale >= 1:
            return self.flow(batch).detach().cpu().float().numpy()
        size = (max(12, round(height * scale)), max(12, round(width * scale)))
        keys = ("reference_colour", "reference_sketch", "reference_field", "target_sketch", "target_field")
        small = {key: torch.nn.functional.interpolate(batch[key].flatten(0, -4).float(), size=size, mode="bilinear",
                                                      antialias=True, align_corners=False)
                 .reshape(*batch[key].shape[:-2], *size) for key in keys}
        warped = self.flow(small).detach().cpu().float().numpy()
        return np.stack([cv2.resize(np.ascontiguousarray(w.transpose(1, 2, 0)), (width, height),
                                    interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1) for w in warped])

    def match(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int]) -> np.ndarray:
        """(n_target,) int64 row index into ``reference`` per target component, -1 = no match."""
        raise NotImplementedError

    def cheapest(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int],
                 block: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Per target component the cheapest reference row and its cost, in blocks of rows (bounded memory)."""
        best = np.zeros(len(target), np.int64)
        best_cost = np.zeros(len(target))
        for start in range(0, len(target), block):
            rows = slice(start, min(start + block, len(target)))
            cost = cost_matrix(target, reference, shape, self.weights, rows)
            best[rows] = cost.argmin(axis=1)
            best_cost[rows] = cost[np.arange(cost.shape[0]), best[rows]]
        return best, best_cost

    def __call__(self, batch: Batch) -> torch.Tensor:
        warped = self.warp(batch)
        reference_colour = batch["reference_colour"][:, 0].detach().cpu().float().numpy()
        target_labels = labels_of(batch, "target").cpu().numpy()
        reference_labels = labels_of(batch, "reference").cpu().numpy()
        outputs, answers = [], []
        for b in range(len(warped)):
            output, matches = self.paint(warped[b], reference_colour[b], target_labels[b], reference_labels[b])
            outputs.append(output)
            answers.append(matches)
        length = max(len(m) for m in answers)
        padded = np.full((len(answers), length), NO_MATCH, np.int64)
        for b, matches in enumerate(answers):
            padded[b, :len(matches)] = matches
        result = torch.from_numpy(np.stack(outputs)).to(batch["reference_colour"].device)
        result.component_matches = torch.from_numpy(padded)
        return result

    def paint(self, warped: np.ndarray, reference_colour: np.ndarray, target_labels: np.ndarray,
              reference_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pair: (3, H, W) float32 colour in [0, 1] and (L,) int64 answers indexed by target id."""
        target_labels = np.asarray(target_labels, dtype=np.int64)
        matches = np.full(int(target_labels.max(initial=0)) + 1, NO_MATCH, np.int64)
        if target_labels.max(initial=0) == 0 or reference_labels.max(initial=0) == 0:
            return np.array(warped, dtype=np.float32), matches  # no closed region on a side: nothing to match
        reference_u8 = _to_u8(reference_colour)
        warped_u8 = _to_u8(warped)
        target = region_features(target_labels, warped_u8)
        if self.colour_trust and self.colour_cost and self.weights.colour:
            # where the flow fails, a region's warped pixels mix the colours of several reference regions, and
            # their mean is no colour of the reference: its colour term is weighted by how many agree
            target = replace(target, colour_trust=region_flat_shares(warped, target_labels, target.ids,
                                                                      self.flat_tolerance))
        reference = region_features(reference_labels, reference_u8)
        self.fallback = None
        rows = self.match(target, reference, target_labels.shape)
        matched = rows >= 0
        matches[target.ids[matched]] = reference.ids[rows[matched]]
        painted_only = None  # (L,) bool per target id: paint these, keep the warp on the rest
        flatness = Flatness(reference_colour, reference_labels) if self.min_flat > 0 else None
        if flatness is not None and flatness.fraction(self.flat_tolerance) < self.min_flat:
            exact = None if self.exact_tolerance is None else (
                flatness.region_shares(reference.ids, self.exact_tolerance) >= self.min_flat)
            if exact is None or exact.mean() < self.min_flat:
                return np.array(warped, dtype=np.float32), matches  # painted reference: answers, warp unflattened
            # flat cels on a painted region (a gradient sky): paint what matched an exactly flat region
            painted_only = np.zeros(len(matches), bool)
            painted_only[target.ids[matched]] = exact[rows[matched]]
        reference_ids, _, codes = component_colours(reference_u8, reference_labels)
        palette = np.zeros((int(reference_labels.max()) + 1, 3), np.float32)
        palette[reference_ids] = code_rgb(codes) / 255.0
        table = np.zeros((len(matches), 3), np.float32)
        unmatched = ~matched
        if unmatched.any():
            # (no match) the reference palette colour nearest its mode (or mean) warped colour (cel paint reuses
            # the palette; a new region rarely gets a new colour)
            warped_rgb = target.mean_rgb[unmatched]
            if self.unmatched_statistic == "mode":
                # the most frequent warped colour: where the warp copies a flat region's inside exactly, it is
                # that region's paint, which the mean (blended with the warped line pixels at its border) is not
                mode_ids, _, mode_codes = component_colours(warped_u8, target_labels)
                warped_rgb = code_rgb(mode_codes[np.searchsorted(mode_ids, target.ids[unmatched])])
            colours = np.unique(palette[reference_ids], axis=0)
            nearest = np.linalg.norm(warped_rgb[:, None, :] / 255.0 - colours[None], axis=2).argmin(axis=1)
            table[target.ids[unmatched]] = colours[nearest]
            if self.fallback is not None:
                # the matcher's best guess for the components it left unmatched (flat cels only: the gate above)
                guessed = unmatched if self.unmatched_max_area is None else unmatched & (
                    target.area <= self.unmatched_max_area)
                table[target.ids[guessed]] = palette[reference.ids[self.fallback[guessed]]]
        # matched: its reference region's exact colour
        table[matches >= 0] = palette[matches[matches >= 0]]
        # one gather of the whole frame, line pixels (id 0) then taken from the warp
        painted = table[target_labels].transpose(2, 0, 1)
        paint_here = target_labels > 0 if painted_only is None else painted_only[target_labels]
        output = np.where(paint_here[None], painted, np.asarray(warped, dtype=np.float32))
        return np.ascontiguousarray(output), matches


class HandMatcher(ComponentMatcher):
    """``match-hand``: assignment on the hand-crafted cost with a "no match" option (module docstring)."""

    def match(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int]) -> np.ndarray:
        best, best_cost = self.cheapest(target, reference, shape)
        rows = np.where(best_cost < self.weights.no_match, best, NO_MATCH)
        if max(len(target), len(reference)) > self.max_assignment:
            return rows
        cost = cost_matrix(target, reference, shape, self.weights)
        # the assignment decides first; a component it left unmatched takes its cheapest reference when cheap
        return assign_one_to_one(cost, self.weights.no_match, rest=rows)


class GraphMatcher(ComponentMatcher):
    """``match-graph``: graph matching over top-k candidates (module docstring).

    Args:
        top_k: candidates per target component.
        node_scale: cost scale of the node affinity ``exp(-cost / node_scale)``.
        beta: weight of the area term (ICPR Eq. 5).
        iterations: steps of the iteration that scores the candidates.
        solver: ``"assignment"`` (``match-graph``'s default): the candidates' scores come from row-normalised
            iterations of the affinity matrix (each target component's candidate scores sum to 1, so a dense
            cluster of the graph cannot outweigh the rest as it does in the principal eigenvector); the first
            matching is a one-to-one assignment on match-hand's cost plus ``context_weight`` x the context
            penalty ``min(-log(score / best score of that component), context_cap)`` (``context_cap`` for
            references outside the candidates), with a "no match" column at the no-match cost; the second
            matching gives every component left unmatched its cheapest penalised reference below the no-match
            cost (many-to-one, as in the paper). ``"spectral"`` (the first solver): the principal
            eigenvector (power iteration) and each component's best-scoring candidate. Above ``max_assignment``
            components the assignment solver also takes each component's best-scoring candidate, among
            ``large_top_k`` candidates (the affinity matrix grows with k^2 per edge: 20 took 12 s on a 4,608-region
            1080p grid, 5 about 3 s).
        context_weight, context_cap: the context penalty of the assignment solver, in match-hand's cost units.
        unmatched_colour: how a component answered "no match" is painted: ``"graph"`` (default) with the colour
            of its best-scoring candidate when it is a speck (at most ``unmatched_max_area`` px) and the
            reference a flat cel, else as ``"warp"`` (its answer stays "no match" either way); ``"warp"`` as
            match-hand paints it, the reference palette colour nearest its most frequent flow-warped colour.
        unmatched_max_area: the speck size of ``unmatched_colour="graph"``, default BasicPBC's 10 px (the
            ``acc_thres`` threshold); None = every unmatched component. A speck's warped colours are mostly
            the surrounding line's; a larger region's is a fair guess (painting every unmatched component from
            the graph cost component accuracy on the demo dataset; baselines/pretrained/MODEL_CARD.md).
    """

    def __init__(self, top_k: int = 20, node_scale: float = 3.0, beta: float = 1.0, iterations: int = 10,
                 solver: str = "assignment", context_weight: float = 0.3, context_cap: float = 5.0,
                 large_top_k: int = 5, unmatched_colour: str = "graph",
                 unmatched_max_area: float | None = SIZE_THRESHOLD, **kwargs):
        super().__init__(**kwargs)
        if solver not in ("assignment", "spectral"):
            raise ValueError(f"solver {solver!r}: use 'assignment' or 'spectral'")
        if unmatched_colour not in ("graph", "warp"):
            raise ValueError(f"unmatched_colour {unmatched_colour!r}: use 'graph' or 'warp'")
        self.unmatched_colour = unmatched_colour
        self.unmatched_max_area = unmatched_max_area
        self.top_k, self.node_scale, self.beta, self.iterations = top_k, node_scale, beta, iterations
        self.solver, self.context_weight, self.context_cap = solver, context_weight, context_cap
        self.large_top_k = large_top_k

    def node_cost(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int],
                  rows: slice) -> np.ndarray:
        """(n_target[rows], n_reference) cost of each candidate pair, in match-hand's units (a pair costing
        ``weights.no_match`` or more is never matched): match-hand's cost here; subclasses bring other features."""
        return cost_matrix(target, reference, shape, self.weights, rows)

    def affinity(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int],
                 candidates: np.ndarray, costs: np.ndarray) -> sparse.csr_matrix:
        """The (n_t k, n_t k) affinity matrix over the candidates (module docstring): node affinities on the
        diagonal, edge affinities between candidates of adjacent target components."""
        k = candidates.shape[1]
        node = np.exp(-costs / self.node_scale)  # (n_t, k)
        scale = 0.1 * float(np.hypot(*shape))
        n_reference = len(reference)
        reference_edge_codes = reference.edges[:, 0] * n_reference + reference.edges[:, 1]
        rows_, cols_, values = [np.arange(node.size)], [np.arange(node.size)], [node.ravel()]
        if len(target.edges):
            t1, t2 = target.edges[:, 0], target.edges[:, 1]
            a, b = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
            a, b = a.ravel(), b.ravel()  # every candidate pair of the two components
            r1, r2 = candidates[t1][:, a], candidates[t2][:, b]  # (m, k*k)
            shape_term = node[t1][:, a] * node[t2][:, b]  # Eq. 6
            target_product = (target.area[t1] * target.area[t2])[:, None]
            reference_product = reference.area[r1] * reference.area[r2]
            area_term = np.exp(-self.beta * np.abs(target_product - reference_product)
                               / np.maximum(target_product, reference_product))  # Eq. 5
            offset_t = (target.centroid[t2] - target.centroid[t1])[:, None, :]
            offset_r = reference.centroid[r2] - reference.centroid[r1]
            position_term = np.exp(-((offset_t - offset_r) ** 2).sum(axis=2) / (2 * scale ** 2))
            low, high = np.minimum(r1, r2), np.maximum(r1, r2)
            adjacent = np.isin(low * n_reference + high, reference_edge_codes)
            affinity = shape_term * area_term * position_term * np.where(adjacent, 2.0, 1.0)
            affinity[r1 == r2] *= 0.5  # one reference region may colour two target regions, but less likely
            first = (t1[:, None] * k + a[None, :]).ravel()
            second = (t2[:, None] * k + b[None, :]).ravel()
            rows_ += [first, second]
            cols_ += [second, first]
            values += [affinity.ravel(), affinity.ravel()]
        return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows_), np.concatenate(cols_))),
                                 shape=(node.size, node.size))

    def scores(self, matrix: sparse.csr_matrix, shape: tuple[int, int]) -> np.ndarray:
        """(n_t, k) candidate scores: the principal eigenvector (``spectral``) or row-normalised iterations."""
        if self.solver == "spectral":
            score = np.full(matrix.shape[0], 1.0 / np.sqrt(matrix.shape[0]))
            for _ in range(self.iterations):
                score = matrix @ score
                score /= max(np.linalg.norm(score), 1e-300)
            return score.reshape(shape)
        score = np.full(shape, 1.0 / shape[1])
        for _ in range(self.iterations):
            score = (matrix @ score.ravel()).reshape(shape)
            score /= np.maximum(score.sum(axis=1, keepdims=True), 1e-300)
        return score

    def match(self, target: RegionFeatures, reference: RegionFeatures, shape: tuple[int, int]) -> np.ndarray:
        small = max(len(target), len(reference)) <= self.max_assignment
        k = min(self.top_k if small else min(self.top_k, self.large_top_k), len(reference))
        assign = self.solver == "assignment" and small
        candidates = np.zeros((len(target), k), np.int64)
        costs = np.zeros((len(target), k))
        full = np.zeros((len(target), len(reference))) if assign else None
        for start in range(0, len(target), 256):
            rows = slice(start, min(start + 256, len(target)))
            cost = self.node_cost(target, reference, shape, rows)
            part = np.argpartition(cost, k - 1, axis=1)[:, :k] if k < len(reference) else \
                np.tile(np.arange(k), (cost.shape[0], 1))
            candidates[rows] = part
            costs[rows] = np.take_along_axis(cost, part, axis=1)
            if assign:
                full[rows] = cost
        score = self.scores(self.affinity(target, reference, shape, candidates, costs), costs.shape)
        everyone = np.arange(len(target))
        pick = score.argmax(axis=1)
        if self.unmatched_colour == "graph":
            # a component left unmatched (no candidate under the no-match cost: a new region, or a speck whose
            # size and shape say little) is still painted: its best-scoring candidate, whose neighbours agree
            self.fallback = candidates[everyone, pick]
        if not assign:
            chosen_cost = costs[everyone, pick]
            return np.where(chosen_cost < self.weights.no_match, candidates[everyone, pick], NO_MATCH)
        # first matching: one-to-one on match-hand's cost + the context penalty, with a "no match" option
        relative = score / np.maximum(score.max(axis=1, keepdims=True), 1e-300)
        penalty = np.full(full.shape, self.context_cap)
        penalty[np.repeat(everyone, k), candidates.ravel()] = np.minimum(
            -np.log(np.maximum(relative, 1e-300)), self.context_cap).ravel()
        cost = full + self.context_weight * penalty
        # second matching: the rest take their cheapest reference below the no-match cost (many-to-one)
        best = cost.argmin(axis=1)
        rest = np.where(cost[everyone, best] < self.weights.no_match, best, NO_MATCH)
        return assign_one_to_one(cost, self.weights.no_match, rest=rest)


@register_model("match-hand")
def match_hand(weights: str | None = None, device: torch.device | None = None, **settings) -> HandMatcher:
    """Component matcher: hand-crafted features (log-Hu, area, centroid, neighbours, flow-warped colour) + assignment."""
    no_weights("match-hand", weights)
    return HandMatcher(**settings)


@register_model("match-graph")
def match_graph(weights: str | None = None, device: torch.device | None = None, **settings) -> GraphMatcher:
    """Component matcher: ICPR'20 graph matching (top-k candidates, spectral matching, many-to-one)."""
    no_weights("match-graph", weights)
    return GraphMatcher(**settings)
