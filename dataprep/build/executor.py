"""Executors: run independent work units, chosen by name from :data:`EXECUTORS`.

One signature for every backend (img2dataset's distributor idea): ``executor.map(fn, tasks)`` calls the
module-level, picklable ``fn(task)`` for each ``Task`` and yields a :class:`TaskResult` per task as they complete,
in any order. Errors are values, never lost and never fatal to the other tasks: an exception inside ``fn``
(including ``OSError`` such as a full disk) and a worker process that dies (killed, out of memory, segfault) both
come back as ``TaskResult(ok=False, error=...)``.

Adding a backend (Spark, a cluster queue) is one class with ``map`` and a decorator; ``fn`` and tasks are plain
picklable values, and the tasks' outputs go to the shared output location (a folder or an object-store URL,
:mod:`dataprep.storage`), not through the executor. A backend built from the ``run`` config section overrides
:meth:`Executor.from_run_config`.

``tasks`` is pulled lazily, one ``next()`` at a time, and pulled again after every result is handed back, so it
may be a :class:`TaskQueue` that the caller fills *while* the map runs (the dataset builder queues a video's units
as soon as its shot detection comes back, while other work is still running). ``close()`` releases what an
executor keeps between maps (the local executor's worker processes, which it reuses so workers are spawned and
warmed up once per build, not once per map).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from dataprep.errors import CelbenchError
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
    from dataprep.errors import CelbenchError

    try:
        return TaskResult(task.key, True, fn(task.payload))
    except Exception as error:  # every failure of a unit is reported, none stops the others
        # A user error's message names the file and the problem already; other errors need their type.
        message = str(error) if isinstance(error, CelbenchError) else f"{type(error).__name__}: {error}"
        return TaskResult(task.key, False, error=message.splitlines()[0] if message else type(error).__name__,
                          detail=traceback.format_exc())


#: Seconds between a worker's checks that the process that started it is still alive.
PARENT_CHECK_SECONDS = 0.5


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when ``parent_pid`` dies (kill -9 of a build leaves no worker going
    on with its units and then waiting forever).

    A watcher thread compares ``os.getppid()`` with the parent's pid (portable; Linux's parent-death signal
    would follow the *thread* that spawned the worker, not the process).
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="celbench-parent-watch", daemon=True).start()


class TaskQueue:
    """Tasks that may be added while an executor maps over them (see the module docstring).

    ``next()`` on an empty queue raises ``StopIteration`` *for now*: an executor asks again after it has handed
    back the next result, and a map ends when the queue is empty and nothing is running.
    """

    def __init__(self, tasks: Iterable[Task] = ()):
        self._tasks: deque[Task] = deque(tasks)

    def put(self, task: Task) -> None:
        self._tasks.append(task)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> "TaskQueue":
        return self

    def __next__(self) -> Task:
        if not self._tasks:
            raise StopIteration
        return self._tasks.popleft()


class Executor:
    """Runs tasks; see the module docstring. ``workers`` is a hint a backend may ignore.

    ``keeps_workers``: whether a worker process outlives its task (so a warm-up task, imports and caches, pays
    off for the tasks that follow on it).
    """

    keeps_workers: bool = False

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    @classmethod
    def from_run_config(cls, run) -> "Executor":
        """The executor for a build's ``run`` section (:class:`dataprep.config.RunConfig`)."""
        return cls(workers=run.workers)

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Task]) -> Iterator[TaskResult]:
        raise NotImplementedError

    def start(self) -> None:
        """Connect to what runs the tasks now, so a bad setting fails before any output is written (nothing by
        default; :meth:`map` starts what it needs)."""

    def close(self) -> None:
        """Release workers kept between maps (nothing by default)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


EXECUTORS: Registry[Executor] = Registry("executor", entry_point_group="celbench.executors")


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """In this process, one task after another (debugging, profiling, tiny datasets)."""

    def map(self, fn, tasks):
        pending = iter(tasks)
        while (task := next(pending, None)) is not None:
            yield call_task(fn, task)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes on this machine.

    When a worker dies the pool breaks and every task still running in it is lost with it; the culprit is
    unknown, so each lost task is rerun alone in a fresh one-process pool: the task that kills its worker again is
    reported failed ("worker process died"), the innocent ones complete. Tasks not started yet (and tasks queued
    meanwhile) then run in a fresh pool.

    The pool is kept between maps until :meth:`close` (a broken one is replaced), so workers are spawned and
    import their modules once per build.
    """

    keeps_workers = True

    def __init__(self, workers: int = 2, start_method: str = "spawn"):
        super().__init__(workers)
        # spawn, not fork: a forked worker inherits locks held by the parent's threads (OpenCV's and FFmpeg's
        # pools, the executor's own feeder thread) and can hang on them forever; seen in this project's tests.
        # Spawning costs about a second of imports per worker and pool.
        self.context = multiprocessing.get_context(start_method)
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=self.context, initializer=exit_with_parent,
                                   initargs=(os.getpid(),))

    def map(self, fn, tasks):
        pending = iter(tasks)
        while True:
            if self._pool is None:
                self._pool = self._new_pool(self.workers)
            lost: list[Task] = []
            broken = yield from self._run_pool(self._pool, fn, pending, self.workers, lost)
            if not broken:
                return  # nothing left to pull and nothing running
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            for task in lost:
                retry_lost: list[Task] = []
                with self._new_pool(1) as pool:
                    yield from self._run_pool(pool, fn, iter([task]), 1, retry_lost)
                for dead in retry_lost:
                    yield TaskResult(dead.key, False, error="worker process died (killed or crashed) while running it")
            # then go on with the tasks not started yet (and any queued meanwhile) in a fresh pool

    @staticmethod
    def _run_pool(pool: ProcessPoolExecutor, fn, pending: Iterator[Task], workers: int,
                  lost: list[Task]) -> Iterator[TaskResult]:
        """Run tasks from ``pending`` in ``pool`` until it is empty and nothing runs, or the pool breaks; tasks
        that were running in a broken pool go to ``lost``. Returns (as the generator's value) whether it broke."""
        running: dict[Future, Task] = {}
        broken = False

        def fill() -> None:
            nonlocal broken
            # Keep at most 2 tasks per worker queued, so a broken pool loses few and memory stays bounded.
            while not broken and len(running) < 2 * workers:
                task = next(pending, None)
                if task is None:
                    return
                try:
                    running[pool.submit(call_task, fn, task)] = task
                except BrokenProcessPool:
                    broken = True
                    lost.append(task)

        fill()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    lost.append(task)
                    continue
                yield result
            fill()  # after handing results back: the caller may have queued more tasks meanwhile
        return broken


