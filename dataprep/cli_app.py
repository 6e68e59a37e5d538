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
import math
import os
import sys
from importlib import metadata
from typing import Any, Callable, Sequence

from dataprep.errors import CelbenchError
from dataprep.progress import set_quiet

RunFunction = Callable[[argparse.Namespace], "int | None"]

#: Set to 1 to see the traceback of an unexpected error instead of its one-line summary.
DEBUG_VARIABLE = "CELBENCH_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (``prog: error: message (see --help)``), exit status 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def bounded(kind: type, low: float | None = None, high: float | None = None) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses ``kind`` (int or float) and refuses NaN, infinities and values outside
    ``[low, high]``, naming the allowed range (``--workers 0`` -> "must be >= 1")."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            allowed = (f">= {low:g}" if high is None else f"<= {high:g}" if low is None
                       else f"in [{low:g}, {high:g}]")
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


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
    parser = OneLineParser(prog=prog, description=description)
    from dataprep import __version__

    parser.add_argument("--version", action="version", version=f"celbench {__version__}")
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module_name in command_modules:
        importlib.import_module(module_name).add_commands(commands)
    if entry_point_group:
        for ep in metadata.entry_points(group=entry_point_group):
            ep.load()(commands)
    try:
        args = parser.parse_args(argv)  # a type= callable may raise CelbenchError too
        set_quiet(getattr(args, "quiet", False))
        code = args.run(args)
    except CelbenchError as error:
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:
        # Not a user error we foresaw: still one line (exit 1, not the user-error 2) unless debugging.
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"{prog}: internal error: {type(error).__name__}: {_one_line(error)} "
              f"(set {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        return 1
    return int(code or 0)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
