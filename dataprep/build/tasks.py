"""The typed tasks a build hands its executor: detect a source's shots, warm a worker up, process a unit.

Each task is a small frozen dataclass holding everything a worker needs (the typed :class:`BuildConfig`, the
output's location, the stage adapter's name), so it pickles to a worker process or a Ray node as is; the
executor calls :func:`run_task`, which runs ``task.run()``. The scheduler tells results apart by the type of the
task it submitted under a key, never by parsing the key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from dataprep.build.pipeline import make_pipeline
from dataprep.build.plan import UnitPlan
from dataprep.build.sources import Source
from dataprep.build.unit import process_unit
from dataprep.config import BuildConfig
from dataprep.pairs import create_samplers
from dataprep.storage import Storage, local_input


@dataclass(frozen=True)
class BuildTask:
    """What every task carries: the build's config, the output (a folder or URL) and the stage adapter
    ("module:attribute", :data:`dataprep.build.pipeline.PIPELINE`)."""

    config: BuildConfig
    out: str
    pipeline: str

    @property
    def key(self) -> str:
        """The task's name, unique within a build (a unit's key is its name in the manifest)."""
        raise NotImplementedError

    def run(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class DetectTask(BuildTask):
    """Shot detection of one source, cached as ``meta/shots/<video_id>.json``; returns ``n_frames``, ``fps`` and
    ``seconds``."""

    source: Source

    @property
    def key(self) -> str:
        return f"{self.source.video_id}.detect"

    def run(self) -> dict[str, Any]:
        t0 = time.process_time()  # CPU seconds of this process, its decoding threads included
        result = make_pipeline(self.config, self.pipeline).detect(local_input(self.source.path, self.source.sha256))
        result.update(input=self.source.path, seconds=time.process_time() - t0)  # the source, not a cached copy
        Storage(self.out).write_text(f"meta/shots/{self.source.video_id}.json", json.dumps(result, indent=1))
        return {"n_frames": result.get("n_frames"), "fps": result.get("fps"), "seconds": result["seconds"]}


@dataclass(frozen=True)
class WarmTask(BuildTask):
    """Make a worker ready while others detect shots: imports, samplers, the pipeline's per-source ``prepare``
    (e.g. a video's packet index). Only a head start: a failure here is left to the unit that needs it."""

    index: int
    sources: tuple[Source, ...]

    @property
    def key(self) -> str:
        return f"warm-{self.index}"

    def run(self) -> None:
        pipeline = make_pipeline(self.config, self.pipeline)
        create_samplers(self.config.samplers)
        prepare = getattr(pipeline, "prepare", None)
        if prepare is not None:
            for source in self.sources:
                try:
                    prepare(local_input(source.path, source.sha256))
                except Exception:  # only a head start: the unit that needs it reports any problem
                    pass


@dataclass(frozen=True)
class UnitTask(BuildTask):
    """Process one unit (:func:`dataprep.build.unit.process_unit`); returns its marker's content."""

    plan: UnitPlan

    @property
    def key(self) -> str:
        return self.plan.key

    def run(self) -> dict[str, Any]:
        return process_unit(self.plan, self.out, self.config, self.pipeline)


def run_task(task: BuildTask) -> Any:
    """The executor's function (module-level, so it pickles by reference): run one build task."""
    return task.run()
