"""Procedural cel-animation generator: the embedded demo video and the main test fixture.

Characters made of flat-filled regions with black outlines of varying width move through shots
(translation, rotation, scale, small non-rigid wobble, blinking eyes and a talking mouth that appear
and disappear, optional camera pan), drawn on ones, twos or threes, separated by hard cuts, with an
optional fade through black and flash frame as hard negatives for cut detection.

Ground truth per frame: line art, region label map (same id = same part within a shot) and drawing
number; per clip: cuts, fades, flashes, shots and the region colour table. See :class:`SynthClip`.
"""

from dataprep.synth.clip import CODECS, SynthClip, SynthConfig, SynthFrame, demo_config

__all__ = ["CODECS", "SynthClip", "SynthConfig", "SynthFrame", "demo_config"]
