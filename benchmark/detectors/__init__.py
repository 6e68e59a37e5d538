"""Shot detectors that need torch; they plug into :data:`dataprep.shots.detector.DETECTORS` through the
``celbench.detectors`` entry-point group (see pyproject.toml), so dataprep itself never imports torch."""
