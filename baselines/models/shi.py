"""Shi et al., "Reference-based deep line art video colorization" (TVCG 2023): ``shi``, ``shi-nosim`` and
``shi-warp`` (the same network on the shared training recipe, :class:`ShiWarp`).

Paper: ``../shared/papers/shi-reference-based-line-art-video-colorization-tvcg2023.txt`` (sections 3-4).

Colour transform network ``G`` (equations 1-2, Figure 2):

* ``EnL`` (target line art), ``EnD`` (distance fields, target and references share it) and ``EnC``
  (reference colours): three identically built encoders of 3 convolutions (7x7 stride 1, then two 4x4
  stride 2), instance norm, ReLU, spectral norm (section 3.5), so features are at 1/4 of the input size.
* ``Sim``, the distance attention layer (section 3.3, Figure 3; :class:`DistanceAttention`): masks
  ``m_i`` and ``n_i`` from the concatenated target and reference field features (equations 3-4), 1x1
  projections to ``C/8`` channels, similarity ``M_i = f_d f_{d_i}^T`` softmax-normalised over the
  positions of all K references together, ``f_mat = f_C M`` and ``f_sim`` by equation 5. The attention
  is computed in chunks of query positions with ``scaled_dot_product_attention`` (:func:`chunked_attention`)
  so at most ``attention_budget`` scores of the ``(HW/16) x (K HW/16)`` matrix exist at a time.
* ``Em``, the embedder (FUNIT's class encoder, ref [35]): 5 convolutions on ``x_{r_i} (.) y_{r_i}`` (line art
  concatenated with colour), global average pooling, a 1x1 convolution to the style embedding vector,
  averaged over the K references (section 3.5); a two-layer MLP maps it to ``P_em``, the AdaIN parameters.
* ``Mid``: 8 residual blocks with AdaIN (ref [44]) as normalisation, input ``EnL(x) + f_sim`` (equation 2).
* ``De``: 4 convolutions with instance norm and ReLU, nearest-neighbour x2 upsampling before the first two
  (back to full size), spectral norm; a sigmoid puts ``y_trans`` in [0, 1].
* Latent decoders (one convolution each) turn ``f_sim`` and ``f_mid`` into ``y_sim`` and ``y_mid`` for the
  latent constraint loss (equation 9).

Temporal refinement network (section 3.2, last paragraph; section 3.5): a 3D gated network built from
learnable gated temporal shift convolutions (LGTSM, ref [36]; :class:`GatedTemporalShiftConv`): an encoder
of 3 gated convolutions (stride 2 each), 4 dilated gated convolutions, a decoder of 3 gated convolutions with
nearest x2 upsampling. It sees the chronological sequence of (line art, colour) frames -- the references'
ground-truth colours and the target's ``y_trans`` -- and regenerates every frame; the target's frame is the
model's output. The paper trains it second with ``G`` frozen; here both train together (one optimiser), and
the refinement predicts a correction (of the colour logits; of RGB for ``shi-warp``) with a
zero-initialised last layer, so an untrained refinement passes ``y_trans`` through (the paper does not say
whether it predicts colours or a correction). The batch gives no frame times: the target is placed after
the first reference (exact for the paper's K = 2 training clips, first and last frame; for K > 2 the order
is approximate).

Losses (section 3.4, equation 11): L1 (equation 6), perceptual (equation 7) and style (equation 8, Gram
matrices) come from the shared trainer (``baselines.losses.ColorizationLoss``): the paper's VGG19 ReLU
``i_1`` features through ``--set vgg_weights=PATH`` (perceptual only), or the shared recipe's VGG16 trunk
(``--set vgg16_weights=hed --set style_weight=1000``, perceptual and style) -- no VGG weights ship with
celbench, so without them training is L1 plus this module's terms. This module adds the latent constraint
loss (equation 9), the refinement's loss on the regenerated reference frames and, when ``gan=True``, the
adversarial loss (equation 10) with the discriminator of section 3.5 (off by default: CPU training).

``shi-nosim`` is Table 1's "No Sim" ablation: no distance attention layer (no ``EnD``/``EnC``), ``Mid``
sees ``EnL(x)`` alone and the references reach the output only through the embedder's AdaIN parameters.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm
from torch.utils.data import Dataset

from baselines.model import (REF_COLOR, REF_DISTANCE, REF_SKETCH, TARGET_DISTANCE, TARGET_SKETCH,
                             ColorizationModel, check_batch, register_trainable)
from baselines.models.cmft import correlation_transfer
from baselines.recipe import GatedResidualHead, RandomCropDataset, vote_output
from benchmark.models.flow_warp import FlowWarp
from dataprep.errors import CelbenchError

#: Attention scores held at once (B x query chunk x K*HW/16 elements; 2**24 float32 = 64 MiB), which sets
#: the query chunk of the distance attention layer (docs/shi.md has the memory figures).
ATTENTION_BUDGET = 2**24


def chunked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float = 1.0,
                      chunk: int | None = None) -> torch.Tensor:
    """``softmax(scale * q k^T) v`` row by row, ``chunk`` query rows at a time (None = all at once).

    Args:
        query: (B, N, C) target features (N = H*W/16 positions).
        key: (B, M, C) reference features, M = K*H*W/16 (all references' positions together, so the
            softmax normalises over every reference at once as in section 3.3).
        value: (B, M, D) reference colour features.
    Returns:
        (B, N, D). Softmax is per query row, so chunking over queries is exact; each chunk goes through
        ``scaled_dot_product_attention`` (via :func:`baselines.models.cmft.correlation_transfer`).
    """
    n = query.shape[1]
    if chunk is None or chunk >= n:
        return correlation_transfer(query, key, value, scale)
    return torch.cat([correlation_transfer(query[:, start:start + chunk], key, value, scale)
                      for start in range(0, n, chunk)], 1)


def _maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(module) if enabled else module


class ConvNormReLU(nn.Sequential):
    """Convolution (optionally spectral-normalised), instance norm, ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, spectral: bool = True):
        padding = (kernel - stride + 1) // 2 if stride > 1 else kernel // 2
        super().__init__(_maybe_sn(nn.Conv2d(cin, cout, kernel, stride, padding, padding_mode="reflect"), spectral),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class Encoder(nn.Sequential):
    """EnL / EnD / EnC (section 3.5): (B, in, H, W) -> (B, widths[-1], H/4, W/4)."""

    def __init__(self, in_channels: int, widths: Sequence[int], spectral: bool = True):
        w0, w1, w2 = widths
        super().__init__(ConvNormReLU(in_channels, w0, 7, spectral=spectral),
                         ConvNormReLU(w0, w1, 4, 2, spectral), ConvNormReLU(w1, w2, 4, 2, spectral))


class DistanceAttention(nn.Module):
    """``Sim`` (section 3.3, Figure 3): target field features + K references -> ``f_sim`` (B, C, h, w).

    ``forward(f_d, f_dr, f_y)``: ``f_d`` (B, C, h, w) target distance-field features ``EnD(d)``; ``f_dr``
    (B, K, C, h, w) reference distance-field features ``EnD(d_{r_i})``; ``f_y`` (B, K, C, h, w) reference
    colour features ``EnC(y_{r_i})``.

    * equations 3-4: ``m_i = sigmoid(Conv(f_{d_i} (.) f_d))``, ``n_i = sigmoid(Conv(f_{d_i} (.) f_d))``
      (3x3 convolutions, one mask value per channel and position); ``f_{my_i} = f_{y_i} * m_i``;
    * ``M = softmax_{i, j}(f_d W_q . (f_{d_i} W_k)^T)`` over the K*h*w reference positions, 1x1
      projections to ``C / reduction`` channels; ``f_mat = M (f_{my} W_v)`` projected back to C channels by
      a 1x1 convolution (the output projection of a non-local block, ref [37], needed to add ``f_mat`` to
      ``f_{my_i}`` in equation 5);
    * equation 5: ``f_sim = 1/K sum_i ((1 - n_i) * f_mat + f_{my_i} * n_i)``.

    ``scale`` multiplies the dot products (the paper's plain ``f_d . f_{d_i}^T`` is 1.0). ``budget`` is the
    number of scores computed at once (None: all ``B x hw x K hw``); the query chunk is ``budget / (B K hw)``.
    ``stride`` > 1 (not in the paper) matches average-pooled ``stride x stride`` cells instead of positions
    and upsamples ``f_mat`` back (bilinear): ``stride**4`` times fewer scores, for networks that get the fine
    alignment elsewhere (``shi-warp``'s warp); the masks stay at full feature resolution.
    """

    def __init__(self, channels: int, reduction: int = 8, scale: float = 1.0, budget: int | None = ATTENTION_BUDGET,
                 stride: int = 1):
        super().__init__()
        inner = max(channels // reduction, 1)
        self.scale, self.budget, self.stride = scale, budget, stride
        self.mask_m = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.mask_n = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)

    def forward(self, f_d: torch.Tensor, f_dr: torch.Tensor, f_y: torch.Tensor) -> torch.Tensor:
        b, k, c, h, w = f_dr.shape
        pair = torch.cat([f_dr, f_d.unsqueeze(1).expand_as(f_dr)], 2).flatten(0, 1)  # f_{d_i} (.) f_d
        m = torch.sigmoid(self.mask_m(pair))
        n = torch.sigmoid(self.mask_n(pair)).view(b, k, c, h, w)
        f_my = f_y.flatten(0, 1) * m  # (B*K, C, h, w)
        pool = (lambda x: F.avg_pool2d(x, self.stride, ceil_mode=True)) if self.stride > 1 else (lambda x: x)
        q = self.query(pool(f_d))
        hq, wq = q.shape[-2:]
        q = q.flatten(2).transpose(1, 2)  # (B, hq wq, C')
        cells = hq * wq
        keys = self.key(pool(f_dr.flatten(0, 1))).view(b, k, -1, cells).permute(0, 1, 3, 2).reshape(b, k * cells, -1)
        values = self.value(pool(f_my)).view(b, k, -1, cells).permute(0, 1, 3, 2).reshape(b, k * cells, -1)
        chunk = None if self.budget is None else max(1, self.budget // (b * k * cells))
        f_mat = chunked_attention(q, keys, values, self.scale, chunk).transpose(1, 2).reshape(b, -1, hq, wq)
        if self.stride > 1:
            f_mat = F.interpolate(f_mat, size=(h, w), mode="bilinear", align_corners=False)
        f_mat = self.out(f_mat).unsqueeze(1)  # (B, 1, C, h, w)
        f_my = f_my.view(b, k, c, h, w)
        return ((1 - n) * f_mat + f_my * n).mean(1)


class Embedder(nn.Module):
    """``Em`` (FUNIT class encoder, section 3.5): (B*K, 4, H, W) line art (.) colour -> (B, style_dim), the
    mean over the K references of each reference's latent vector.

    Five convolutions (7x7 stride 1, four 4x4 stride 2) with ReLU, global average pooling, a 1x1 convolution
    to ``style_dim``. No normalisation, as FUNIT's class encoder (and no spectral norm, Figure 6 (c))."""

    def __init__(self, widths: Sequence[int], style_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(4, widths[0], 7, padding=3, padding_mode="reflect"), nn.ReLU(inplace=True)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, padding_mode="reflect"), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1], style_dim, 1)

    def forward(self, pairs: torch.Tensor, k: int) -> torch.Tensor:
        latent = self.head(F.adaptive_avg_pool2d(self.body(pairs), 1)).flatten(1)
        return latent.view(-1, k, latent.shape[1]).mean(1)


