"""Executors: tasks queued while a map runs are run too; the local executor keeps its workers between maps."""

from __future__ import annotations

import os
import socket
import sys

import cv2
import numpy as np
import pytest

from dataprep.build.executor import EXECUTORS, Task, TaskQueue
from dataprep.config import load_config
from dataprep.errors import CelbenchError


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


def test_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import ray raises ImportError
    with pytest.raises(CelbenchError, match=r"pip install 'celbench\[ray\]'"):
        EXECUTORS.get("ray").from_run_config(load_config(None, ["run.executor=ray"]).run)


def test_ray_address_where_no_cluster_answers_is_a_one_line_error_before_any_output(tmp_path):
    pytest.importorskip("ray", reason="needs Ray (pip install 'celbench[ray]')")
    from dataprep.build import build

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "clip").mkdir()
    cv2.imwrite(str(tmp_path / "clip" / "0000.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CelbenchError, match=rf"run.address 127.0.0.1:{port}: no Ray cluster answers there"):
        build([tmp_path / "clip"], tmp_path / "ds",
              load_config(None, ["run.executor=ray", f"run.address=127.0.0.1:{port}"]))
    assert not (tmp_path / "ds").exists()
