"""The build's driver: check everything, take the output's lock, run shot detection and units on an executor,
keep the manifest up to date, write the dataset card.

Work is split into independent *units* (:mod:`dataprep.build.plan`) run by an executor from
:data:`dataprep.build.executor.EXECUTORS`. A failing unit (exception, ``OSError`` such as a full disk, a killed
worker) is recorded as failed in the manifest and the others go on; ``--resume`` redoes it
(:mod:`dataprep.build.markers`).

Shot detection and units run in one executor session (:class:`dataprep.build.executor.TaskQueue`): the workers are
spawned once, a worker with nothing to detect warms up meanwhile (:class:`~dataprep.build.tasks.WarmTask`), and a
source's units are queued, longest first, as soon as its shots are known, so the next source's detection overlaps
with them and no worker idles long at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import dataprep.build.pipeline as stages
from dataprep.build.executor import EXECUTORS, Task, TaskQueue
from dataprep.build.markers import read_marker, remove_unit_files
from dataprep.build.output import REPLACED, check_output, dataset_identity, restore, set_aside
from dataprep.build.plan import plan_units
from dataprep.build.sources import Source, resolve_source
from dataprep.build.summary import (finish, new_manifest, record_detection, record_done, record_failed,
                                    record_failed_detection, why_empty)
from dataprep.build.tasks import BuildTask, DetectTask, UnitTask, WarmTask, run_task
from dataprep.config import BuildConfig, check_config
from dataprep.dataset.card import write_card
from dataprep.dataset.manifest import Manifest
from dataprep.errors import CelbenchError
from dataprep.pairs import create_samplers
from dataprep.progress import progress
from dataprep.storage import BuildLock, Storage, is_url


class EmptyBuild(CelbenchError):
    """Every source failed or none gave a usable frame; the build leaves nothing behind."""


@dataclass
class BuildReport:
    out: Path | str  # a URL stays a string
    manifest: dict
    failed: list[str]


def build(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, config: BuildConfig, *,
          resume: bool = False, overwrite: bool = False,
          log: Callable[[str], None] | None = None) -> BuildReport:
    """Build (or resume) a dataset from ``inputs`` into ``out``; see the module docstring."""
    t_build = time.perf_counter()
    shown = str(out) if is_url(out) else Path(out)
    out = Storage(out)
    if not inputs:
        raise CelbenchError("no inputs given")
    sources = [resolve_source(p) for p in inputs]
    ids = Counter(s.video_id for s in sources)
    if any(n > 1 for n in ids.values()):
        raise CelbenchError(f"the same source is given twice: {', '.join(k for k, n in ids.items() if n > 1)}")
    executor = EXECUTORS.get(config.run.executor).from_run_config(config.run)
    # The whole config (samplers, stage names and parameters) is checked here, before anything is deleted or
    # written: a worker failing on it later would already have cost the dataset that --overwrite replaces.
    # check_config judges names, parameters and types; creating the parts runs their constructors' own checks.
    check_config(config)
    create_samplers(config.samplers)
    pipeline = stages.make_pipeline(config)
    if hasattr(pipeline, "check"):
        pipeline.check()
    identity = dataset_identity(config, sources)
    created = not out.exists()
    restored = False
    # One driver per output: a second one would redo and delete the first one's units under its feet. A lock
    # already there is looked at first, so a second driver hears that a build runs, not that the folder is odd.
    lock = BuildLock(out, log)
    try:
        executor.start()
        if out.exists(BuildLock.NAME):
            lock.acquire()
        existing = check_output(out, identity, resume, overwrite)
        if not lock.held:
            lock.acquire()
        if overwrite:
            set_aside(out)
        try:
            report = _build_locked(sources, out, shown, config, existing, identity, executor, log, t_build)
        except BaseException as error:
            # A rebuild that fails gives the replaced dataset back; a fresh build that produced nothing leaves
            # nothing (no manifest blocking the next build). An interrupted fresh build stays, for --resume.
            if existing is None and (out.exists(REPLACED) or isinstance(error, EmptyBuild)):
                restore(out)
                restored = True
            raise
        out.remove_tree(REPLACED)
        return report
    finally:
        executor.close()
        lock.release()
        if restored and created:
            out.remove_empty_tree()


def _build_locked(sources: Sequence[Source], out: Storage, shown: Path | str, config: BuildConfig,
                  existing: Manifest | None, identity: dict, executor, log, t_build: float) -> BuildReport:
    """:func:`build` once it holds the output's lock."""
    manifest = existing if existing is not None else new_manifest(out, config, sources, identity["config_hash"])
    manifest.data["run"] = config.to_dict()["run"]
    manifest.save()
    common = {"config": config, "out": out.location, "pipeline": stages.PIPELINE}

    # Shot detection (cached per source) and the units run in one executor session: a source's units are
    # queued as soon as its detection is known, so the next source's detection overlaps with this one's units,
    # and the workers are spawned once.
    queue = TaskQueue()
    submitted: dict[str, BuildTask] = {}

    def submit(task: BuildTask) -> None:
        submitted[task.key] = task
        queue.put(Task(task.key, task))

    detections: dict[str, dict] = {}
    planned_keys: set[str] = set()
    detect_seconds = 0.0
    bar = progress(total=0, desc="build", unit="shot")
    undetected = 0
    for source in sources:
        cached = f"meta/shots/{source.video_id}.json"
        if out.exists(cached):
            detections[source.video_id] = json.loads(out.read_text(cached))
        else:
            undetected += 1
            submit(DetectTask(**common, source=source))
    workers = getattr(executor, "workers", 1)
    if getattr(executor, "keeps_workers", False) and 0 < undetected < workers:
        # Idle workers meanwhile import the stage modules and read the sources' headers, so the units start at
        # full speed when the detections come back.
        for k in range(workers - undetected):
            submit(WarmTask(**common, index=k, sources=tuple(sources)))

    def queue_units(source: Source) -> None:
        record_detection(manifest, source, detections[source.video_id], log)
        units = plan_units(config, source, detections[source.video_id])
        # Longest first: the last units to finish are short ones, so no worker idles long at the end.
        for unit in sorted(units, key=lambda u: -u.frames):
            planned_keys.add(unit.key)
            done = read_marker(out, unit.key)
            if done is not None:
                record_done(manifest, unit.key, source.video_id, done)
                continue
            manifest.data["units"][unit.key] = {"status": "pending", "video_id": source.video_id,
                                                "shots": [unit.shots[0].shot_id, unit.shots[-1].shot_id],
                                                "frames": [unit.shots[0].start, unit.shots[-1].end]}
            bar.total += len(unit.shots)
            bar.refresh()
            submit(UnitTask(**common, plan=unit))

    def drop_stale_units() -> None:
        # A unit of an earlier plan (another run.frames_per_unit, a source gone): its rows are redone (or gone).
        for key in [k for k in manifest.data["units"] if k not in planned_keys and not k.endswith(".detect")]:
            remove_unit_files(out, key)
            del manifest.data["units"][key]

    for source in sources:
        if source.video_id in detections:
            queue_units(source)
    if not undetected:
        drop_stale_units()
    manifest.save()
    try:
        for result in executor.map(run_task, queue):
            task = submitted.pop(result.key)
            if isinstance(task, WarmTask):
                continue
            if isinstance(task, DetectTask):
                video_id = task.source.video_id
                undetected -= 1
                if result.ok:
                    detections[video_id] = json.loads(out.read_text(f"meta/shots/{video_id}.json"))
                    detect_seconds += result.value["seconds"]
                    queue_units(task.source)
                else:
                    record_failed_detection(manifest, task.source, result.error)
                    if log and len(sources) > 1:  # a single source's failure is the build's own error
                        log(f"{video_id}: shot detection failed: {result.error}")
                if not undetected:
                    drop_stale_units()
            else:
                bar.update(len(task.plan.shots))
                if result.ok:
                    record_done(manifest, result.key, task.plan.video_id, result.value)
                else:
                    record_failed(manifest, result.key, result.error)
                    if log:
                        log(f"unit {result.key} failed: {result.error}")
            manifest.save()
    finally:
        bar.close()
    finish(manifest, detect_seconds, time.perf_counter() - t_build)
    manifest.save()
    if not manifest.data["counts"]["frames"]:
        raise EmptyBuild(f"{shown}: no frames were built: {why_empty(manifest.data)}")
    write_card(out, manifest.data)
    return BuildReport(shown, manifest.data, sorted(k for k, u in manifest.data["units"].items()
                                                  if u.get("status") == "failed"))
