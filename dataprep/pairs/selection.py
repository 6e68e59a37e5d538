"""Samplers of evaluation protocols (a protocol file's ``sampler`` block names one): frame-level draws seeded per
shot by the protocol's ``seed`` and the shot's name, so every model is scored on the same samples.

* ``interval``: CMFT section 4.2: per shot and stride S, ``targets_per_reference + 1`` continuous frames at
  stride S from a random start; the first colours the others at intervals ``iv = S * j``.
* ``kref``: Shi et al. TVCG 2023 sections 4.1 and 4.6: eight successive frames per shot (random start); for each
  K the references divide the sequence and every other frame is a target.
* ``pairs``: reference/target pairs at a fixed gap (component accuracy).
* ``single``: lone targets (hint-based colourisation); ``hint-budgets``: the same targets once per hint budget.
* ``dataset-pairs``: the pairs a built dataset holds (``dataprep build`` mined them with the papers' filters),
  selected by kind.
"""

from __future__ import annotations

from typing import Sequence

from dataprep.errors import CelbenchError
from dataprep.pairs.sampler import SAMPLERS, PairSpec, Sampler, ShotView, kref_positions


@SAMPLERS.register("interval")
class IntervalSequences(Sampler):
    """CMFT section 4.2: per stride S, ``targets_per_reference + 1`` continuous frames at stride S from a
    random (seeded) start; the first colours the others at intervals S, 2S, ... Shots too short for a stride
    are skipped for that stride. Attributes: ``stride``, ``frame`` (j), ``interval`` (S * j)."""

    kind = "interval"

    def __init__(self, strides: Sequence[int], targets_per_reference: int = 4, seed: int = 0):
        self.strides, self.targets_per_reference, self.seed = list(strides), targets_per_reference, seed

    def sample(self, shot: ShotView) -> list[PairSpec]:
        ids = shot.frames(collapse_held=False)
        out = []
        for stride in self.strides:
            span = stride * self.targets_per_reference
            if len(ids) <= span:
                continue
            start = int(shot.rng(self.seed, stride).integers(0, len(ids) - span))
            sequence = f"{shot.name}/s{stride}"
            for j in range(1, self.targets_per_reference + 1):
                out.append(PairSpec(self.kind, sequence, j, (ids[start],), ids[start + stride * j],
                                    {"stride": stride, "frame": j, "interval": stride * j}, f"{sequence}/f{j}"))
        return out


@SAMPLERS.register("kref")
class KReferenceSequences(Sampler):
    """Shi et al. sections 4.1/4.6: ``sequence_length`` successive frames per shot (random start); for each K
    of ``ks`` the reference frames divide the sequence (:func:`~dataprep.pairs.sampler.kref_positions`) and
    every other frame is a target. With ``collapse_held``, held frames count once, so targets are new
    drawings. Attributes: ``k``, ``position``."""

    kind = "kref"

    def __init__(self, sequence_length: int = 8, ks: Sequence[int] = (1, 2, 3, 4, 5), collapse_held: bool = True,
                 seed: int = 0):
        self.sequence_length, self.ks, self.collapse_held, self.seed = sequence_length, list(ks), collapse_held, seed

    def sample(self, shot: ShotView) -> list[PairSpec]:
        ids = shot.frames(self.collapse_held)
        if len(ids) < self.sequence_length:
            return []
        start = int(shot.rng(self.seed).integers(0, len(ids) - self.sequence_length + 1))
        sequence = ids[start:start + self.sequence_length]
        out = []
        for k in self.ks:
            positions = kref_positions(self.sequence_length, k)
            references = tuple(sequence[p] for p in positions)
            for position in range(self.sequence_length):
                if position not in positions:
                    out.append(PairSpec(self.kind, f"{shot.name}/k{k}", position, references, sequence[position],
                                        {"k": k, "position": position}, f"{shot.name}/k{k}/t{position}"))
        return out


