"""TensorBoard event files of ``bench train`` (baselines.tfevents): CRC32C, byte-exact Event encoding, and a
real run (interrupted after a checkpoint, then resumed) read back by a TFRecord/protobuf reader written here,
independently of the writer, and by tensorboard's own EventAccumulator when tensorboard is installed."""

from __future__ import annotations

import csv
import json
import math
import random
import re
import socket
import struct
import time

import pytest

from baselines.tfevents import crc32c, encode_event, masked_crc32c, tfrecord
from benchmark.cli import main as bench_main
from benchmark_toys import one_torch_thread

single_thread = pytest.fixture(autouse=True)(one_torch_thread)


# --- an independent reader: bitwise CRC32C, TFRecord frames, protobuf wire format ---------------------------

def bitwise_crc32c(data: bytes) -> int:
    """CRC-32C one bit at a time (reflected polynomial 0x82F63B78), no table: a second implementation."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(data: bytes) -> list[bytes]:
    """Split a TFRecord file into its payloads, checking both masked CRCs of every frame."""
    records, at = [], 0
    while at < len(data):
        assert len(data) - at >= 16, f"truncated frame at byte {at}"
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert length_crc == mask(bitwise_crc32c(header)), f"bad length CRC at byte {at}"
        payload = data[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert len(payload) == length and data_crc == mask(bitwise_crc32c(payload)), f"bad data CRC at byte {at}"
        records.append(payload)
        at += 16 + length
    return records


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, raw value) pairs: ints for varints, bytes for fixed64/fixed32/length-delimited."""
    out, at = [], 0
    while at < len(message):
        key, at = read_varint(message, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = read_varint(message, at)
        elif wire == 1:
            value, at = message[at:at + 8], at + 8
        elif wire == 5:
            value, at = message[at:at + 4], at + 4
        elif wire == 2:
            length, at = read_varint(message, at)
            value, at = message[at:at + length], at + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, value))
    return out


def decode_event(payload: bytes) -> dict:
    """The Event fields the writer uses: wall_time, step, file_version, summary values, session_log status."""
    event = {"wall_time": None, "step": 0, "values": []}
    for number, value in fields(payload):
        if number == 1:
            (event["wall_time"],) = struct.unpack("<d", value)
        elif number == 2:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3:
            event["file_version"] = value.decode()
        elif number == 5:
            for summary_field, summary_value in fields(value):
                assert summary_field == 1
                entry = dict(fields(summary_value))
                event["values"].append((entry[1].decode(), struct.unpack("<f", entry[2])[0]))
        elif number == 7:
            event["session_status"] = dict(fields(value)).get(1, 0)
        else:
            raise AssertionError(f"unexpected Event field {number}")
    return event


def read_event_file(path) -> list[dict]:
    return [decode_event(record) for record in read_records(path.read_bytes())]


def float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


# --- the writer's building blocks -----------------------------------------------------------------------------

def test_crc32c_matches_the_standard_check_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC catalogue's check value for CRC-32C
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 (iSCSI) B.4: 32 bytes of zeros
    assert crc32c(b"\xff" * 32) == 0x62A8AB43  # ... 32 bytes of 0xff
    assert crc32c(bytes(range(32))) == 0x46DD794E  # ... incrementing 0x00..0x1f
    assert crc32c(b"") == 0
    data = random.Random(0).randbytes(300)
    assert crc32c(data) == bitwise_crc32c(data)
    assert crc32c(data[100:], crc32c(data[:100])) == crc32c(data)  # continuing a CRC


def test_one_scalar_event_is_encoded_byte_for_byte():
    expected = bytes([
        0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,  # field 1 (double, wire type 1): wall_time 1.5
        0x10, 0xAC, 0x02,  # field 2 (varint): step 300
        0x2A, 0x13,  # field 5 (length-delimited): summary, 19 bytes
        0x0A, 0x11,  # Summary field 1: value, 17 bytes
        0x0A, 0x0A, *b"train/loss",  # Value field 1: tag, 10 bytes
        0x15, 0x00, 0x00, 0x80, 0x3E,  # Value field 2 (float, wire type 5): simple_value 0.25
    ])
    event = encode_event(1.5, 300, scalars={"train/loss": 0.25})
    assert event == expected
    version = encode_event(1.5, file_version="brain.Event:2")
    assert version == bytes([0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x1A, 0x0D, *b"brain.Event:2"])
    assert encode_event(1.5, 7, session_start=True)[9:] == bytes([0x10, 0x07, 0x3A, 0x02, 0x08, 0x01])
    # float32 overflow shows as inf instead of raising
    assert encode_event(0.0, scalars={"x": 1e39}).endswith(bytes([0x00, 0x00, 0x80, 0x7F]))

    frame = tfrecord(expected)
    assert frame[:8] == struct.pack("<Q", 33)
    assert frame[8:12] == struct.pack("<I", mask(bitwise_crc32c(frame[:8])))
    assert frame[12:45] == expected
    assert frame[45:] == struct.pack("<I", mask(bitwise_crc32c(expected)))
    assert masked_crc32c(expected) == mask(bitwise_crc32c(expected))
    assert read_records(frame + frame) == [expected, expected]


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
    name = re.compile(r"events\.out\.tfevents\.(\d+)\." + re.escape(socket.gethostname()) + r"(\.\d+)?")
    for path in files:
        match = name.fullmatch(path.name)
        assert match, path.name
        assert resumed_run["started"] - 1 <= int(match.group(1)) <= time.time()
    # the first process's file is left exactly as it was
    ((old_path, old_bytes),) = resumed_run["first_bytes"].items()
    assert files[0] == old_path and old_path.read_bytes() == old_bytes

    events = [read_event_file(path) for path in files]
    for file_events in events:
        head = file_events[0]
        assert head["file_version"] == "brain.Event:2" and head["values"] == []
        assert resumed_run["started"] - 1 <= head["wall_time"] <= time.time()
    # each file starts a session: the new run at step 0, the resumed one at step 5, so TensorBoard drops the
    # first file's steps >= 5 (logged after the step-4 checkpoint the resume restarts from)
    assert [(f[1]["session_status"], f[1]["step"], f[1]["values"]) for f in events] == [(1, 0, []), (1, 5, [])]
    scalars = [(tag, event["step"], value) for file_events in events for event in file_events
               for tag, value in event["values"]]
    assert all(len(event["values"]) == 1 for file_events in events for event in file_events[2:])
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
