"""``bench``: the benchmark's command line (evaluate, leaderboards, demo, speed; ``train`` from ``baselines``)."""

from __future__ import annotations

from typing import Sequence

from dataprep.cli_app import run_cli

DESCRIPTION = ("score reference-based line-art colourisation models under versioned protocols and build "
               "leaderboards. Start with `bench demo --out demo`. To score a model on your own video: "
               "`dataprep build VIDEO --out DATASET --split test`, then `bench evaluate --model NAME --data DATASET` "
               "and `bench leaderboard build`. `bench COMMAND --help` describes each command.")

COMMAND_MODULES: list[str] = [
    "benchmark.compare",
    "benchmark.demo",
    "benchmark.evaluate_cli",
    "benchmark.leaderboard_cli",
    "benchmark.ls_cli",
    "benchmark.speed",
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("bench", DESCRIPTION, COMMAND_MODULES, argv,
                   entry_point_group="celbench.commands")


if __name__ == "__main__":
    raise SystemExit(main())
