"""Small, fast stand-ins for the stage adapter, so tests of the build's mechanics (resume, failures, splits,
manifest, validation) run in seconds and do not depend on the stage modules' quality.

Sources are folders of frame images (written by :func:`write_synth_frames` from the procedural generator, or
hand-made); the "detector" reads the generator's ground-truth shots from ``truth.json`` in the folder.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from dataprep.build.pipeline import StagePipeline
from dataprep.config import BuildConfig, canonical_json


def write_synth_frames(folder: Path, seed: int = 0, shots: int = 2, width: int = 96, height: int = 64,
                       shot_length=(12, 16)) -> dict:
    """Colour frames of a generated clip as ``folder/NNNN.png`` plus ``truth.json``; returns the truth."""
    from dataprep.synth import SynthClip, SynthConfig

    clip = SynthClip(SynthConfig(width=width, height=height, shots=shots, shot_length=shot_length, seed=seed))
    folder.mkdir(parents=True, exist_ok=True)
    for frame in clip.frames():
        cv2.imwrite(str(folder / f"{frame.index:04d}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    truth = {k: v for k, v in clip.truth.items() if k in ("n_frames", "fps", "shots", "cuts")}
    (folder / "truth.json").write_text(json.dumps(truth))
    return truth


def dataset_bytes(out: Path) -> dict[str, bytes | dict]:
    """The dataset's content: every shard's bytes, each source's shots (without its location) and each unit's
    marker, without timings."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "data").rglob("*")) if p.is_file()}
    for path in sorted((out / "meta").rglob("*.json")):
        if path.parent.name in ("shots", "units"):
            record = json.loads(path.read_text())
            files[str(path.relative_to(out))] = {k: v for k, v in record.items()
                                                 if k not in ("seconds", "timings", "input")}
    return files


class FakePipeline:
    """Same methods as :class:`dataprep.build.pipeline.StagePipeline`, computed in a few lines each."""

    def __init__(self, config: BuildConfig):
        self.config = config

    fit = StagePipeline.fit

    def _files(self, path: str) -> list[Path]:
        return sorted(p for p in Path(path).iterdir() if p.suffix == ".png")

    def detect(self, path: str) -> dict:
        files = self._files(path)
        truth_path = Path(path) / "truth.json"
        if truth_path.exists():
            shots = json.loads(truth_path.read_text())["shots"]
        else:
            shots = [{"start": 0, "end": len(files)}]
        return {"input": path, "n_frames": len(files), "fps": 24.0, "detector": "truth",
                "params": {}, "cuts": [s["start"] for s in shots[1:]],
                "shots": [{"start": s["start"], "end": s["end"], "kept": True, "reason": ""} for s in shots]}

    def frames(self, path: str, start: int = 0, end: int | None = None, n_frames: int | None = None):
        for index, file in enumerate(self._files(path)):
            if index < start or (end is not None and index >= end):
                continue
            image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
            if image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
            yield index, index / 24.0, image

    def sketch(self, rgb):
        return np.where(rgb.mean(axis=2) < 60, 0, 255).astype(np.uint8)

    def distance_field(self, sketch):
        distance = cv2.distanceTransform((sketch > 127).astype(np.uint8), cv2.DIST_L2, 3)
        return (np.minimum(distance, 32) / 32 * 65535).astype(np.uint16)

    def components(self, sketch, rgb):
        labels, n = ndimage.label(sketch > 127)
        table = []
        for i, box in enumerate(ndimage.find_objects(labels), start=1):
            mask = labels == i
            rows, cols = np.nonzero(mask)
            table.append({"id": i, "area": int(mask.sum()), "centroid": [float(rows.mean()), float(cols.mean())],
                          "bbox": [box[0].start, box[1].start, box[0].stop, box[1].stop], "hu": [0.0] * 7,
                          "mean_rgb": [float(v) for v in rgb[mask].mean(axis=0)]})
        return labels.astype(np.uint16), table

    def correspondences(self, reference, target):
        out = []
        for a in reference[1]:
            for b in target[1]:
                if np.abs(np.subtract(a["mean_rgb"], b["mean_rgb"])).max() < 2:
                    out.append((a["id"], b["id"]))
                    break
        return out

    def hints(self, rgb, labels, seed):
        rng = np.random.default_rng(seed)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        ys, xs = rng.integers(0, rgb.shape[0], 5), rng.integers(0, rgb.shape[1], 5)
        mask[ys, xs] = 255
        image = np.where(mask[:, :, None] > 0, rgb, 0).astype(np.uint8)
        return image, mask

    def describe(self):
        return {"extractor": "fake", "extractor_params": "{}", "field": "fake",
                "hint_method": canonical_json({"name": "fake"})}


class DiskFullOnClip1(FakePipeline):
    def sketch(self, rgb):
        if os.environ.get("CELBENCH_TEST_FAIL") == "disk" and self.current_path.endswith("clip1"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().sketch(rgb)

    def frames(self, path, start=0, end=None, n_frames=None):
        self.current_path = str(path)
        yield from super().frames(path, start, end)


class WorkerDiesOnClip1(DiskFullOnClip1):
    def sketch(self, rgb):
        if os.environ.get("CELBENCH_TEST_FAIL") == "kill" and self.current_path.endswith("clip1"):
            os._exit(9)  # the worker process dies without cleanup, as when killed
        return super().sketch(rgb)


class WaitsToBeKilled(FakePipeline):
    """Records each attempt of a unit as ``<source>.attempts/<first frame>-<pid>-<node>`` (node: the Ray node id,
    '-' outside Ray) and, when that folder exists and this is the first attempt of the source's first unit, stops
    after a few frames and waits, so a test can kill the worker process in the middle of the unit."""

    def frames(self, path, start=0, end=None, n_frames=None):
        attempts = Path(f"{path}.attempts")
        first = attempts.is_dir() and start == 0 and not any(attempts.glob("0-*"))
        if attempts.is_dir():
            try:
                import ray

                node = ray.get_runtime_context().get_node_id()
            except Exception:
                node = "-"
            (attempts / f"{start}-{os.getpid()}-{node}").write_text("")
        for k, item in enumerate(super().frames(path, start, end)):
            if first and k == 5:
                time.sleep(120)  # killed by the test long before
            yield item
