"""Sketch extractors; importing this package registers all built-in ones in :data:`EXTRACTORS`."""

from dataprep.sketch.extractor import EXTRACTORS, SketchExtractor
from dataprep.sketch.extractors import classic  # noqa: F401  (registration side effect)

__all__ = ["EXTRACTORS", "SketchExtractor"]
