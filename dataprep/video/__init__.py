"""Stage 1, decoding: video containers, GIFs and frame folders (:mod:`.source`) and the parallel decode of
independent keyframe segments for shot detection (:mod:`.segments`)."""
