"""TensorBoard event files (``events.out.tfevents.*``) written natively, without tensorflow or tensorboard.

``torch.utils.tensorboard`` needs the ``tensorboard`` package, which celbench does not depend on; the
format is small enough to write by hand.

File format (TFRecord): a sequence of records, each framed as::

    uint64  length            little-endian, number of bytes in data
    uint32  masked_crc(length bytes)
    byte    data[length]      one serialised ``tensorflow.Event`` protobuf
    uint32  masked_crc(data)

    masked_crc(b) = ((c >> 15) | (c << 17)) + 0xa282ead8  (mod 2**32),  c = CRC32C(b)  (Castagnoli)

The first record of a file is ``Event{wall_time, file_version: "brain.Event:2"}``. Each scalar is one
``Event`` (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto)::

    Event    { double wall_time = 1; int64 step = 2; Summary summary = 5; SessionLog session_log = 7; }
    Summary  { repeated Value value = 1; }
    Value    { string tag = 1; float simple_value = 2; }
    SessionLog { SessionStatus status = 1; }   START = 1

The second record is ``Event{wall_time, step: S, session_log: {status: START}}``, S = the first step the
writing process can log (0 for a new run, checkpoint step + 1 for a resumed one). TensorBoard treats a
START as a restart and drops the events with step >= S read so far from earlier files: the steps an
interrupted run logged after its last checkpoint, which the resumed run logs again. A new run's file
carries one too (step 0, drops nothing) because the TensorBoard server's Python loader
(plugin_event_accumulator) ignores the first START of a run; without it the resume's START would be lost.

File names are ``events.out.tfevents.<int unix time>.<hostname>`` (``.1``, ``.2``... appended when a file of
that name already exists, e.g. a resume within the same second); TensorBoard reads every file whose name
contains ``tfevents`` in name order, so ``tensorboard --logdir DIR`` shows a directory's files as one run.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from pathlib import Path
from typing import Mapping

FILE_VERSION = "brain.Event:2"
_CRC_MASK_DELTA = 0xA282EAD8
_UINT32 = 0xFFFFFFFF
_UINT64 = 0xFFFFFFFFFFFFFFFF
_FLOAT32_MAX = 3.4028234663852886e38


def _crc32c_table() -> tuple[int, ...]:
    # Reflected CRC-32C (Castagnoli) polynomial 0x1EDC6F41, bit-reversed to 0x82F63B78.
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from ``crc``; ``crc32c(b"123456789") == 0xE3069283``.

    Table-driven pure Python: about 7 MB/s, plenty for logs of a few hundred bytes per step."""
    crc ^= _UINT32
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _UINT32


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C rotated right by 15 bits plus 0xa282ead8 (mod 2**32)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _UINT32) + _CRC_MASK_DELTA) & _UINT32


def tfrecord(data: bytes) -> bytes:
    """One TFRecord frame around ``data``: length, masked CRC of the length, data, masked CRC of the data."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


# --- protobuf wire format (only the field kinds an Event needs) -------------------------------------------

def _varint(value: int) -> bytes:
    """Base-128 varint; negative int64 values are sent as their 64-bit two's complement (10 bytes)."""
    value &= _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _float32(value: float) -> bytes:
    # struct refuses finite doubles outside float32 range; a diverging loss should show as inf, not crash.
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        value = math.copysign(math.inf, value)
    return struct.pack("<f", value)


def encode_event(wall_time: float, step: int = 0, *, file_version: str | None = None,
                 scalars: Mapping[str, float] | None = None, session_start: bool = False) -> bytes:
    """A serialised ``Event``: ``wall_time`` and ``step`` plus one of ``file_version``, a ``Summary`` of
    ``scalars`` (tag -> simple_value, one ``Value`` each, in the mapping's order) or ``SessionLog{START}``.

    Fields holding proto3 defaults (step 0) are left out, as protobuf serialisers do."""
    out = _key(1, 1) + struct.pack("<d", float(wall_time))
    if step:
        out += _key(2, 0) + _varint(int(step))
    chosen = sum((file_version is not None, scalars is not None, session_start))
    if chosen > 1:
        raise ValueError("an Event holds one of file_version, scalars, session_start")
    if file_version is not None:
        out += _bytes_field(3, file_version.encode("utf-8"))
    elif scalars is not None:
        summary = b"".join(
            _bytes_field(1, _bytes_field(1, tag.encode("utf-8")) + _key(2, 5) + _float32(float(value)))
            for tag, value in scalars.items())
        out += _bytes_field(5, summary)
    elif session_start:
        out += _bytes_field(7, _key(1, 0) + _varint(1))
    return out


class EventFileWriter:
    """Writes one new event file in ``log_dir`` (never reopens an existing one).

    Every ``add_scalars`` call appends its records with a single write and closes the file, so an
    interrupted run keeps everything logged up to that moment and at most loses the record being written.
    ``start_step``: the step of the file's ``SessionLog{START}`` (see the module docstring): pass the
    checkpoint step + 1 when resuming, so TensorBoard discards the steps >= ``start_step`` that earlier
    files hold."""

    def __init__(self, log_dir: str | os.PathLike, start_step: int = 0):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        header = (tfrecord(encode_event(time.time(), file_version=FILE_VERSION))
                  + tfrecord(encode_event(time.time(), start_step, session_start=True)))
        for attempt in range(1000):
            path = self.log_dir / (base if attempt == 0 else f"{base}.{attempt}")
            try:
                # Exclusive create: an earlier process's file (e.g. before a resume) is never touched.
                with path.open("xb") as handle:
                    handle.write(header)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"{self.log_dir}: no free event file name for {base}")
        self.path = path

    def add_scalars(self, step: int, scalars: Mapping[str, float], wall_time: float | None = None) -> None:
        """One ``Event`` per tag (``simple_value`` is float32), all stamped with ``step`` and ``wall_time``."""
        wall_time = time.time() if wall_time is None else wall_time
        records = b"".join(tfrecord(encode_event(wall_time, step, scalars={tag: value}))
                           for tag, value in scalars.items())
        if records:
            with self.path.open("ab") as handle:
                handle.write(records)

    def add_scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        self.add_scalars(step, {tag: value}, wall_time)
