"""Shared helpers of the hostile-input tests (``test_hostile.py``, ``test_fuzz.py``).

A command runs in-process through its CLI ``main`` (a subprocess costs about a second of imports each; the few
cases that need a real process, signals and kill -9, start one). :func:`outcome` returns the exit status and
stderr; :func:`assert_one_line_error` holds the promise of ``docs/reliability.md``: a non-zero status, one stderr
line naming the problem, no traceback. :func:`snapshot` fingerprints a folder so a test can show that nothing
outside the output folder changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: ``dataprep build --set`` options of the tiny datasets here: 32 x 32 frames, every shot in the test split, one
#: process (workers are spawned only where a test is about them).
TINY = ["--set", "frames.size=32", "--set", "split.train=0", "--set", "split.val=0",
        "--set", "split.test=1", "--executor", "serial"]


def outcome(main, argv: list[str], capfd) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``main(argv)`` run in this process; argparse's exits included."""
    capfd.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capfd.readouterr()
    return int(code or 0), out, err


def assert_one_line_error(code: int, err: str, *needles: str, status: int = 2) -> str:
    """The error contract: ``status``, exactly one stderr line, no traceback, the line holds every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, f"exit {code}, expected {status}; stderr: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def assert_no_crash(code: int, err: str) -> None:
    """What any input may end in: success, or a failure told in words (never a traceback or internal error);
    a user error (2) is exactly one line."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 1, 2), (code, err)
    if code == 2:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (and its folders, as 'dir')."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def make_victim(root: Path) -> Path:
    """A sibling folder of the outputs holding someone's work (what a tampered path would aim at)."""
    victim = root / "victim"
    (victim / "thesis").mkdir(parents=True, exist_ok=True)
    (victim / "thesis.tex").write_text("\\section{Results}\n")
    (victim / "thesis" / "notes.txt").write_text("do not delete\n")
    return victim


def rehash(record_path: Path) -> None:
    """Recompute an edited record's signature and content hash, as a careful tamperer would, so a test shows a
    containment check holds even when the record's checksums agree."""
    from benchmark.record import ResultRecord, compute_signature, content_hash, write_record
    from dataprep.hashing import sha256_file

    data = json.loads(record_path.read_text())
    data["signature"] = compute_signature(data["signature_fields"], f"{data['protocol']}@{data['protocol_version']}")
    record = ResultRecord.from_dict(data)
    hashes = {kind: sha256_file(record_path.parent / name) for kind, name in record.files.items()
              if "/" not in name and (record_path.parent / name).is_file()}
    record.content_sha256 = content_hash(record, hashes)
    write_record(record_path, record)


def python_env() -> dict[str, str]:
    """Environment for a real ``python -m dataprep/benchmark`` subprocess (the repo importable, no debug)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("CELBENCH_DEBUG", None)
    return env


PYTHON = sys.executable


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A 3-shot, 30-36 frame 64 x 48 H.264 clip (dataprep.synth), as ``<folder>/video.mp4``."""
    from dataprep.synth import SynthClip, SynthConfig

    folder = tmp_path_factory.mktemp("tiny-clip") / "clip"
    SynthClip(SynthConfig(width=64, height=48, shots=3, shot_length=(10, 12), seed=3)).write(
        folder, codec="h264", truth_images=False)
    return folder / "video.mp4"


@pytest.fixture(scope="session")
def tiny_dataset(tiny_clip, tmp_path_factory) -> Path:
    """``dataprep build`` of :func:`tiny_clip` (32 x 32, all test); copy it before changing it."""
    from dataprep.cli import main

    out = tmp_path_factory.mktemp("tiny-dataset") / "ds"
    assert main(["build", str(tiny_clip), "--out", str(out), "-q", *TINY]) == 0
    return out
