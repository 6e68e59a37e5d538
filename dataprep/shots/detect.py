"""Shot detection and the shot/frame filters of Shi et al. (TVCG 2023, Sec. 4.1).

``detect_shots(path, detector="histogram-mse", crop=None, **params)`` decodes the video once (streaming),
runs a registered cut detector, then applies the paper's filters, each a parameter of :class:`ShotParams`:

- ``min_length`` (paper: 8 frames): shorter shots are dropped (reason ``"short"``).
- ``static_mse`` (paper: 10): a shot whose frame pairs all have histogram MSE < 10 is dropped (``"static"``).
  "All pairs" is evaluated, streaming, as consecutive pairs *and* pairs with the shot's first frame, so a slow
  drift whose consecutive steps are tiny still counts as motion. Held drawings (the same drawing on 2s/3s)
  give zero-MSE pairs, but the pairs where the drawing changes stay large, so a moving shot on 2s or 3s is
  not static; only a shot where *no* pair reaches 10 is.
- Too dark / too faded frames (the paper gives no definition; ours, on a 64-pixel-wide thumbnail, RGB 0-255):
  ``dark_luma``: mean Rec. 601 luma < 20 (black or nearly black frames: fade-outs, night flashes);
  ``faded_contrast``: standard deviation of luma < 8 (washed out or uniform frames: fade to white, blank);
  ``faded_colourfulness``: Hasler-Suesstrunk colourfulness < 4 (no colour: greyscale frames; 0 disables).
  Such frames are listed in ``dropped_frames`` with their reason; a shot with fewer than ``min_length``
  usable frames left is dropped (``"dark_or_faded"``).

Histograms are measured on the detector's analysis frames (``analysis_width``, default 256 pixels wide).
Held-frame groups (runs of consecutive frames showing the same drawing: mean absolute difference of the
grey 64-pixel-wide thumbnails <= ``held_mad``) are reported in ``held_groups`` as [start, end) pairs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

import cv2
import numpy as np

from dataprep.shots.detector import DEFAULT_DETECTOR, DETECTORS, ShotDetector, load_detectors
from dataprep.shots.detectors.histogram_mse import (REFERENCE_PIXELS, FrameFeatures, frame_thumbnail, histogram_mse,
                                              rgb_histogram)
from dataprep.errors import CelbenchError, file_error
from dataprep.progress import progress
from dataprep.video.source import Crop, decode_workers, open_video


@dataclass
class ShotParams:
    """Filters applied after cut detection (see the module docstring for definitions and sources)."""

    min_length: int = 8
    static_mse: float = 10.0
    dark_luma: float = 20.0
    faded_contrast: float = 8.0
    faded_colourfulness: float = 4.0
    held_mad: float = 0.5
    reference_pixels: float = REFERENCE_PIXELS


@dataclass
class Shot:
    """Frames [start, end) of the decoded video; ``reason`` says why a dropped shot was dropped."""

    start: int
    end: int
    kept: bool = True
    reason: str | None = None


@dataclass
class ShotResult:
    """Output of :func:`detect_shots`; :meth:`to_json` is the documented JSON form."""

    input: str
    n_frames: int
    fps: float
    detector: str
    params: dict
    cuts: list[int]
    shots: list[Shot]
    held_groups: list[list[int]] = field(default_factory=list)
    dropped_frames: list[dict] = field(default_factory=list)
    error: str | None = None
    note: str | None = None

    def to_json(self) -> dict:
        out = {"input": self.input, "n_frames": self.n_frames, "fps": self.fps, "detector": self.detector,
               "params": self.params, "cuts": list(self.cuts), "shots": [asdict(s) for s in self.shots],
               "held_groups": self.held_groups, "dropped_frames": self.dropped_frames, "error": self.error}
        if self.note:
            out["note"] = self.note
        return out

    def kept_shots(self) -> list[Shot]:
        return [s for s in self.shots if s.kept]


#: Rows: Rec. 601 luma, and the opponent channels rg = R - G, yb = (R + G) / 2 - B of Hasler and Suesstrunk.
_LUMA_OPPONENT = np.array([[0.299, 0.587, 0.114], [1.0, -1.0, 0.0], [0.5, 0.5, -1.0]], np.float32)


def _luma_stats(image: np.ndarray) -> tuple[float, float, float]:
    """Mean luma, luma standard deviation and Hasler-Suesstrunk colourfulness of an RGB uint8 frame.

    Colourfulness = hypot(std rg, std yb) + 0.3 hypot(mean rg, mean yb); standard deviations are population
    ones (ddof 0), as numpy's default.
    """
    channels = cv2.transform(image.astype(np.float32), _LUMA_OPPONENT)
    mean, std = (v.ravel().astype(np.float64) for v in cv2.meanStdDev(channels))
    colourfulness = float(np.hypot(std[1], std[2]) + 0.3 * np.hypot(mean[1], mean[2]))
    return float(mean[0]), float(std[0]), colourfulness


class _ShotStats:
    """Streaming per-shot statistics for the static test."""

    def __init__(self, hist: np.ndarray):
        self.first = hist
        self.max_mse = 0.0

    def add(self, previous: np.ndarray, hist: np.ndarray) -> None:
        self.max_mse = max(self.max_mse, histogram_mse(previous, hist), histogram_mse(self.first, hist))


def _split_params(params: dict) -> tuple[ShotParams, dict]:
    names = {f.name for f in fields(ShotParams)}
    shot = ShotParams(**{k: v for k, v in params.items() if k in names and v is not None})
    return shot, {k: v for k, v in params.items() if k not in names and v is not None}


def detect_shots(path: str | os.PathLike, detector: str = DEFAULT_DETECTOR, crop: Crop | None = None,
                 workers: int | None = None, folder_size: tuple[int, int] | None = None, **params) -> ShotResult:
    """Shot detection of a video, GIF or folder (see :func:`detect_video_shots`).

    A folder whose images differ in size or channels cannot be read as one video (the reader stops at the first
    odd image); it is detected on normalised copies instead (RGB, padded to ``folder_size`` = (width, height),
    default the first image's size) written to a temporary folder, so every frame is covered and ``dataprep
    shots`` and ``dataprep build`` treat such a folder alike. ``result.note`` says so.
    """
    result = detect_video_shots(path, detector, crop, workers, **params)
    if not result.error or not os.path.isdir(path):
        return result
    import tempfile

    from dataprep.imaging import fit_frame, to_rgb
    from dataprep.video.source import folder_images

    with tempfile.TemporaryDirectory(prefix="celbench-frames-") as tmp:
        for index, image in folder_images(path, crop):
            rgb = to_rgb(image)
            if folder_size is None:
                folder_size = (rgb.shape[1], rgb.shape[0])
            rgb = fit_frame(rgb, folder_size[0], folder_size[1], "pad")
            cv2.imwrite(os.path.join(tmp, f"{index:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        result = detect_video_shots(tmp, detector, None, workers, **params)
    result.input = os.fspath(path)
    result.note = (f"detected on normalised copies (images of mixed sizes or channels, padded to "
                   f"{folder_size[0]}x{folder_size[1]})")
    return result


def detect_video_shots(path: str | os.PathLike, detector: str = DEFAULT_DETECTOR, crop: Crop | None = None,
                       workers: int | None = None, **params) -> ShotResult:
    """Split a video into shots and mark the ones to drop (Shi et al. Sec. 4.1).

    Args:
        path: video file, GIF or folder of numbered images (see :func:`dataprep.video.source.open_video`).
        detector: registered detector name (``dataprep ls detectors``).
        crop: optional (x0, y0, x1, y1) box of the source frame to analyse.
        workers: decoding threads (default: :func:`dataprep.video.source.decode_workers`, the usable cores); the
            per-frame features run on them too (:meth:`dataprep.video.source.VideoSource.map`). The result does not
            depend on it.
        **params: :class:`ShotParams` fields, plus keyword arguments of the detector
            (e.g. ``threshold=200``).

    Returns:
        A :class:`ShotResult`; ``result.error`` is set (and the shots cover only the decoded frames) when the
        file is corrupt or truncated half-way.

    Raises:
        CelbenchError: unusable input (missing, not a video, zero frames, bad crop, unknown detector/param).
    """
    shot_params, detector_kwargs = _split_params(params)
    load_detectors()
    factory = DETECTORS.get(detector)
    try:
        det: ShotDetector = factory(**detector_kwargs)
    except TypeError as error:
        raise CelbenchError(f"detector {detector!r}: bad parameter ({error})") from None
    # Header only: the first frame is decoded with the others (a file whose frames never decode fails below).
    source = open_video(path, crop=crop, max_width=det.analysis_width, sampling="stride", check=False)
    det.reset(source.fps)

    cuts: list[int] = []
    shot_bounds: list[int] = [0]
    held: list[list[int]] = []
    dropped: list[dict] = []
    usable: list[int] = []  # usable frames per shot
    static_flags: list[bool] = []
    shot_stats: _ShotStats | None = None
    prev_hist = prev_thumb = None
    held_start = 0
    n = 0
    # Cuts arrive a few frames late (persistence check), so per-shot statistics use a short frame buffer.
    pending: list[tuple[int, np.ndarray, np.ndarray, bool]] = []

    def close_shot() -> None:
        static_flags.append(shot_stats is not None and shot_stats.max_mse < shot_params.static_mse)

    def consume(index: int, hist: np.ndarray, thumb: np.ndarray, bad: bool) -> None:
        nonlocal shot_stats, prev_hist, prev_thumb, held_start
        new_shot = index in cut_set
        if new_shot:
            close_shot()
            shot_bounds.append(index)
            usable.append(0)
            shot_stats = None
        if not usable:
            usable.append(0)
        usable[-1] += 0 if bad else 1
        if shot_stats is None:
            shot_stats = _ShotStats(hist)
        else:
            shot_stats.add(prev_hist, hist)
        same = (prev_thumb is not None and not new_shot
                and float(np.mean(np.abs(thumb - prev_thumb))) <= shot_params.held_mad)
        if not same:
            if index - held_start >= 2:
                held.append([held_start, index])
            held_start = index
        prev_hist, prev_thumb = hist, thumb

    def analyse(image: np.ndarray) -> tuple:
        """Everything that needs the pixels of one frame (runs on the decoding threads)."""
        features = det.features(image)
        thumb = hist = None
        if isinstance(features, FrameFeatures):  # histogram-mse computed both already
            thumb = features.thumbnail
            if det.reference_pixels == shot_params.reference_pixels:
                hist = features.histogram
        if hist is None:
            hist = rgb_histogram(image, shot_params.reference_pixels)
        if thumb is None:
            # Brightness, contrast, colour and held-drawing tests are global: a 64-pixel-wide thumbnail suffices.
            thumb = frame_thumbnail(image)
        mean, contrast, colour = _luma_stats(thumb)
        reason = None
        if mean < shot_params.dark_luma:
            reason = "dark"
        elif contrast < shot_params.faded_contrast or colour < shot_params.faded_colourfulness:
            reason = "faded"
        return features, hist, cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY).astype(np.float32), reason

    cut_set: set[int] = set()
    keep_back = det.max_delay + 1
    frames = source.map(analyse, decode_workers() if workers is None else workers)
    for index, _, (features, hist, grey, reason) in progress(frames, total=source.n_frames,
                                                             desc=os.path.basename(os.fspath(path)), unit="frame"):
        new_cuts = det.process(index, features)
        if reason:
            dropped.append({"frame": index, "reason": reason})
        pending.append((index, hist, grey, reason is not None))
        cuts.extend(new_cuts)
        cut_set.update(new_cuts)
        if new_cuts and min(new_cuts) < n - keep_back:
            raise RuntimeError(f"detector {detector!r} reported a cut later than its max_delay")
        # Frames older than the detector's max_delay can no longer start a shot: they are final.
        while len(pending) > keep_back:
            consume(*pending.pop(0))
        n = index + 1
    if n == 0:
        raise file_error(path, source.error or "no frames (zero-frame video)")
    late = det.finish()
    cuts.extend(late)
    cut_set.update(late)
    for item in pending:
        consume(*item)
    close_shot()
    if n - held_start >= 2:
        held.append([held_start, n])

    cuts = sorted(set(cuts))
    shots = []
    bounds = shot_bounds + [n]
    for k in range(len(bounds) - 1):
        start, end = bounds[k], bounds[k + 1]
        shot = Shot(start, end)
        if end - start < shot_params.min_length:
            shot.kept, shot.reason = False, "short"
        elif static_flags[k]:
            shot.kept, shot.reason = False, "static"
        elif usable[k] < shot_params.min_length:
            shot.kept, shot.reason = False, "dark_or_faded"
        shots.append(shot)
    all_params = {**asdict(shot_params), "detector": det.params()}
    return ShotResult(input=os.fspath(path), n_frames=n, fps=round(float(source.fps), 6), detector=detector,
                      params=all_params, cuts=cuts, shots=shots, held_groups=held, dropped_frames=dropped,
                      error=source.error)


def load_truth(path: str | os.PathLike, key: str | None = None) -> dict:
    """Read a cuts file ``{"hard_cuts": [...], "probable_cuts"?, "gradual_transitions"?}``.

    The real data's ``vinland.cuts.json`` nests one such dict per GIF; ``key`` (the video's file name)
    selects it.
    """
    try:
        data = json.loads(open(path).read())
    except OSError as error:
        raise CelbenchError(f"{path}: cannot read truth file ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise CelbenchError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    if "hard_cuts" not in data and key is not None and key in data:
        data = data[key]
    if not isinstance(data, dict) or "hard_cuts" not in data:
        raise CelbenchError(f"{path}: no \"hard_cuts\" list" + (f" for {key}" if key else ""))
    return data


def score_cuts(predicted: list[int], truth: dict, tolerance: int = 1) -> dict:
    """Precision, recall and F1 of predicted cuts against ``truth["hard_cuts"]``.

    A prediction matches an unmatched true cut within +/- ``tolerance`` frames (greedy, closest first).
    Predictions within +/- tolerance of a ``probable_cuts`` entry or inside a ``gradual_transitions``
    range [start, end] (widened by the tolerance) are don't-care: neither true nor false positives.
    """
    hard = sorted(int(c) for c in truth.get("hard_cuts", []))
    probable = [int(c) for c in truth.get("probable_cuts", [])]
    gradual = [(int(a), int(b)) for a, b in truth.get("gradual_transitions", [])]
    pairs = sorted((abs(p - t), p, t) for p in predicted for t in hard if abs(p - t) <= tolerance)
    used_p, used_t = set(), set()
    for _, p, t in pairs:
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
    false_pos = [p for p in predicted if p not in used_p
                 and not any(abs(p - c) <= tolerance for c in probable)
                 and not any(a - tolerance <= p <= b + tolerance for a, b in gradual)]
    tp, fp, fn = len(used_t), len(false_pos), len(hard) - len(used_t)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1,
            "false_positives": false_pos, "missed": [t for t in hard if t not in used_t]}
