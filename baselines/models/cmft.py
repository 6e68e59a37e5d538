"""LCMFTN: line-art correlation matching feature transfer network (Zhang et al. 2020, "CMFT").

Paper: ../shared/papers/cmft-correlation-matching-feature-transfer-2020.txt (section 3, Figure 4).

Generator ``C_e = G(S_p, C_p, S_n)`` (equation 5):

* ``E_h`` (target sketch) and ``E_c`` (reference colour): four 3x3 convolutions, the first at stride 1 and
  three at stride 2, so features exist at 256, 128, 64 and 32 px for a 256 px input (section 3.2):
  ``E^3`` (full size) ... ``E^0`` (1/8 size).
* ``E_s`` (both sketches, shared weights): six convolutions, the last two dilated (2, 4) to widen the
  receptive field for non-local topology (section 3.2).
* ``E_I`` (optional, default off): the first six convolutions of Illustration2Vec, frozen, weights by path;
  its 1/8-size activations are concatenated to ``E_s^0`` for matching (equation 6).
* ``CMFT^k`` (equations 4, 6-8): correlation ``f(a, b) = exp(a^T b)`` between query positions (target) and
  key positions (reference), normalised over the key positions, used to warp reference colour features.
  Computed with ``scaled_dot_product_attention(q, k, v, scale=1.0)`` so the HW x HW matrix is never
  materialised where a fused kernel exists. ``attention_window`` (default off, the paper's global matching)
  restricts each query to nearby reference positions (:func:`windowed_correlation_transfer`).
* ``RU^k``: ResNeXt blocks then a sub-pixel convolution (x2 upsampling) [section 3.2, refs 23, 29].
* Two final convolutions map to RGB; a sigmoid puts the output in [0, 1].

``CMFT^3`` (full resolution) is off by default as in section 3.4; ``cmft_full_resolution=True`` turns it on.
``cmft-nocmft`` is the section 4.2 ablation.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines.model import (REF_COLOR, REF_SKETCH, TARGET_SKETCH, ColorizationModel, Colorizer, check_batch,
                             load_trained, register_trainable)
from baselines.weights import load_state_dict
from dataprep.errors import CelbenchError, file_error

NEGATIVE_SLOPE = 0.2  # LeakyReLU slope of the Ci et al. generator the paper builds on (ref [5])


def _attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax attention (equation 4) on (N, G, L, C) / (N, G, M, C) / (N, G, M, D) -> (N, G, L, D).

    PyTorch's fused CPU/GPU kernels need equal query and value widths, so the narrower side is zero-padded:
    zeros in q and k do not change ``a^T b`` and zero value channels are sliced off afterwards. Without a
    fused kernel the math fallback would materialise the L x M matrix (16 GiB at 256x256 positions)."""
    c, d = query.shape[-1], value.shape[-1]
    if d < c:
        value = F.pad(value, (0, c - d))
    elif c < d:
        query, key = F.pad(query, (0, d - c)), F.pad(key, (0, d - c))
    # The fused kernels need unit stride along channels; (B, C, HW) -> (B, HW, C) views do not have it.
    query, key, value = (t.contiguous() for t in (query, key, value))
    return F.scaled_dot_product_attention(query, key, value, scale=scale)[..., :d]


def correlation_transfer(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         scale: float = 1.0) -> torch.Tensor:
    """Equation 4: ``chi_i = sum_j f(q_i, k_j) v_j / sum_j f(q_i, k_j)`` with ``f(a, b) = exp(scale * a^T b)``.

    Args:
        query: (B, N, C) features of the target (``F_A(x^A)``), N = H*W query positions.
        key: (B, M, C) features of the reference(s) (``F_A(y^A)``), M = K*H*W positions.
        value: (B, M, D) reference colour features to transfer (``F_B(y^B)``).
        scale: multiplies ``a^T b``; the paper uses 1.0.

    Returns:
        (B, N, D) the estimated features ``chi``.

    The softmax form is exactly equation 4 (exp normalised over j).
    """
    return _attention(query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1), scale).squeeze(1)


