"""Storage by URL (dataprep.storage): ``--out`` and inputs on fsspec filesystems, shards committed from temporary
names, completion markers for ``--resume``, and the lock that keeps a second driver off an output.

Object storage is tested against a local S3-compatible server (moto's, ``pip install 'moto[server]' s3fs``; skipped
with the reason when absent) with the local executor's worker processes writing to it; fsspec's memory filesystem
covers the same code in one process.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pytest

import dataprep.build.pipeline as build_pipeline
from dataprep.build.tasks import UnitTask
from dataprep.build import build
from dataprep.cli import main
from dataprep.config import load_config
from dataprep.errors import CelbenchError
from dataprep.storage import BuildLock, Storage
from tests.dataset_fakes import dataset_bytes, write_synth_frames

SMALL = ["frames.width=32", "frames.height=32", "samplers.train-window.width=6", "samplers.cmft-test.strides=[1,2]",
         "run.frames_per_unit=10", "output.shard_size=4"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sources")
    for seed in (0, 1):
        write_synth_frames(root / f"clip{seed}", seed=seed, shots=3, width=48, height=40, shot_length=(8, 12))
    return [root / "clip0", root / "clip1"]


@pytest.fixture(autouse=True)
def fake_stages(monkeypatch):
    monkeypatch.setattr(build_pipeline, "PIPELINE", "tests.dataset_fakes:FakePipeline")


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory) -> dict:
    """The dataset built into a local folder: what every other location must hold, byte for byte."""
    out = tmp_path_factory.mktemp("reference") / "ds"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build_pipeline, "PIPELINE", "tests.dataset_fakes:FakePipeline")
        build(sources, out, load_config(None, SMALL + ["run.executor=serial"]))
    return dataset_bytes(out)


def storage_bytes(storage: Storage, local: Path) -> dict:
    """:func:`dataset_bytes` of a dataset under any URL, through a local copy of it."""
    for name in ("data/frames", "data/pairs", "meta/shots", "meta/units"):
        (local / name).mkdir(parents=True, exist_ok=True)
        for file in storage.listdir(name):
            (local / name / file).write_bytes(storage.read_bytes(f"{name}/{file}"))
    return dataset_bytes(local)


def test_memory_filesystem_output_equals_local_and_resumes_from_markers(sources, reference, tmp_path, monkeypatch):
    url = f"memory://celbench-{uuid.uuid4().hex[:8]}/ds"
    report = build(sources, url, load_config(None, SMALL + ["run.executor=serial"]))
    assert report.failed == [] and report.out == url
    storage = Storage(url)
    assert storage_bytes(storage, tmp_path / "copy") == reference
    assert not [n for f in ("data/frames", "data/pairs", "meta") for n in storage.listdir(f) if ".tmp" in n]
    assert not storage.exists(BuildLock.NAME)  # released
    # a unit whose marker is gone is redone, and only that one (the marker, not the manifest, is the truth)
    unit = sorted(storage.listdir("meta/units"))[0]
    storage.remove(f"meta/units/{unit}")
    redone = []
    real = UnitTask.run
    monkeypatch.setattr(UnitTask, "run", lambda task: redone.append(task.key) or real(task))
    assert build(sources, url, load_config(None, SMALL + ["run.executor=serial"]), resume=True).failed == []
    assert redone == [unit[: -len(".done.json")]]
    assert storage_bytes(storage, tmp_path / "copy2") == reference


def test_second_driver_on_one_output_is_refused_and_nothing_is_touched(sources, tmp_path, capsys):
    out = tmp_path / "ds"
    # another machine's build holds the output
    holder = {"user": "ana", "host": "render-07", "pid": 4242, "started": "2026-01-01T00:00:00+00:00", "token": "x"}
    (out / "meta").mkdir(parents=True)
    (out / BuildLock.NAME).write_text(json.dumps(holder))
    sets = [arg for key in SMALL + ["run.executor=serial"] for arg in ("--set", key)]
    assert main(["build", str(sources[0]), "--out", str(out), *sets]) == 2
    err = capsys.readouterr().err
    assert "lock.json" in err and "another build is writing" in err and "ana@render-07" in err
    assert "Traceback" not in err and sorted(p.name for p in out.rglob("*")) == ["lock.json", "meta"]
    # --overwrite deletes nothing either while another build holds the output
    (out / "meta" / "info.json").write_text("{}")
    with pytest.raises(CelbenchError, match="another build is writing"):
        build(sources[:1], out, load_config(None, SMALL), overwrite=True)
    assert (out / "meta" / "info.json").read_text() == "{}"


def test_a_driver_running_now_is_refused_and_a_dead_ones_lock_is_taken_over(sources, tmp_path):
    out = tmp_path / "ds"
    with BuildLock(Storage(out)):  # this very process is a build that still runs
        with pytest.raises(CelbenchError, match=rf"process {os.getpid()}"):
            build(sources[:1], out, load_config(None, SMALL + ["run.executor=serial"]))
    dead = BuildLock(Storage(out)).owner | {"pid": _dead_pid()}
    (out / BuildLock.NAME).write_text(json.dumps(dead))  # a build on this host that was killed
    messages = []
    report = build(sources[:1], out, load_config(None, SMALL + ["run.executor=serial"]), resume=True,
                   log=messages.append)
    assert report.failed == [] and any("taking over the lock" in m for m in messages)
    assert not (out / BuildLock.NAME).exists()


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # exited and reaped: no process has this id (until the OS reuses it)


@pytest.fixture(scope="module")
def s3_server():
    """A local S3-compatible server (moto) and the environment that points boto at it, for this process and the
    worker processes it spawns."""
    pytest.importorskip("s3fs", reason="S3 tests need s3fs (pip install s3fs)")
    server_module = pytest.importorskip("moto.server",
                                        reason="S3 tests need moto's server (pip install 'moto[server]')")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("celbench")
        yield "s3://celbench"
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})
        server.stop()


def test_s3_inputs_and_output_with_worker_processes_equal_a_local_build(s3_server, sources, reference, tmp_path,
                                                                       monkeypatch):
    import s3fs

    fs = s3fs.S3FileSystem()
    for source in sources:
        fs.put(str(source), f"celbench/inputs/{source.name}", recursive=True)
    inputs = [f"{s3_server}/inputs/{s.name}" for s in sources]
    out = f"{s3_server}/datasets/ds"
    # each worker copies its inputs into its own cache (a fresh one here)
    monkeypatch.setenv("CELBENCH_CACHE", str(tmp_path / "cache"))
    report = build(inputs, out, load_config(None, SMALL + ["run.executor=local", "run.workers=2"]))
    assert report.failed == []
    assert report.manifest["sources"][0]["path"] == inputs[0]
    storage = Storage(out)
    assert storage_bytes(storage, tmp_path / "copy") == reference
    assert not storage.exists(BuildLock.NAME)
    assert not [n for f in ("data/frames", "data/pairs") for n in storage.listdir(f) if not n.endswith(".parquet")]
    # a second driver on the bucket is refused (the lock is created with a conditional PUT)
    with BuildLock(storage):
        with pytest.raises(CelbenchError, match="another build is writing"):
            build(inputs, out, load_config(None, SMALL + ["run.executor=serial"]), resume=True)
    # a source changed in the bucket is another dataset: refused, not mixed
    fs.pipe_file("celbench/inputs/clip1/0000.png", (sources[0] / "0000.png").read_bytes())
    with pytest.raises(CelbenchError, match="holds a different dataset"):
        build(inputs, out, load_config(None, SMALL + ["run.executor=serial"]), resume=True)
