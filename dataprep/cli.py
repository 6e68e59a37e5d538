"""``dataprep``: build colourisation datasets from anime video. See ``dataprep --help``."""

from __future__ import annotations

from typing import Sequence

from dataprep.cli_app import run_cli

# One module per stage owns its sub-commands; adding a stage's CLI is one line here.
COMMAND_MODULES: list[str] = [
    "dataprep.synth.cli",
    "dataprep.shots.cli",
    "dataprep.ls_cli",
    "dataprep.build.cli",
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("dataprep", __doc__.split(":")[1].strip(), COMMAND_MODULES, argv)


if __name__ == "__main__":
    raise SystemExit(main())
