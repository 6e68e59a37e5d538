"""Sketch extractors that need torch (HED); they plug into :data:`dataprep.sketch.extractor.EXTRACTORS`
through the ``celbench.extractors`` entry-point group (see pyproject.toml), so dataprep never imports torch."""
