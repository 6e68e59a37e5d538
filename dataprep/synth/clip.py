"""Synthetic clips: configuration, frame stream with ground truth, and writing to disk.

A :class:`SynthClip` renders frames lazily (a 10-minute clip never sits in memory) and knows its
ground truth up front: cuts, fades, flashes, held drawings and the region table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from dataprep.errors import CelbenchError, file_error
from dataprep.progress import progress
from dataprep.synth.scene import ShotPlan, plan_shots
from dataprep.synth.sheet import contact_sheet
from dataprep.synth.video_writer import CODECS, VideoWriter

MAX_WIDTH, MAX_HEIGHT = 1920, 1080

@dataclass(frozen=True)
class SynthConfig:
    """Parameters of a synthetic clip. Same config (seed included) gives identical output.

    Attributes:
        width, height: frame size in pixels, even numbers (H.264 with 4:2:0 chroma needs them),
            32..1920 x 32..1080.
        fps: frames per second of the written video.
        shots: number of shots; consecutive shots are separated by a hard cut.
        shot_length: (min, max) frames per shot, inclusive.
        seed: seed of every random choice.
        fade: make one shot boundary a fade through black (a gradual transition, not a hard cut).
        flash: add one flash frame (mostly white) inside a shot - a hard negative for cut detection.
        pan: allow camera pans (about half the shots).
        holds: drawing hold lengths to choose from per shot (1 = on ones, 2 = on twos, ...).
        characters: (min, max) characters per shot.
    """

    width: int = 256
    height: int = 256
    fps: float = 24.0
    shots: int = 4
    shot_length: tuple[int, int] = (24, 48)
    seed: int = 0
    fade: bool = False
    flash: bool = False
    pan: bool = True
    holds: tuple[int, ...] = (1, 2, 3)
    characters: tuple[int, int] = (1, 3)

    def __post_init__(self) -> None:
        if not (32 <= self.width <= MAX_WIDTH and 32 <= self.height <= MAX_HEIGHT):
            raise CelbenchError(f"frame size {self.width}x{self.height} is outside 32x32..{MAX_WIDTH}x{MAX_HEIGHT}")
        if self.width % 2 or self.height % 2:
            raise CelbenchError(f"frame size {self.width}x{self.height} must be even (4:2:0 video)")
        if not (0 < self.fps <= 240):
            raise CelbenchError(f"fps {self.fps} must be in (0, 240]")
        if self.shots < 1:
            raise CelbenchError(f"shots {self.shots} must be at least 1")
        lo, hi = self.shot_length
        if not (1 <= lo <= hi):
            raise CelbenchError(f"shot length range {lo},{hi} must satisfy 1 <= min <= max")
        if (self.fade or self.flash) and lo < 12:
            raise CelbenchError("fades and flashes need shots of at least 12 frames")
        if not self.holds or any(h < 1 for h in self.holds):
            raise CelbenchError(f"holds {self.holds} must be positive")
        if not (1 <= self.characters[0] <= self.characters[1]):
            raise CelbenchError(f"characters range {self.characters} must satisfy 1 <= min <= max")


def resolve_codec(codec: str) -> str:
    """Check ``codec`` and fall back from H.264 to MPEG-4 Part 2 when this PyAV build lacks libx264."""
    if codec not in CODECS:
        raise CelbenchError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")
    if CODECS[codec][0] not in av.codecs_available:
        if codec == "h264" and "mpeg4" in av.codecs_available:
            return "mpeg4"
        raise CelbenchError(f"codec {codec!r} needs encoder {CODECS[codec][0]!r}, missing from this PyAV build")
    return codec


def demo_config() -> SynthConfig:
    """The embedded demo video: 4 shots at 256x256 with a fade, a flash, pans and ones/twos/threes.

    Seed 4 is the first seed whose shots show every feature (pans and all three hold lengths).
    """
    return SynthConfig(shots=4, seed=4, fade=True, flash=True)


@dataclass
class SynthFrame:
    """One rendered frame and its ground truth.

    Attributes:
        index: 0-based frame index in the clip.
        shot: 0-based shot index.
        image: (H, W, 3) uint8 RGB as shown (fades and flashes applied).
        line_art: (H, W) uint8, 0 = outline pixel, 255 = paper.
        labels: (H, W) uint16 region ids, 0 on outline pixels; the same id in two frames of one shot
            is the same part (ground-truth correspondence).
        drawing: drawing number within the shot; frames with equal (shot, drawing) are held frames.
    """

    index: int
    shot: int
    image: np.ndarray
    line_art: np.ndarray
    labels: np.ndarray
    drawing: int


@dataclass
class _Effects:
    """Per-frame brightness changes that are not cuts: fades through black and flash frames."""

    fade_gain: dict[int, float] = field(default_factory=dict)
    flashes: list[int] = field(default_factory=list)
    gradual: list[list[int]] = field(default_factory=list)
    fade_cut: int | None = None


class SynthClip:
    """A deterministic procedural cel-animation clip.

    >>> clip = SynthClip(SynthConfig(width=64, height=64, shots=2, shot_length=(8, 8)))
    >>> clip.truth["cuts"], clip.truth["n_frames"]
    ([8], 16)
    """

    def __init__(self, config: SynthConfig | None = None):
        self.config = config or SynthConfig()
        rng = np.random.default_rng(self.config.seed)
        self.shots: list[ShotPlan] = plan_shots(self.config, rng)
        self.n_frames = self.shots[-1].end
        self._effects = self._plan_effects(rng)

    def _plan_effects(self, rng: np.random.Generator) -> _Effects:
        effects = _Effects()
        if self.config.fade and len(self.shots) > 1:
            k = int(rng.integers(0, len(self.shots) - 1))
            before, after = self.shots[k], self.shots[k + 1]
            span = max(3, min(8, before.length // 3, after.length // 3))
            for i in range(span):  # out to black, then in from black
                effects.fade_gain[before.end - 1 - i] = (i + 0.5) / (span + 0.5)
                effects.fade_gain[after.start + i] = (i + 0.5) / (span + 0.5)
            effects.gradual.append([before.end - span, after.start + span - 1])
            effects.fade_cut = after.start
        if self.config.flash:
            candidates = [s for s in self.shots if s.length >= 12]
            shot = candidates[int(rng.integers(len(candidates)))]
            effects.flashes.append(shot.start + int(rng.integers(5, shot.length - 5)))
        return effects

    @property
    def truth(self) -> dict:
        """JSON-able ground truth of the clip (see the module docstring of :mod:`dataprep.synth`)."""
        cuts = [s.start for s in self.shots[1:]]
        regions = {}
        for s in self.shots:
            regions.update({str(rid): info for rid, info in s.regions.items()})
        return {
            "generator": "celbench.dataprep.synth",
            "config": asdict(self.config),
            "n_frames": self.n_frames,
            "fps": self.config.fps,
            "width": self.config.width,
            "height": self.config.height,
            "frame_indexing": "0-based index of decoded frames",
            "cuts": cuts,
            "hard_cuts": [c for c in cuts if c != self._effects.fade_cut],
            "gradual_transitions": self._effects.gradual,
            "flashes": self._effects.flashes,
            "shots": [{"start": s.start, "end": s.end, "hold": s.hold, "pan": list(s.pan)} for s in self.shots],
            "drawings": [s.drawing_of(i) for s in self.shots for i in range(s.length)],
            "regions": regions,
        }

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[SynthFrame]:
        """Render frames ``start`` .. ``stop - 1`` lazily, one at a time."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        w, h = self.config.width, self.config.height
        for shot in self.shots:
            if shot.end <= start or shot.start >= stop:
                continue
            cache: tuple[int, tuple] | None = None
            for i in range(max(start, shot.start), min(stop, shot.end)):
                drawing = shot.drawing_of(i - shot.start)
                if cache is None or cache[0] != drawing:  # held frames reuse the drawing
                    cache = (drawing, shot.render(i - shot.start, w, h))
                image, line_art, labels = cache[1]
                image = self._apply_effects(i, image)
                yield SynthFrame(i, shot.index, image, line_art, labels, drawing)

    def _apply_effects(self, index: int, image: np.ndarray) -> np.ndarray:
        if index in self._effects.flashes:
            return (image.astype(np.float32) * 0.25 + 255 * 0.75).round().astype(np.uint8)
        gain = self._effects.fade_gain.get(index)
        if gain is not None:
            return (image.astype(np.float32) * gain).round().astype(np.uint8)
        return image

    def write(self, out_dir: str | os.PathLike, codec: str = "h264", truth_images: bool = True,
              frames_png: bool = False, overwrite: bool = False, progress_desc: str = "synth") -> Path:
        """Write the clip and its ground truth to ``out_dir`` atomically.

        Files: ``video.<ext>``, ``truth.json``, ``cuts.json`` (the hand-label format used by
        ``dataprep shots --truth``), ``contact_sheet.png``, and unless ``truth_images`` is False,
        ``line_art/NNNNNN.png`` (uint8) and ``labels/NNNNNN.png`` (uint16); with ``frames_png`` also
        lossless ``frames/NNNNNN.png``. Everything is written to a temporary sibling folder and renamed
        into place at the end, so an error leaves no partial output.
        """
        codec = resolve_codec(codec)
        out = Path(out_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            if not overwrite:
                raise file_error(out, "exists and is not empty (use --overwrite to replace it)")
            if not written_by_synth(out):
                raise file_error(out, "refusing to overwrite: not a folder written by dataprep synth (truth.json, "
                                      "cuts.json, video.*, contact_sheet.png, line_art/, labels/, frames/)")
        parent = out.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
        except OSError as error:
            raise file_error(out, f"cannot create output folder ({error.strerror or error})") from None
        try:
            if truth_images:
                (tmp / "line_art").mkdir()
                (tmp / "labels").mkdir()
            if frames_png:
                (tmp / "frames").mkdir()
            encoder, ext, _, _ = CODECS[codec]
            sheet_at = _contact_sheet_frames(self)
            sheet_frames = []
            with VideoWriter(tmp / f"video.{ext}", codec, self.config.width, self.config.height,
                             Fraction(self.config.fps).limit_denominator(1001)) as writer:
                for frame in progress(self.frames(), total=self.n_frames, desc=progress_desc, unit="frame"):
                    writer.write(frame.image)
                    name = f"{frame.index:06d}.png"
                    if truth_images:
                        cv2.imwrite(str(tmp / "line_art" / name), frame.line_art)
                        cv2.imwrite(str(tmp / "labels" / name), frame.labels)
                    if frames_png:
                        cv2.imwrite(str(tmp / "frames" / name), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
                    if frame.index in sheet_at:
                        sheet_frames.append(frame)
            truth = self.truth
            truth["video"] = f"video.{ext}"
            truth["codec"] = codec
            (tmp / "truth.json").write_text(json.dumps(truth, indent=1))
            (tmp / "cuts.json").write_text(json.dumps({
                "file": f"video.{ext}", "annotation": "generated ground truth", "n_frames": self.n_frames,
                "fps": self.config.fps, "hard_cuts": truth["hard_cuts"],
                "gradual_transitions": truth["gradual_transitions"], "flashes": truth["flashes"]}, indent=1))
            cv2.imwrite(str(tmp / "contact_sheet.png"), cv2.cvtColor(contact_sheet(sheet_frames), cv2.COLOR_RGB2BGR))
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            os.replace(tmp, out)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            raise file_error(out, f"cannot write ({error.strerror or error})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out


#: What :meth:`SynthClip.write` puts in its folder; ``--overwrite`` replaces only a folder holding nothing else.
SYNTH_FILES = {"truth.json", "cuts.json", "contact_sheet.png"}
SYNTH_FOLDERS = {"line_art", "labels", "frames"}


def written_by_synth(out: Path) -> bool:
    """Whether ``out`` is a folder this writer made: its truth.json and nothing it does not write itself.

    ``--overwrite`` deletes the folder, so anything else in it (a source tree, the current directory) is refused.
    """
    if not out.is_dir() or out.is_symlink():
        return False
    try:
        truth = json.loads((out / "truth.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(truth, dict) or not {"hard_cuts", "shots", "video"} <= set(truth):
        return False
    for entry in out.iterdir():
        if entry.is_symlink():
            return False
        if entry.is_dir():
            if entry.name not in SYNTH_FOLDERS or any(not f.name.endswith(".png") or not f.is_file()
                                                      for f in entry.iterdir()):
                return False
        elif entry.name not in SYNTH_FILES and not (entry.stem == "video" and entry.suffix):
            return False
    return True


def _contact_sheet_frames(clip: SynthClip, n: int = 6) -> set[int]:
    """Frame indices for the contact sheet: spread over the clip, at least one per shot when possible."""
    per_shot = [s.start + s.length // 2 for s in clip.shots]
    if len(per_shot) >= n:
        return set(per_shot[:: max(1, len(per_shot) // n)][:n])
    extra = np.linspace(0, clip.n_frames - 1, n - len(per_shot) + 2)[1:-1].round().astype(int)
    return set(per_shot) | set(int(i) for i in extra)
