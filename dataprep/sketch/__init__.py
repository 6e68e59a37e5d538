"""Stage 3, line art: the sketch extractor interface and registry (:mod:`.extractor`) and the built-in
extractors (:mod:`.extractors`: XDoG, Canny, dark threshold; HED with user-supplied weights)."""
