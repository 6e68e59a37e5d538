"""``dataprep build``: sources -> shots -> per-frame stages -> mined pairs -> sharded Parquet + manifest.

Layout of a dataset directory::

    README.md                       dataset card: Hugging Face ``configs:`` (a config per table), counts, fields
    meta/info.json                  manifest (LeRobot-like): schema version, config + hash, sources, units, counts
    meta/lock.json                  while a build runs: who runs it (a second build on the output is refused)
    meta/shots/<video_id>.json      shot detection result per source (cached; a resumed build reuses it)
    meta/units/<unit>.done.json     completion marker of a unit: its files, their sha256 and counts (datatrove-style)
    data/frames/<unit>.<split>.<nnn>.parquet    frames table shards, one split each (dataprep.dataset.schemas.FRAMES)
    data/pairs/<unit>.<split>.<nnn>.parquet     pairs table shards, one split each (dataprep.dataset.schemas.PAIRS)

The package, one job per module, in the order a build runs them:

* :mod:`~dataprep.build.sources`: the inputs (a video/GIF or a frame folder) and their content hashes;
* :mod:`~dataprep.build.output`: refuse to mix datasets, set aside what ``--overwrite`` replaces, give it back;
* :mod:`~dataprep.build.plan`: splits, seeds, and the units of a source (typed :class:`~dataprep.build.plan.UnitPlan`);
* :mod:`~dataprep.build.tasks`: the typed tasks an executor runs (detect, warm up, unit);
* :mod:`~dataprep.build.scheduler`: the driver (:func:`build`): lock, executor session, manifest updates;
* :mod:`~dataprep.build.unit`: one unit's work through the stage adapter (:mod:`~dataprep.build.pipeline`),
  written by :mod:`~dataprep.build.shards`;
* :mod:`~dataprep.build.markers`: completion markers, what makes ``--resume`` exact;
* :mod:`~dataprep.build.summary`: the manifest's account (per source, per unit, totals);
* :mod:`~dataprep.build.executor`: the backends (``serial``, ``local`` process pool, ``ray``);
  :mod:`~dataprep.build.cli`: the command.

The output and the inputs may be URLs of any fsspec filesystem (``s3://``, ``gs://`` ...; :mod:`dataprep.storage`),
and the executor may be a Ray cluster (docs/scale-out.md): a task names its source and the output, and workers
anywhere read and write them.

Splits are assigned per shot (or per source, ``split.by``) from a hash of (split seed, video id, shot start):
deterministic, independent of the executor and of the other sources, and never divide a shot.
"""

from dataprep.build.plan import UnitPlan, assign_split, derive_seed, plan_units
from dataprep.build.scheduler import BuildReport, EmptyBuild, build
from dataprep.build.sources import Source, resolve_source

__all__ = ["build", "BuildReport", "EmptyBuild", "Source", "resolve_source", "UnitPlan", "plan_units",
           "assign_split", "derive_seed"]
