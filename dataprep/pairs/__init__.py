"""Pair samplers: which frames of a shot become (references -> target) samples, for the build, evaluation and
training alike.

The interface and registry are :mod:`dataprep.pairs.sampler` (:class:`Sampler`, :class:`ShotView`,
:class:`PairSpec`, :data:`SAMPLERS`); the build's mining samplers (CMFT, Shi et al.) and their filters are in
:mod:`dataprep.pairs.mining`, the evaluation protocols' samplers in :mod:`dataprep.pairs.selection`. Adding one is
a :class:`Sampler` subclass and ``@SAMPLERS.register("name")`` (in a package named in the ``celbench.samplers``
entry-point group, or imported here).
"""

from dataprep.pairs.sampler import (NEEDS, SAMPLERS, PairSpec, Sampler, ShotView, create_samplers,
                                    kref_positions)
from dataprep.pairs.mining import AllPairs, CMFTTest, ShiLong, ShiSequence, TrainWindow, held_groups, unseen_fraction
from dataprep.pairs.selection import (DatasetPairs, GapPairs, HintBudgets, IntervalSequences,
                                      KReferenceSequences, SingleTargets)

__all__ = ["NEEDS", "SAMPLERS", "PairSpec", "Sampler", "ShotView", "create_samplers", "kref_positions",
           "AllPairs", "CMFTTest", "ShiLong", "ShiSequence", "TrainWindow", "held_groups", "unseen_fraction",
           "DatasetPairs", "GapPairs", "HintBudgets", "IntervalSequences", "KReferenceSequences", "SingleTargets"]
