"""The result record ``bench evaluate`` writes: one JSON file per (model, protocol, dataset) run.

Typed (dataclasses), versioned (``schema_version``) and validated on load, like
lm-evaluation-harness's result schema. The *signature* is sacrebleu-style: every setting that can
change a number (protocol and its file content, dataset manifest, split, sample limit, resolution,
each metric's settings, celbench version) is listed in ``signature_fields`` and hashed into the short
``signature`` string; two records are comparable exactly when their signatures are equal, and the
leaderboard never puts records with different signatures in one table. The model and its weights are
*what is compared*, so they are recorded but not part of the signature.

``content_sha256`` makes a record tamper-evident: the SHA-256 of its canonical JSON (every field but this
one) and of the companion files it names (per-sample Parquet, example grid). ``bench leaderboard build``
recomputes it (:func:`verify_record`) and refuses a record whose values or per-sample file were changed
afterwards. It is a checksum, not a cryptographic signature: it catches edits and copies that break the link
between a record and its files, not a forger who recomputes it.

``status`` is ``complete`` (every sample scored), ``invalid`` (the model returned a wrong shape, NaN
or out-of-range colours for the samples listed in ``problems``; those are excluded from the metrics)
or ``incomplete`` (evaluation stopped early: the model raised, or the user interrupted). Only
complete records are ranked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprep.errors import file_error

SCHEMA_VERSION = 2  # 2: content_sha256
STATUSES = ("complete", "invalid", "incomplete")


@dataclass
class MetricResult:
    """One metric: its overall mean over valid samples, standard error, and per-bucket means.

    ``value`` is None when no sample could be scored or the metric was unavailable (``unavailable``
    gives the reason, e.g. missing FID weights). Buckets map ``str(bucket value)`` to the mean.
    """

    name: str
    higher_is_better: bool
    settings: dict[str, Any]
    value: float | None
    stderr: float | None
    count: int
    buckets: dict[str, float | None] = field(default_factory=dict)
    unavailable: str | None = None


@dataclass
class Speed:
    """Cost of the model's colourisation step (forward only) and of the whole evaluation.

    ``seconds_per_frame``: wall time of the model call per target frame (device synchronised);
    ``peak_memory_bytes``: peak CUDA memory allocated during forwards, or on CPU the process's peak
    resident set size; ``evaluation_seconds``: the whole loop; ``overhead_fraction``: share of the
    loop not spent in the model call; ``breakdown``: seconds per stage (load, forward, check, metrics).
    """

    seconds_per_frame: float | None
    frames_per_second: float | None
    peak_memory_bytes: int | None
    evaluation_seconds: float
    overhead_fraction: float | None
    breakdown: dict[str, float] = field(default_factory=dict)


@dataclass
class Problem:
    sample_id: str
    problem: str


@dataclass
class ResultRecord:
    model: str
    weights_sha256: str | None
    protocol: str
    protocol_version: int
    protocol_sha256: str
    dataset: dict[str, Any]
    split: str
    limit: int | None
    resolution: list[int]
    bucket_key: str | None
    primary_metric: str
    metrics: list[MetricResult]
    bucket_counts: dict[str, int]
    samples_expected: int
    samples_evaluated: int
    samples_valid: int
    status: str
    problems: list[Problem]
    error: str | None
    speed: Speed
    environment: dict[str, str]
    date: str
    signature: str
    signature_fields: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    content_sha256: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def protocol_id(self) -> str:
        return f"{self.protocol}@{self.protocol_version}"

    def metric(self, name: str) -> MetricResult:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResultRecord":
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        data = dict(data)
        data["metrics"] = [MetricResult(**m) for m in data["metrics"]]
        data["problems"] = [Problem(**p) for p in data["problems"]]
        data["speed"] = Speed(**data["speed"])
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            raise ValueError(f"unexpected or missing fields: {sorted(set(data) ^ names)}")
        record = cls(**data)
        if record.status not in STATUSES:
            raise ValueError(f"status {record.status!r} is not one of {STATUSES}")
        if compute_signature(record.signature_fields, record.protocol_id) != record.signature:
            raise ValueError("signature does not match signature_fields (record edited by hand?)")
        return record


def content_hash(record: ResultRecord, file_sha256: dict[str, str]) -> str:
    """SHA-256 of the record's canonical JSON without ``content_sha256`` plus the hashes of its companion files
    (``file_sha256``: kind in ``record.files`` -> hex digest). Non-finite floats (PSNR of identical frames)
    are written as JSON's Infinity, as :func:`write_record` does."""
    data = record.to_dict()
    data.pop("content_sha256")
    canonical = json.dumps({"record": data, "files": file_sha256}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify_record(path: str | os.PathLike, record: ResultRecord) -> None:
    """Check ``record`` (read from ``path``) against its content hash and the files beside it; a one-line
    CelbenchError naming ``path`` when a value, a companion file or the hash was changed."""
    from dataprep.hashing import sha256_file
    from dataprep.paths import inside, safe_name

    path = Path(path)
    if not record.content_sha256:
        raise file_error(path, "record has no content_sha256 (written by hand or by an older celbench?)")
    hashes = {}
    for kind, name in sorted(record.files.items()):
        companion = inside(path.parent, safe_name(name, f"files.{kind}", path), source=path)
        if not companion.is_file():
            raise file_error(path, f"its {kind} file {name} is missing")
        hashes[kind] = sha256_file(companion)
    if content_hash(record, hashes) != record.content_sha256:
        raise file_error(path, "content hash does not match the record's values or its files "
                               f"({', '.join(record.files.values()) or 'none'}): edited after bench evaluate wrote it?")


def compute_signature(fields: dict[str, Any], protocol_id: str) -> str:
    """``<protocol>@<version>+<12 hex digits>``: the hash of the canonical JSON of ``fields``."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f"{protocol_id}+{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def write_record(path: str | os.PathLike, record: ResultRecord) -> None:
    # +-inf can appear only for uncapped metrics (PSNR of identical frames); Python's json writes it as
    # Infinity and reads it back. NaN never reaches a record (undefined values are left out of means).
    text = json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, text.encode())


def read_record(path: str | os.PathLike) -> ResultRecord:
    """Load and validate a record; a broken file raises a one-line CelbenchError naming it."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"top level is a JSON {type(data).__name__}, not an object")
        return ResultRecord.from_dict(data)
    except FileNotFoundError:
        raise file_error(path, "result record not found") from None
    except (ValueError, TypeError, KeyError) as error:
        raise file_error(path, f"not a valid celbench result record ({error})") from None
