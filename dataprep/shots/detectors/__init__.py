"""Shot-boundary detectors; importing this package registers the built-in ones in :data:`DETECTORS`.

Torch-based detectors (``transnetv2``) live in ``benchmark.detectors`` and join through the
``celbench.detectors`` entry point.
"""

from dataprep.shots.detector import DETECTORS, ShotDetector
from dataprep.shots.detectors import histogram_mse, pyscenedetect  # noqa: F401  (registration side effect)

__all__ = ["DETECTORS", "ShotDetector"]
