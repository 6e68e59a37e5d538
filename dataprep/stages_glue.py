"""The build's view of the per-frame stages: one small adapter over the stage modules.

:func:`dataprep.build.build` calls only :class:`StagePipeline`'s methods, so the stage modules (video decoding,
shot detection, sketch extraction, distance field, components, hints) can change their signatures with a change
here only. Shapes and dtypes at this boundary:

* frames: (H, W, 3) uint8 sRGB;
* sketch: (H, W) uint8, 0 = line, 255 = paper;
* distance field: (H, W) uint16 (lossless, see :mod:`dataprep.field`);
* label map: (H, W) uint16, 0 = line pixels, 1..N components, with a table of per-component dicts
  (``id, area, centroid, bbox, hu, mean_rgb``; :data:`dataprep.schemas.COMPONENT`);
* hints: (H, W, 3) uint8 sRGB and (H, W) uint8 mask (255 = hint).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np

from dataprep.config import BuildConfig, canonical_json


class StagePipeline:
    """Stage components created once per worker from the build config."""

    def __init__(self, config: BuildConfig):
        from dataprep.extractors import EXTRACTORS
        from dataprep.field import FIELDS
        from dataprep.hint import HINTS

        self.config = config
        self.extractor = EXTRACTORS.create(config.sketch.name, **config.sketch.params)
        self.field = FIELDS.create(config.field.name, **config.field.params)
        self.hint = HINTS.create(config.hints.name, **config.hints.params)

    # --- sources -------------------------------------------------------------------------------------
    def detect(self, path: str) -> dict[str, Any]:
        """Shot detection result as JSON (``shots: [{start, end, kept, reason}]``, ``n_frames``, ``fps``)."""
        from dataprep.shots import detect_shots

        crop = tuple(self.config.frames.crop) if self.config.frames.crop else None
        result = detect_shots(path, detector=self.config.shots.detector, crop=crop, **self.config.shots.params)
        return json.loads(json.dumps(result.to_json()))

    def frames(self, path: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, timestamp seconds, image) for source frames ``start <= index < end``, any channel layout."""
        from dataprep.video import open_video

        crop = tuple(self.config.frames.crop) if self.config.frames.crop else None
        video = open_video(path, crop=crop)
        try:
            for index, timestamp, image in video:
                if index < start:
                    continue
                if end is not None and index >= end:
                    break
                yield index, float(timestamp), image
        finally:
            close = getattr(video, "close", None)
            if close is not None:
                close()

    # --- per frame -----------------------------------------------------------------------------------
    def sketch(self, rgb: np.ndarray) -> np.ndarray:
        return np.asarray(self.extractor(rgb), dtype=np.uint8)

    def distance_field(self, sketch: np.ndarray) -> np.ndarray:
        from dataprep.field import encode_field

        return encode_field(self.field(sketch))

    def components(self, sketch: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        from dataprep.components import extract_components

        labels, table = extract_components(sketch, rgb, **self.config.components.params)
        rows = []
        for component in table:
            row = component.to_dict()
            rows.append({k: list(v) if isinstance(v, tuple) else v for k, v in row.items()})
        return np.asarray(labels, dtype=np.uint16), rows

    # --- per pair ------------------------------------------------------------------------------------
    def correspondences(self, reference: tuple[np.ndarray, list[dict]],
                        target: tuple[np.ndarray, list[dict]]) -> list[tuple[int, int]]:
        from dataprep.components import Component, match_components

        def objects(table: list[dict]) -> list[Component]:
            return [Component(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
                    for row in table]

        shape = reference[0].shape[:2]
        return [(int(a), int(b)) for a, b in match_components(objects(reference[1]), objects(target[1]), shape)]

    def hints(self, rgb: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        hints = self.hint(rgb, seed)
        return np.asarray(hints.image, dtype=np.uint8), np.asarray(hints.mask, dtype=np.uint8)

    def describe(self) -> dict[str, str]:
        """Names and canonical-JSON parameters recorded with every row."""
        return {
            "extractor": self.config.sketch.name,
            "extractor_params": canonical_json(self.config.sketch.params),
            "field": self.config.field.name,
            "hint_method": canonical_json({"name": self.config.hints.name, **self.config.hints.params}),
        }
