"""TensorBoard event files of ``bench train`` (written by tensorboardX): a real run, interrupted after a
checkpoint and resumed, read back through TFRecord framing checked here (masked CRC-32C computed bit by bit,
independently of any writer) and tensorboardX's Event protobuf classes; and by tensorboard's own
EventAccumulator when tensorboard is installed."""

from __future__ import annotations

import csv
import json
import math
import re
import socket
import struct
import time

import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from benchmark.cli import main as bench_main
from benchmark_toys import one_torch_thread

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


def bitwise_crc32c(data: bytes) -> int:
    """CRC-32C one bit at a time (reflected polynomial 0x82F63B78), no table."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = bitwise_crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_crc32c_matches_the_standard_check_value():
    assert bitwise_crc32c(b"123456789") == 0xE3069283  # RFC 3720 / iSCSI check value


def read_event_file(path) -> list[dict]:
    """TFRecord frames (length, masked CRC of it, data, masked CRC of data; CRCs verified) -> Events as dicts."""
    data, events, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        assert struct.unpack_from("<I", data, offset + 8)[0] == masked_crc(data[offset:offset + 8])
        payload = data[offset + 12:offset + 12 + length]
        assert struct.unpack_from("<I", data, offset + 12 + length)[0] == masked_crc(payload)
        offset += 16 + length
        event = Event.FromString(payload)
        events.append({"wall_time": event.wall_time, "step": event.step, "file_version": event.file_version,
                       "session_status": event.session_log.status if event.HasField("session_log") else None,
                       "values": [(v.tag, v.simple_value) for v in event.summary.value]})
    return events


def float32(value: float) -> float:
    return float(np.float32(value))


# --- a real bench train run, interrupted after a checkpoint and resumed -----------------------------------------

@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """``bench train`` for 6 steps (logs every step, validation and checkpoints every 2), then latest.json is
    pointed back at step 4 (as if the process died after logging steps 5-6) and the run is resumed."""
    out = tmp_path_factory.mktemp("tb") / "run"
    common = ["train", "--model", "cmft", "--data", "shapes:n=8,size=16", "--out", str(out), "--quiet"]
    started = time.time()
    assert bench_main([*common, "--preset", "tiny", "--set", "epochs=2", "--set", "log_every=1",
                       "--set", "val_every=2", "--set", "checkpoint_every=2", "--set", "val_fraction=0.25",
                       "--set", "model_args.widths=[8,8,4,4]"]) == 0
    first_files = sorted(out.glob("events.out.tfevents.*"))
    first_bytes = {path: path.read_bytes() for path in first_files}
    (out / "checkpoints/latest.json").write_text(json.dumps({"checkpoint": "step_00000004.json", "step": 4}))
    assert bench_main([*common, "--resume"]) == 0
    return {"dir": out, "started": started, "first_bytes": first_bytes}


def csv_scalars(run_dir) -> list[tuple[str, int, float]]:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return [(f"{row['split']}/{name}", int(row["step"]), float32(float(row[name])))
            for row in rows for name in ("loss", "l1", "vgg", "psnr", "lr") if row[name] != ""]


def test_bench_train_writes_event_files_that_parse_and_match_the_csv(resumed_run):
    run_dir = resumed_run["dir"]
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    assert len(files) == 2, files  # one per process: the resume added a file
    name = re.compile(r"events\.out\.tfevents\.(\d+)\." + re.escape(socket.gethostname()) + r"\.(\d+)")
    assert [int(name.fullmatch(path.name).group(2)) for path in files] == [0, 1]
    for path in files:
        assert resumed_run["started"] - 1 <= int(name.fullmatch(path.name).group(1)) <= time.time()
    # the first process's file is left exactly as it was
    ((old_path, old_bytes),) = resumed_run["first_bytes"].items()
    assert files[0] == old_path and old_path.read_bytes() == old_bytes

    events = [read_event_file(path) for path in files]
    for file_events in events:
        assert file_events[0]["file_version"] == "brain.Event:2" and file_events[0]["values"] == []
        assert all(resumed_run["started"] - 1 <= e["wall_time"] <= time.time() for e in file_events)
    # each file starts a session: the new run at step 0, the resumed one at step 5, so TensorBoard drops the
    # first file's steps >= 5 (logged after the step-4 checkpoint the resume restarts from)
    starts = [[(e["step"], e["values"]) for e in f if e["session_status"] == 1] for f in events]
    assert starts == [[(0, [])], [(5, [])]]
    scalars = [(tag, event["step"], value) for file_events in events for event in file_events
               for tag, value in event["values"]]
    # exactly the CSV's numeric cells, in the same order (float32 in the events)
    assert scalars == csv_scalars(run_dir)
    tags = {tag for tag, _, _ in scalars}
    assert tags == {"train/loss", "train/l1", "train/lr", "val/l1", "val/psnr", "val/lr"}
    assert sorted(step for tag, step, _ in scalars if tag == "train/loss") == [1, 2, 3, 4, 5, 5, 6, 6]
    assert [step for tag, step, _ in scalars if tag == "val/psnr"] == [2, 4, 6, 6]


def test_tensorboard_reads_the_scalars(resumed_run):
    """Cross-check with tensorboard itself: EventAccumulator and the server's Python loader
    (plugin_event_accumulator, scalars as tensors) both see every CSV step once, resumed steps purged."""
    try:
        from tensorboard.backend.event_processing import plugin_event_accumulator
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:
        pytest.skip("tensorboard is not installed (not a celbench dependency); "
                    "pip install tensorboard in a separate venv to run this cross-check")
    run_dir = resumed_run["dir"]
    tags = {"train/loss", "train/l1", "train/lr", "val/l1", "val/psnr", "val/lr"}
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    server_loader = plugin_event_accumulator.EventAccumulator(str(run_dir))
    server_loader.Reload()
    assert set(accumulator.Tags()["scalars"]) == tags and set(server_loader.Tags()["tensors"]) == tags
    for tag in sorted(tags):
        split, name = tag.split("/")
        # the last CSV row of each step wins (the resumed process's)
        expected = {int(r["step"]): float(r[name]) for r in rows if r["split"] == split and r[name] != ""}
        for got in ([(e.step, e.value) for e in accumulator.Scalars(tag)],
                    [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in server_loader.Tensors(tag)]):
            assert [step for step, _ in got] == sorted(expected), (tag, got)
            assert all(math.isclose(value, expected[step], rel_tol=1e-6) for step, value in got), (tag, got)