def _ray_call(fn: Callable[[Any], Any], task: Task) -> TaskResult:
    # the Ray task body: module-level so that Ray pickles it by reference
    return call_task(fn, task)


def _check_reachable(address: str) -> None:
    """A one-line error now for a ``host:port`` (or ``ray://host:port``) nobody listens on; Ray itself would
    retry for minutes before giving up. 'auto' is left to Ray (it fails at once when no cluster runs here)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as error:
        reason = error.strerror or error
        raise CelbenchError(f"run.address {address}: no Ray cluster answers there ({reason})") from None


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Tasks as Ray tasks on a Ray cluster (``pip install 'celbench[ray]'``; docs/scale-out.md).

    Each task declares ``cpus`` CPUs and ``memory_mb`` MiB of memory to Ray's scheduler, which places it on any
    node with that much free. At most ``2 * workers`` tasks are submitted at once (back-pressure: the driver holds
    a bounded number of task references and results, however many videos there are; set ``workers`` to the
    cluster's CPUs divided by ``cpus``).

    A task whose worker process or node dies is rerun by Ray (up to ``retries`` times, on any node); the build's
    unit function first deletes what an earlier attempt of the unit left, so nothing is duplicated. A task that
    still fails comes back as ``TaskResult(ok=False)`` like any other failure.

    ``address``: '' starts a private Ray instance on this machine for the build (a laptop, one big box) and stops
    it at :meth:`close`; 'auto' joins the cluster this machine is part of (``ray start`` ran here); ``ray://host:port``
    connects to a remote cluster's client server. The workers must be able to import celbench (installed on every
    node, or a runtime environment; docs/scale-out.md).
    """

    def __init__(self, workers: int = 2, address: str = "", cpus: float = 1.0, memory_mb: int = 1024,
                 retries: int = 3):
        super().__init__(workers)
        try:
            import ray
        except ImportError:
            raise CelbenchError("the 'ray' executor needs Ray: pip install 'celbench[ray]'") from None
        self._ray = ray
        self.address, self.retries = address, int(retries)
        self.options = {"num_cpus": float(cpus), "max_retries": int(retries)}
        if memory_mb > 0:
            self.options["memory"] = int(memory_mb) << 20
        self._started = False

    @classmethod
    def from_run_config(cls, run) -> "RayExecutor":
        return cls(workers=run.workers, address=run.address, cpus=run.cpus_per_task,
                   memory_mb=run.memory_per_task_mb)

    def start(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if self.address:
            _check_reachable(self.address)
            kwargs["address"] = self.address
        else:
            # a private instance sized to the workers asked for; the dashboard is not needed by a build
            kwargs.update(num_cpus=max(self.workers, int(self.options["num_cpus"] + 0.999)),
                          include_dashboard=False)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.address or "a local instance"
            raise CelbenchError(f"cannot start Ray on {where}: {str(error).splitlines()[0]}") from None
        self._started = True

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def map(self, fn, tasks):
        self.start()
        ray = self._ray
        remote = ray.remote(_ray_call).options(**self.options)
        pending = iter(tasks)
        running: dict[Any, Task] = {}

        def fill() -> None:
            while len(running) < 2 * self.workers:
                task = next(pending, None)
                if task is None:
                    return
                running[remote.remote(fn, task)] = task

        fill()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as error:  # worker or node lost more often than retries allow
                    result = TaskResult(task.key, False, detail=str(error),
                                        error=f"Ray task lost ({type(error).__name__}) after "
                                              f"{self.retries} retries: {str(error).splitlines()[0]}")
                yield result
            fill()  # after handing results back: the caller may have queued more tasks meanwhile
