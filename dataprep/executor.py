"""Executors: run independent work units, chosen by name from :data:`EXECUTORS`.

One signature for every backend (img2dataset's distributor idea): ``executor.map(fn, tasks)`` calls the
module-level, picklable ``fn(task)`` for each ``Task`` and yields a :class:`TaskResult` per task as they complete,
in any order. Errors are values, never lost and never fatal to the other tasks: an exception inside ``fn``
(including ``OSError`` such as a full disk) and a worker process that dies (killed, out of memory, segfault) both
come back as ``TaskResult(ok=False, error=...)``.

Adding a backend (Ray, Spark, a cluster queue) is one class with ``map`` and a decorator; ``fn`` and tasks are
plain picklable values, and the tasks' outputs go to the shared output directory, not through the executor.
"""

from __future__ import annotations

import multiprocessing
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from dataprep.registry import Registry


@dataclass(frozen=True)
class Task:
    """A unit of work: ``key`` names it (in the manifest); ``payload`` is what ``fn`` receives."""

    key: str
    payload: Any


@dataclass
class TaskResult:
    """Outcome of one task: ``value`` when ``ok``, else a one-line ``error`` (and ``detail``: the traceback)."""

    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    detail: str | None = None


def call_task(fn: Callable[[Any], Any], task: Task) -> TaskResult:
    """Run ``fn(task.payload)``, turning any exception into a failed result (errors as values)."""
    try:
        return TaskResult(task.key, True, fn(task.payload))
    except Exception as error:  # every failure of a unit is reported, none stops the others
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        return TaskResult(task.key, False, error=message, detail=traceback.format_exc())


class Executor:
    """Runs tasks; see the module docstring. ``workers`` is a hint a backend may ignore."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Task]) -> Iterator[TaskResult]:
        raise NotImplementedError


EXECUTORS: Registry[Executor] = Registry("executor", entry_point_group="celbench.executors")


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """In this process, one task after another (debugging, profiling, tiny datasets)."""

    def map(self, fn, tasks):
        for task in tasks:
            yield call_task(fn, task)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes on this machine.

    When a worker dies the pool breaks and every task still running in it is lost with it; the culprit is
    unknown, so each lost task is rerun alone in a fresh one-process pool: the task that kills its worker again is
    reported failed ("worker process died"), the innocent ones complete.
    """

    def __init__(self, workers: int = 2, start_method: str = "spawn"):
        super().__init__(workers)
        # spawn, not fork: a forked worker inherits locks held by the parent's threads (OpenCV's and FFmpeg's
        # pools, the executor's own feeder thread) and can hang on them forever; seen in this project's tests.
        # Spawning costs about a second of imports per worker and pool.
        self.context = multiprocessing.get_context(start_method)

    def map(self, fn, tasks):
        lost: list[Task] = []
        yield from self._run_pool(fn, list(tasks), self.workers, lost)
        for task in lost:
            retry_lost: list[Task] = []
            yield from self._run_pool(fn, [task], 1, retry_lost)
            for dead in retry_lost:
                yield TaskResult(dead.key, False, error="worker process died (killed or crashed) while running it")

    def _run_pool(self, fn, tasks: list[Task], workers: int, lost: list[Task]) -> Iterator[TaskResult]:
        if not tasks:
            return
        pending = iter(tasks)
        running: dict[Future, Task] = {}
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=self.context) as pool:
            broken = False

            def submit_next() -> bool:
                task = next(pending, None)
                if task is None:
                    return False
                try:
                    running[pool.submit(call_task, fn, task)] = task
                except BrokenProcessPool:
                    lost.append(task)
                    return False
                return True

            # Keep at most 2 tasks per worker queued, so a broken pool loses few and memory stays bounded.
            for _ in range(2 * workers):
                if not submit_next():
                    break
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        lost.append(task)
                    if not broken:
                        submit_next()
            if broken:
                lost.extend(pending)
