"""The README's commands: the two set-up commands are what CI runs and what a newcomer copies; the
"score a model on your own video" walkthrough runs as written."""

import re
import shlex
from pathlib import Path

import pytest

from benchmark_toys import one_torch_thread

ROOT = Path(__file__).resolve().parents[1]
one_thread = pytest.fixture(one_torch_thread)


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def readme_commands():
    return bash_blocks(readme_section("Set up"))


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands)
    assert all("-c constraints.txt" in c for c in commands)


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_own_video_walkthrough_runs_as_written(tmp_path, monkeypatch, one_thread):
    """The walkthrough's commands, in order, on a small generated clip standing in for ``my_clip.mp4``
    (its left 80x64 half as the crop; frames made 48x48, built in this process, 3 samples scored, so the test
    is quick): the dataset puts every shot in the test split and the leaderboard ranks both models."""
    from benchmark import cli as bench_cli
    from dataprep import cli as dataprep_cli
    from dataprep.synth import SynthClip, SynthConfig

    SynthClip(SynthConfig(width=160, height=64, shots=1, shot_length=(14, 14), seed=3, pan=False)).write(
        tmp_path / "clip", codec="h264")
    monkeypatch.chdir(tmp_path)
    (blocks,) = [bash_blocks(readme_section("Score a model on your own video"))]
    lines = blocks[0].splitlines()
    assert [line.split()[:2] for line in lines] == [["dataprep", "build"], ["bench", "evaluate"],
                                                     ["bench", "evaluate"], ["bench", "leaderboard"]]
    for line in lines:
        argv = shlex.split(line.replace("my_clip.mp4", str(tmp_path / "clip" / "video.mp4"))
                           .replace("frames.crop=[0,0,409,512]", "frames.crop=[0,0,80,64]"))
        if argv[:2] == ["dataprep", "build"]:
            argv += ["--set", "frames.size=48", "--executor", "serial", "-q"]
        if argv[:2] == ["bench", "evaluate"]:
            argv += ["--limit", "3", "-q"]  # the models run at the protocol's 256 px: a few samples are enough
        main = dataprep_cli.main if argv[0] == "dataprep" else bench_cli.main
        assert main(argv[1:]) == 0, line
    board = (tmp_path / "my_leaderboards" / "cmft-interval@1.md").read_text()
    assert "| 1 |" in board and "| 2 |" in board and "flow-warp" in board and "warp-refine" in board
