"""Shot-boundary detectors; each module registers its classes in :data:`dataprep.detector.DETECTORS`."""