class AdaIN(nn.Module):
    """Adaptive instance normalisation (Huang & Belongie 2017, ref [44]): ``(1 + gamma) * IN(x) + beta`` with
    (gamma, beta) supplied per sample by :meth:`set_params` (the ``1 +`` makes a zero MLP output plain
    instance norm, which keeps the untrained network's activations in range)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.params: torch.Tensor | None = None

    def set_params(self, params: torch.Tensor) -> None:
        self.params = params  # (B, 2C): gamma then beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.params is None:
            raise RuntimeError("AdaIN parameters were not set")
        gamma, beta = self.params[:, : self.channels, None, None], self.params[:, self.channels:, None, None]
        return F.instance_norm(x) * (1 + gamma) + beta


class AdaINResBlock(nn.Module):
    """A ``Mid`` residual block (section 3.5): two 3x3 convolutions, each followed by AdaIN, ReLU between."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.norm1 = AdaIN(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.norm2 = AdaIN(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))


class Decoder(nn.Module):
    """``De`` (section 3.5): 4 convolutions with instance norm and ReLU (the last maps to RGB), nearest x2
    upsampling before the first two; (B, C, H/4, W/4) -> (B, 3, H, W) logits."""

    def __init__(self, widths: Sequence[int], spectral: bool = True):
        super().__init__()
        w2, w1, w0 = widths[2], widths[1], widths[0]
        self.up1 = ConvNormReLU(w2, w1, 5, spectral=spectral)
        self.up2 = ConvNormReLU(w1, w0, 5, spectral=spectral)
        self.refine = ConvNormReLU(w0, w0, 3, spectral=spectral)
        self.to_rgb = _maybe_sn(nn.Conv2d(w0, 3, 7, padding=3, padding_mode="reflect"), spectral)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The first three convolutions: (B, C, H/4, W/4) -> (B, widths[0], H, W)."""
        x = self.up1(F.interpolate(x, scale_factor=2, mode="nearest"))
        x = self.up2(F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.refine(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_rgb(self.features(x))


class GatedTemporalShiftConv(nn.Module):
    """LGTSM gated convolution (Chang et al. 2019, ref [36]) on (B, T, C, H, W) sequences.

    A learnable temporal shift -- a depthwise temporal convolution of kernel 3 initialised so a quarter of
    the channels read the previous frame, a quarter the next, the rest the current one (TSM) -- then a 2D
    feature convolution and a 2D gating convolution: ``out = act(conv_f(x)) * sigmoid(conv_g(x))``. This
    gives 3D-convolution-like receptive fields at 2D cost (section 3.2)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 activation: bool = True, spectral: bool = True):
        super().__init__()
        self.shift = nn.Conv1d(cin, cin, 3, padding=1, groups=cin, bias=False)
        with torch.no_grad():
            weight = torch.zeros(cin, 1, 3)
            quarter = max(cin // 4, 1)
            weight[:quarter, 0, 0] = 1  # previous frame
            weight[quarter:2 * quarter, 0, 2] = 1  # next frame
            weight[2 * quarter:, 0, 1] = 1
            self.shift.weight.copy_(weight)
        padding = dilation * (kernel - 1) // 2
        self.feature = _maybe_sn(nn.Conv2d(cin, cout, kernel, stride, padding, dilation), spectral)
        self.gate = _maybe_sn(nn.Conv2d(cin, cout, kernel, stride, padding, dilation), spectral)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        shifted = self.shift(x.permute(0, 3, 4, 2, 1).reshape(-1, c, t))  # (B*H*W, C, T)
        x = shifted.view(b, h, w, c, t).permute(0, 4, 3, 1, 2).reshape(b * t, c, h, w)
        feature = self.feature(x)
        if self.activation:
            feature = F.leaky_relu(feature, 0.2)
        out = feature * torch.sigmoid(self.gate(x))
        return out.view(b, t, *out.shape[1:])


class TemporalRefinement(nn.Module):
    """The temporal refinement generator (section 3.5): 3 gated encoder convolutions (stride 2), 4 dilated
    gated convolutions (dilation 2, 4, 8, 16), 3 gated decoder convolutions each after nearest x2
    upsampling, then a zero-initialised 3x3 convolution to an RGB correction.

    ``forward(frames)``: (B, T, 4, H, W) line art + colour per frame, H and W divisible by 8 ->
    (B, T, 3, H, W) corrections added to the input colours' logits by the caller."""

    def __init__(self, width: int, spectral: bool = True):
        super().__init__()
        w = width
        self.encoder = nn.ModuleList([GatedTemporalShiftConv(4, w, 5, 2, spectral=spectral),
                                      GatedTemporalShiftConv(w, 2 * w, 3, 2, spectral=spectral),
                                      GatedTemporalShiftConv(2 * w, 4 * w, 3, 2, spectral=spectral)])
        self.dilated = nn.ModuleList([GatedTemporalShiftConv(4 * w, 4 * w, 3, dilation=d, spectral=spectral)
                                      for d in (2, 4, 8, 16)])
        self.decoder = nn.ModuleList([GatedTemporalShiftConv(4 * w, 2 * w, spectral=spectral),
                                      GatedTemporalShiftConv(2 * w, w, spectral=spectral),
                                      GatedTemporalShiftConv(w, w, spectral=spectral)])
        self.to_rgb = nn.Conv2d(w, 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames
        for layer in (*self.encoder, *self.dilated):
            x = layer(x)
        b, t = frames.shape[:2]
        for layer in self.decoder:
            up = F.interpolate(x.flatten(0, 1), scale_factor=2, mode="nearest")
            x = layer(up.view(b, t, *up.shape[1:]))
        return self.to_rgb(x.flatten(0, 1)).view(b, t, 3, *x.shape[-2:])


class PairDiscriminator(nn.Module):
    """``D`` (section 3.5): 5 convolutions on line art (.) colour, LeakyReLU, spectral norm on all but the
    last; (B, 4, H, W) -> (B, 1, H/16, W/16) patch logits."""

    def __init__(self, width: int):
        super().__init__()
        widths = [4, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [_spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, sketch: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([sketch, colour], 1))


class ShiNet(ColorizationModel):
    """The colour transform network plus temporal refinement of Shi et al. (see the module docstring).

    Args:
        encoder_widths: channels of the three encoder convolutions (the last is C, the width at 1/4 size,
            shared by Sim, Mid and the decoder's input).
        mid_blocks: AdaIN residual blocks in ``Mid`` (paper: 8).
        embedder_widths: channels of the embedder's five convolutions.
        style_dim: length of the style embedding vector (FUNIT: 64).
        mlp_width: hidden width of the two-layer MLP that maps the style vector to AdaIN parameters.
        attention_reduction: ``C / C~`` of the similarity projections (paper: 8).
        attention_scale: factor on the dot products of ``M_i`` (paper: 1.0).
        attention_budget: attention scores computed at once (None = the whole matrix at once; see
            :class:`DistanceAttention`).
        attention_stride: 1 (the paper) matches feature positions; s > 1 matches s x s cells (see
            :class:`DistanceAttention`).
        use_sim: False gives Table 1's "No Sim" ablation.
        temporal_width: base width of the temporal refinement network; 0 turns it off ("No Temporal").
        spectral_norm: spectral norm on encoders, decoder and temporal network (section 3.5).
        gan: build the discriminator and add the adversarial loss (equation 10); off by default.
        discriminator_width: first-layer width of ``D``.
        latent_weight, temporal_weight, gan_weight: weights of equation 9, of the refinement's loss on the
            regenerated references, and of equation 10 (equation 11: lambda_latent = lambda_GAN = 1).
        discriminator_lr_ratio: D's learning rate over G's (section 4.1: 1e-5 / 1e-4).

    Frames are edge-padded to a multiple of 8 (4 with the refinement off) and the output cropped.
    """

    requires = (REF_COLOR, REF_SKETCH, REF_DISTANCE, TARGET_SKETCH, TARGET_DISTANCE)

    presets = {
        "paper": {
            # Section 3.5 gives layer counts; widths follow FUNIT (ref [35]), which the generator builds on.
            "model": {"encoder_widths": [64, 128, 256], "mid_blocks": 8, "embedder_widths": [64, 128, 256, 512, 1024],
                      "style_dim": 64, "mlp_width": 256, "temporal_width": 32},
            "train": {"lr": 1e-4, "betas": [0.5, 0.999], "batch_size": 4, "image_size": 256, "epochs": 40,
                      "l1_weight": 10.0, "perceptual_weight": 1.0},
        },
        "cpu": {
            "model": {"encoder_widths": [16, 32, 64], "mid_blocks": 4, "embedder_widths": [16, 32, 64, 64, 64],
                      "style_dim": 32, "mlp_width": 64, "temporal_width": 8},
            "train": {"lr": 3e-4, "betas": [0.5, 0.999], "batch_size": 4, "image_size": 128, "epochs": 40,
                      "l1_weight": 10.0, "perceptual_weight": 1.0},
        },
        "tiny": {
            "model": {"encoder_widths": [4, 8, 8], "mid_blocks": 1, "embedder_widths": [4, 8, 8, 8, 8],
                      "style_dim": 8, "mlp_width": 8, "temporal_width": 4},
            "train": {"lr": 1e-3, "betas": [0.5, 0.999], "batch_size": 2, "image_size": 32, "epochs": 2,
                      "l1_weight": 10.0, "perceptual_weight": 0.0},
        },
    }

    def __init__(self, encoder_widths: Sequence[int] = (64, 128, 256), mid_blocks: int = 8,
                 embedder_widths: Sequence[int] = (64, 128, 256, 512, 1024), style_dim: int = 64,
                 mlp_width: int = 256, attention_reduction: int = 8, attention_scale: float = 1.0,
                 attention_budget: int | None = ATTENTION_BUDGET, attention_stride: int = 1, use_sim: bool = True,
                 temporal_width: int = 32,
                 spectral_norm: bool = True, gan: bool = False, discriminator_width: int = 64,
                 latent_weight: float = 1.0, temporal_weight: float = 1.0, gan_weight: float = 1.0,
                 discriminator_lr_ratio: float = 0.1):
        super().__init__(encoder_widths=list(encoder_widths), mid_blocks=mid_blocks,
                         embedder_widths=list(embedder_widths), style_dim=style_dim, mlp_width=mlp_width,
                         attention_reduction=attention_reduction, attention_scale=attention_scale,
                         attention_budget=attention_budget, attention_stride=attention_stride, use_sim=use_sim,
                         temporal_width=temporal_width,
                         spectral_norm=spectral_norm, gan=gan, discriminator_width=discriminator_width,
                         latent_weight=latent_weight, temporal_weight=temporal_weight, gan_weight=gan_weight,
                         discriminator_lr_ratio=discriminator_lr_ratio)
        if len(encoder_widths) != 3 or len(embedder_widths) != 5:
            raise CelbenchError(f"shi: encoder_widths needs 3 channel counts and embedder_widths 5, got "
                                f"{list(encoder_widths)} and {list(embedder_widths)}")
        c = encoder_widths[-1]
        self.encoder_widths = list(encoder_widths)
        self.use_sim = use_sim
        self.latent_weight, self.temporal_weight, self.gan_weight = latent_weight, temporal_weight, gan_weight
        self.discriminator_lr_ratio = discriminator_lr_ratio
        self.encoder_line = Encoder(1 + self.prior_channels, encoder_widths, spectral_norm)
        if use_sim:
            self.encoder_distance = Encoder(1, encoder_widths, spectral_norm)
            self.encoder_colour = Encoder(3, encoder_widths, spectral_norm)
            self.sim = DistanceAttention(c, attention_reduction, attention_scale, attention_budget, attention_stride)
            self.latent_sim = nn.Conv2d(c, 3, 3, padding=1)
        self.embedder = Embedder(embedder_widths, style_dim)
        self.mid = nn.ModuleList([AdaINResBlock(c) for _ in range(mid_blocks)])
        adain_params = sum(2 * norm.channels for block in self.mid for norm in (block.norm1, block.norm2))
        self.mlp = nn.Sequential(nn.Linear(style_dim, mlp_width), nn.ReLU(inplace=True),
                                 nn.Linear(mlp_width, adain_params))
        self.latent_mid = nn.Conv2d(c, 3, 3, padding=1)
        self.decoder = Decoder(encoder_widths, spectral_norm)
        self.temporal = TemporalRefinement(temporal_width, spectral_norm) if temporal_width > 0 else None
        self.discriminator = PairDiscriminator(discriminator_width) if gan else None
        self._stash: dict[str, torch.Tensor] = {}

    @property
    def multiple(self) -> int:
        return 8 if self.temporal is not None else 4

    def _set_adain(self, params: torch.Tensor) -> None:
        offset = 0
        for block in self.mid:
            for norm in (block.norm1, block.norm2):
                norm.set_params(params[:, offset:offset + 2 * norm.channels])
                offset += 2 * norm.channels

    #: Channels of the warp prior that ``EnL`` sees beside the line art (``shi-warp``); 0 for the paper's network.
    prior_channels = 0

    def transform(self, line: torch.Tensor, field: torch.Tensor, ref_sketch: torch.Tensor, ref_field: torch.Tensor,
                  ref_colour: torch.Tensor) -> dict[str, torch.Tensor]:
        """Equation 2 on (B, 1 + prior_channels, H, W) ``EnL`` input (line art, then any prior), (B, 1, H, W)
        target field and (B, K, c, H, W) reference maps (H, W divisible by 4).

        Returns ``y_trans`` (B, 3, H, W) in the output space of :meth:`decode`; latent logits ``y_mid`` and,
        with Sim, ``y_sim`` (B, 3, H/4, W/4)."""
        b, k = ref_colour.shape[:2]
        out: dict[str, torch.Tensor] = {}
        features = self.encoder_line(line)  # EnL(x)
        if self.use_sim:
            fields = self.encoder_distance(torch.cat([field, ref_field.flatten(0, 1)]))  # one EnD pass
            f_d, f_dr = fields[:b], fields[b:].view(b, k, *fields.shape[1:])
            f_y = self.encoder_colour(ref_colour.flatten(0, 1)).view(b, k, *fields.shape[1:])
            f_sim = self.sim(f_d, f_dr, f_y)
            out["y_sim"] = self.latent_sim(f_sim)
            features = features + f_sim  # EnL(x) (+) f_sim
        style = self.embedder(torch.cat([ref_sketch, ref_colour], 2).flatten(0, 1), k)  # SEV
        self._set_adain(self.mlp(style))  # P_em
        for block in self.mid:
            features = block(features)
        out["y_mid"] = self.latent_mid(features)
        out["y_trans"] = self.decode(features, line)
        return out

    def decode(self, features: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
        """``De``: (B, C, H/4, W/4) -> (B, 3, H, W) colour logits (:meth:`to_colour` maps them to RGB);
        ``line`` is ``EnL``'s full-size input (unused by the paper's decoder)."""
        return self.decoder(features)

    def to_colour(self, y: torch.Tensor) -> torch.Tensor:
        """Output space of :meth:`decode` -> RGB (a sigmoid here)."""
        return torch.sigmoid(y)

    def from_colour(self, colour: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> output space (the inverse of :meth:`to_colour`, clamped to stay finite)."""
        return torch.logit(colour.clamp(1e-3, 1 - 1e-3))

    def prior(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Extra ``EnL`` input channels computed from the batch (none for the paper's network)."""
        return None

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``batch``: reference_colour (B,K,3,H,W), reference_sketch and reference_field (B,K,1,H,W),
        target_sketch and target_field (B,1,H,W), all in [0, 1]; returns (B, 3, H, W) RGB in [0, 1].

        In training mode the intermediate images are kept for :meth:`auxiliary_loss`."""
        check_batch(batch)
        for key in (REF_DISTANCE, TARGET_DISTANCE):
            if key not in batch:
                raise CelbenchError(f"batch: model shi needs {key!r} (distance fields, section 3.1)")
        ref_colour, ref_sketch, ref_field = batch[REF_COLOR], batch[REF_SKETCH], batch[REF_DISTANCE]
        sketch, field = batch[TARGET_SKETCH], batch[TARGET_DISTANCE]
        prior = self.prior(batch)
        h, w = sketch.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            def pad(t: torch.Tensor | None) -> torch.Tensor | None:
                if t is None:
                    return None
                padded = F.pad(t.flatten(0, -4), (0, pad_w, 0, pad_h), mode="replicate")
                return padded.view(*t.shape[:-2], h + pad_h, w + pad_w)
            ref_colour, ref_sketch, ref_field, sketch, field, prior = map(
                pad, (ref_colour, ref_sketch, ref_field, sketch, field, prior))
        line = sketch if prior is None else torch.cat([sketch, prior], 1)
        out = self.transform(line, field, ref_sketch, ref_field, ref_colour)
        y = out["y_trans"]
        if self.temporal is not None:
            correction, out["ref_refined"] = self.refine(self.to_colour(y), sketch, ref_colour, ref_sketch)
            y = y + correction
        result = self.to_colour(y)[..., :h, :w]
        if self.training:
            self._stash = {name: value for name, value in out.items()}
            self._stash["crop"] = torch.tensor([h, w])
            self._stash["sketch"] = batch[TARGET_SKETCH]
            self._stash["ref_colour"] = batch[REF_COLOR]
            self._stash["output"] = result
        return result

    def refine(self, colour: torch.Tensor, sketch: torch.Tensor, ref_colour: torch.Tensor,
               ref_sketch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The temporal stage on the sequence (reference 0, target, references 1..K-1) of (line art, colour)
        frames, ``colour`` (B, 3, H, W) the target's ``y_trans`` in RGB. Returns (the correction of the
        target in the output space of :meth:`decode`, (B, 3, H, W); the regenerated reference colours
        (B, K, 3, H, W) RGB)."""
        frames_colour = torch.cat([ref_colour[:, :1], colour.unsqueeze(1), ref_colour[:, 1:]], 1)
        frames_sketch = torch.cat([ref_sketch[:, :1], sketch.unsqueeze(1), ref_sketch[:, 1:]], 1)
        correction = self.temporal(torch.cat([frames_sketch, frames_colour], 2))
        refs = self.to_colour(self.from_colour(ref_colour) + torch.cat([correction[:, :1], correction[:, 2:]], 1))
        return correction[:, 1], refs

    def auxiliary_loss(self, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The model's own terms of equation 11 for the last training forward, ``target`` (B, 3, H, W) the
        ground truth in [0, 1]: latent constraint loss (equation 9, ``y_sim`` and ``y_mid`` upsampled to full
        size), the refinement's L1 on the regenerated references, and the adversarial loss (equation 10,
        non-saturating form for G; D's term on detached fakes) when ``gan`` is on."""
        stash = self._stash
        if not stash:
            raise CelbenchError("shi: auxiliary_loss needs a forward pass in training mode first")
        h, w = (int(v) for v in stash["crop"])
        total = target.new_zeros(())
        parts: dict[str, float] = {}
        latent = target.new_zeros(())
        for name in ("y_sim", "y_mid"):
            if name in stash:
                image = torch.sigmoid(F.interpolate(stash[name].float(), scale_factor=4, mode="bilinear",
                                                    align_corners=False))[..., :h, :w]
                latent = latent + F.l1_loss(image, target)
        total = total + self.latent_weight * latent
        parts["latent"] = float(latent.detach())
        if "ref_refined" in stash:
            temporal = F.l1_loss(stash["ref_refined"].float()[..., :h, :w], stash["ref_colour"].float())
            total = total + self.temporal_weight * temporal
            parts["temporal"] = float(temporal.detach())
        if self.discriminator is not None:
            sketch, fake = stash["sketch"].float(), stash["output"].float()
            frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
            fake_logits = torch.func.functional_call(self.discriminator, frozen, (sketch, fake))
            g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
            real_logits = self.discriminator(sketch, target)
            detached_logits = self.discriminator(sketch, fake.detach())
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(detached_logits, torch.zeros_like(detached_logits)))
            total = total + self.gan_weight * g_loss + d_loss
            parts["gan_g"], parts["gan_d"] = float(g_loss.detach()), float(d_loss.detach())
        self._stash = {}
        return total, parts


@register_trainable("shi")
class Shi(ShiNet):
    """Shi et al. TVCG 2023: distance attention + embedder/AdaIN + temporal refinement (section 3)."""


@register_trainable("shi-nosim")
class ShiNoSim(ShiNet):
    """Table 1's "No Sim" ablation: no distance attention layer; see :class:`ShiNet`."""

    presets = {name: {"model": {**p["model"], "use_sim": False}, "train": p["train"]}
               for name, p in ShiNet.presets.items()}

    def __init__(self, **kwargs: Any):
        kwargs["use_sim"] = False
        super().__init__(**kwargs)


#: Batch key of :func:`warp_candidates` when a caller computed them (the training view does, on whole frames).
WARP_CANDIDATES = "warp_candidates"


def warp_candidates(batch: Mapping[str, torch.Tensor], warper: FlowWarp) -> torch.Tensor:
    """What ``flow-warp`` knows at every pixel, as (B, 9, H, W) float32 channels:

    * 0-2: the ``flow-warp`` prediction, the reference whose warped line art agrees best with the target's
      around the pixel (RGB in [0, 1]; equal to ``FlowWarp()(batch)``);
    * 3-5: the runner-up reference's warp (RGB; the best one again when K = 1);
    * 6: the best reference's warped line art (1 = paper): where it has a line the target lacks, the warp
      paints a ghost line; where the target has one it lacks, a line is missing;
    * 7, 8: the disagreement of the best and of the runner-up warp with the target line art (box-filtered
      absolute difference, 0 = agree).

    ``batch["warp_candidates"]`` is returned when present. No gradient (classical flow).
    """
    if WARP_CANDIDATES in batch:
        return batch[WARP_CANDIDATES]
    with torch.no_grad():
        colours, sketches, costs = warper.warp_references(batch)
        k = colours.shape[1]
        order = costs.argsort(dim=1, stable=True)  # ties keep the first reference first, as flow-warp's argmin
        best, second = order[:, :1], order[:, min(1, k - 1):min(1, k - 1) + 1]

        def pick(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return values.gather(1, index.expand(-1, -1, values.shape[2], -1, -1))[:, 0]

        return torch.cat([pick(colours, best), pick(colours, second), pick(sketches, best), pick(costs, best),
                          pick(costs, second)], 1)


class WarpCandidateDataset(Dataset):
    """Training items with ``warp_candidates`` (9, H, W) added (:func:`warp_candidates` on the whole frame,
    before any crop: a crop would cut off the reference content that moves in from outside it).

    With probability ``single_reference`` an item with K > 1 references keeps one of them (drawn at random)
    K times over: the network then sees what a K = 1 evaluation gives it (the runner-up warp equal to the
    best), while batches keep one K. Draws come from torch's global generator, seeded by ``bench train``."""

    def __init__(self, dataset: Dataset, single_reference: float = 0.0, flow_preset: str = "medium"):
        self.dataset = dataset
        self.single_reference = single_reference
        self.warper = FlowWarp(preset=flow_preset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        k = item[REF_COLOR].shape[0]
        if k > 1 and float(torch.rand(())) < self.single_reference:
            keep = int(torch.randint(0, k, ()))
            for key in (REF_COLOR, REF_SKETCH, REF_DISTANCE):
                item[key] = item[key][keep:keep + 1].expand(k, -1, -1, -1).contiguous()
        one = {key: value[None] for key, value in item.items() if isinstance(value, torch.Tensor)}
        item[WARP_CANDIDATES] = warp_candidates(one, self.warper)[0]
        return item


@register_trainable("shi-warp", preset="cpu")
class ShiWarp(ShiNet):
    """``shi`` on the shared training recipe (:mod:`baselines.recipe`); changes from the paper's network:

    * ``EnL`` sees the target line art *and* the warp candidates (:func:`warp_candidates`: the
      ``flow-warp`` prediction, the runner-up reference's warp, the best warp's line art and both warps'
      disagreement with the target lines), so ``Mid`` and ``De`` know what the warp claims at every pixel and
      how far to trust it, while ``Sim`` and the embedder carry what matching and style say;
    * a full-resolution skip path (two 3x3 convolutions, ``skip_width`` channels, on the same input)
      beside ``De``'s features: ``De`` works from 1/4-size features and cannot place a one-pixel line,
      and the errors of a warp on real frames are at lines (ghost reference lines, target lines the warp
      lacks) and in occlusions, where the runner-up reference often agrees with the target;
    * ``De``'s last convolution is replaced by :class:`baselines.recipe.GatedResidualHead`:
      ``y_trans = warp + gate * residual``, the residual zero-initialised, so an untrained ``shi-warp`` with
      its zero-initialised refinement *is* ``flow-warp``; outputs and the refinement's corrections are in
      RGB (not logits);
    * with ``vote``, at inference each target component gets the median colour of the output inside it
      (:func:`baselines.recipe.vote_output`) when the batch has ``target_components``.

    Args: those of :class:`ShiNet`, plus ``vote`` (region voting at inference), ``flow_preset`` (DIS
    preset of the warp), ``skip_width`` (channels of the skip path, 0 = none), ``train_crop`` (training
    crop in px taken after the warp candidates are computed on the whole frame, 0 = none; set this and
    not the trainer's ``crop``, which cuts frames before the warp) and ``single_reference`` (probability
    of a K = 1 training item, see :class:`WarpCandidateDataset`).
    """

    prior_channels = 9
    requires = (*FlowWarp.requires, "target_components")

    presets = {
        "paper": {"model": {**ShiNet.presets["paper"]["model"], "skip_width": 32, "vote": False},
                  "train": {**ShiNet.presets["paper"]["train"], "repalette": 0.5}},
        # Small enough per step for thousands of CPU steps and < 1 s per 256 px frame (docs/shi.md).
        "cpu": {"model": {"encoder_widths": [8, 16, 32], "mid_blocks": 2, "embedder_widths": [8, 16, 32, 32, 32],
                          "style_dim": 16, "mlp_width": 32, "temporal_width": 0, "attention_stride": 2, "skip_width": 16,
                          "vote": False, "train_crop": 96, "single_reference": 0.25},
                "train": {"lr": 5e-4, "betas": [0.9, 0.999], "batch_size": 4, "image_size": 256, "epochs": 1000,
                          "l1_weight": 10.0, "perceptual_weight": 0.0, "repalette": 0.5}},
        "tiny": {"model": {**ShiNet.presets["tiny"]["model"], "skip_width": 4},
                 "train": {**ShiNet.presets["tiny"]["train"], "repalette": 0.5}},
    }

    def __init__(self, vote: bool = True, flow_preset: str = "medium", skip_width: int = 16, train_crop: int = 0,
                 single_reference: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.config.update(vote=vote, flow_preset=flow_preset, skip_width=skip_width, train_crop=train_crop,
                           single_reference=single_reference)
        self.vote = vote
        self.warper = FlowWarp(preset=flow_preset)
        self.decoder.to_rgb = None  # the head below takes De's features instead
        inputs = 1 + self.prior_channels
        self.skip = (nn.Sequential(nn.Conv2d(inputs, skip_width, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(skip_width, skip_width, 3, padding=2, dilation=2), nn.ReLU(inplace=True))
                     if skip_width > 0 else None)
        self.head = GatedResidualHead(self.encoder_widths[0] + skip_width)

    @classmethod
    def training_view(cls, dataset: Any, model_config: Mapping[str, Any], seed: int, train: bool) -> Any:
        """Training items get the warp candidates of the whole frame, then the ``train_crop``; validation
        items are left whole (the forward pass computes their candidates)."""
        if not train:
            return dataset
        dataset = WarpCandidateDataset(dataset, model_config.get("single_reference", 0.0),
                                       model_config.get("flow_preset", "medium"))
        crop = model_config.get("train_crop", 0)
        return RandomCropDataset(dataset, crop) if crop else dataset

    def prior(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return warp_candidates(batch, self.warper).to(batch[TARGET_SKETCH].dtype)

    def decode(self, features: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
        decoded = self.decoder.features(features)
        if self.skip is not None:
            decoded = torch.cat([decoded, self.skip(line)], 1)
        return self.head(decoded, line[:, 1:4])

    def to_colour(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def from_colour(self, colour: torch.Tensor) -> torch.Tensor:
        return colour

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        colour = super().forward(batch)
        if self.training or not self.vote:
            return colour
        return vote_output(colour.clamp(0, 1), batch)
