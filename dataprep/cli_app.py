"""The small framework behind the ``dataprep`` and ``bench`` command lines.

Each command module exposes ``add_commands(commands: Commands)`` and calls
``commands.add(name, help, run)`` for each sub-command, then adds its arguments to the returned
parser. ``run(args) -> int | None`` does the work. User errors are raised as
:class:`~dataprep.errors.CelbenchError` and printed here as one line with a non-zero exit.

Packages that sit above this one in the layering (``baselines`` for ``bench train``) plug their
commands in through an entry-point group, so lower layers never import higher ones.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from typing import Callable, Sequence

from dataprep.errors import CelbenchError
from dataprep.progress import set_quiet

RunFunction = Callable[[argparse.Namespace], "int | None"]


class Commands:
    """Collects sub-commands onto one argparse parser."""

    def __init__(self, subparsers: argparse._SubParsersAction):
        self._subparsers = subparsers
        self._groups: dict[str, Commands] = {}

    def add(self, name: str, help: str, run: RunFunction) -> argparse.ArgumentParser:
        """Add sub-command ``name``; returns its parser (with ``--quiet`` already present)."""
        parser = self._subparsers.add_parser(name, help=help, description=help)
        parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
        parser.set_defaults(run=run)
        return parser

    def group(self, name: str, help: str) -> "Commands":
        """A nested command group such as ``dataprep ls detectors`` or ``bench leaderboard build``.

        Several command modules may add to one group (``ls``): the first call creates it, later calls get it.
        """
        if name not in self._groups:
            parser = self._subparsers.add_parser(name, help=help, description=help)
            self._groups[name] = Commands(parser.add_subparsers(dest=f"{name}_command", required=True,
                                                                metavar="COMMAND"))
        return self._groups[name]


def run_cli(prog: str, description: str, command_modules: Sequence[str],
            argv: Sequence[str] | None = None, entry_point_group: str | None = None) -> int:
    """Build the parser from ``command_modules`` (and entry points), parse ``argv``, run."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    from dataprep import __version__

    parser.add_argument("--version", action="version", version=f"celbench {__version__}")
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module_name in command_modules:
        importlib.import_module(module_name).add_commands(commands)
    if entry_point_group:
        for ep in metadata.entry_points(group=entry_point_group):
            ep.load()(commands)
    args = parser.parse_args(argv)
    set_quiet(getattr(args, "quiet", False))
    try:
        code = args.run(args)
    except CelbenchError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)
