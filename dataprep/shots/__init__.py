"""Stage 2, shots: the detector interface and registry (:mod:`.detector`), the built-in detectors
(:mod:`.detectors`: Shi et al.'s histogram MSE, PySceneDetect's), shot detection with its filters and held
drawings (:mod:`.detect`) and the ``dataprep shots`` / ``dataprep speed`` commands (:mod:`.cli`)."""
