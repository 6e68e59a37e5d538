"""The :class:`~benchmark.source.SampleSource` for datasets written by ``dataprep build``.

A thin adapter over the dataset contract's one reader (:class:`dataprep.dataset.reader.DatasetReader`): shots
are the frames table grouped by ``(video_id, shot_id)`` in ``frame_index`` order (held frames share a
``held_group``), frames come from the reader, and mined pairs from the pairs table. The dataset is validated
with ``dataprep validate``'s checks when opened, so a broken or unfinished build is a one-line error before
any model runs. Conventions converted here: the 16-bit distance field is divided by
``dataprep.field.decode_field`` into [0, 1], sketches stay uint8 (255 = paper).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from dataprep.dataset.reader import DatasetReader
from dataprep.errors import file_error
from dataprep.field import decode_field

from benchmark.source import Frame, SampleSource, SampleSpec, Shot, empty_split_hint, kind_matches

_PAIR_COLUMNS = ["pair_key", "split", "kind", "position", "reference_keys", "target_key", "interval"]


class ParquetSource(SampleSource):
    """Frames, shots and mined pairs of a built dataset folder (validated on open).

    Args:
        root: the dataset folder (holding ``meta/info.json``).
        validate: run the full dataset validation first (default); turn off only for datasets
            validated before, since it decodes every image once.
        cache_shards: frames shards kept in memory (see :class:`DatasetReader`).
    """

    def __init__(self, root: str | Path, validate: bool = True, cache_shards: int = 2):
        from dataprep.dataset.validate import ValidationError, validate as validate_dataset

        self.root = Path(root)
        self.location = str(self.root)
        if not (self.root / "meta" / "info.json").is_file():
            raise file_error(self.root, "not a celbench dataset (no meta/info.json); build one with `dataprep build`")
        if validate:
            try:
                validate_dataset(self.root)
            except ValidationError as error:
                raise file_error(self.root, f"dataset failed validation: {error}") from None
        self.reader = DatasetReader(self.root, cache_shards=cache_shards)
        self.manifest_hash = self.reader.manifest_hash
        by_shot: dict[tuple[str, str, int], list[tuple[int, str, int]]] = defaultdict(list)
        self._sizes = {cells["frame_key"]: (cells["height"], cells["width"]) for cells in self.reader.frames}
        for cells in self.reader.frames:
            by_shot[(cells["split"], cells["video_id"], cells["shot_id"])].append(
                (cells["frame_index"], cells["frame_key"], cells["held_group"]))
        self._shots: dict[str, list[Shot]] = defaultdict(list)
        for (split, video_id, shot_id), frames in sorted(by_shot.items()):
            frames.sort()
            self._shots[split].append(Shot(f"{video_id}/{shot_id}", tuple(f[1] for f in frames),
                                           tuple(f[2] for f in frames)))

    def shots(self, split: str) -> list[Shot]:
        if split not in self._shots:
            raise file_error(self.root, f"no frames in split {split!r}{empty_split_hint(self, split)}")
        return list(self._shots[split])

    def split_sizes(self) -> dict[str, int]:
        return {name: len(shots) for name, shots in self._shots.items()}

    def frame_size(self, frame_id: str) -> tuple[int, int]:
        return self._sizes[frame_id] if frame_id in self._sizes else super().frame_size(frame_id)

    def frame(self, frame_id: str) -> Frame:
        stored = self.reader.frame(frame_id)
        return Frame(colour=stored.colour, sketch=stored.sketch, field=decode_field(stored.field),
                     components=stored.components, parts=stored.parts)

    def pairs(self, split: str, kinds: Sequence[str]) -> list[SampleSpec]:
        samples = []
        for _, _, row in self.reader.pairs(_PAIR_COLUMNS):
            if row["split"] != split or not kind_matches(row["kind"], kinds):
                continue
            attributes: dict[str, Any] = {"kind": row["kind"], "interval": row["interval"],
                                          "position": row["position"]}
            stride = row["kind"].partition("@")[2]
            if stride.isdigit():
                attributes["stride"] = int(stride)
            samples.append(SampleSpec(row["pair_key"], tuple(row["reference_keys"]), row["target_key"], attributes))
        return samples

    def close(self) -> None:
        self.reader.close()
