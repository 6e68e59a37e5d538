"""``bench``: score colourisation models and build leaderboards. See ``bench --help``."""

from __future__ import annotations

from typing import Sequence

from dataprep.cli_app import run_cli

COMMAND_MODULES: list[str] = [
    "benchmark.compare",
    "benchmark.demo",
    "benchmark.evaluate_cli",
    "benchmark.leaderboard_cli",
    "benchmark.ls_cli",
    "benchmark.speed",
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("bench", __doc__.split(":")[1].strip(), COMMAND_MODULES, argv,
                   entry_point_group="celbench.commands")


if __name__ == "__main__":
    raise SystemExit(main())
