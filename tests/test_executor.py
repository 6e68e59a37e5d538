"""Executors: tasks queued while a map runs are run too; the local executor keeps its workers between maps."""

from __future__ import annotations

import os

import pytest

from dataprep.build.executor import EXECUTORS, Task, TaskQueue


def _pid_and_double(payload):
    return os.getpid(), payload * 2


@pytest.mark.parametrize("name", ["serial", "local"])
def test_tasks_queued_in_response_to_results_are_run(name):
    with EXECUTORS.create(name, workers=2) as executor:
        queue = TaskQueue([Task("a", 1)])
        seen = {}
        for result in executor.map(_pid_and_double, queue):
            assert result.ok
            seen[result.key] = result.value[1]
            if result.key == "a":  # like a shot detection coming back: queue its units
                for k in range(3):
                    queue.put(Task(f"b{k}", 10 + k))
        assert seen == {"a": 2, "b0": 20, "b1": 22, "b2": 24}
        first = {r.value[0] for r in executor.map(_pid_and_double, [Task(str(k), k) for k in range(4)])}
        second = {r.value[0] for r in executor.map(_pid_and_double, [Task(str(k), k) for k in range(4)])}
        if name == "local":
            # workers are other processes, and the second map reuses the first map's (at most 2 in all)
            assert os.getpid() not in first and len(first | second) <= 2


def _sleep_or_die(payload):
    import time

    kind, seconds = payload
    time.sleep(seconds)
    if kind == "die":
        os._exit(3)  # like a worker killed by the OOM killer
    return kind


def test_tasks_queued_after_a_worker_died_still_run():
    # A worker dies while another task runs: both are lost with the pool and rerun alone; a task queued in
    # response to the innocent one's result (a detection's units) must run too, in a fresh pool.
    with EXECUTORS.create("local", workers=2) as executor:
        queue = TaskQueue([Task("slow", ("ok", 0.6)), Task("die", ("die", 0.1))])
        results = {}
        for result in executor.map(_sleep_or_die, queue):
            results[result.key] = result
            if result.key == "slow":
                queue.put(Task("later", ("ok", 0.0)))
    assert results["slow"].ok and results["later"].ok and results["later"].value == "ok"
    assert not results["die"].ok and "worker process died" in results["die"].error
