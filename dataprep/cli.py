"""``dataprep``: the dataset builder's command line (synth, shots, build, validate, info, ls)."""

from __future__ import annotations

from typing import Sequence

from dataprep.cli_app import run_cli

DESCRIPTION = ("build line-art colourisation datasets from anime video: shots, sketches, distance fields, "
               "components, reference/target pairs and hints in sharded Parquet. Start with "
               "`dataprep build VIDEO --out DATASET` (`--split test` to score models on it with `bench evaluate`). "
               "`dataprep COMMAND --help` describes each command.")

# One module per stage owns its sub-commands; adding a stage's CLI is one line here.
COMMAND_MODULES: list[str] = [
    "dataprep.synth.cli",
    "dataprep.shots.cli",
    "dataprep.ls_cli",
    "dataprep.build.cli",
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("dataprep", DESCRIPTION, COMMAND_MODULES, argv)


if __name__ == "__main__":
    raise SystemExit(main())