def _window_starts(size: int, tile: int, window: int) -> torch.Tensor:
    """First key row (or column) of the ``window``-long span centred on each ``tile``-long query span of a
    ``size``-long axis, shifted to lie inside it: (ceil(size / tile),) int64."""
    centres = torch.arange(-(-size // tile), dtype=torch.float64) * tile + tile / 2
    return (centres - window / 2).round().long().clamp(0, size - window)


def windowed_correlation_transfer(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, window: int,
                                  scale: float = 1.0) -> torch.Tensor:
    """Equation 4 with the sum over j restricted to a local window of the reference positions.

    The query map is cut into tiles of ``T = max(1, window // 3)`` positions a side; every query of a tile
    attends to the ``window x window`` key positions centred on its tile (shifted inside the map at the
    borders; the whole axis where the map is shorter than ``window``), of every reference. So each query
    sees at least ``window // 3`` positions of context on every side, and the cost is ``H*W*K*window^2``
    correlations instead of ``(H*W)^2 * K``. With ``window`` >= both sides it is :func:`correlation_transfer`.

    Args:
        query: (B, C, H, W) target features.
        key: (B, K, C, H, W) reference features.
        value: (B, K, D, H, W) reference colour features.
        window: side of the key window in positions (>= 1).
        scale: multiplies ``a^T b`` (paper: 1.0).

    Returns:
        (B, D, H, W).
    """
    b, k, c, h, w = key.shape
    d = value.shape[2]
    win_h, win_w = min(window, h), min(window, w)
    tile = max(1, window // 3)
    rows = _window_starts(h, tile, win_h).tolist()
    cols = _window_starts(w, tile, win_w).tolist()
    ty, tx = len(rows), len(cols)
    # Channel padding (see _attention) on the maps, before the windows multiply them; channels last, so
    # each window is a stack of contiguous (win_w, E) rows.
    width = max(c, d)
    query, key, value = (F.pad(x, (0, 0, 0, 0, 0, width - x.shape[-3])) for x in (query, key, value))

    def windows(x: torch.Tensor) -> torch.Tensor:  # (B, K, E, H, W) -> (B, tiles, K*win_h*win_w, E)
        x = x.permute(0, 1, 3, 4, 2)
        return torch.stack([x[:, :, r:r + win_h, c0:c0 + win_w] for r in rows for c0 in cols], 1).reshape(
            b, ty * tx, k * win_h * win_w, width)

    padded = F.pad(query, (0, tx * tile - w, 0, ty * tile - h))  # padded queries are computed and dropped
    tiles = padded.reshape(b, width, ty, tile, tx, tile).permute(0, 2, 4, 3, 5, 1).reshape(
        b, ty * tx, tile * tile, width)
    out = _attention(tiles, windows(key), windows(value), scale)[..., :d]  # (B, tiles, T*T, D)
    out = out.reshape(b, ty, tx, tile, tile, d).permute(0, 5, 1, 3, 2, 4).reshape(b, d, ty * tile, tx * tile)
    return out[..., :h, :w]


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))


class PyramidEncoder(nn.Module):
    """``E_h`` / ``E_c``: (B, in, H, W) -> [E^0 (H/8), E^1 (H/4), E^2 (H/2), E^3 (H)] (coarse first).

    ``widths`` are the channels of E^0..E^3.
    """

    def __init__(self, in_channels: int, widths: Sequence[int]):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.layers = nn.ModuleList([_conv(in_channels, w3), _conv(w3, w2, 2), _conv(w2, w1, 2), _conv(w1, w0, 2)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats[::-1]


class DilatedSketchEncoder(nn.Module):
    """``E_s``: six convolutions; the last two dilated. Returns [E_s^0, E_s^1, E_s^2, E_s^3] (coarse first)."""

    def __init__(self, widths: Sequence[int], dilations: Sequence[int] = (2, 4)):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.pyramid = PyramidEncoder(1, widths)
        self.context = nn.Sequential(*[_conv(w0, w0, dilation=d) for d in dilations])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.pyramid(x)
        feats[0] = self.context(feats[0])
        return feats


class Illustration2VecTrunk(nn.Module):
    """``E_I``: the first six convolutions of Illustration2Vec (Saito & Matsui 2015), frozen.

    Input: sketch (B, 1, H, W) in [0, 1], replicated to 3 channels, scaled to [0, 255] minus ``mean``
    (Caffe convention). Output: (B, 512, H/8, W/8), the ReLU of conv4_2 (the 6th convolution).
    Weights are loaded by path with keys ``conv1_1.weight`` ... ``conv4_2.bias``.
    """

    LAYERS = (("conv1_1", 3, 64), "pool", ("conv2_1", 64, 128), "pool", ("conv3_1", 128, 256),
              ("conv3_2", 256, 256), "pool", ("conv4_1", 256, 512), ("conv4_2", 512, 512))
    out_channels = 512

    def __init__(self, weights: str, mean: Sequence[float] = (164.76139251, 167.47864617, 181.13838569)):
        super().__init__()
        for spec in self.LAYERS:
            if spec != "pool":
                name, cin, cout = spec
                self.add_module(name, nn.Conv2d(cin, cout, 3, padding=1))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        state = load_state_dict(weights)
        missing = [k for k in self.state_dict() if k not in state]
        if missing:
            raise file_error(weights, f"not Illustration2Vec weights (missing {missing[:3]})")
        self.load_state_dict({k: state[k] for k in self.state_dict()})
        self.requires_grad_(False)

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        x = sketch.expand(-1, 3, -1, -1) * 255.0 - self.mean
        for spec in self.LAYERS:
            x = F.max_pool2d(x, 2) if spec == "pool" else F.relu(getattr(self, spec[0])(x))
        return x


class ResNeXtBlock(nn.Module):
    """Aggregated residual block (Xie et al. 2017): 1x1 reduce, grouped 3x3, 1x1 expand, identity skip."""

    def __init__(self, channels: int, cardinality: int, bottleneck: int):
        super().__init__()
        groups = max(1, min(cardinality, bottleneck))
        while bottleneck % groups:
            groups -= 1
        self.body = nn.Sequential(
            nn.Conv2d(channels, bottleneck, 1), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            nn.Conv2d(bottleneck, bottleneck, 3, padding=1, groups=groups), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            nn.Conv2d(bottleneck, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.body(x), NEGATIVE_SLOPE)


class ResNeXtUpsample(nn.Module):
    """``RU``: 1x1 fuse of the concatenated inputs, ResNeXt blocks, sub-pixel x2 upsampling (Shi et al. 2016)."""

    def __init__(self, in_channels: int, channels: int, out_channels: int, blocks: int, cardinality: int):
        super().__init__()
        self.fuse = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))
        self.blocks = nn.Sequential(*[ResNeXtBlock(channels, cardinality, max(channels // 2, 1)) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(channels, out_channels * 4, 3, padding=1), nn.PixelShuffle(2),
                                nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.blocks(self.fuse(x)))


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def _flatten_refs(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*K, C, H, W) -> (B, K*H*W, C): every position of every reference is a key (j in equation 4)."""
    bk, c = x.shape[:2]
    return x.reshape(batch, bk // batch, c, -1).permute(0, 1, 3, 2).reshape(batch, -1, c)


class LCMFTN(ColorizationModel):
    """The CMFT generator of section 3.2 (see the module docstring).

    Args:
        widths: channels of the features at scales 0..3 (1/8, 1/4, 1/2, full size), shared by E_h, E_c,
            E_s and the decoder (RU^{k-1} must match E_c^k for equations 7-8).
        resnext_blocks: ResNeXt blocks per RU unit.
        cardinality: groups of each ResNeXt block.
        sketch_dilations: dilations of E_s's last convolutions (section 3.2).
        use_cmft: False gives the section 4.2 ablation (reference features concatenated unaligned).
        cmft_full_resolution: also run CMFT^3 at full resolution (dropped in the paper, section 3.4).
        correlation_scale: factor on ``a^T b`` in ``f`` (paper: 1.0).
        illustration2vec: path of Illustration2Vec weights for E_I, or None (default; see docs/cmft.md).
        attention_window: 0 (the paper) matches every query against every reference position; N > 0 limits
            each CMFT^k to reference positions within a window of N full-resolution pixels (N / 2^(3-k)
            positions at scale k; :func:`windowed_correlation_transfer`). A network trained on N-pixel
            crops never matched farther than N pixels, so the window costs it little and saves the
            quadratic cost at 256 px and above.

    Frames whose sides are not multiples of 8 are edge-padded and the output cropped. With K references the keys of every CMFT are the positions of all
    K references (the paper has K = 1).
    """

    #: Channels of :meth:`prior` that ``E_h`` reads beside the target sketch (0: the paper's network).
    prior_channels = 0

    presets = {
        "paper": {
            # Figure 4's channel counts are not in the text; wide coarse levels (where matching is
            # semantic) and narrow fine ones keep CPU inference near 0.4 s/frame at 256 px (docs/cmft.md).
            "model": {"widths": [128, 64, 16, 8], "resnext_blocks": 2, "cardinality": 8},
            "train": {"lr": 1e-4, "betas": [0.5, 0.9], "batch_size": 2, "image_size": 256, "epochs": 40,
                      "l1_weight": 10.0, "perceptual_weight": 2e-2},
        },
        "tiny": {
            "model": {"widths": [16, 8, 8, 4], "resnext_blocks": 1, "cardinality": 2},
            "train": {"lr": 1e-3, "betas": [0.5, 0.9], "batch_size": 2, "image_size": 32, "epochs": 2,
                      "l1_weight": 10.0, "perceptual_weight": 0.0},
        },
    }

    def __init__(self, widths: Sequence[int] = (128, 64, 16, 8), resnext_blocks: int = 2, cardinality: int = 8,
                 sketch_dilations: Sequence[int] = (2, 4), use_cmft: bool = True,
                 cmft_full_resolution: bool = False, correlation_scale: float = 1.0,
                 illustration2vec: str | None = None, attention_window: int = 0):
        super().__init__(widths=list(widths), resnext_blocks=resnext_blocks, cardinality=cardinality,
                         sketch_dilations=list(sketch_dilations), use_cmft=use_cmft,
                         cmft_full_resolution=cmft_full_resolution, correlation_scale=correlation_scale,
                         illustration2vec=illustration2vec, attention_window=attention_window)
        if len(widths) != 4:
            raise CelbenchError(f"cmft: widths must list 4 channel counts (scales 1/8..1), got {list(widths)}")
        self.widths = list(widths)
        self.use_cmft = use_cmft
        self.cmft_full_resolution = cmft_full_resolution
        self.correlation_scale = correlation_scale
        self.attention_window = attention_window
        self.encoder_h = PyramidEncoder(1 + self.prior_channels, widths)
        self.encoder_c = PyramidEncoder(3, widths)
        # The ablation has nothing to match, so it has no matching encoders (and no unused parameters,
        # which DistributedDataParallel would reject).
        self.encoder_s = DilatedSketchEncoder(widths, sketch_dilations) if use_cmft else None
        self.encoder_i = Illustration2VecTrunk(illustration2vec) if illustration2vec and use_cmft else None
        w = self.widths
        # RU^0 sees [E_h^0, chi^0]; RU^k (k = 1, 2) sees [E_h^k, RU^{k-1}, chi^k].
        self.upsample = nn.ModuleList([
            ResNeXtUpsample(2 * w[0], w[0], w[1], resnext_blocks, cardinality),
            ResNeXtUpsample(3 * w[1], w[1], w[2], resnext_blocks, cardinality),
            ResNeXtUpsample(3 * w[2], w[2], w[3], resnext_blocks, cardinality),
        ])
        final_in = (3 if cmft_full_resolution and use_cmft else 2) * w[3]
        self.to_rgb = nn.Sequential(_conv(final_in, w[3]), nn.Conv2d(w[3], 3, 3, padding=1))

    def _transfer(self, query: torch.Tensor | None, key: torch.Tensor | None, value: torch.Tensor,
                  batch: int, level: int = 0) -> torch.Tensor:
        """CMFT^level on maps: query (B, Cq, H, W), key (B*K, Cq, H, W), value (B*K, D, H, W) -> (B, D, H, W).

        Without CMFT (ablation) the first reference's features pass through unaligned."""
        b, (h, w) = batch, value.shape[-2:]
        if not self.use_cmft:
            return value.reshape(b, -1, *value.shape[1:])[:, 0]
        window = max(1, self.attention_window >> (3 - level)) if self.attention_window else 0
        if window and (window < h or window < w):
            return windowed_correlation_transfer(query, key.reshape(b, -1, *key.shape[1:]),
                                                 value.reshape(b, -1, *value.shape[1:]), window,
                                                 self.correlation_scale)
        out = correlation_transfer(_flatten(query), _flatten_refs(key, b), _flatten_refs(value, b),
                                   self.correlation_scale)
        return out.transpose(1, 2).reshape(b, -1, h, w)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` keys reference_colour (B,K,3,H,W), reference_sketch (B,K,1,H,W), target_sketch (B,1,H,W), all in
        [0, 1]; returns (B, 3, H, W) RGB in [0, 1]. Other keys are ignored."""
        check_batch(batch)
        ref_color, ref_sketch, sketch = batch[REF_COLOR], batch[REF_SKETCH], batch[TARGET_SKETCH]
        prior = self.prior(batch)
        b, k, _, h, w = ref_color.shape
        ref_color = ref_color.reshape(b * k, 3, h, w)
        ref_sketch = ref_sketch.reshape(b * k, 1, h, w)
        pad_h, pad_w = -h % 8, -w % 8
        if pad_h or pad_w:  # three stride-2 levels: pad (edge-replicate) to a multiple of 8, crop at the end
            ref_color, ref_sketch, sketch = (F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")
                                             for t in (ref_color, ref_sketch, sketch))
            if prior is not None:
                prior = F.pad(prior, (0, pad_w, 0, pad_h), mode="replicate")
        return self._generate(ref_color, ref_sketch, sketch, b, prior)[..., :h, :w]

    def prior(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """A (B, C, H, W) image the target encoder ``E_h`` sees beside the sketch and the output head
        builds on; None for the paper's network (subclasses on the shared recipe return the warp prior)."""
        return None

    def output(self, features: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """Last convolutions to RGB in [0, 1] (sigmoid; the paper does not name the activation)."""
        return torch.sigmoid(self.to_rgb(features))

    def _generate(self, ref_color: torch.Tensor, ref_sketch: torch.Tensor, sketch: torch.Tensor,
                  b: int, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Equations 5-8 on (B*K, 3, H, W), (B*K, 1, H, W) and (B, 1, H, W) maps with H, W divisible by 8."""
        e_h = self.encoder_h(sketch if prior is None else torch.cat([sketch, prior], 1))
        e_c = self.encoder_c(ref_color)
        if self.encoder_s is None:  # ablation: reference colour features enter unaligned
            x = self.upsample[0](torch.cat([e_h[0], self._transfer(None, None, e_c[0], b)], 1))
            for level in (1, 2):
                x = self.upsample[level](torch.cat([e_h[level], x, self._transfer(None, None, e_c[level], b)], 1))
            return self.output(torch.cat([e_h[3], x], 1), prior)
        # One pass of E_s over target and references (shared weights, as in Figure 3).
        e_s_all = self.encoder_s(torch.cat([sketch, ref_sketch]))
        e_s_n = [f[:b] for f in e_s_all]
        e_s_p = [f[b:] for f in e_s_all]
        q0, k0 = e_s_n[0], e_s_p[0]
        if self.encoder_i is not None:  # equation 6
            i_all = self.encoder_i(torch.cat([sketch, ref_sketch]))
            i_all = F.interpolate(i_all, size=q0.shape[-2:], mode="bilinear", align_corners=False)
            q0, k0 = torch.cat([q0, i_all[:b]], 1), torch.cat([k0, i_all[b:]], 1)
        x = self.upsample[0](torch.cat([e_h[0], self._transfer(q0, k0, e_c[0], b)], 1))
        for level in (1, 2, 3):
            if level == 3 and not self.cmft_full_resolution:
                x = torch.cat([e_h[3], x], 1)  # section 3.4: RU^2 goes straight to the last convolutions
                break
            # Equations 7-8: query ca(RU^{k-1}, E_s^k(S_n)), key ca(E_c^k(C_p), E_s^k(S_p)), value E_c^k(C_p).
            query = torch.cat([x, e_s_n[level]], 1)
            key = torch.cat([e_c[level], e_s_p[level]], 1)
            chi = self._transfer(query, key, e_c[level], b, level)
            x = torch.cat([e_h[level], x, chi], 1)
            if level < 3:
                x = self.upsample[level](x)
        return self.output(x, prior)


@register_trainable("cmft")
class CMFT(LCMFTN):
    """LCMFTN with CMFT^0..CMFT^2 (CMFT^3 optional), section 3."""


@register_trainable("cmft-nocmft")
class CMFTNoCMFT(LCMFTN):
    """Section 4.2 ablation "LCMFTN (w/o CMFT)": no correlation matching; see ``LCMFTN``."""

    presets = {name: {"model": {**p["model"], "use_cmft": False}, "train": p["train"]}
               for name, p in LCMFTN.presets.items()}

    def __init__(self, **kwargs: Any):
        kwargs["use_cmft"] = False
        super().__init__(**kwargs)


def load_cmft(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Colorizer:
    """Scoring factory of ``cmft``: ``weights`` a file from ``bench train``, None for the shipped weights
    (trained on CPU at 128x128, see baselines/pretrained/MODEL_CARD.md), ``"none"`` for an untrained
    paper-size network (seed 0); see :func:`baselines.model.load_trained`."""
    return load_trained("cmft", weights, device)


def load_cmft_nocmft(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Colorizer:
    """Scoring factory of ``cmft-nocmft`` (see :func:`load_cmft`; shipped ``cmft-nocmft.safetensors``)."""
    return load_trained("cmft-nocmft", weights, device)
