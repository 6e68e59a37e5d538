"""``bench evaluate``: run a model over a protocol's samples and produce a :class:`ResultRecord`.

The loop, per batch of samples with the same number of references: load frames from the
:class:`~benchmark.source.SampleSource` and resize them to the protocol's resolution (or keep their stored
size, ``"resolution": "stored"``), call the
model (timed alone, device synchronised), check every output (shape (B, 3, H, W), finite, within
[0, 1] up to ``RANGE_TOLERANCE``), score valid samples with the protocol's metrics, and aggregate
overall and per bucket (per clip first, then over clips, when the protocol says ``"average": "clip"``).
A matcher's per-region answers (``output.component_matches``, see :func:`output_matches`) go to the
metrics that score them. A model that misbehaves on some samples does not stop the run: those samples
are listed in the record's ``problems`` and the record is marked ``invalid``. A model that raises, or
a Ctrl-C, stops it: what was scored so far is kept and the record is marked ``incomplete``.

Determinism: samples are drawn by seeded samplers, the order is fixed, torch is seeded and asked
for deterministic algorithms during the run, so two runs give identical numbers.
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from dataprep import __version__
from dataprep.errors import CelbenchError
from dataprep.imaging import resize_image
from dataprep.progress import progress

from benchmark.fit import DEFAULT_FIT, FITS, PAD_VALUES
from benchmark.model import Model
from benchmark.protocol import MetricSpec, Protocol, draw_hints
from benchmark.timing import measure
from benchmark.record import MetricResult, Problem, ResultRecord, Speed, compute_signature
from benchmark.source import Frame, SampleSource, SampleSpec, empty_split_hint

#: Outputs may leave [0, 1] by this much (float rounding in a final sigmoid/clamp) and still count as valid.
RANGE_TOLERANCE = 1e-4
#: Frames kept preprocessed in memory; references are shared by several targets (up to 4 in CMFT).
FRAME_CACHE_SIZE = 64
#: torch intra-op threads for the harness's own work (resizing, stacking, checks, metrics). Its
#: tensors are small, so OpenMP synchronisation costs more than it gains: on a shared 2-core machine
#: one thread made the loop 4-8x faster. The model's forward runs with the caller's thread count.
HARNESS_THREADS = 1


class Terminated(SystemExit):
    """Raised by a SIGTERM handler (``bench evaluate`` installs one) so a terminated run is recorded as
    ``incomplete`` with the samples scored so far, as Ctrl-C is."""

    def __init__(self, signal_name: str = "SIGTERM"):
        super().__init__(f"terminated by {signal_name}")

    def __str__(self) -> str:
        return str(self.code)


def create_metric(spec: MetricSpec):
    """Instantiate a protocol metric from the metric registry (may raise ``MetricUnavailable``)."""
    from benchmark.metric import create_metric as create

    return create(spec.name, **spec.settings)


def metric_unavailable_error() -> type[Exception]:
    from benchmark.metric import MetricUnavailable

    return MetricUnavailable


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float RGB in [0, 1] -> (N, H, W, 3) uint8, rounding to nearest, as saving the
    prediction to an 8-bit PNG would; metrics compare 8-bit frames (data range 255), and the dataset's
    ground truth is 8-bit already, so it converts back exactly."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


@dataclass
class PreparedFrame:
    """A frame at protocol resolution as tensors: colour (3,H,W), sketch (1,H,W), field (1,H,W) float32
    in the conventions of :mod:`benchmark.model`; components (H,W) int64 or None; parts: the frame's
    (L + 1,) part per component id (:class:`benchmark.source.Frame`), unchanged by resizing, or None."""

    colour: torch.Tensor
    sketch: torch.Tensor
    field: torch.Tensor
    components: torch.Tensor | None
    parts: np.ndarray | None = None


def prepare_frame(frame: Frame, resolution: tuple[int, int] | None, fit: str = DEFAULT_FIT) -> PreparedFrame:
    """The frame's canvas under ``fit`` (:mod:`benchmark.fit`) for a model input of ``resolution``: resized with
    area averaging when shrinking (no aliasing of thin lines), bilinear when growing, nearest neighbour for label
    maps (labels are ids, not quantities), then cropped; ``resolution=None`` keeps the stored frame untouched."""
    height, width = frame.colour.shape[:2]
    if resolution is None:
        (out_h, out_w), (y0, x0, crop_h, crop_w) = (height, width), (0, 0, height, width)
    else:
        (out_h, out_w), (y0, x0, crop_h, crop_w) = FITS.create(fit).canvas(height, width, resolution)

    def canvas(image: np.ndarray, labels: bool = False) -> np.ndarray:
        resized = resize_image(image, out_w, out_h, labels=labels)
        return np.ascontiguousarray(resized[y0:y0 + crop_h, x0:x0 + crop_w])

    colour = canvas(frame.colour).astype(np.float32) / 255.0
    sketch = canvas(frame.sketch).astype(np.float32) / 255.0
    field_ = canvas(frame.field.astype(np.float32))
    components = None
    if frame.components is not None:
        components = torch.from_numpy(canvas(frame.components.astype(np.int32), labels=True).astype(np.int64))
    return PreparedFrame(torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1))),
                         torch.from_numpy(sketch)[None], torch.from_numpy(np.ascontiguousarray(field_))[None],
                         components, frame.parts)


class FrameLoader:
    """Loads and prepares frames (their canvas under the protocol's fit) through a small LRU cache."""

    def __init__(self, source: SampleSource, resolution: tuple[int, int] | None, fit: str = DEFAULT_FIT):
        self.source = source
        self.resolution = resolution
        self.fit = fit
        self._cache: OrderedDict[str, PreparedFrame] = OrderedDict()

    def __call__(self, frame_id: str) -> PreparedFrame:  # noqa: D102
        if frame_id in self._cache:
            self._cache.move_to_end(frame_id)
            return self._cache[frame_id]
        prepared = prepare_frame(self.source.frame(frame_id), self.resolution, self.fit)
        self._cache[frame_id] = prepared
        if len(self._cache) > FRAME_CACHE_SIZE:
            self._cache.popitem(last=False)
        return prepared

    def canvas_size(self, frame_id: str) -> tuple[int, int]:
        """(H, W) of the frame's canvas, what a batch of its samples is stacked and scored at, from the stored
        size alone (no image decoded)."""
        height, width = self.source.frame_size(frame_id)
        if self.resolution is None:
            return height, width
        _, (_, _, canvas_h, canvas_w) = FITS.create(self.fit).canvas(height, width, self.resolution)
        return canvas_h, canvas_w

    def batches(self, samples: list[SampleSpec], batch_size: int) -> list[list[SampleSpec]]:
        """:func:`_batches` of ``samples`` whose target canvases share a size."""
        return _batches(samples, batch_size, lambda sample: self.canvas_size(sample.target_id))

    def windows(self, canvas: tuple[int, int]) -> list[tuple[int, int]]:
        """Top-left corners of the model's windows on a ``canvas`` (at stored resolution: the canvas itself)."""
        return FITS.create(self.fit).windows(*canvas, self.resolution) if self.resolution else [(0, 0)]


def model_inputs(protocol: Protocol) -> tuple[str, ...]:
    """The batch keys a model may receive under ``protocol``: its ``inputs``, plus the component labels of
    every frame whose sketch it gives. Labels are a function of the line art (its line-enclosed regions), so
    they add no information; region voting (``NAME+vote``) and paint-bucket models need them."""
    derived = [f"{prefix}_components" for prefix in ("target", "reference") if f"{prefix}_sketch" in protocol.inputs]
    return tuple(dict.fromkeys((*protocol.inputs, *derived)))


def build_batch(samples: Sequence[SampleSpec], load: FrameLoader, protocol: Protocol
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """(model inputs restricted to ``protocol.inputs``, ground-truth colour (B,3,H,W), target
    components (B,H,W) or None)."""
    targets = [load(s.target_id) for s in samples]
    full: dict[str, torch.Tensor] = {
        "target_sketch": torch.stack([t.sketch for t in targets]),
        "target_field": torch.stack([t.field for t in targets]),
    }
    if samples[0].reference_ids:
        references = [[load(r) for r in s.reference_ids] for s in samples]
        full["reference_colour"] = torch.stack([torch.stack([r.colour for r in refs]) for refs in references])
        full["reference_sketch"] = torch.stack([torch.stack([r.sketch for r in refs]) for refs in references])
        full["reference_field"] = torch.stack([torch.stack([r.field for r in refs]) for refs in references])
        if all(r.components is not None for refs in references for r in refs):
            full["reference_components"] = torch.stack([torch.stack([r.components for r in refs])
                                                        for refs in references])
    target_components = None
    if all(t.components is not None for t in targets):
        target_components = torch.stack([t.components for t in targets])
        full["target_components"] = target_components
    if "hints" in protocol.inputs:
        if protocol.hints is None:
            raise CelbenchError(f"protocol {protocol.id} gives hints but has no 'hints' block (its HINTS sampler)")
        sampler = protocol.hints.sampler()
        # Drawn on the 8-bit target at protocol resolution (colour is exactly uint8 / 255, so this is lossless).
        full["hints"] = torch.stack([torch.from_numpy(draw_hints(protocol.hints, s, to_uint8_images(t.colour[None])[0],
                                                                 sampler))
                                     for s, t in zip(samples, targets)])
    missing = [key for key in protocol.inputs if key not in full]
    if missing:
        raise CelbenchError(f"protocol {protocol.id} needs {', '.join(missing)}, which the dataset does not "
                            f"provide for sample {samples[0].sample_id}")
    inputs = {key: full[key] for key in protocol.inputs}
    for key in model_inputs(protocol):
        if key not in inputs and key in full:
            inputs[key] = full[key]
    return inputs, torch.stack([t.colour for t in targets]), target_components


def output_matches(output: Any, batch_size: int) -> list[np.ndarray | None]:
    """A matcher's answers, per sample: ``(L,)`` int64, entry ``t`` = the reference component id matched to
    target component ``t`` (-1 = no match), or None when the model gives none. A matcher returns its colour
    tensor with a ``component_matches`` attribute: ``(B, L)`` int64 tensor (or a list of B ``(L_b,)`` arrays)."""
    matches = getattr(output, "component_matches", None)
    if matches is None:
        return [None] * batch_size
    if isinstance(matches, torch.Tensor):
        matches = matches.detach().cpu().numpy()
    if len(matches) != batch_size:
        return [None] * batch_size
    return [np.asarray(m, dtype=np.int64).reshape(-1) for m in matches]


def check_output(output: Any, batch_size: int, resolution: tuple[int, int]) -> list[str | None]:
    """Per sample: None when the prediction is usable, else a short description of what is wrong."""
    expected = (batch_size, 3, *resolution)
    if not isinstance(output, torch.Tensor):
        return [f"model returned {type(output).__name__}, not a tensor"] * batch_size
    if tuple(output.shape) != expected:
        return [f"output shape {tuple(output.shape)}, expected {expected}"] * batch_size
    if not output.is_floating_point():
        return [f"output dtype {output.dtype}, expected a float tensor in [0, 1]"] * batch_size
    flat = output.detach().reshape(batch_size, -1).float()
    problems: list[str | None] = []
    finite = torch.isfinite(flat).all(dim=1)
    low, high = torch.aminmax(flat, dim=1)  # NaN rows are reported as non-finite first
    for i in range(batch_size):
        if not finite[i]:
            problems.append("output contains NaN or infinite values")
        elif low[i] < -RANGE_TOLERANCE or high[i] > 1 + RANGE_TOLERANCE:
            problems.append(f"output values in [{low[i]:.4g}, {high[i]:.4g}], expected [0, 1]")
        else:
            problems.append(None)
    return problems


def _batches(samples: list[SampleSpec], batch_size: int,
             size_of: Callable[[SampleSpec], Any] | None = None) -> list[list[SampleSpec]]:
    """Consecutive groups of at most ``batch_size`` samples with the same number of references (and the same
    ``size_of``, the canvas size, so sources of different aspect ratios batch apart)."""
    batches: list[list[SampleSpec]] = []
    last_size = None
    for sample in samples:
        size = size_of(sample) if size_of is not None else None
        if batches and len(batches[-1]) < batch_size and size == last_size and \
                len(batches[-1][0].reference_ids) == len(sample.reference_ids):
            batches[-1].append(sample)
        else:
            batches.append([sample])
        last_size = size
    return batches


def window_inputs(inputs: dict[str, torch.Tensor], y: int, x: int, height: int, width: int
                  ) -> dict[str, torch.Tensor]:
    """The ``height`` x ``width`` window at canvas position (y, x) of every input (spatial dims last); parts
    outside the canvas are filled with :data:`benchmark.fit.PAD_VALUES` of the key's kind."""
    out = {}
    for key, tensor in inputs.items():
        canvas_h, canvas_w = tensor.shape[-2:]
        if (y, x, height, width) == (0, 0, canvas_h, canvas_w):
            out[key] = tensor
            continue
        pad = next((value for suffix, value in PAD_VALUES.items() if key.endswith(suffix)), 0.0)
        window = torch.full((*tensor.shape[:-2], height, width), pad, dtype=tensor.dtype, device=tensor.device)
        top, left = max(y, 0), max(x, 0)
        bottom, right = min(y + height, canvas_h), min(x + width, canvas_w)
        window[..., top - y:bottom - y, left - x:right - x] = tensor[..., top:bottom, left:right]
        out[key] = window
    return out


def run_windows(model: Model, inputs: dict[str, torch.Tensor], canvas: tuple[int, int],
                windows: list[tuple[int, int]], resolution: tuple[int, int] | None, device: torch.device
                ) -> tuple[Any, list[str | None], float, int]:
    """Run ``model`` on each window of the canvas and put its answers together: (output (B, 3, *canvas) or
    whatever the model returned when its one window is the whole canvas, per-sample verdicts of
    :func:`check_output`, forward seconds, peak bytes). Overlapping answers are averaged; a sample any of whose
    windows is unusable gets that window's verdict."""
    batch_size = next(iter(inputs.values())).shape[0]
    window_size = resolution or canvas
    if windows == [(0, 0)] and tuple(window_size) == tuple(canvas):
        output, seconds, peak = measure(model, inputs, device=device)
        return output, check_output(output, batch_size, canvas), seconds, peak
    total = torch.zeros(batch_size, 3, *canvas)
    count = torch.zeros(1, 1, *canvas)
    verdicts: list[str | None] = [None] * batch_size
    seconds, peak = 0.0, 0
    for y, x in windows:
        output, took, peak_bytes = measure(model, window_inputs(inputs, y, x, *window_size), device=device)
        seconds, peak = seconds + took, max(peak, peak_bytes)
        checked = check_output(output, batch_size, window_size)
        verdicts = [old or new for old, new in zip(verdicts, checked)]
        if all(v is not None for v in checked):
            continue
        top, left = max(y, 0), max(x, 0)
        bottom, right = min(y + window_size[0], canvas[0]), min(x + window_size[1], canvas[1])
        part = output.detach().float().cpu()[..., top - y:bottom - y, left - x:right - x]
        total[..., top:bottom, left:right] += torch.nan_to_num(part)
        count[..., top:bottom, left:right] += 1
    return total / count.clamp(min=1), verdicts, seconds, peak


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _deterministic_cuda(device: torch.device) -> Callable[[], None]:
    """On CUDA, ask for deterministic kernels (some cuDNN/atomic-add kernels are not); returns the undo.

    Not done on CPU, where torch's kernels are deterministic already and deterministic mode would
    fill every new tensor with NaN (``fill_uninitialized_memory``), slowing the loop several-fold.
    """
    if device.type != "cuda":
        return lambda: None
    import torch.utils.deterministic

    before = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory,
              torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.benchmark = False

    def restore() -> None:
        torch.use_deterministic_algorithms(before[0])
        torch.utils.deterministic.fill_uninitialized_memory = before[1]
        torch.backends.cudnn.benchmark = before[2]

    return restore


def _is_set_metric(metric: Any) -> bool:
    """Distribution metrics (FID, KID) are accumulated with update/compute instead of averaged."""
    return bool(getattr(metric, "per_sample", True) is False)


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the record, per-sample rows, example images for the leaderboard."""

    record: ResultRecord
    rows: list[dict[str, Any]]
    examples: list[dict[str, Any]] = field(default_factory=list)


def signature_fields(protocol: Protocol, source: SampleSource, split: str, limit: int | None,
                     metric_settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every setting that can change a number of the record (see :mod:`benchmark.record`)."""
    return {
        "prediction_quantisation": "uint8-round",
        "protocol": protocol.id,
        "protocol_sha256": protocol.content_sha256,
        "dataset_manifest_sha256": source.manifest_hash,
        "split": split,
        "limit": limit,
        "resolution": list(protocol.resolution) if protocol.resolution else "stored",
        **({"fit": protocol.fit} if protocol.resolution else {}),
        **({"average": protocol.average} if protocol.average else {}),
        "metrics": metric_settings,
        "range_tolerance": RANGE_TOLERANCE,
        "celbench": __version__,
    }


def evaluate(model: Model, model_name: str, source: SampleSource, protocol: Protocol, *, split: str = "test",
             device: torch.device | str = "cpu", limit: int | None = None, weights_sha256: str | None = None,
             n_examples: int = 5, metric_factory: Callable[[MetricSpec], Any] | None = None) -> Evaluation:
    """Score ``model`` on ``protocol``'s samples of ``source``'s ``split``; never raises for model faults.

    Args:
        model: callable batch -> (B, 3, H, W) float RGB in [0, 1] (see :mod:`benchmark.model`).
        limit: score only the first ``limit`` samples (recorded in the signature).
        n_examples: how many samples to draw as images (best, median, worst by the primary metric and
            between; from different sources and shots where possible; see :func:`pick_examples`).
        metric_factory: builds a metric from a protocol entry; defaults to the metric registry.
    """
    device = torch.device(device)
    make_metric = metric_factory or create_metric
    unavailable_error = metric_unavailable_error()
    missing_inputs = sorted(set(getattr(model, "requires", ())) - set(model_inputs(protocol)))
    if missing_inputs:
        raise CelbenchError(f"model {model_name!r} needs {', '.join(missing_inputs)}, which protocol "
                            f"{protocol.id} does not give")
    samples = protocol.select(source, split)
    if limit is not None:
        samples = samples[:limit]
    if not samples:
        raise CelbenchError(f"{source.location}: split {split!r} has no samples for protocol {protocol.id} "
                            f"(shots too short or none){empty_split_hint(source, split)}")

    metrics: dict[str, Any] = {}
    unavailable: dict[str, tuple[MetricSpec, str]] = {}
    for spec in protocol.metrics:
        try:
            metrics[spec.name] = make_metric(spec)
        except unavailable_error as error:
            if not spec.optional:
                raise CelbenchError(f"metric {spec.name!r} required by {protocol.id} is unavailable: {error}") from None
            unavailable[spec.name] = (spec, str(error))
    set_metric_states: dict[tuple[str, str], Any] = {}

    rows: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    kept: dict[str, dict[str, np.ndarray]] = {}  # sample id -> example images (small evaluations only)
    problems: list[Problem] = []
    timings = defaultdict(float)
    forward_frames = 0
    peak_memory: int | None = None
    error: str | None = None
    interrupted = False
    load = FrameLoader(source, protocol.resolution, protocol.fit)

    torch.manual_seed(0)
    restore_determinism = _deterministic_cuda(device)
    model_threads = torch.get_num_threads()
    torch.set_num_threads(HARNESS_THREADS)
    started = time.perf_counter()
    bar = progress(total=len(samples), desc=f"{model_name} {protocol.id}", unit="frame")
    try:
        for batch_samples in load.batches(samples, protocol.batch_size):
            tick = time.perf_counter()
            inputs, target, target_components = build_batch(batch_samples, load, protocol)
            canvas = tuple(target.shape[-2:])
            reference_labels = inputs.get("reference_components")
            reference_labels = reference_labels[:, 0].numpy() if reference_labels is not None else None
            reference_u8 = (to_uint8_images(inputs["reference_colour"][:, 0]) if "reference_colour" in inputs
                            else None)
            # true correspondences where the source has part maps (first reference, as the match metrics)
            target_parts = [load(s.target_id).parts for s in batch_samples]
            reference_parts = [load(s.reference_ids[0]).parts if s.reference_ids else None for s in batch_samples]
            inputs = {k: v.to(device) for k, v in inputs.items()}
            _sync(device)
            timings["load"] += time.perf_counter() - tick

            torch.set_num_threads(model_threads)
            try:
                with torch.inference_mode():
                    output, verdicts, seconds, peak_bytes = run_windows(model, inputs, canvas, load.windows(canvas),
                                                                        protocol.resolution, device)
            except Exception as exception:  # the model's fault: keep what was scored, mark incomplete
                error = f"model raised {type(exception).__name__}: {exception} (at sample {batch_samples[0].sample_id})"
                break
            finally:
                torch.set_num_threads(HARNESS_THREADS)
            timings["forward"] += seconds
            peak_memory = max(peak_memory or 0, peak_bytes)
            forward_frames += len(batch_samples)

            tick = time.perf_counter()
            matches = output_matches(output, len(batch_samples))
            prediction = output.detach().float().cpu().clamp(0, 1) if isinstance(output, torch.Tensor) else None
            timings["check"] += time.perf_counter() - tick

            tick = time.perf_counter()
            prediction_u8 = to_uint8_images(prediction) if prediction is not None else None
            target_u8 = to_uint8_images(target)
            labels = target_components.numpy() if target_components is not None else None
            for i, (sample, verdict) in enumerate(zip(batch_samples, verdicts)):
                bucket = sample.attributes.get(protocol.bucket) if protocol.bucket else None
                row: dict[str, Any] = {"sample_id": sample.sample_id, "target_id": sample.target_id,
                                       "reference_ids": " ".join(sample.reference_ids),
                                       **sample.attributes, "valid": verdict is None, "problem": verdict or ""}
                if verdict is not None:
                    problems.append(Problem(sample.sample_id, verdict))
                    for name in metrics:
                        row[name] = math.nan
                    rows.append(row)
                    continue
                pred_i, target_i = prediction_u8[i], target_u8[i]
                available = {"labels": labels[i] if labels is not None else None,
                             "reference_labels": reference_labels[i] if reference_labels is not None else None,
                             "reference_colours": reference_u8[i] if reference_u8 is not None else None,
                             "matches": matches[i], "parts": target_parts[i],
                             "reference_parts": reference_parts[i]}
                for name, metric in metrics.items():
                    extra = {}
                    for key in getattr(metric, "requires", ()):
                        if available.get(key) is None:
                            raise CelbenchError(f"metric {name!r} needs {key}, which the dataset or protocol "
                                                f"does not provide for {sample.target_id}")
                        extra[key] = available[key]
                    for key in getattr(metric, "optional", ()):
                        extra[key] = available.get(key)
                    if _is_set_metric(metric):
                        for key in ("all", str(bucket)):
                            if (name, key) not in set_metric_states:
                                set_metric_states[(name, key)] = make_metric(
                                    next(s for s in protocol.metrics if s.name == name))
                            set_metric_states[(name, key)].update(pred_i[None], target_i[None], **extra)
                        row[name] = math.nan
                    else:
                        row[name] = float(metric.score(pred_i, target_i, **extra))
                rows.append(row)
                if len(samples) <= KEEP_ALL_EXAMPLES and n_examples > 0:
                    kept[sample.sample_id] = example_images(inputs, i, prediction[i], target[i])
            timings["metrics"] += time.perf_counter() - tick
            bar.update(len(batch_samples))
        total_seconds = time.perf_counter() - started
        if error is None and n_examples > 0:
            # after the timed run, so drawing the examples costs the speed figures nothing
            ranking = next((spec for spec in (protocol.primary_metric, *metrics) if spec in metrics
                            and not _is_set_metric(metrics[spec])), None)
            higher = bool(metrics[ranking].higher_is_better) if ranking else True
            picked = pick_examples(rows, ranking, higher, shot_of_frames(source, split), n_examples)
            torch.set_num_threads(model_threads)
            examples = render_examples(model, picked, {s.sample_id: s for s in samples}, load, protocol, device,
                                       kept)
    except (KeyboardInterrupt, SystemExit) as stop:
        # Ctrl-C, SIGTERM (see Terminated) or a model calling sys.exit: what was scored is kept, marked incomplete
        interrupted = True
        error = ("interrupted by the user" if isinstance(stop, KeyboardInterrupt) else
                 str(stop) if isinstance(stop, Terminated) else f"stopped by SystemExit({stop.code!r})")
    finally:
        bar.close()
        restore_determinism()
        torch.set_num_threads(model_threads)
    if error is not None:
        total_seconds = time.perf_counter() - started

    metric_results = _aggregate(protocol, metrics, unavailable, rows, set_metric_states)
    buckets = defaultdict(int)
    for row in rows:
        if row["valid"]:
            buckets[str(row.get(protocol.bucket)) if protocol.bucket else "all"] += 1
    status = "incomplete" if error or len(rows) < len(samples) else ("invalid" if problems else "complete")
    forward = timings["forward"]
    speed = Speed(
        seconds_per_frame=forward / forward_frames if forward_frames else None,
        frames_per_second=forward_frames / forward if forward > 0 else None,
        peak_memory_bytes=peak_memory, evaluation_seconds=total_seconds,
        overhead_fraction=(total_seconds - forward) / total_seconds if total_seconds > 0 else None,
        breakdown={k: round(v, 6) for k, v in sorted(timings.items())})
    settings = {m.name: m.settings for m in metric_results}
    sig_fields = signature_fields(protocol, source, split, limit, settings)
    record = ResultRecord(
        model=model_name, weights_sha256=weights_sha256 or getattr(model, "weights_sha256", None),
        protocol=protocol.name,
        protocol_version=protocol.version, protocol_sha256=protocol.content_sha256,
        dataset={"location": str(source.location), "manifest_sha256": source.manifest_hash},
        split=split, limit=limit, resolution=list(protocol.resolution or ()), bucket_key=protocol.bucket,
        primary_metric=protocol.primary_metric, metrics=metric_results, bucket_counts=dict(sorted(buckets.items(), key=_bucket_order)),
        samples_expected=len(samples), samples_evaluated=len(rows),
        samples_valid=sum(1 for r in rows if r["valid"]), status=status, problems=problems, error=error,
        speed=speed, environment=environment(device),
        date=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        signature=compute_signature(sig_fields, protocol.id), signature_fields=sig_fields)
    if interrupted:
        record.error = error
    return Evaluation(record, rows, examples)


def _bucket_order(item: tuple[str, Any]) -> tuple[int, float | str]:
    key = item[0]
    try:
        return (0, float(key))
    except ValueError:
        return (1, key)


def _mean_stderr(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and standard error; NaN (metric undefined for that frame) is skipped, +-inf is kept."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None, None
    mean = math.fsum(finite) / len(finite)
    if len(finite) < 2 or not math.isfinite(mean):
        return mean, None
    variance = math.fsum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, math.sqrt(variance / len(finite))


def _group_means(rows: list[dict[str, Any]], group: str, name: str) -> list[float]:
    """Mean of ``name`` within each value of attribute ``group`` (NaN skipped; NaN when a group has none),
    in order of first appearance: BasicPBC averages per clip, then over clips."""
    groups: dict[Any, list[float]] = defaultdict(list)
    for row in rows:
        groups[row.get(group)].append(row[name])
    return [mean if mean is not None else math.nan for mean in (_mean_stderr(v)[0] for v in groups.values())]


def _aggregate(protocol: Protocol, metrics: dict[str, Any], unavailable: dict[str, tuple[MetricSpec, str]],
               rows: list[dict[str, Any]], set_states: dict[tuple[str, str], Any]) -> list[MetricResult]:
    """Overall and per-bucket means of the per-sample values (FID-like metrics: computed per set)."""
    results = []
    valid = [r for r in rows if r["valid"]]
    for spec in protocol.metrics:
        if spec.name in unavailable:
            results.append(MetricResult(spec.name, bool(getattr(metrics.get(spec.name), "higher_is_better", False)),
                                        dict(spec.settings), None, None, 0, {}, unavailable[spec.name][1]))
            continue
        metric = metrics[spec.name]
        by_bucket: dict[str, list[float]] = defaultdict(list)
        for row in valid:
            by_bucket[str(row.get(protocol.bucket)) if protocol.bucket else "all"].append(row[spec.name])
        if _is_set_metric(metric):
            def computed(key: str) -> float | None:
                state = set_states.get((spec.name, key))
                return float(state.compute()) if state is not None else None
            value, stderr = computed("all"), None
            buckets = {key: computed(key) for key in by_bucket}
        elif protocol.average:
            value, stderr = _mean_stderr(_group_means(valid, protocol.average, spec.name))
            buckets = {key: _mean_stderr(_group_means([r for r in valid if str(r.get(protocol.bucket)) == key],
                                                      protocol.average, spec.name))[0] for key in by_bucket}
        else:
            value, stderr = _mean_stderr([row[spec.name] for row in valid])
            buckets = {key: _mean_stderr(values)[0] for key, values in by_bucket.items()}
        buckets = dict(sorted(buckets.items(), key=_bucket_order))
        results.append(MetricResult(spec.name, bool(metric.higher_is_better), dict(metric.settings()),
                                    value, stderr, len(valid), buckets if protocol.bucket else {}))
    return results


def shot_of_frames(source: SampleSource, split: str) -> dict[str, str]:
    """frame id -> shot id for ``split`` (empty when the source cannot list its shots)."""
    try:
        return {frame_id: shot.shot_id for shot in source.shots(split) for frame_id in shot.frame_ids}
    except CelbenchError:
        return {}


def pick_examples(rows: list[dict[str, Any]], metric: str | None, higher_is_better: bool,
                  shot_of: dict[str, str], n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` scored samples that show the spread: (label, row) pairs at evenly spaced ranks by ``metric``,
    best first, always including the best, the median and the worst.

    Each rank is filled by the nearest sample (searching outwards within a tenth of the ranking) whose
    source, else whose shot, is not shown yet, so the rows come from different videos and shots rather
    than from one stretch of near-identical frames. The source is the part of the shot id before its
    first ``/`` (``video_id`` for built datasets). Without a per-sample metric the first ``n`` valid
    samples are taken."""
    valid = [row for row in rows if row.get("valid")]
    if metric is not None:
        valid = [row for row in valid if isinstance(row.get(metric), float) and math.isfinite(row[metric])]
        # stable: ties keep the protocol's sample order
        valid.sort(key=lambda row: -row[metric] if higher_is_better else row[metric])
    else:
        valid = valid[:n]
    if not valid:
        return []
    last, count = len(valid) - 1, min(n, len(valid))
    median = last // 2
    targets = [round(last * k / (count - 1)) for k in range(count)] if count > 1 else [0]
    if count >= 3:  # the rank nearest the middle becomes the median itself
        targets[min(range(1, count - 1), key=lambda k: abs(targets[k] - median))] = median
    order = [targets[0], targets[-1], *targets[1:-1]] if count > 1 else targets  # best, worst, then between
    window = max(1, len(valid) // 10)

    def shot(index: int) -> str:
        return shot_of.get(valid[index]["target_id"], valid[index]["sample_id"])

    chosen: list[int] = []
    for target in order:
        candidates = sorted((i for i in range(max(0, target - window), min(last, target + window) + 1)
                             if i not in chosen), key=lambda i: (abs(i - target), i))
        if not candidates:
            continue
        sources = {shot(i).split("/")[0] for i in chosen}
        shots = {shot(i) for i in chosen}
        chosen.append(next((i for i in candidates if shot(i).split("/")[0] not in sources),
                           next((i for i in candidates if shot(i) not in shots), candidates[0])))
    roles = {median: "median", 0: "best", last: "worst"} if metric else {}
    picked = []
    for index in sorted(chosen):
        role = f"{roles[index]}, " if index in roles else ""
        score = f", {metric} {valid[index][metric]:.4g}" if metric else ""
        picked.append((f"{role}rank {index + 1} of {len(valid)}{score}: {valid[index]['sample_id']}", valid[index]))
    return picked


#: Evaluations of at most this many samples keep every valid sample's images (about 0.8 MB each at 256 px), so
#: drawing the examples needs no second model call; larger ones run the model again on the few picked.
KEEP_ALL_EXAMPLES = 48


def example_images(inputs: dict[str, torch.Tensor], i: int, prediction: torch.Tensor, target: torch.Tensor
                   ) -> dict[str, np.ndarray]:
    """Sample ``i`` of a batch as (H, W, 3) uint8 RGB images: reference (or the hints over white), target
    sketch, prediction, ground truth."""

    def rgb(tensor: torch.Tensor) -> np.ndarray:
        return (tensor.detach().float().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)

    if "reference_colour" in inputs:
        reference = rgb(inputs["reference_colour"][i, 0])
    else:
        hints = inputs["hints"][i]
        reference = rgb(hints[:3] * hints[3:4] + (1 - hints[3:4]))
    return {"reference": reference, "sketch": rgb(inputs["target_sketch"][i].expand(3, -1, -1)),
            "prediction": rgb(prediction), "truth": rgb(target)}


def render_examples(model: Model, picked: list[tuple[str, dict[str, Any]]], spec_of: dict[str, SampleSpec],
                    load: "FrameLoader", protocol: Protocol, device: torch.device,
                    kept: dict[str, dict[str, np.ndarray]] | None = None) -> list[dict[str, Any]]:
    """The picked samples' :func:`example_images` plus their ``caption``: from ``kept`` (images saved during
    the run) where present, else by running the model again on them. A model fault here only leaves the
    examples out."""
    kept = kept or {}
    caption_of = {row["sample_id"]: caption for caption, row in picked}
    examples = {sample_id: {**kept[sample_id], "caption": caption_of[sample_id]}
                for sample_id in caption_of if sample_id in kept}
    for batch in load.batches([spec_of[row["sample_id"]] for _, row in picked if row["sample_id"] not in kept],
                              protocol.batch_size):
        inputs, target, _ = build_batch(batch, load, protocol)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        canvas = tuple(target.shape[-2:])
        try:
            with torch.inference_mode():
                output, verdicts, _, _ = run_windows(model, inputs, canvas, load.windows(canvas), protocol.resolution,
                                                     device)
        except Exception:
            return []
        for i, (sample, verdict) in enumerate(zip(batch, verdicts)):
            if verdict is None:
                examples[sample.sample_id] = {**example_images(inputs, i, output[i], target[i]),
                                              "caption": caption_of[sample.sample_id]}
    return [examples[row["sample_id"]] for _, row in picked if row["sample_id"] in examples]


def environment(device: torch.device) -> dict[str, str]:
    env = {"celbench": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "device": str(device)}
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


EXAMPLE_TILE = 96
#: Column titles of the example grid, in order.
EXAMPLE_COLUMNS = ("reference", "target sketch", "prediction", "ground truth", "error map")
#: Mean absolute RGB error (0-255) drawn at the top of the error map's colour scale; larger errors saturate.
#: Fixed, not per image, so the maps of different rows and models compare.
ERROR_MAP_MAX = 96.0
_TEXT_ROW = 16


def error_map(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB heat map (inferno) of the per-pixel mean absolute RGB error, 0 -> black,
    ``ERROR_MAP_MAX`` or more -> yellow-white."""
    error = np.abs(prediction.astype(np.float32) - truth.astype(np.float32)).mean(axis=2)
    scaled = np.clip(error / ERROR_MAP_MAX * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _text_strip(text: str, width: int, centre: bool = False) -> np.ndarray:
    """A white (_TEXT_ROW, width, 3) strip with ``text`` in dark grey, cut with '...' to fit."""
    strip = np.full((_TEXT_ROW, width, 3), 255, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    while text and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 4:
        text = text[:-4] + "..." if len(text) > 4 else ""
    text_width = cv2.getTextSize(text, font, scale, 1)[0][0]
    x = (width - text_width) // 2 if centre else 2
    cv2.putText(strip, text, (x, _TEXT_ROW - 5), font, scale, (40, 40, 40), 1, cv2.LINE_AA)
    return strip


def examples_png(examples: list[dict[str, Any]]) -> bytes:
    """A PNG grid, one row per example: reference | target sketch | prediction | ground truth | error map
    (titled in a header row; :func:`error_map`), each tile ``EXAMPLE_TILE`` pixels high, the example's
    ``caption`` (rank, score, sample id) under its row. Small enough to commit next to a leaderboard."""
    gap = 2
    rows = []
    widths: list[int] = []
    for example in examples:
        images = [example["reference"], example["sketch"], example["prediction"], example["truth"],
                  error_map(example["prediction"], example["truth"])]
        tiles = []
        for image in images:
            scale = EXAMPLE_TILE / image.shape[0]
            tiles.append(cv2.resize(image, (max(1, round(image.shape[1] * scale)), EXAMPLE_TILE),
                                    interpolation=cv2.INTER_AREA))
        widths = [t.shape[1] for t in tiles]
        line = np.concatenate([part for t in tiles for part in (t, np.full((EXAMPLE_TILE, gap, 3), 255, np.uint8))][:-1],
                              axis=1)
        rows += [line, _text_strip(str(example.get("caption", "")), line.shape[1]),
                 np.full((gap * 2, line.shape[1], 3), 255, np.uint8)]
    header = np.concatenate([part for title, w in zip(EXAMPLE_COLUMNS, widths)
                             for part in (_text_strip(title, w, centre=True), np.full((_TEXT_ROW, gap, 3), 255, np.uint8))][:-1],
                            axis=1)
    grid = np.concatenate([header, *rows[:-1]], axis=0)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def output_paths(out: str | Path) -> dict[str, Path]:
    """The record ``FILE.json`` and its companions ``FILE.samples.parquet`` and ``FILE.examples.png``."""
    out = Path(out)
    stem = out.name[:-5] if out.name.endswith(".json") else out.name
    return {"record": out, "samples": out.with_name(f"{stem}.samples.parquet"),
            "examples": out.with_name(f"{stem}.examples.png")}


def save(evaluation: Evaluation, out: str | Path) -> dict[str, Path]:
    """Write the per-sample Parquet, the example grid and then the record (each via temp + rename)."""
    import io

    import pandas as pd

    from benchmark.record import atomic_write_bytes, content_hash, write_record

    paths = output_paths(out)
    frame = pd.DataFrame(evaluation.rows)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    companions = {"samples": buffer.getvalue()}
    if evaluation.examples:
        companions["examples"] = examples_png(evaluation.examples)
    evaluation.record.files = {}
    for kind, data in companions.items():
        atomic_write_bytes(paths[kind], data)
        evaluation.record.files[kind] = paths[kind].name
    evaluation.record.content_sha256 = content_hash(
        evaluation.record, {kind: hashlib.sha256(data).hexdigest() for kind, data in companions.items()})
    write_record(paths["record"], evaluation.record)
    return paths