@SAMPLERS.register("pairs")
class GapPairs(Sampler):
    """Reference/target pairs ``gap`` drawings apart (or, with ``gaps``, at each of those gaps, drawn
    independently per gap), up to ``pairs_per_shot`` per shot and gap at random (seeded) positions; for component
    accuracy, which needs ground-truth correspondence. With ``collapse_held`` a gap counts distinct drawings,
    not video frames. Attributes: ``gap``, ``clip`` (the shot's name); a pair's reference is never its target."""

    kind = "pairs"

    def __init__(self, gap: int = 1, pairs_per_shot: int = 4, collapse_held: bool = True, seed: int = 0,
                 gaps: Sequence[int] | None = None):
        self.gaps = list(gaps) if gaps is not None else [gap]
        self.pairs_per_shot, self.collapse_held, self.seed = pairs_per_shot, collapse_held, seed

    def sample(self, shot: ShotView) -> list[PairSpec]:
        ids = shot.frames(self.collapse_held)
        out = []
        for step in self.gaps:
            n_pairs = len(ids) - step
            if n_pairs <= 0:
                continue
            rng = shot.rng(self.seed, step)
            starts = sorted(rng.choice(n_pairs, size=min(self.pairs_per_shot, n_pairs), replace=False).tolist())
            for start in starts:
                out.append(PairSpec(self.kind, f"{shot.name}/g{step}", start, (ids[start],), ids[start + step],
                                    {"gap": step, "clip": shot.name}, f"{shot.name}/g{step}/{start}"))
        return out


@SAMPLERS.register("single")
class SingleTargets(Sampler):
    """Lone targets (no reference): up to ``frames_per_shot`` random (seeded) frames per shot."""

    kind = "single"
    needs = "targets"

    def __init__(self, frames_per_shot: int = 4, seed: int = 0):
        self.frames_per_shot, self.seed = frames_per_shot, seed

    def sample(self, shot: ShotView) -> list[PairSpec]:
        ids = shot.frames(collapse_held=False)
        count = min(self.frames_per_shot, len(ids))
        chosen = sorted(shot.rng(self.seed).choice(len(ids), size=count, replace=False).tolist())
        return [PairSpec(self.kind, shot.name, index, (), ids[index], {}, f"{shot.name}/{index}") for index in chosen]


@SAMPLERS.register("hint-budgets")
class HintBudgets(SingleTargets):
    """The targets of ``single``, each once per hint budget: sample ``TARGET/hN`` gets exactly N hints
    (attribute ``hints``, the protocol's bucket), so quality is read against the number of hints."""

    kind = "hint-budgets"

    def __init__(self, budgets: Sequence[int], frames_per_shot: int = 4, seed: int = 0):
        if not budgets or any(int(b) < 0 for b in budgets):
            raise CelbenchError(f"hint-budgets: budgets must be a non-empty list of counts >= 0, got {budgets}")
        super().__init__(frames_per_shot, seed)
        self.budgets = [int(b) for b in budgets]

    def sample(self, shot: ShotView) -> list[PairSpec]:
        return [PairSpec(self.kind, spec.sequence_id, spec.position, (), spec.target, {"hints": budget},
                         f"{spec.name}/h{budget}")
                for spec in super().sample(shot) for budget in self.budgets]


@SAMPLERS.register("dataset-pairs")
class DatasetPairs(Sampler):
    """The pairs ``dataprep build`` mined, of the given ``kinds`` (``cmft-test@5``; ``cmft-test`` = every
    stride): the builder applied the papers' filters (held drawings, large unseen regions), so this is the
    sampler to use on built datasets. It reads a dataset's stored pairs (``needs = 'stored-pairs'``), so it
    draws nothing from a shot's frames."""

    kind = "dataset-pairs"
    needs = "stored-pairs"

    def __init__(self, kinds: Sequence[str]):
        self.kinds = list(kinds)

    def sample(self, shot: ShotView) -> list[PairSpec]:
        raise CelbenchError("dataset-pairs selects the pairs a built dataset holds; it draws none from frames")
