"""The 'ray' executor on a real local Ray cluster: a head and a second node (separate raylets with their own CPUs).

The build on the cluster writes the same bytes as a build on this machine; a worker killed in the middle of a unit
costs nothing (Ray reruns the unit, which first deletes what the killed attempt wrote). Skipped when Ray is absent
(``pip install 'celbench[ray]'``).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import dataprep.build.pipeline as build_pipeline
from dataprep.build import build
from dataprep.cli import main
from dataprep.config import load_config
from dataprep.dataset.validate import validate
from tests.dataset_fakes import dataset_bytes, write_synth_frames

ray = pytest.importorskip("ray", reason="the ray executor's tests need Ray (pip install 'celbench[ray]')")
ROOT = Path(__file__).resolve().parents[1]
SMALL = ["frames.width=32", "frames.height=32", "samplers.train-window.width=6", "samplers.cmft-test.strides=[1,2]",
         "run.frames_per_unit=10", "output.shard_size=4"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a head node and a second node, 1 CPU each, with their files in a temporary folder; every
    Ray process is stopped afterwards."""
    from ray.cluster_utils import Cluster

    # short: Ray's socket paths must stay under the OS limit of ~107 characters
    temp_dir = tmp_path_factory.mktemp("ray", numbered=True)
    # the nodes' workers import the tests' stand-in pipeline from the checkout
    node = {"num_cpus": 1, "object_store_memory": 80 << 20, "include_dashboard": False,
            "env_vars": {"PYTHONPATH": str(ROOT)}}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "temp_dir": str(temp_dir)})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def test_demo_clip_built_on_the_cluster_is_byte_identical_to_a_local_build(cluster, tmp_path):
    from dataprep.synth import SynthClip, SynthConfig

    SynthClip(SynthConfig(width=96, height=64, shots=3, shot_length=(10, 14), seed=3)).write(tmp_path / "clip")
    video = tmp_path / "clip" / "video.mp4"
    local = build([video], tmp_path / "local", load_config(None, SMALL + ["run.workers=2"]))
    sets = [arg for key in SMALL for arg in ("--set", key)]
    assert main(["build", str(video), "--out", str(tmp_path / "ray"), *sets, "--executor", "ray", "--workers", "2",
                 "--set", f"run.address={cluster}"]) == 0
    assert not ray.is_initialized()  # the driver left the cluster when the build ended
    validate(tmp_path / "ray")
    on_ray = json.loads((tmp_path / "ray" / "meta" / "info.json").read_text())
    assert on_ray["counts"] == local.manifest["counts"] and local.manifest["counts"]["frames"] > 30
    ours, theirs = dataset_bytes(tmp_path / "ray"), dataset_bytes(tmp_path / "local")
    assert sorted(ours) == sorted(theirs) and len([k for k in ours if k.endswith(".parquet")]) > 6
    assert all(ours[k] == theirs[k] for k in ours)


def test_worker_killed_mid_unit_loses_and_duplicates_nothing(cluster, tmp_path, monkeypatch):
    sources = []
    for seed in (0, 1):
        write_synth_frames(tmp_path / f"clip{seed}", seed=seed, shots=3, width=48, height=40, shot_length=(8, 12))
        sources.append(tmp_path / f"clip{seed}")
    monkeypatch.setattr(build_pipeline, "PIPELINE", "tests.dataset_fakes:WaitsToBeKilled")
    reference = build(sources, tmp_path / "serial", load_config(None, SMALL + ["run.executor=serial"]))
    attempts = Path(f"{sources[0]}.attempts")
    attempts.mkdir()
    killed: list[int] = []

    def kill_first_attempt() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for record in attempts.glob("0-*"):
                pid = int(record.name.split("-")[1])
                time.sleep(0.3)  # let it write its first shard
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_attempt)
    killer.start()
    report = build(sources, tmp_path / "ray", load_config(None, SMALL + ["run.executor=ray", "run.workers=2",
                                                                         f"run.address={cluster}"]))
    killer.join()
    assert killed, "the first unit never started"
    runs = sorted(attempts.glob("0-*"))
    assert len(runs) == 2 and str(killed[0]) in runs[0].name + runs[1].name  # killed once, rerun once
    assert report.failed == []
    validate(tmp_path / "ray")
    assert dataset_bytes(tmp_path / "ray") == dataset_bytes(tmp_path / "serial")
    assert report.manifest["counts"] == reference.manifest["counts"]
    nodes = {p.name.split("-", 2)[2] for p in attempts.iterdir()}
    assert len(nodes) == 2, "the units ran on one node only"
